from django.contrib import admin

from o2o.tenancy import ANALYST, MANAGER, TenantAdmin

from .models import Member


@admin.register(Member)
class MemberAdmin(TenantAdmin):
    role_permissions = {MANAGER: frozenset({"view", "change"}), ANALYST: frozenset({"view"})}
    list_display = ["phone", "name", "marketing_consent", "created_at", "merchant"]
    list_filter = ["marketing_consent", "created_at", "merchant"]
    list_select_related = ["merchant"]
    search_fields = ["phone", "name"]
    fields = ["merchant", "phone", "name", "marketing_consent", "created_at"]
    readonly_fields = ["phone", "created_at"]
