"""Redemptions in the admin: read-only for everyone; managers see their merchant's and may void one
within the window (a page of its own that asks why), never edit or delete it."""

from django import forms
from django.contrib import admin, messages
from django.http import Http404, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils import timezone
from django.utils.html import format_html, format_html_join
from django.utils.translation import gettext_lazy as _

from o2o.exceptions import DomainError
from o2o.pagination import CappedCountPaginator
from o2o.tenancy import MANAGER, TenantAdmin, TenantTabularInline

from ..models import Order
from .models import Redemption
from .services import redemption_may_void, redemption_void, redemption_void_deadline


class VoidForm(forms.Form):
    reason = forms.CharField(
        label=_("Why is this hand-over voided?"), max_length=255,
        widget=forms.TextInput(attrs={"size": 60, "autofocus": True}),
        help_text=_("e.g. handed over by mistake, goods returned at the counter. Kept in the order's history."),
    )


@admin.register(Redemption)
class RedemptionAdmin(TenantAdmin):
    # Managers read their merchant's; cashiers never enter the admin; analysts have no use for it.
    role_permissions = {MANAGER: frozenset({"view"})}
    list_display = [
        "created_at", "order_link", "store", "cashier", "channel", "units", "client_short", "state", "merchant",
    ]
    list_filter = ["channel", "created_at", "store", ("voided_at", admin.EmptyFieldListFilter), "merchant"]
    list_select_related = ["store", "cashier", "merchant", "order"]
    search_fields = ["=order__id", "=order__pickup_code", "cashier__username"]
    date_hierarchy = "created_at"
    paginator = CappedCountPaginator
    fields = [
        "merchant", "order_link", "store", "cashier", "channel", "client", "client_ip", "created_at", "handed_over",
        "order_status_before", "voided_at", "voided_by", "void_reason", "void_link",
    ]
    readonly_fields = fields

    # Read-only for everyone, platform superusers included: an audit record is never changed.
    def has_add_permission(self, request, *args):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    @admin.display(description=_("order"), ordering="order")
    def order_link(self, obj):
        url = reverse("admin:orders_order_change", args=[obj.order_id])
        return format_html('<a href="{}">#{}</a>', url, obj.order_id)

    @admin.display(description=_("units"))
    def units(self, obj):
        return obj.units

    @admin.display(description=_("client"))
    def client_short(self, obj):
        return (obj.client[:40] + "…") if len(obj.client) > 40 else obj.client

    @admin.display(description=_("handed over"))
    def handed_over(self, obj):
        return format_html(
            "<ul style='margin:0;padding-left:1.2em'>{}</ul>",
            format_html_join("", "<li>{} × {}</li>", ((line.get("quantity"), line.get("name")) for line in obj.lines)),
        )

    @admin.display(description=_("state"))
    def state(self, obj):
        if obj.voided_at:
            return format_html('<b style="color:#b35c00">{}</b>', _("voided"))
        return format_html('<b style="color:#1f8a4c">{}</b>', _("handed over"))

    @admin.display(description=_("void"))
    def void_link(self, obj):
        if obj.voided_at or timezone.now() > redemption_void_deadline(obj):
            return "-"
        return format_html(
            '<a class="button" href="{}">{}</a>', reverse("admin:orders_redemption_void", args=[obj.pk]),
            _("Void this hand-over…"),
        )

    def get_urls(self):
        return [
            path("<int:pk>/void/", self.admin_site.admin_view(self.void_view), name="orders_redemption_void"),
            *super().get_urls(),
        ]

    def void_view(self, request, pk: int):
        redemption = self.get_object(request, str(pk))
        if not (self.has_view_permission(request, redemption) and redemption_may_void(
            user=request.user, redemption=redemption
        )):
            raise Http404
        form = VoidForm(request.POST or None)
        if request.method == "POST" and form.is_valid():
            try:
                redemption_void(redemption=redemption, manager=request.user, reason=form.cleaned_data["reason"])
            except DomainError as error:
                self.message_user(request, error.message, messages.ERROR)
            else:
                self.message_user(
                    request, _("Redemption voided: order #%(order)s can be picked up again.")
                    % {"order": redemption.order_id},
                )
            return HttpResponseRedirect(reverse("admin:orders_redemption_change", args=[pk]))
        context = {
            **self.admin_site.each_context(request), "opts": self.opts, "title": _("Void a hand-over"),
            "redemption": redemption, "form": form, "deadline": redemption_void_deadline(redemption),
            "status_before": Order.Status(redemption.order_status_before).label,
        }
        return TemplateResponse(request, "cashier/admin_void.html", context)


class RedemptionInline(TenantTabularInline):
    """The order page's hand-overs (for OrderAdmin.inlines): read-only, voids included."""

    model = Redemption
    tenant_parent = "order"
    fk_name = "order"
    extra = 0
    can_delete = False
    fields = ["created_at", "store", "cashier", "channel", "client", "voided_at", "voided_by", "void_reason"]
    readonly_fields = fields
    role_permissions = {MANAGER: frozenset({"view"})}

    def has_add_permission(self, request, *args):
        return False

    def has_change_permission(self, request, obj=None):
        return False
