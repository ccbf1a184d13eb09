"""Members: a merchant's customers, keyed by normalised phone number."""

from django.db import models
from django.utils.translation import gettext_lazy as _


class Member(models.Model):
    merchant = models.ForeignKey(
        "merchants.Merchant", on_delete=models.PROTECT, related_name="members", verbose_name=_("merchant")
    )
    # E.164 ("+8613812345678"): one spelling per person, whatever the customer typed.
    phone = models.CharField(_("phone"), max_length=20)
    name = models.CharField(_("name"), max_length=80, blank=True)
    # Optional: where e-mail notifications go (SMS goes to the phone).
    email = models.EmailField(_("e-mail"), blank=True)
    marketing_consent = models.BooleanField(_("marketing consent"), default=False)
    created_at = models.DateTimeField(_("joined"), auto_now_add=True)

    class Meta:
        ordering = ["-created_at"]
        verbose_name = _("member")
        verbose_name_plural = _("members")
        constraints = [models.UniqueConstraint(fields=["merchant", "phone"], name="member_phone_unique_per_merchant")]

    def __str__(self) -> str:
        return self.masked_phone

    @property
    def masked_phone(self) -> str:
        """What cashiers see: country code, first three and last four digits."""
        return phone_mask(self.phone)


def phone_mask(phone: str) -> str:
    if len(phone) < 8:
        return "*" * len(phone)
    return phone[:-8] + phone[-8:-4].translate(str.maketrans("0123456789", "**********")) + phone[-4:]


# Notifications live in their own sub-package (members/notifications/); Django finds models through this module.
from .notifications.models import Notification  # noqa: E402, F401
