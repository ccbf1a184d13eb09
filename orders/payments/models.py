"""Payments: per-merchant provider configuration, payment attempts, provider notifications, refunds,
and the built-in sandbox provider's own ledger (what a real provider keeps on its side)."""

from decimal import Decimal

from django.conf import settings
from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _


class Provider(models.TextChoices):
    SANDBOX = "sandbox", _("Sandbox (test)")
    ALIPAY = "alipay", _("Alipay")
    WECHATPAY = "wechatpay", _("WeChat Pay")


class PaymentConfig(models.Model):
    """A merchant's account at one provider. Secrets are write-only: never shown, logged or returned."""

    merchant = models.ForeignKey(
        "merchants.Merchant", on_delete=models.CASCADE, related_name="payment_configs", verbose_name=_("merchant")
    )
    provider = models.CharField(_("provider"), max_length=16, choices=Provider.choices)
    is_active = models.BooleanField(_("active"), default=True)
    # Public identifiers: Alipay app_id / WeChat appid; Alipay seller_id / WeChat mchid.
    app_id = models.CharField(_("app id"), max_length=64, blank=True)
    merchant_no = models.CharField(_("merchant number"), max_length=64, blank=True)
    # Public keys to verify the provider: Alipay's public key (PEM); WeChat Pay platform keys as
    # {"serial": "PEM", ...}; unused by the sandbox.
    provider_public_keys = models.JSONField(_("provider public keys"), default=dict, blank=True)
    # Secrets: sandbox HMAC key; Alipay app private key; WeChat merchant private key and APIv3 key.
    signing_secret = models.TextField(_("signing secret / private key"), blank=True)
    api_v3_key = models.CharField(_("APIv3 key"), max_length=64, blank=True)
    merchant_cert_serial = models.CharField(_("merchant certificate serial"), max_length=64, blank=True)
    updated_at = models.DateTimeField(_("updated"), auto_now=True)

    class Meta:
        verbose_name = _("payment provider account")
        verbose_name_plural = _("payment provider accounts")
        constraints = [models.UniqueConstraint(fields=["merchant", "provider"], name="payment_config_unique")]

    def __str__(self) -> str:
        return f"{self.get_provider_display()} ({self.merchant})"


class Payment(models.Model):
    """One attempt to pay an order through a provider."""

    class Status(models.TextChoices):
        CREATED = "created", _("Waiting for the customer")
        PAID = "paid", _("Paid")
        FAILED = "failed", _("Failed")
        NEEDS_REVIEW = "needs_review", _("Needs review")
        CLOSED = "closed", _("Closed")

    merchant = models.ForeignKey("merchants.Merchant", on_delete=models.PROTECT, related_name="payments")
    order = models.ForeignKey("orders.Order", on_delete=models.PROTECT, related_name="payments")
    provider = models.CharField(_("provider"), max_length=16, choices=Provider.choices)
    # Our number for this attempt, sent to the provider and found again in its notifications and bills.
    out_trade_no = models.CharField(_("our trade number"), max_length=64, unique=True)
    provider_trade_no = models.CharField(_("provider trade number"), max_length=64, blank=True, db_index=True)
    amount = models.DecimalField(_("amount"), max_digits=12, decimal_places=2)
    currency = models.CharField(_("currency"), max_length=3)
    status = models.CharField(_("status"), max_length=16, choices=Status.choices, default=Status.CREATED)
    refunded_amount = models.DecimalField(_("refunded"), max_digits=12, decimal_places=2, default=Decimal("0.00"))
    review_reason = models.CharField(_("why it needs review"), max_length=255, blank=True)
    created_at = models.DateTimeField(_("created"), auto_now_add=True)
    paid_at = models.DateTimeField(_("paid"), null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        verbose_name = _("payment")
        verbose_name_plural = _("payments")
        indexes = [
            models.Index(fields=["status", "created_at"]),
            models.Index(fields=["merchant", "provider", "paid_at"]),
        ]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(refunded_amount__gte=0) & models.Q(refunded_amount__lte=models.F("amount")),
                name="payment_refunds_within_amount",
            ),
            # The backstop behind payment_apply_notification: money that arrives for an order another
            # payment already paid goes to review, it never makes a second "paid" payment.
            models.UniqueConstraint(
                fields=["order"], condition=models.Q(status="paid"), name="payment_one_paid_per_order"
            ),
        ]

    def __str__(self) -> str:
        return self.out_trade_no


class PaymentNotification(models.Model):
    """A provider's notification exactly as it arrived, stored before anything acts on it."""

    class Status(models.TextChoices):
        RECEIVED = "received", _("Received")
        APPLIED = "applied", _("Applied")
        DUPLICATE = "duplicate", _("Duplicate (changed nothing)")
        DEFERRED = "deferred", _("Waiting for its payment")
        NEEDS_REVIEW = "needs_review", _("Needs review")
        REJECTED = "rejected", _("Rejected (signature or content)")
        IGNORED = "ignored", _("Ignored (not a payment)")

    class Source(models.TextChoices):
        PUSH = "push", _("Sent by the provider")
        QUERY = "query", _("Our query to the provider")
        STATEMENT = "statement", _("Settlement statement")

    merchant = models.ForeignKey("merchants.Merchant", on_delete=models.CASCADE, related_name="+")
    provider = models.CharField(_("provider"), max_length=16, choices=Provider.choices)
    source = models.CharField(_("source"), max_length=16, choices=Source.choices, default=Source.PUSH)
    received_at = models.DateTimeField(_("received"), auto_now_add=True, db_index=True)
    headers = models.JSONField(_("headers"), default=dict)
    body = models.TextField(_("body"))
    status = models.CharField(_("status"), max_length=16, choices=Status.choices, default=Status.RECEIVED)
    out_trade_no = models.CharField(max_length=64, blank=True, db_index=True)
    error = models.TextField(_("error"), blank=True)
    payment = models.ForeignKey(Payment, on_delete=models.SET_NULL, null=True, blank=True, related_name="notifications")
    applied_at = models.DateTimeField(null=True, blank=True)
    # What the signature check vouched for, kept so a deferred notification can be applied later:
    # re-verifying then would fail the provider's freshness window (5 minutes), not the signature.
    verified = models.JSONField(_("verified content"), null=True, blank=True, editable=False)
    attempts = models.PositiveIntegerField(_("apply attempts"), default=0, editable=False)

    class Meta:
        ordering = ["-received_at", "-id"]
        verbose_name = _("payment notification")
        verbose_name_plural = _("payment notifications")
        indexes = [models.Index(fields=["status", "received_at"])]

    def __str__(self) -> str:
        return f"{self.provider} {self.out_trade_no or '?'} {self.status}"


class Refund(models.Model):
    class Status(models.TextChoices):
        PENDING = "pending", _("Pending")
        SUCCEEDED = "succeeded", _("Succeeded")
        FAILED = "failed", _("Failed")

    merchant = models.ForeignKey("merchants.Merchant", on_delete=models.PROTECT, related_name="refunds")
    payment = models.ForeignKey(Payment, on_delete=models.PROTECT, related_name="refunds")
    order = models.ForeignKey("orders.Order", on_delete=models.PROTECT, related_name="refunds")
    out_refund_no = models.CharField(_("our refund number"), max_length=64, unique=True)
    provider_refund_no = models.CharField(_("provider refund number"), max_length=64, blank=True)
    amount = models.DecimalField(_("amount"), max_digits=12, decimal_places=2)
    reason = models.CharField(_("reason"), max_length=255)
    status = models.CharField(_("status"), max_length=16, choices=Status.choices, default=Status.PENDING)
    failure = models.TextField(_("failure"), blank=True)
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+",
        verbose_name=_("requested by"),
    )
    created_at = models.DateTimeField(_("requested"), auto_now_add=True)
    completed_at = models.DateTimeField(_("completed"), null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        verbose_name = _("refund")
        verbose_name_plural = _("refunds")
        constraints = [models.CheckConstraint(condition=models.Q(amount__gt=0), name="refund_amount_positive")]

    def __str__(self) -> str:
        return self.out_refund_no


# --------------------------------------------------------------------------- the sandbox provider's side


class SandboxTrade(models.Model):
    """The sandbox provider's record of one trade, as a real provider keeps it on its own servers.

    Our side never reads this to decide anything; it learns about trades only through signed
    notifications, queries and statements, exactly as with Alipay or WeChat Pay.
    """

    merchant = models.ForeignKey("merchants.Merchant", on_delete=models.CASCADE, related_name="+")
    out_trade_no = models.CharField(max_length=64, unique=True)
    provider_trade_no = models.CharField(max_length=64, blank=True, db_index=True)
    description = models.CharField(max_length=128, blank=True)
    amount_minor = models.PositiveBigIntegerField()
    currency = models.CharField(max_length=3)
    notify_url = models.CharField(max_length=500)
    return_url = models.CharField(max_length=500, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    paid_at = models.DateTimeField(null=True, blank=True, db_index=True)
    refunded_minor = models.PositiveBigIntegerField(default=0)

    class Meta:
        ordering = ["-created_at", "-id"]
        verbose_name = _("sandbox trade")
        verbose_name_plural = _("sandbox trades")
        constraints = [
            models.CheckConstraint(
                condition=models.Q(refunded_minor__lte=models.F("amount_minor")), name="sandbox_refunds_within_amount"
            )
        ]

    def __str__(self) -> str:
        return self.out_trade_no


class SandboxRefund(models.Model):
    """A refund as the sandbox provider books it; `out_refund_no` makes a repeated request a no-op."""

    trade = models.ForeignKey(SandboxTrade, on_delete=models.CASCADE, related_name="refunds")
    out_refund_no = models.CharField(max_length=64, unique=True)
    provider_refund_no = models.CharField(max_length=64, unique=True)
    amount_minor = models.PositiveBigIntegerField()
    created_at = models.DateTimeField(default=timezone.now, db_index=True)

    class Meta:
        ordering = ["created_at", "id"]
        verbose_name = _("sandbox refund")
        verbose_name_plural = _("sandbox refunds")

    def __str__(self) -> str:
        return self.out_refund_no
