"""Reconciliation: a provider's daily settlement statement matched against our payments and refunds.

Lines are loaded into a staging table and matched set-based in SQL; see services.reconciliation_run.
On PostgreSQL a trade bill (WeChat Pay's format, the sandbox's too) is staged in bulk: COPY of its cells,
typed and checked in SQL (bulk.py). Any other statement, and any bill the bulk path does not vouch for,
is read line by line by its provider's parser and COPYed (staging.py); memory stays flat either way.
"""
