"""Reconciliation runs and the discrepancies they find between a provider's settlement statement and us."""

from decimal import Decimal

from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _

from ..payments.models import Provider

# Totals of a day's statement can outgrow one payment's max_digits=12.
_TOTAL = {"max_digits": 16, "decimal_places": 2, "default": Decimal("0.00")}


class ReconciliationRun(models.Model):
    """One settlement statement (one merchant, one provider, one day, one file) matched against our payments.

    The file's SHA-256 is part of the key: the same statement again finds this run and changes nothing;
    a corrected statement for the same day is a new run.
    """

    class Source(models.TextChoices):
        UPLOAD = "upload", _("Admin upload")
        DOWNLOAD = "download", _("Daily download")
        COMMAND = "command", _("Command line")

    class Status(models.TextChoices):
        RUNNING = "running", _("Running")
        SUCCEEDED = "succeeded", _("Succeeded")
        FAILED = "failed", _("Failed")

    merchant = models.ForeignKey(
        "merchants.Merchant", on_delete=models.PROTECT, related_name="reconciliation_runs", verbose_name=_("merchant")
    )
    provider = models.CharField(_("provider"), max_length=16, choices=Provider.choices)
    statement_date = models.DateField(_("statement date"))
    source = models.CharField(_("source"), max_length=16, choices=Source.choices)
    file_sha256 = models.CharField(_("file SHA-256"), max_length=64)
    # Where an uploaded statement waits for the worker (default storage); blank for the others.
    statement_file = models.CharField(_("statement file"), max_length=255, blank=True)
    status = models.CharField(_("status"), max_length=16, choices=Status.choices, default=Status.RUNNING)
    started_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+",
        verbose_name=_("started by"),
    )
    created_at = models.DateTimeField(_("created"), auto_now_add=True)
    started_at = models.DateTimeField(_("started"), null=True, blank=True)
    finished_at = models.DateTimeField(_("finished"), null=True, blank=True)
    error = models.TextField(_("error"), blank=True)
    error_line_no = models.PositiveIntegerField(_("error at line"), null=True, blank=True)

    # Outcomes. Every statement line is counted in exactly one of matched, amount_mismatch, missing_here,
    # healed, duplicate and (refund lines) refund_mismatch; every paid payment of the day not matched by a
    # line is one missing_at_provider.
    lines_total = models.PositiveIntegerField(_("statement lines"), default=0)
    matched = models.PositiveIntegerField(_("matched"), default=0)
    amount_mismatch = models.PositiveIntegerField(_("amount mismatch"), default=0)
    missing_here = models.PositiveIntegerField(_("missing here"), default=0)
    healed = models.PositiveIntegerField(_("healed"), default=0)
    missing_at_provider = models.PositiveIntegerField(_("missing at provider"), default=0)
    refund_mismatch = models.PositiveIntegerField(_("refund mismatch"), default=0)
    duplicate = models.PositiveIntegerField(_("duplicate"), default=0)

    # The day's summary as the provider bills it (every line, duplicates included).
    currency = models.CharField(_("currency"), max_length=3, blank=True)
    trade_count = models.PositiveIntegerField(_("trades"), default=0)
    refund_count = models.PositiveIntegerField(_("refunds"), default=0)
    trades_total = models.DecimalField(_("trades total"), **_TOTAL)
    refunds_total = models.DecimalField(_("refunds total"), **_TOTAL)
    fees_total = models.DecimalField(_("fees total"), **_TOTAL)
    net_total = models.DecimalField(_("net (trades − refunds − fees)"), **_TOTAL)

    class Meta:
        ordering = ["-statement_date", "-id"]
        verbose_name = _("reconciliation run")
        verbose_name_plural = _("reconciliation runs")
        constraints = [
            models.UniqueConstraint(
                fields=["merchant", "provider", "statement_date", "file_sha256"], name="reconciliation_run_once"
            )
        ]
        indexes = [models.Index(fields=["merchant", "statement_date"])]

    def __str__(self) -> str:
        return f"{self.get_provider_display()} {self.statement_date:%Y-%m-%d} #{self.pk}"

    @property
    def discrepancy_count(self) -> int:
        return (
            self.amount_mismatch + self.missing_here + self.missing_at_provider + self.refund_mismatch + self.duplicate
        )


class Discrepancy(models.Model):
    """A difference between the statement and our books, kept for staff to review and resolve with a note."""

    class Kind(models.TextChoices):
        AMOUNT_MISMATCH = "amount_mismatch", _("Amount mismatch")
        MISSING_HERE = "missing_here", _("Missing here (provider paid, we never heard)")
        MISSING_AT_PROVIDER = "missing_at_provider", _("Missing at provider")
        REFUND_MISMATCH = "refund_mismatch", _("Refund mismatch")
        DUPLICATE = "duplicate", _("Duplicate in statement")
        # Missing here with the amount agreeing: marked paid automatically, recorded (already resolved).
        HEALED = "healed", _("Healed (marked paid from the statement)")

    class Status(models.TextChoices):
        OPEN = "open", _("Open")
        RESOLVED = "resolved", _("Resolved")

    run = models.ForeignKey(
        ReconciliationRun, on_delete=models.CASCADE, related_name="discrepancies", verbose_name=_("run")
    )
    merchant = models.ForeignKey("merchants.Merchant", on_delete=models.PROTECT, related_name="+")
    kind = models.CharField(_("kind"), max_length=24, choices=Kind.choices)
    status = models.CharField(_("status"), max_length=16, choices=Status.choices, default=Status.OPEN)
    # The statement line it comes from; empty for what only our books have (missing at provider, a refund
    # of ours the statement lacks).
    line_no = models.PositiveIntegerField(_("statement line"), null=True, blank=True)
    out_trade_no = models.CharField(_("our trade number"), max_length=64, blank=True)
    provider_trade_no = models.CharField(_("provider trade number"), max_length=64, blank=True)
    out_refund_no = models.CharField(_("our refund number"), max_length=64, blank=True)
    payment = models.ForeignKey(
        "orders.Payment", on_delete=models.SET_NULL, null=True, blank=True, related_name="+", verbose_name=_("payment")
    )
    our_amount = models.DecimalField(_("our amount"), max_digits=12, decimal_places=2, null=True, blank=True)
    their_amount = models.DecimalField(_("their amount"), max_digits=14, decimal_places=2, null=True, blank=True)
    occurred_at = models.DateTimeField(_("provider's time"), null=True, blank=True)
    detail = models.CharField(_("detail"), max_length=255, blank=True)
    created_at = models.DateTimeField(_("found"), auto_now_add=True)
    resolution_note = models.TextField(_("resolution note"), blank=True)
    resolved_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+",
        verbose_name=_("resolved by"),
    )
    resolved_at = models.DateTimeField(_("resolved"), null=True, blank=True)

    class Meta:
        ordering = ["-run_id", "line_no", "id"]
        verbose_name = _("discrepancy")
        verbose_name_plural = _("discrepancies")
        indexes = [
            models.Index(fields=["run", "line_no"]),
            models.Index(fields=["merchant", "status", "kind"]),
        ]

    def __str__(self) -> str:
        return f"{self.get_kind_display()}: {self.out_trade_no or self.out_refund_no or self.line_no}"
