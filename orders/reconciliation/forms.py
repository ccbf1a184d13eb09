"""Admin forms for reconciliation: a statement upload, and the note that resolves discrepancies."""

from django import forms
from django.utils.translation import gettext_lazy as _

from merchants.models import Merchant

from ..payments.models import Provider

# A day's statement of a busy merchant is a few hundred MB at most; anything bigger is not a statement.
MAX_STATEMENT_BYTES = 1024 * 1024 * 1024


class StatementUploadForm(forms.Form):
    merchant = forms.ModelChoiceField(label=_("Merchant"), queryset=Merchant.objects.none(), required=False)
    provider = forms.ChoiceField(label=_("Provider"), choices=Provider.choices)
    statement_date = forms.DateField(
        label=_("Statement date"), widget=forms.DateInput(attrs={"type": "date"}),
        help_text=_("The day the statement covers, in the merchant's time zone."),
    )  # fmt: skip
    statement = forms.FileField(
        label=_("Statement file"), help_text=_("The provider's daily bill as downloaded (CSV, or the zip/gzip).")
    )

    def __init__(self, *args, merchant_choices=None, **kwargs):
        super().__init__(*args, **kwargs)
        if merchant_choices is None:
            # Staff upload for their own merchant; the field is for platform superusers only.
            del self.fields["merchant"]
        else:
            self.fields["merchant"].queryset = merchant_choices
            self.fields["merchant"].required = True

    def clean_statement(self):
        statement = self.cleaned_data["statement"]
        if statement.size == 0:
            raise forms.ValidationError(_("The file is empty."))
        if statement.size > MAX_STATEMENT_BYTES:
            raise forms.ValidationError(_("The file is too large to be a daily statement."))
        return statement


class ResolveForm(forms.Form):
    note = forms.CharField(
        label=_("Resolution note"), widget=forms.Textarea(attrs={"rows": 4, "cols": 80}), max_length=2000,
        help_text=_("What was found and done (refunded, booked by hand, provider corrected the bill, ...)."),
    )  # fmt: skip

    def clean_note(self):
        note = self.cleaned_data["note"].strip()
        if not note:
            raise forms.ValidationError(_("Say how the discrepancies were resolved."))
        return note
