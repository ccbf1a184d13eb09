"""Payments in the admin: provider accounts (secrets write-only), payments, notifications, refunds,
and the Refund page of an order."""

from __future__ import annotations

import secrets
from decimal import Decimal

from django import forms
from django.contrib import admin, messages
from django.contrib.admin.utils import unquote
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from o2o.exceptions import DomainError
from o2o.money import money_quantize
from o2o.pagination import CappedCountPaginator
from o2o.tenancy import ANALYST, MANAGER, TenantAdmin, TenantTabularInline, role_name_of

from ..models import OrderEvent
from . import selectors, services
from .models import Payment, PaymentConfig, PaymentNotification, Provider, Refund

_ALL = frozenset({"view", "add", "change", "delete"})
_VIEW = frozenset({"view"})


# --------------------------------------------------------------------------- provider accounts


class PaymentConfigForm(forms.ModelForm):
    """The secrets are never part of the form's data: two write-only inputs replace them when filled
    in and keep the stored value when left empty. Nothing secret is ever rendered back."""

    new_signing_secret = forms.CharField(
        label=_("signing secret / private key"), required=False, strip=True,
        widget=forms.PasswordInput(render_value=False, attrs={"autocomplete": "new-password"}),
        help_text=_("Sandbox: the HMAC key; Alipay: the app private key; WeChat Pay: the merchant private key "
                    "(PEM). Leave empty to keep the current one; it is never shown."),
    )
    new_api_v3_key = forms.CharField(
        label=_("APIv3 key"), required=False, strip=True, max_length=64,
        widget=forms.PasswordInput(render_value=False, attrs={"autocomplete": "new-password"}),
        help_text=_("WeChat Pay only. Leave empty to keep the current one; it is never shown."),
    )

    class Meta:
        model = PaymentConfig
        fields = ["merchant", "provider", "is_active", "app_id", "merchant_no", "provider_public_keys",
                  "merchant_cert_serial"]  # fmt: skip

    def save(self, commit=True):
        config = super().save(commit=False)
        if self.cleaned_data.get("new_signing_secret"):
            config.signing_secret = self.cleaned_data["new_signing_secret"]
        if self.cleaned_data.get("new_api_v3_key"):
            config.api_v3_key = self.cleaned_data["new_api_v3_key"]
        if config.provider == Provider.SANDBOX and not config.signing_secret:
            config.signing_secret = secrets.token_urlsafe(32)
        if commit:
            config.save()
        return config


@admin.register(PaymentConfig)
class PaymentConfigAdmin(TenantAdmin):
    role_permissions = {MANAGER: _ALL}
    form = PaymentConfigForm
    list_display = ["provider", "is_active", "app_id", "merchant_no", "secrets_set", "updated_at", "merchant"]
    list_filter = ["provider", "is_active", "merchant"]
    list_select_related = ["merchant"]
    readonly_fields = ["secrets_set", "updated_at"]
    fieldsets = [
        (None, {"fields": ["merchant", "provider", "is_active", "app_id", "merchant_no"]}),
        (_("Verifying the provider (public)"), {"fields": ["provider_public_keys", "merchant_cert_serial"]}),
        (_("Secrets (write-only)"), {"fields": ["secrets_set", "new_signing_secret", "new_api_v3_key"]}),
        (None, {"fields": ["updated_at"]}),
    ]

    @admin.display(description=_("secrets"))
    def secrets_set(self, obj: PaymentConfig) -> str:
        # Whether they are set, never what they are.
        if obj is None or not obj.pk:
            return "-"
        parts = [gettext("signing secret set") if obj.signing_secret else gettext("no signing secret")]
        if obj.provider == Provider.WECHATPAY:
            parts.append(gettext("APIv3 key set") if obj.api_v3_key else gettext("no APIv3 key"))
        return ", ".join(parts)


# --------------------------------------------------------------------------- payments, notifications, refunds


class _ReadOnlyAdmin(TenantAdmin):
    """Rows written only by the payment services: nobody adds, edits or deletes them here."""

    def has_add_permission(self, request, *args):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


@admin.register(Payment)
class PaymentAdmin(_ReadOnlyAdmin):
    role_permissions = {MANAGER: _VIEW, ANALYST: _VIEW}
    list_display = [
        "out_trade_no", "order", "provider", "amount", "currency", "status", "refunded_amount", "paid_at",
        "created_at", "merchant",
    ]
    list_filter = ["status", "provider", "created_at", "merchant"]
    list_select_related = ["order", "merchant"]
    search_fields = ["=out_trade_no", "=provider_trade_no", "=order__id"]
    paginator = CappedCountPaginator
    readonly_fields = [
        "merchant", "order", "provider", "out_trade_no", "provider_trade_no", "amount", "currency", "status",
        "refunded_amount", "review_reason", "created_at", "paid_at",
    ]
    actions = ["ask_provider"]

    def has_query_permission(self, request: HttpRequest) -> bool:
        return request.user.is_superuser or role_name_of(request.user) == MANAGER

    @admin.action(description=_("Ask the provider about the selected payments now"), permissions=["query"])
    def ask_provider(self, request, queryset):
        for payment in queryset.filter(status=Payment.Status.CREATED):
            try:
                note = services.payment_query(payment=payment, channel=OrderEvent.Channel.ADMIN)
            except DomainError as error:
                self.message_user(request, f"{payment}: {error.message}", messages.ERROR)
                continue
            payment.refresh_from_db()
            outcome = note.get_status_display() if note else gettext("nothing paid yet")
            self.message_user(request, f"{payment}: {payment.get_status_display()} ({outcome})")


@admin.register(PaymentNotification)
class PaymentNotificationAdmin(_ReadOnlyAdmin):
    role_permissions = {MANAGER: _VIEW}
    list_display = ["received_at", "provider", "source", "out_trade_no", "status", "payment", "attempts", "merchant"]
    list_filter = ["status", "provider", "source", "received_at", "merchant"]
    list_select_related = ["payment", "merchant"]
    search_fields = ["=out_trade_no"]
    paginator = CappedCountPaginator
    readonly_fields = [
        "merchant", "provider", "source", "received_at", "status", "out_trade_no", "payment", "error", "attempts",
        "applied_at", "verified", "headers", "body",
    ]


@admin.register(Refund)
class RefundAdmin(_ReadOnlyAdmin):
    role_permissions = {MANAGER: _VIEW, ANALYST: _VIEW}
    list_display = ["out_refund_no", "order", "amount", "status", "reason", "requested_by", "created_at", "merchant"]
    list_filter = ["status", "created_at", "merchant"]
    list_select_related = ["order", "requested_by", "merchant"]
    search_fields = ["=out_refund_no", "=order__id"]
    paginator = CappedCountPaginator
    readonly_fields = [
        "merchant", "order", "payment", "out_refund_no", "provider_refund_no", "amount", "reason", "status",
        "failure", "requested_by", "created_at", "completed_at",
    ]


# --------------------------------------------------------------------------- on the order's page


class _ReadOnlyInline(TenantTabularInline):
    extra = 0
    can_delete = False
    show_change_link = True

    def has_add_permission(self, request, *args):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


class PaymentInline(_ReadOnlyInline):
    model = Payment
    tenant_parent = "order"
    fields = ["out_trade_no", "provider", "amount", "status", "refunded_amount", "paid_at", "review_reason"]
    readonly_fields = fields


class RefundInline(_ReadOnlyInline):
    model = Refund
    fk_name = "order"
    tenant_parent = "order"
    fields = ["created_at", "amount", "status", "reason", "failure", "requested_by"]
    readonly_fields = fields


class RefundForm(forms.Form):
    payment = forms.ModelChoiceField(queryset=Payment.objects.none(), label=_("payment"), empty_label=None)
    amount = forms.DecimalField(label=_("amount"), max_digits=12, decimal_places=2, min_value=Decimal("0.01"))
    reason = forms.CharField(
        label=_("reason"), max_length=255, widget=forms.Textarea(attrs={"rows": 2, "cols": 60}),
        help_text=_("Kept with the refund and shown in the order's history."),
    )

    def __init__(self, *args, payments, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["payment"].queryset = payments
        if len(payments) == 1:
            self.fields["payment"].widget = forms.HiddenInput()


class OrderRefundAdminMixin:
    """The order page's Refund button and page, for managers, and the order's payments and refunds."""

    def get_inlines(self, request, obj):
        return [*super().get_inlines(request, obj), PaymentInline, RefundInline]

    def get_urls(self):
        urls = [
            path("<path:object_id>/refund/", self.admin_site.admin_view(self.refund_view), name="orders_order_refund"),
        ]
        return urls + super().get_urls()

    def has_refund_permission(self, request: HttpRequest, obj=None) -> bool:
        allowed = request.user.is_superuser or role_name_of(request.user) == MANAGER
        return allowed and self.has_view_permission(request, obj)

    def change_view(self, request, object_id, form_url="", extra_context=None):
        extra_context = extra_context or {}
        order = self.get_object(request, unquote(object_id))
        if self.has_refund_permission(request, order) and selectors.order_money(order=order).refundable > 0:
            extra_context["refund_url"] = reverse("admin:orders_order_refund", args=[order.pk])
        return super().change_view(request, object_id, form_url, extra_context)

    def refund_view(self, request, object_id):
        order = self.get_object(request, unquote(object_id))  # another merchant's order: 404
        if not self.has_refund_permission(request, order):
            raise PermissionDenied
        candidates = list(selectors.payments_refundable(order=order))
        refundable = {p.pk: money_quantize(p.amount - p.refunded_amount - p.pending, p.currency) for p in candidates}
        payments = [p for p in candidates if refundable[p.pk] > 0]
        initial = {"payment": payments[0].pk, "amount": refundable[payments[0].pk]} if payments else {}
        form = RefundForm(request.POST or None, payments=Payment.objects.filter(pk__in=refundable), initial=initial)
        if request.method == "POST" and payments and form.is_valid():
            try:
                refund = services.refund_create(
                    payment=form.cleaned_data["payment"], amount=form.cleaned_data["amount"],
                    reason=form.cleaned_data["reason"], requested_by=request.user,
                    channel=OrderEvent.Channel.ADMIN,
                )
            except DomainError as error:
                form.add_error("amount" if isinstance(error, services.OverRefund) else None, error.message)
            else:
                return self._refund_answer(request, order, refund)
        context = {
            **self.admin_site.each_context(request),
            "title": gettext("Refund order #%(order)s") % {"order": order.pk},
            "opts": self.opts, "original": order, "order": order, "form": form,
            "payments": [(p, refundable[p.pk]) for p in payments],
            "money": selectors.order_money(order=order),
            "refunds": order.refunds.select_related("requested_by").order_by("-created_at", "-id"),
            "has_view_permission": True,
        }
        return TemplateResponse(request, "admin/orders/order/refund.html", context)

    def _refund_answer(self, request, order, refund: Refund):
        change_url = reverse("admin:orders_order_change", args=[order.pk])
        values = {"amount": refund.amount, "currency": refund.payment.currency, "failure": refund.failure}
        if refund.status == Refund.Status.SUCCEEDED:
            self.message_user(request, gettext("Refunded %(amount)s %(currency)s.") % values, messages.SUCCESS)
            return HttpResponseRedirect(change_url)
        if refund.status == Refund.Status.FAILED:
            self.message_user(
                request, gettext("The provider refused the refund: %(failure)s Nothing was refunded.") % values,
                messages.ERROR,
            )
            return HttpResponseRedirect(reverse("admin:orders_order_refund", args=[order.pk]))
        self.message_user(
            request,
            gettext("The refund of %(amount)s %(currency)s is pending: the provider did not answer; it is asked "
                    "again automatically.") % values,
            messages.WARNING,
        )
        return HttpResponseRedirect(change_url)
