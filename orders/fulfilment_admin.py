"""Express fulfilment and the needs-attention list in the order admin: ship and deliver one order from its
page, ship or deliver selected orders from the list, import a shipments file, clear an order's flag.

Managers (and platform superusers) act; analysts see. Every view reads the order through the admin's
merchant-scoped queryset, so another merchant's order is a 404 exactly like one that does not exist.
"""

from __future__ import annotations

from django.contrib import admin, messages
from django.contrib.admin import helpers
from django.contrib.admin.utils import unquote
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.html import format_html, format_html_join
from django.utils.translation import gettext, ngettext
from django.utils.translation import gettext_lazy as _

from o2o.exceptions import DomainError
from o2o.tenancy import MANAGER, role_name_of

from . import fulfilment
from .carriers import CarrierInvalid, carrier_name, carrier_parse, tracking_number_parse
from .forms import AttentionClearForm, ShipForm, ShipmentImportForm
from .models import Order, OrderEvent
from .shipment_csv import COLUMNS, MAX_ROWS, ShipmentProblem, ShipmentRow

O = Order.Status  # noqa: E741
ADMIN = OrderEvent.Channel.ADMIN


class NeedsAttentionFilter(admin.SimpleListFilter):
    """Orders something automatic could not finish (a refund the provider refused, a partial pickup that
    expired); rows come from the admin's scoped queryset, so only the user's merchant's are counted."""

    title = _("needs attention")
    parameter_name = "attention"

    def lookups(self, request, model_admin):
        return [("yes", _("Needs attention")), ("cleared", _("Cleared, with a note"))]

    def queryset(self, request, queryset):
        if self.value() == "yes":
            return queryset.filter(needs_attention=True)
        if self.value() == "cleared":
            return queryset.filter(needs_attention=False).exclude(attention_note="")
        return queryset


class OrderFulfilmentAdminMixin:
    """Mixed into OrderAdmin (before the tenant base): URLs, actions, fieldsets and the list filter."""

    fulfilment_fields = ["carrier_display", "tracking_number", "shipped_at", "delivered_at"]
    attention_fields = ["needs_attention", "attention_note"]

    # -- who may act
    def has_fulfil_permission(self, request: HttpRequest, obj=None) -> bool:
        allowed = request.user.is_superuser or role_name_of(request.user) == MANAGER
        return allowed and self.has_view_permission(request, obj)

    # -- the list
    def changelist_view(self, request, extra_context=None):
        extra_context = {**(extra_context or {}), "may_fulfil": self.has_fulfil_permission(request)}
        return super().changelist_view(request, extra_context)

    def get_list_filter(self, request):
        return [*super().get_list_filter(request), NeedsAttentionFilter]

    def get_list_display(self, request):
        # Beside the status, where the eye already is; the list is wider than a laptop screen.
        display = list(super().get_list_display(request))
        at = display.index("status") + 1 if "status" in display else len(display)
        return [*display[:at], "attention_flag", *display[at:]]

    @admin.display(description=_("attention"), ordering="needs_attention")
    def attention_flag(self, obj: Order):
        # Only flagged rows say anything: a column of green ticks would hide the few that matter.
        if not obj.needs_attention:
            return ""
        return format_html(
            '<b style="color:#b35c00" title="{}">⚠ {}</b>', obj.attention_note, gettext("needs attention")
        )

    def get_actions(self, request):
        actions = super().get_actions(request)
        if actions is not None and self.actions is not None and self.has_fulfil_permission(request):
            for name in ("ship_selected", "deliver_selected"):
                actions[name] = self.get_action(name)
        return actions

    @admin.action(description=_("Ship selected express orders (enter tracking numbers)"))
    def ship_selected(self, request, queryset):
        if not self.has_fulfil_permission(request):
            raise PermissionDenied
        # Only paid express orders can be shipped; the others selected are named on the page and left alone.
        shippable = queryset.filter(fulfilment=Order.Fulfilment.EXPRESS, status=O.PAID)
        chosen = list(shippable.order_by("pk")[: fulfilment.BATCH])
        skipped = queryset.count() - shippable.count()
        # One page of rows to type into; more than that is what the import is for.
        beyond = shippable.count() - len(chosen) if len(chosen) == fulfilment.BATCH else 0
        if not chosen:
            self.message_user(request, gettext("None of the selected orders is a paid express order."),
                              messages.WARNING)
            return None
        rows = [_typed_row(request.POST, index, order) for index, order in enumerate(chosen, start=1)]
        problems: dict[int, list[str]] = {}
        if "apply" in request.POST:
            result = fulfilment.shipments_ship(
                rows=[row for row in rows if row is not None] + _row_problems(request.POST, chosen),
                orders=self.get_queryset(request), actor=request.user, channel=ADMIN,
            )
            if result.ok:
                self._report_shipped(request, result)
                return None
            for problem in result.problems:
                problems.setdefault(problem.line_no, []).append(problem.message)
        context = {
            **self.admin_site.each_context(request), "opts": self.opts,
            "title": gettext("Ship %(n)d orders") % {"n": len(chosen)},
            "lines": [
                {"index": index, "order": order, "problems": problems.get(index, []),
                 "carrier": request.POST.get(f"carrier-{order.pk}", order.carrier),
                 "tracking_number": request.POST.get(f"tracking-{order.pk}", order.tracking_number)}
                for index, order in enumerate(chosen, start=1)
            ],
            "carriers": ShipForm().fields["carrier"].choices,
            "action_checkbox_name": helpers.ACTION_CHECKBOX_NAME, "skipped": skipped, "beyond": beyond,
        }
        return TemplateResponse(request, "admin/orders/order/ship_selected.html", context)

    @admin.action(description=_("Mark selected shipped orders delivered"))
    def deliver_selected(self, request, queryset):
        if not self.has_fulfil_permission(request):
            raise PermissionDenied
        done = 0
        for order in queryset.filter(status=O.SHIPPED).order_by("pk"):
            try:
                fulfilment.order_deliver(order=order, actor=request.user, channel=ADMIN)
                done += 1
            except DomainError as error:
                self.message_user(request, error.message, messages.ERROR)
        skipped = queryset.exclude(status__in=[O.SHIPPED, O.DELIVERED]).count()
        self.message_user(
            request, ngettext("%(n)d order marked delivered.", "%(n)d orders marked delivered.", done) % {"n": done}
        )
        if skipped:
            self.message_user(
                request,
                ngettext("%(n)d selected order was not shipped and is unchanged.",
                         "%(n)d selected orders were not shipped and are unchanged.", skipped) % {"n": skipped},
                messages.WARNING,
            )

    def _report_shipped(self, request, result: fulfilment.ShipmentImport) -> None:
        self.message_user(
            request,
            ngettext("%(n)d order marked shipped.", "%(n)d orders marked shipped.", result.shipped)
            % {"n": result.shipped},
            messages.SUCCESS,
        )
        if result.unchanged:
            self.message_user(
                request,
                ngettext("%(n)d line was already shipped with the same carrier and number: unchanged.",
                         "%(n)d lines were already shipped with the same carrier and number: unchanged.",
                         result.unchanged) % {"n": result.unchanged},
            )

    # -- the order's page
    def get_fieldsets(self, request, obj=None):
        fieldsets = list(super().get_fieldsets(request, obj))
        if obj is None:
            return fieldsets
        if obj.fulfilment == Order.Fulfilment.EXPRESS:
            tools = ["fulfilment_tools"] if self.has_fulfil_permission(request, obj) else []
            fieldsets.append((_("Parcel"), {"fields": [*self.fulfilment_fields, *tools]}))
        if obj.needs_attention or obj.attention_note:
            tools = ["attention_tools"] if obj.needs_attention and self.has_fulfil_permission(request, obj) else []
            fieldsets.append((_("Needs attention"), {"fields": [*self.attention_fields, *tools]}))
        return fieldsets

    def get_readonly_fields(self, request, obj=None):
        return [
            *super().get_readonly_fields(request, obj), *self.fulfilment_fields, *self.attention_fields,
            "fulfilment_tools", "attention_tools",
        ]

    @admin.display(description=_("carrier"))
    def carrier_display(self, obj: Order) -> str:
        return f"{carrier_name(obj.carrier)} ({obj.carrier})" if obj.carrier else "-"

    @admin.display(description=_("actions"))
    def fulfilment_tools(self, obj: Order):
        links = []
        if obj.status == O.PAID:
            links.append((reverse("admin:orders_order_ship", args=[obj.pk]), "order-ship", gettext("Mark shipped")))
        if obj.status == O.SHIPPED:
            links.append(
                (reverse("admin:orders_order_deliver", args=[obj.pk]), "order-deliver", gettext("Mark delivered"))
            )
        if not links:
            return "-"
        return format_html_join(" ", '<a class="button" href="{}" id="{}">{}</a>', links)

    @admin.display(description=_("actions"))
    def attention_tools(self, obj: Order):
        return format_html(
            '<a class="button" href="{}" id="order-attention-clear">{}</a>',
            reverse("admin:orders_order_attention", args=[obj.pk]), gettext("Clear, with a note"),
        )

    # -- pages
    def get_urls(self):
        view = self.admin_site.admin_view
        urls = [
            path("import-shipments/", view(self.import_view), name="orders_order_import_shipments"),
            path("<path:object_id>/ship/", view(self.ship_view), name="orders_order_ship"),
            path("<path:object_id>/deliver/", view(self.deliver_view), name="orders_order_deliver"),
            path("<path:object_id>/attention/", view(self.attention_view), name="orders_order_attention"),
        ]
        return urls + super().get_urls()

    def _order_to_act_on(self, request, object_id) -> Order:
        order = self.get_object(request, unquote(object_id))  # another merchant's order: 404
        if not self.has_fulfil_permission(request, order):
            raise PermissionDenied
        return order

    def _page(self, request, order: Order, *, title: str, form, intro: str, submit: str, items=(),
              template="fulfil_form"):
        context = {
            **self.admin_site.each_context(request), "opts": self.opts, "original": order, "order": order,
            "title": title, "form": form, "intro": intro, "submit": submit, "items": items,
            "has_view_permission": True,
        }
        return TemplateResponse(request, f"admin/orders/order/{template}.html", context)

    def _back(self, order: Order) -> HttpResponseRedirect:
        return HttpResponseRedirect(reverse("admin:orders_order_change", args=[order.pk]))

    def ship_view(self, request, object_id):
        order = self._order_to_act_on(request, object_id)
        initial = {"carrier": order.carrier, "tracking_number": order.tracking_number}
        form = ShipForm(request.POST if request.method == "POST" else None, initial=initial)
        if request.method == "POST" and form.is_valid():
            try:
                fulfilment.order_ship(
                    order=order, carrier=form.cleaned_data["carrier"],
                    tracking_number=form.cleaned_data["tracking_number"], actor=request.user, channel=ADMIN,
                )
            except fulfilment.FulfilmentError as error:
                form.add_error(error.field if error.field in form.fields else None, error.message)
            else:
                self.message_user(
                    request, gettext("Order #%(order)s shipped with %(carrier)s %(number)s.") % {
                        "order": order.pk, "carrier": carrier_name(order.carrier), "number": order.tracking_number,
                    }, messages.SUCCESS,
                )
                return self._back(order)
        return self._page(
            request, order, title=gettext("Ship order #%(order)s") % {"order": order.pk}, form=form,
            intro=gettext("To %(name)s, %(phone)s, %(address)s") % {
                "name": order.recipient_name, "phone": order.recipient_phone, "address": order.shipping_address,
            },
            items=order.items.select_related("product").order_by("pk"), submit=gettext("Mark shipped"),
        )

    def deliver_view(self, request, object_id):
        order = self._order_to_act_on(request, object_id)
        if request.method == "POST":
            try:
                fulfilment.order_deliver(order=order, actor=request.user, channel=ADMIN)
            except fulfilment.FulfilmentError as error:
                self.message_user(request, error.message, messages.ERROR)
            else:
                self.message_user(request, gettext("Order #%(order)s delivered.") % {"order": order.pk},
                                  messages.SUCCESS)
            return self._back(order)
        return self._page(
            request, order, title=gettext("Order #%(order)s delivered?") % {"order": order.pk}, form=None,
            intro=gettext("Shipped with %(carrier)s %(number)s. Mark it delivered only once the customer has it: "
                          "the order is then complete.")
            % {"carrier": carrier_name(order.carrier), "number": order.tracking_number},
            submit=gettext("Mark delivered"),
        )

    def attention_view(self, request, object_id):
        order = self._order_to_act_on(request, object_id)
        form = AttentionClearForm(request.POST if request.method == "POST" else None)
        if request.method == "POST" and form.is_valid():
            try:
                fulfilment.order_attention_clear(order=order, actor=request.user, note=form.cleaned_data["note"])
            except fulfilment.FulfilmentError as error:
                self.message_user(request, error.message, messages.ERROR)
            else:
                self.message_user(request, gettext("Order #%(order)s is off the needs-attention list.")
                                  % {"order": order.pk}, messages.SUCCESS)
            return self._back(order)
        return self._page(
            request, order, title=gettext("Clear order #%(order)s") % {"order": order.pk}, form=form,
            intro=order.attention_note, submit=gettext("Clear the flag"),
        )

    def import_view(self, request):
        if not self.has_fulfil_permission(request):
            raise PermissionDenied
        form = ShipmentImportForm(*((request.POST, request.FILES) if request.method == "POST" else ()))
        result = None
        if request.method == "POST" and form.is_valid():
            result = fulfilment.shipments_import(
                stream=form.cleaned_data["file"], orders=self.get_queryset(request), actor=request.user,
                channel=ADMIN,
            )
            if result.ok:
                self._report_shipped(request, result)
                return HttpResponseRedirect(reverse("admin:orders_order_changelist") + "?status__exact=shipped")
        context = {
            **self.admin_site.each_context(request), "opts": self.opts, "title": gettext("Import shipments"),
            "form": form, "result": result, "columns": COLUMNS, "max_rows": MAX_ROWS,
            "carriers": ShipForm().fields["carrier"].choices[1:], "has_view_permission": True,
        }
        return TemplateResponse(request, "admin/orders/order/import_shipments.html", context)


def _typed_row(data, index: int, order: Order) -> ShipmentRow | None:
    """The carrier and number typed for `order` on the Ship selected page, if both read."""
    try:
        return ShipmentRow(
            line_no=index, order_id=order.pk, carrier=carrier_parse(data.get(f"carrier-{order.pk}", "")),
            tracking_number=tracking_number_parse(data.get(f"tracking-{order.pk}", "")),
        )
    except CarrierInvalid:
        return None


def _row_problems(data, orders: list[Order]) -> list[ShipmentProblem]:
    problems = []
    for index, order in enumerate(orders, start=1):
        for name, parse, key in (("carrier", carrier_parse, "carrier"), ("tracking_number", tracking_number_parse,
                                                                         "tracking")):
            try:
                parse(data.get(f"{key}-{order.pk}", ""))
            except CarrierInvalid as error:
                problems.append(ShipmentProblem(index, name, str(error)))
    return problems
