from django import forms
from django.contrib import admin, messages
from django.http import Http404, HttpResponse
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils import timezone
from django.utils.html import format_html, format_html_join
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext

from merchants.models import Store
from o2o.exceptions import DomainError
from o2o.pagination import CappedCountPaginator
from o2o.tenancy import MANAGER, TenantAdmin, TenantTabularInline, scope_queryset

from . import selectors, services
from .fulfilment_admin import OrderFulfilmentAdminMixin
from .models import Order, OrderEvent, OrderItem, Promotion, PromotionItem, Scan
from .payments.admin import OrderRefundAdminMixin  # also registers the payments admins
from .pickups.admin import OrderReadyAdminMixin, RedemptionInline  # also registers the redemptions admin
from .qr import landing_url, qr_png, qr_svg

# Fields an admin save may write; sold_count and status move only through services.
_PROMOTION_FORM_FIELDS = [
    "merchant", "title", "description", "image", "promo_price", "original_price", "starts_at", "ends_at",
    "stock_cap", "per_member_limit", "allow_pickup", "pickup_stores", "pickup_days", "allow_express", "shipping_fee",
]


class PromotionForm(forms.ModelForm):
    class Meta:
        model = Promotion
        fields = _PROMOTION_FORM_FIELDS

    def clean(self):
        cleaned = super().clean()
        merchant = cleaned.get("merchant")
        stores = cleaned.get("pickup_stores")
        if cleaned.get("allow_pickup") and stores is not None and not stores:
            self.add_error("pickup_stores", _("Pickup is allowed: choose at least one pickup store."))
        if merchant and stores:
            foreign = [s.name for s in stores if s.merchant_id != merchant.pk]
            if foreign:
                self.add_error(
                    "pickup_stores", _("Not stores of this merchant: %(names)s") % {"names": ", ".join(foreign)}
                )
        return cleaned


class PromotionItemInline(TenantTabularInline):
    model = PromotionItem
    tenant_parent = "promotion"
    fields = ["product", "quantity"]
    min_num = 1
    extra = 0
    verbose_name = _("product")
    verbose_name_plural = _("products (several make a bundle)")

    def get_formset(self, request, obj=None, **kwargs):
        # min_num alone only shapes the empty form; without validate_min a posted zero rows, or the
        # only row ticked "delete", saves a promotion that sells nothing.
        kwargs.setdefault("validate_min", True)
        return super().get_formset(request, obj, **kwargs)


@admin.register(Promotion)
class PromotionAdmin(TenantAdmin):
    form = PromotionForm
    inlines = [PromotionItemInline]
    list_display = [
        "title", "status_badge", "promo_price", "stock", "starts_at", "ends_at", "wall_code", "merchant",
    ]
    list_filter = ["status", "allow_pickup", "allow_express", "merchant"]
    list_select_related = ["merchant"]
    search_fields = ["title", "wall_code"]
    readonly_fields = ["wall_code", "status", "sold_count", "qr_codes"]
    filter_horizontal = ["pickup_stores"]
    actions = ["publish", "end"]
    date_hierarchy = "starts_at"
    fieldsets = [
        (None, {"fields": ["merchant", "title", "description", "image", "status", "wall_code"]}),
        (_("Price and stock"), {
            "fields": ["promo_price", "original_price", "stock_cap", "sold_count", "per_member_limit"],
        }),
        (_("When"), {"fields": ["starts_at", "ends_at"]}),
        (_("Fulfilment"), {
            "fields": ["allow_pickup", "pickup_stores", "pickup_days", "allow_express", "shipping_fee"],
        }),
        (_("QR codes for the goods wall"), {"fields": ["qr_codes"]}),
    ]

    def get_fieldsets(self, request, obj=None):
        fieldsets = super().get_fieldsets(request, obj)
        return fieldsets if obj else fieldsets[:-1]

    def save_model(self, request, obj, form, change):
        if not request.user.is_superuser:
            from o2o.tenancy import merchant_of

            obj.merchant = merchant_of(request.user)
        if change:
            # Never write sold_count/status from a form that was read before customers bought more.
            obj.save(update_fields=[f for f in _PROMOTION_FORM_FIELDS if f != "pickup_stores"])
        else:
            services.promotion_wall_code_assign(promotion=obj)
            obj.save()

    @admin.display(description=_("status"), ordering="status")
    def status_badge(self, obj):
        colours = {"draft": "#888", "scheduled": "#2a6fdb", "live": "#1f8a4c", "sold_out": "#b35c00", "ended": "#555"}
        return format_html(
            '<b style="color:{}">{}</b>', colours.get(obj.status, "#000"), obj.get_status_display()
        )

    @admin.display(description=_("sold / cap"))
    def stock(self, obj):
        return f"{obj.sold_count} / {obj.stock_cap}"

    @admin.display(description=_("QR per store"))
    def qr_codes(self, obj):
        if not obj.pk:
            return "-"
        stores = Store.objects.filter(merchant_id=obj.merchant_id, is_active=True).order_by("name")
        rows = []
        for store in stores:
            url = landing_url(promotion=obj, store=store)
            rows.append((
                qr_svg(url, scale=3, title=store.name), store.name, url,
                reverse("admin:orders_promotion_qr", args=[obj.pk, store.pk, "png"]),
                reverse("admin:orders_promotion_qr", args=[obj.pk, store.pk, "svg"]),
            ))
        return format_html(
            '<div style="display:flex;flex-wrap:wrap;gap:1.5rem">{}</div>',
            format_html_join(
                "",
                '<figure style="margin:0;text-align:center">{}<figcaption><b>{}</b><br>'
                '<small style="word-break:break-all">{}</small><br><a href="{}">PNG</a> · <a href="{}">SVG</a>'
                "</figcaption></figure>",
                ((format_html("{}", _safe_svg(svg)), name, url, png, svg_url) for svg, name, url, png, svg_url in rows),
            ),
        )

    # -- actions
    @admin.action(description=_("Publish selected drafts"), permissions=["change"])
    def publish(self, request, queryset):
        self._run(request, queryset, services.promotion_publish, _("published"))

    @admin.action(description=_("End selected promotions now"), permissions=["change"])
    def end(self, request, queryset):
        self._run(request, queryset, services.promotion_end, _("ended"))

    def _run(self, request, queryset, service, verb):
        if not self.has_change_permission(request):
            raise Http404
        done = 0
        for promotion in queryset:
            try:
                service(promotion=promotion)
                done += 1
            except DomainError as error:
                self.message_user(request, f"{promotion.title}: {error.message}", messages.ERROR)
        if done:
            self.message_user(
                request,
                ngettext("%(n)d promotion %(verb)s.", "%(n)d promotions %(verb)s.", done) % {"n": done, "verb": verb},
            )

    # -- QR downloads and the printable goods wall
    def get_urls(self):
        urls = [
            path(
                "<int:pk>/qr/<int:store_id>.<str:fmt>",
                self.admin_site.admin_view(self.qr_download),
                name="orders_promotion_qr",
            ),
            path("walls/", self.admin_site.admin_view(self.walls), name="orders_promotion_walls"),
            path("walls/<int:store_id>/", self.admin_site.admin_view(self.wall), name="orders_promotion_wall"),
        ]
        return urls + super().get_urls()

    def _store(self, request, store_id: int) -> Store:
        return get_object_or_404(scope_queryset(Store.objects.filter(is_active=True), request.user), pk=store_id)

    def qr_download(self, request, pk: int, store_id: int, fmt: str):
        promotion = self.get_object(request, str(pk))
        if not self.has_view_permission(request, promotion):
            raise Http404
        store = self._store(request, store_id)
        if store.merchant_id != promotion.merchant_id:
            raise Http404
        url = landing_url(promotion=promotion, store=store)
        filename = f"{promotion.wall_code}-{store.code}.{fmt}"
        if fmt == "png":
            response = HttpResponse(qr_png(url), content_type="image/png")
        elif fmt == "svg":
            response = HttpResponse(qr_svg(url, scale=10, border=4), content_type="image/svg+xml")
        else:
            raise Http404
        response["Content-Disposition"] = f'attachment; filename="{filename}"'
        return response

    def walls(self, request):
        if not self.has_view_permission(request):
            raise Http404
        stores = scope_queryset(Store.objects.filter(is_active=True), request.user).select_related("merchant")
        context = {
            **self.admin_site.each_context(request), "title": _("Goods walls"), "stores": stores, "opts": self.opts,
        }
        return TemplateResponse(request, "admin/orders/promotion/walls.html", context)

    def wall(self, request, store_id: int):
        if not self.has_view_permission(request):
            raise Http404
        store = self._store(request, store_id)
        now = timezone.now()
        cards = [
            {"promotion": p, "qr": qr_svg(landing_url(promotion=p, store=store), scale=4, title=p.title)}
            for p in selectors.wall_promotions(store=store, now=now)
        ]
        context = {"store": store, "merchant": store.merchant, "cards": cards, "now": now}
        return TemplateResponse(request, "orders/goods_wall.html", context)


def _safe_svg(svg: str):
    # segno's SVG is generated by us from a URL we built; nothing user-typed is in its markup.
    from django.utils.safestring import mark_safe

    return mark_safe(svg)  # noqa: S308


class ReadOnlyInline(TenantTabularInline):
    extra = 0
    can_delete = False

    def has_add_permission(self, request, *args):
        return False

    def has_change_permission(self, request, obj=None):
        return False


class OrderItemInline(ReadOnlyInline):
    model = OrderItem
    tenant_parent = "order"
    fields = ["product", "quantity"]
    readonly_fields = fields


class OrderEventInline(ReadOnlyInline):
    model = OrderEvent
    tenant_parent = "order"
    fields = ["created_at", "from_status", "to_status", "channel", "actor", "note"]
    readonly_fields = fields


@admin.register(Order)
class OrderAdmin(OrderFulfilmentAdminMixin, OrderReadyAdminMixin, OrderRefundAdminMixin, TenantAdmin):
    role_permissions = {MANAGER: frozenset({"view"}), "analyst": frozenset({"view"})}
    inlines = [OrderItemInline, OrderEventInline, RedemptionInline]
    list_display = [
        "id", "status", "promotion", "member", "quantity", "total", "fulfilment", "pickup_store", "created_at",
        "paid_at", "merchant",
    ]
    list_filter = ["status", "fulfilment", "created_at", "pickup_store", "promotion", "merchant"]
    list_select_related = ["promotion", "member", "pickup_store", "merchant"]
    search_fields = ["=id", "=pickup_code", "member__phone"]
    paginator = CappedCountPaginator
    fields = [
        "merchant", "promotion", "status", "member", "quantity", "unit_price", "subtotal", "shipping_fee", "total",
        "currency", "fulfilment", "pickup_store", "pickup_code", "pickup_deadline", "recipient_name",
        "recipient_phone", "shipping_address", "scan_key", "created_at", "paid_at", "closed_at",
    ]
    readonly_fields = fields


@admin.register(Scan)
class ScanAdmin(TenantAdmin):
    role_permissions = {MANAGER: frozenset({"view"}), "analyst": frozenset({"view"})}
    list_display = ["created_at", "promotion", "store", "merchant"]
    list_filter = ["created_at", "store", "promotion", "merchant"]
    list_select_related = ["promotion", "store", "merchant"]
    paginator = CappedCountPaginator
    readonly_fields = ["merchant", "promotion", "store", "created_at"]
from .reconciliation import admin as _reconciliation_admin  # noqa: E402, F401
