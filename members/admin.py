from django.contrib import admin

from o2o.pagination import CappedCountPaginator
from o2o.tenancy import ANALYST, MANAGER, TenantAdmin, TenantTabularInline

from .models import Member, Notification


@admin.register(Member)
class MemberAdmin(TenantAdmin):
    role_permissions = {MANAGER: frozenset({"view", "change"}), ANALYST: frozenset({"view"})}
    list_display = ["phone", "name", "marketing_consent", "created_at", "merchant"]
    list_filter = ["marketing_consent", "created_at", "merchant"]
    list_select_related = ["merchant"]
    search_fields = ["phone", "name"]
    fields = ["merchant", "phone", "name", "email", "marketing_consent", "created_at"]
    readonly_fields = ["phone", "created_at"]


_NOTIFICATION_FIELDS = [
    "created_at", "kind", "channel", "recipient", "status", "attempts", "sent_at", "next_attempt_at", "last_error",
]


@admin.register(Notification)
class NotificationAdmin(TenantAdmin):
    """What customers were told and whether it got there; read-only (the sender alone writes them)."""

    role_permissions = {MANAGER: frozenset({"view"})}
    list_display = ["created_at", "order", "kind", "channel", "recipient", "status", "attempts", "sent_at", "merchant"]
    list_filter = ["status", "channel", "kind", "created_at", "merchant"]
    list_select_related = ["order", "merchant"]
    search_fields = ["=order__id", "recipient"]
    date_hierarchy = "created_at"
    paginator = CappedCountPaginator
    fields = ["merchant", "order", "member", *_NOTIFICATION_FIELDS, "subject", "body", "claimed_at",
              "provider_reference"]
    readonly_fields = fields

    def has_add_permission(self, request, *args):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


class NotificationInline(TenantTabularInline):
    """The order page's notifications (OrderReadyAdminMixin adds it): read-only."""

    model = Notification
    tenant_parent = "order"
    fk_name = "order"
    extra = 0
    can_delete = False
    fields = _NOTIFICATION_FIELDS
    readonly_fields = fields
    role_permissions = {MANAGER: frozenset({"view"})}

    def has_add_permission(self, request, *args):
        return False

    def has_change_permission(self, request, obj=None):
        return False
