"""Redemptions of pickup vouchers (the audit trail of every hand-over) and the POS API's stored answers."""

from django.conf import settings
from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

__all__ = ["Redemption", "PickupIdempotencyKey"]


class Redemption(models.Model):
    """One hand-over at a counter: who, where, when, through which channel and client, and what.

    Never edited and never deleted: a manager's void sets the void fields and puts the order back,
    the row stays. `lines` says what was handed over, so a later partial pickup is one more row of
    the same kind: `[{"item": OrderItem id, "product": Product id, "name": "...", "quantity": n}]`.
    """

    class Channel(models.TextChoices):
        WEB = "web", _("Cashier page")
        API = "api", _("POS API")

    merchant = models.ForeignKey(
        "merchants.Merchant", on_delete=models.PROTECT, related_name="+", verbose_name=_("merchant")
    )
    order = models.ForeignKey(
        "orders.Order", on_delete=models.PROTECT, related_name="redemptions", verbose_name=_("order")
    )
    store = models.ForeignKey(
        "merchants.Store", on_delete=models.PROTECT, related_name="redemptions", verbose_name=_("store")
    )
    # PROTECT: the audit trail names a person; staff leave by being deactivated, not deleted.
    cashier = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+", verbose_name=_("cashier")
    )
    channel = models.CharField(_("channel"), max_length=8, choices=Channel.choices)
    client = models.CharField(
        _("client"), max_length=255, blank=True, help_text=_("Browser user agent, or the POS terminal's name.")
    )
    client_ip = models.GenericIPAddressField(_("client IP"), null=True, blank=True)
    # The cashier page's form key or the POS's Idempotency-Key: a retry finds this row.
    idempotency_key = models.CharField(max_length=64, blank=True, editable=False)
    created_at = models.DateTimeField(_("handed over"), default=timezone.now, db_index=True)
    lines = models.JSONField(_("items handed over"), default=list)
    # What a void puts the order back to (paid, or ready for pickup).
    order_status_before = models.CharField(_("order status before"), max_length=20)

    voided_at = models.DateTimeField(_("voided"), null=True, blank=True)
    voided_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+",
        verbose_name=_("voided by"),
    )
    void_reason = models.CharField(_("void reason"), max_length=255, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        verbose_name = _("redemption")
        verbose_name_plural = _("redemptions")
        indexes = [
            models.Index(fields=["merchant", "created_at"]),
            models.Index(fields=["order", "created_at"]),
            models.Index(fields=["store", "created_at"]),
        ]
        constraints = [
            # A void is all three or none of them.
            models.CheckConstraint(
                condition=models.Q(voided_at__isnull=True, voided_by__isnull=True, void_reason="")
                | (models.Q(voided_at__isnull=False, voided_by__isnull=False) & ~models.Q(void_reason="")),
                name="redemption_void_complete",
            ),
        ]

    def __str__(self) -> str:
        return f"#{self.pk} order {self.order_id} @ {self.store_id}"

    @property
    def is_voided(self) -> bool:
        return self.voided_at is not None

    @property
    def units(self) -> int:
        return sum(line.get("quantity", 0) for line in self.lines)


class PickupIdempotencyKey(models.Model):
    """The answer the POS API gave to one (user, Idempotency-Key): a retry gets it again, word for word.

    The row is inserted before the redemption is tried, in the same transaction, so two requests with
    the same key at once queue on the unique index: the second sees the first's answer, never its own.
    """

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    key = models.CharField(max_length=64)
    code = models.CharField(max_length=16)
    status_code = models.PositiveSmallIntegerField(null=True)
    # The JSON exactly as first sent (text, not jsonb: PostgreSQL would reorder its keys).
    body = models.TextField(blank=True)
    created_at = models.DateTimeField(default=timezone.now, db_index=True)

    class Meta:
        verbose_name = _("pickup idempotency key")
        verbose_name_plural = _("pickup idempotency keys")
        constraints = [models.UniqueConstraint(fields=["user", "key"], name="pickup_idempotency_key_once")]

    def __str__(self) -> str:
        return f"{self.user_id}:{self.key}"
