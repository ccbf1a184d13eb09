"""Reconciliation: a provider's daily settlement statement matched against our payments and refunds.

Lines are parsed as a stream, loaded into a staging table (COPY on PostgreSQL) and matched set-based
in SQL; see services.reconciliation_run.
"""
