"""What a customer was told, on which channel, and whether it got there."""

from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

__all__ = ["Notification"]


class Notification(models.Model):
    """One message to one member about one order, on one channel: at most one row per (order, kind,
    channel), so a retried or redelivered task finds the row instead of sending a second message.

    Queued (pending) in the transaction that makes the news (an outbox row); a sender claims it
    (pending/failed -> sending, a conditional UPDATE) before it talks to the gateway, and records sent
    or failed. Failures wait `next_attempt_at` (backing off) and give up after a few attempts.
    """

    class Kind(models.TextChoices):
        ORDER_READY = "order_ready", _("Ready for pickup")

    class Channel(models.TextChoices):
        SMS = "sms", _("SMS")
        EMAIL = "email", _("E-mail")

    class Status(models.TextChoices):
        PENDING = "pending", _("Pending")
        SENDING = "sending", _("Sending")
        SENT = "sent", _("Sent")
        FAILED = "failed", _("Failed, will retry")
        GAVE_UP = "gave_up", _("Failed, gave up")

    merchant = models.ForeignKey(
        "merchants.Merchant", on_delete=models.PROTECT, related_name="+", verbose_name=_("merchant")
    )
    member = models.ForeignKey(
        "members.Member", on_delete=models.PROTECT, related_name="notifications", verbose_name=_("member")
    )
    order = models.ForeignKey(
        "orders.Order", on_delete=models.CASCADE, related_name="notifications", verbose_name=_("order")
    )
    kind = models.CharField(_("kind"), max_length=20, choices=Kind.choices)
    channel = models.CharField(_("channel"), max_length=8, choices=Channel.choices)
    # Copied when queued: what was sent where, even if the member changes their details later.
    recipient = models.CharField(_("to"), max_length=254)
    subject = models.CharField(_("subject"), max_length=200, blank=True)
    body = models.TextField(_("message"))
    status = models.CharField(_("status"), max_length=8, choices=Status.choices, default=Status.PENDING)
    attempts = models.PositiveSmallIntegerField(_("attempts"), default=0)
    next_attempt_at = models.DateTimeField(_("next attempt"), default=timezone.now)
    claimed_at = models.DateTimeField(_("claimed"), null=True, blank=True)
    sent_at = models.DateTimeField(_("sent"), null=True, blank=True)
    provider_reference = models.CharField(_("provider reference"), max_length=100, blank=True)
    last_error = models.CharField(_("last error"), max_length=500, blank=True)
    created_at = models.DateTimeField(_("queued"), default=timezone.now)

    class Meta:
        ordering = ["-created_at", "-id"]
        verbose_name = _("notification")
        verbose_name_plural = _("notifications")
        constraints = [
            models.UniqueConstraint(
                fields=["order", "kind", "channel"], name="notification_once_per_order_kind_channel"
            )
        ]
        indexes = [
            # The resume sweep: what is due (pending, failed, or a stale claim).
            models.Index(fields=["status", "next_attempt_at"], name="notification_due"),
            models.Index(fields=["merchant", "created_at"]),
        ]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} · {self.get_channel_display()} · {self.recipient}"

    @property
    def reference(self) -> str:
        """Sent to gateways as the client's message id, so one that deduplicates drops a resend."""
        return f"o2o-notification-{self.pk}"
