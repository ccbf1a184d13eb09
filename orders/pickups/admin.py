"""Redemptions in the admin: read-only for everyone; managers see their merchant's and may void one
within the window (a page of its own that asks why), never edit or delete it. Orders: marking them
ready for pickup (OrderReadyAdminMixin)."""

from django import forms
from django.contrib import admin, messages
from django.contrib.admin.utils import unquote
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpResponseNotAllowed, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils import timezone
from django.utils.formats import date_format
from django.utils.html import format_html, format_html_join
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext

from o2o.exceptions import DomainError
from o2o.pagination import CappedCountPaginator
from o2o.tenancy import MANAGER, TenantAdmin, TenantTabularInline, role_name_of

from ..models import Order, OrderEvent
from .models import Redemption
from .ready import SKIP_REASONS, ReadyOutcome, orders_mark_ready
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
    fields = ["created_at", "handed_over", "store", "cashier", "channel", "client", "voided_at", "voided_by",
              "void_reason"]
    readonly_fields = fields
    role_permissions = {MANAGER: frozenset({"view"})}

    # A partial pickup is several rows: each says what it gave.
    handed_over = RedemptionAdmin.handed_over

    def has_add_permission(self, request, *args):
        return False

    def has_change_permission(self, request, obj=None):
        return False


class OrderReadyAdminMixin:
    """The order list's "Mark ready for pickup" action and the order page's button, for managers (and
    platform superusers); the customer notifications on the order page. For OrderAdmin's bases."""

    def has_mark_ready_permission(self, request, obj=None) -> bool:
        allowed = request.user.is_superuser or role_name_of(request.user) == MANAGER
        return allowed and self.has_view_permission(request, obj)

    def get_actions(self, request):
        actions = super().get_actions(request)
        if self.has_mark_ready_permission(request):
            func, name, description = self.get_action("mark_ready_for_pickup")
            actions[name] = (func, name, description)
        return actions

    @admin.action(description=_("Mark ready for pickup (customers are told)"))
    def mark_ready_for_pickup(self, request, queryset):
        if not self.has_mark_ready_permission(request):
            raise PermissionDenied
        # The changelist's queryset is already this merchant's; the service scopes again on its own.
        outcome = orders_mark_ready(
            order_ids=queryset.values_list("pk", flat=True), actor=request.user, channel=OrderEvent.Channel.ADMIN
        )
        self._report_ready(request, outcome)

    def _report_ready(self, request, outcome: ReadyOutcome) -> None:
        if outcome.moved:
            self.message_user(request, ngettext(
                "%(n)d order marked ready for pickup; its customer is being told.",
                "%(n)d orders marked ready for pickup; their customers are being told.", len(outcome.moved),
            ) % {"n": len(outcome.moved)}, messages.SUCCESS)
        for reason, ids in outcome.skipped_by_reason().items():
            self.message_user(request, ngettext(
                "%(n)d order left as it was (%(orders)s): %(reason)s",
                "%(n)d orders left as they were (%(orders)s): %(reason)s", len(ids),
            ) % {"n": len(ids), "orders": ", ".join(f"#{pk}" for pk in ids), "reason": SKIP_REASONS[reason]},
                messages.WARNING)

    def get_urls(self):
        return [
            path("<path:object_id>/ready/", self.admin_site.admin_view(self.ready_view), name="orders_order_ready"),
            *super().get_urls(),
        ]

    def ready_view(self, request, object_id):
        order = self.get_object(request, unquote(object_id))  # another merchant's order: 404
        if request.method != "POST":
            return HttpResponseNotAllowed(["POST"])
        if not self.has_mark_ready_permission(request, order):
            raise PermissionDenied
        self._report_ready(request, orders_mark_ready(order_ids=[order.pk], actor=request.user,
                                                      channel=OrderEvent.Channel.ADMIN))
        return HttpResponseRedirect(reverse("admin:orders_order_change", args=[order.pk]))

    def get_fields(self, request, obj=None):
        return [*super().get_fields(request, obj), "ready_for_pickup"]

    def get_readonly_fields(self, request, obj=None):
        return [*super().get_readonly_fields(request, obj), "ready_for_pickup"]

    def get_inlines(self, request, obj):
        from members.admin import NotificationInline

        return [*super().get_inlines(request, obj), NotificationInline]

    @admin.display(description=_("ready for pickup"))
    def ready_for_pickup(self, obj):
        if obj.ready_at:
            when = date_format(timezone.localtime(obj.ready_at), "Y-m-d H:i")
            return format_html("{} · {}", when, obj.get_status_display())
        if obj.status != Order.Status.PAID or obj.fulfilment != Order.Fulfilment.PICKUP:
            return "-"
        # A button of the admin's own form, posting (with its CSRF token) to the ready URL instead.
        return format_html(
            '<button type="submit" class="button" formaction="{}" formmethod="post" id="mark-ready">{}</button>',
            reverse("admin:orders_order_ready", args=[obj.pk]), _("Mark ready for pickup and tell the customer"),
        )
