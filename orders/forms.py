"""The customer's order form. It carries no prices: the server computes all money."""

import uuid

from django import forms
from django.core import signing
from django.utils.translation import gettext_lazy as _

from members.phones import InvalidPhone, phone_normalize

from .models import Order, Promotion

_SCAN_SALT = "orders.scan"


def scan_sign(*, promotion_id: int, scan_key: uuid.UUID) -> str:
    """The scan's key for the order form, signed with the promotion it belongs to."""
    return signing.dumps(f"{promotion_id}:{scan_key.hex}", salt=_SCAN_SALT)


def scan_unsign(value: str, *, promotion_id: int) -> uuid.UUID | None:
    """The scan key back, if it is ours, recent, and of this promotion; attribution only, so a tampered
    value loses the scan, never the order."""
    try:
        signed_promotion, key = signing.loads(value, salt=_SCAN_SALT, max_age=60 * 60 * 24).split(":")
        return uuid.UUID(key) if int(signed_promotion) == promotion_id else None
    except (signing.BadSignature, ValueError, AttributeError):
        return None


class OrderForm(forms.Form):
    quantity = forms.IntegerField(label=_("Quantity"), min_value=1, initial=1)
    phone = forms.CharField(
        label=_("Mobile phone"), max_length=32,
        widget=forms.TextInput(attrs={"inputmode": "tel", "autocomplete": "tel", "placeholder": "138 0000 0000"}),
    )
    fulfilment = forms.ChoiceField(label=_("How to get it"), widget=forms.RadioSelect)
    pickup_store = forms.ModelChoiceField(
        label=_("Pickup store"), queryset=None, required=False, to_field_name="code", empty_label=None
    )
    recipient_name = forms.CharField(label=_("Recipient"), max_length=80, required=False)
    recipient_phone = forms.CharField(
        label=_("Recipient phone"), max_length=32, required=False, widget=forms.TextInput(attrs={"inputmode": "tel"})
    )
    shipping_address = forms.CharField(
        label=_("Delivery address"), required=False, widget=forms.Textarea(attrs={"rows": 2})
    )
    submit_key = forms.CharField(widget=forms.HiddenInput)
    scan = forms.CharField(widget=forms.HiddenInput, required=False)

    def __init__(self, *args, promotion: Promotion, scanned_store=None, **kwargs):
        super().__init__(*args, **kwargs)
        self.promotion = promotion
        limit = min(promotion.per_member_limit, max(promotion.stock_left, 1))
        self.fields["quantity"].widget.attrs.update({"max": limit, "min": 1})
        choices = []
        if promotion.allow_pickup:
            choices.append((Order.Fulfilment.PICKUP, Order.Fulfilment.PICKUP.label))
        if promotion.allow_express:
            choices.append((Order.Fulfilment.EXPRESS, Order.Fulfilment.EXPRESS.label))
        self.fields["fulfilment"].choices = choices
        self.fields["fulfilment"].initial = choices[0][0] if choices else None
        # The prefetched pickup stores: no extra query to render or validate.
        stores = list(promotion.pickup_stores.all())
        self.fields["pickup_store"].queryset = promotion.pickup_stores.all()
        self.fields["pickup_store"].choices = [(s.code, s.name) for s in stores]
        if scanned_store and any(s.pk == scanned_store.pk for s in stores):
            self.fields["pickup_store"].initial = scanned_store.code
        if not self.is_bound:
            self.initial.setdefault("submit_key", uuid.uuid4().hex)

    def clean_quantity(self):
        quantity = self.cleaned_data["quantity"]
        if quantity > self.promotion.per_member_limit:
            raise forms.ValidationError(
                _("At most %(limit)d per customer.") % {"limit": self.promotion.per_member_limit}
            )
        if quantity > self.promotion.stock_left:
            raise forms.ValidationError(_("Only %(left)d left.") % {"left": self.promotion.stock_left})
        return quantity

    def clean_phone(self):
        try:
            return phone_normalize(self.cleaned_data["phone"])
        except InvalidPhone as error:
            raise forms.ValidationError(error.message) from None

    def clean_recipient_phone(self):
        raw = self.cleaned_data.get("recipient_phone", "")
        if not raw:
            return ""
        try:
            return phone_normalize(raw)
        except InvalidPhone as error:
            raise forms.ValidationError(error.message) from None

    def clean(self):
        cleaned = super().clean()
        fulfilment = cleaned.get("fulfilment")
        # Not when the field already said why (a store not offered here): one mistake, one message.
        store_missing = not cleaned.get("pickup_store") and "pickup_store" not in self.errors
        if fulfilment == Order.Fulfilment.PICKUP and store_missing:
            self.add_error("pickup_store", _("Choose the store where you will pick it up."))
        if fulfilment == Order.Fulfilment.EXPRESS:
            for name in ("recipient_name", "shipping_address"):
                if not (cleaned.get(name) or "").strip():
                    self.add_error(name, _("Needed for delivery."))
            if not cleaned.get("recipient_phone") and "recipient_phone" not in self.errors:
                cleaned["recipient_phone"] = cleaned.get("phone", "")
        return cleaned


# --------------------------------------------------------------------------- staff: express fulfilment

# A shipments file is a few hundred KB for a busy day; anything much bigger is not one.
MAX_SHIPMENTS_FILE_BYTES = 5 * 1024 * 1024


class ShipForm(forms.Form):
    """Mark one order shipped. The service validates both fields again; this form shows the choices."""

    carrier = forms.ChoiceField(label=_("Carrier"))
    tracking_number = forms.CharField(
        label=_("Tracking number"), max_length=64,
        widget=forms.TextInput(attrs={"autocomplete": "off", "autocapitalize": "characters", "spellcheck": "false"}),
        help_text=_("As printed on the waybill: letters and digits."),
    )

    def __init__(self, *args, **kwargs):
        from .carriers import carrier_choices

        super().__init__(*args, **kwargs)
        self.fields["carrier"].choices = [("", "---------"), *carrier_choices()]


class AttentionClearForm(forms.Form):
    note = forms.CharField(
        label=_("What was done"), max_length=200, widget=forms.Textarea(attrs={"rows": 3, "cols": 60}),
        help_text=_("Kept on the order and in its history, e.g. “refunded 39.60 by hand for the cup not picked up”."),
    )


class ShipmentImportForm(forms.Form):
    file = forms.FileField(
        label=_("Shipments file (CSV)"),
        help_text=_("Columns order, carrier, tracking_number; UTF-8 or GBK, as Excel saves it."),
    )

    def clean_file(self):
        upload = self.cleaned_data["file"]
        if upload.size == 0:
            raise forms.ValidationError(_("The file is empty."))
        if upload.size > MAX_SHIPMENTS_FILE_BYTES:
            raise forms.ValidationError(
                _("The file is larger than %(mb)d MB; split it into smaller files.")
                % {"mb": MAX_SHIPMENTS_FILE_BYTES // (1024 * 1024)}
            )
        return upload
