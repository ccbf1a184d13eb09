"""The one place that scopes the admin and the API to the signed-in user's merchant.

Tenancy is a security boundary: staff of one merchant never see, count, filter by, or guess
the existence of another merchant's rows. Everything merchant-owned goes through
`tenant_filter`, and it refuses models it does not know how to scope rather than letting
them through unscoped.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from django import forms
from django.contrib import admin
from django.contrib.auth import get_user_model
from django.core.exceptions import ImproperlyConfigured
from django.db.models import Model, Q, QuerySet
from django.http import Http404, HttpRequest
from rest_framework import permissions, serializers

from .exceptions import NoMerchantScope

if TYPE_CHECKING:
    from merchants.models import Merchant, StaffRole

MANAGER, CASHIER, ANALYST = "manager", "cashier", "analyst"
_ALL = frozenset({"view", "add", "change", "delete"})


def staff_role_of(user: Any) -> StaffRole | None:
    """The user's staff role with its merchant, read once per user object."""
    if not getattr(user, "is_authenticated", False):
        return None
    if not hasattr(user, "_o2o_staff_role"):
        from merchants.models import StaffRole

        user._o2o_staff_role = (
            StaffRole.objects.select_related("merchant").filter(user=user, merchant__is_active=True).first()
        )
    return user._o2o_staff_role


def merchant_of(user: Any) -> Merchant | None:
    role = staff_role_of(user)
    return role.merchant if role else None


def role_name_of(user: Any) -> str | None:
    role = staff_role_of(user)
    return role.role if role else None


def tenant_filter(model: type[Model], merchant: Merchant) -> Q:
    """The condition that keeps `model`'s rows to those of `merchant`."""
    from merchants.models import Merchant

    if model is Merchant:
        return Q(pk=merchant.pk)
    if model is get_user_model():
        return Q(staff_role__merchant=merchant)
    field_names = {f.name for f in model._meta.get_fields()}
    if "merchant" in field_names:
        return Q(merchant=merchant)
    path = getattr(model, "tenant_path", None)
    if path:
        return Q(**{path: merchant})
    raise ImproperlyConfigured(f"{model.__name__} has no merchant: say how to scope it (tenant_path)")


def scope_queryset(queryset: QuerySet, user: Any) -> QuerySet:
    """All rows for a platform superuser; the user's merchant's rows for staff; none otherwise."""
    if user.is_superuser:
        return queryset
    merchant = merchant_of(user)
    if merchant is None:
        return queryset.none()
    return queryset.filter(tenant_filter(queryset.model, merchant))


# --------------------------------------------------------------------------- admin


class TenantRelatedFieldListFilter(admin.RelatedFieldListFilter):
    """A related-field filter whose choices are the user's merchant's rows only."""

    def field_choices(self, field, request, model_admin):
        if request.user.is_superuser:
            return super().field_choices(field, request, model_admin)
        merchant = merchant_of(request.user)
        if merchant is None:
            return []
        ordering = self.field_admin_ordering(field, request, model_admin)
        return field.get_choices(
            include_blank=False, ordering=ordering, limit_choices_to=tenant_filter(field.related_model, merchant)
        )


class _TenantScope:
    """Role-based permissions and merchant-scoped rows and choices, for admins and inlines."""

    # role -> what it may do on this model; platform superusers may do everything.
    role_permissions: dict[str, frozenset[str]] = {MANAGER: _ALL, ANALYST: frozenset({"view"})}

    # -- permissions (by staff role, not Django's per-model permissions, so a new model
    #    cannot be reached by accident)
    def _may(self, request: HttpRequest, action: str, obj: Model | None = None) -> bool:
        user = request.user
        if not (user.is_active and user.is_authenticated):
            return False
        if user.is_superuser:
            return True
        role = role_name_of(user)
        if role is None or action not in self.role_permissions.get(role, frozenset()):
            return False
        return obj is None or self._owns(request, obj)

    def _owns(self, request: HttpRequest, obj: Model) -> bool:
        merchant = merchant_of(request.user)
        if merchant is None:
            return False
        # The admin asks this several times per page; rows that carry their merchant answer without a query.
        from merchants.models import Merchant

        if isinstance(obj, Merchant):
            return obj.pk == merchant.pk
        if hasattr(obj, "merchant_id"):
            return obj.merchant_id == merchant.pk
        model = type(obj)
        return model._default_manager.filter(tenant_filter(model, merchant), pk=obj.pk).exists()

    def has_view_permission(self, request, obj=None):
        return self._may(request, "view", obj) or self._may(request, "change", obj)

    def has_add_permission(self, request, *args):
        return self._may(request, "add")

    def has_change_permission(self, request, obj=None):
        return self._may(request, "change", obj)

    def has_delete_permission(self, request, obj=None):
        return self._may(request, "delete", obj)

    # -- rows
    def get_queryset(self, request):
        return scope_queryset(super().get_queryset(request), request.user)

    # -- form choices: shown *and* accepted, since the form validates against these querysets
    def formfield_for_foreignkey(self, db_field, request, **kwargs):
        from merchants.models import Merchant

        if not request.user.is_superuser:
            merchant = merchant_of(request.user)
            if db_field.related_model is Merchant:
                # Shown read-only so the merchant takes part in unique checks (merchant, sku).
                kwargs["queryset"] = Merchant.objects.filter(pk=getattr(merchant, "pk", None))
                field = super().formfield_for_foreignkey(db_field, request, **kwargs)
                field.initial = getattr(merchant, "pk", None)
                field.disabled = True
                # No add/change/view links beside a value the user cannot choose.
                for flag in ("can_add_related", "can_change_related", "can_view_related", "can_delete_related"):
                    if hasattr(field.widget, flag):
                        setattr(field.widget, flag, False)
                return field
            kwargs["queryset"] = self._scoped_choices(db_field, request, kwargs.get("queryset"))
        return super().formfield_for_foreignkey(db_field, request, **kwargs)

    def formfield_for_manytomany(self, db_field, request, **kwargs):
        if not request.user.is_superuser:
            kwargs["queryset"] = self._scoped_choices(db_field, request, kwargs.get("queryset"))
        return super().formfield_for_manytomany(db_field, request, **kwargs)

    def _scoped_choices(self, db_field, request, queryset):
        if queryset is None:
            queryset = db_field.remote_field.model._default_manager.all()
        return scope_queryset(queryset, request.user)


class TenantAdmin(_TenantScope, admin.ModelAdmin):
    """Base ModelAdmin for every merchant-owned model.

    Scopes the changelist, object URLs (404 for another merchant's id, as for one that does not
    exist), foreign-key and many-to-many choices, list filters, autocomplete and raw-id popups
    (both read the target admin's scoped queryset).
    """

    # Another merchant's object count is nobody's business, and COUNT(*) on big tables is slow.
    show_full_result_count = False

    def has_module_permission(self, request):
        return self._may(request, "view")

    def get_object(self, request, object_id, from_field=None):
        obj = super().get_object(request, object_id, from_field)
        if obj is None:
            # The admin would redirect with "doesn't exist"; a plain 404 says no more than that.
            raise Http404
        return obj

    def save_model(self, request, obj, form, change):
        if not request.user.is_superuser and hasattr(obj, "merchant_id"):
            obj.merchant = merchant_of(request.user)
        super().save_model(request, obj, form, change)

    def get_list_filter(self, request):
        filters = []
        for item in super().get_list_filter(request):
            if isinstance(item, str) and "__" not in item:
                field = self.model._meta.get_field(item)
                if field.is_relation:
                    if item == "merchant" and not request.user.is_superuser:
                        continue
                    item = (item, TenantRelatedFieldListFilter)
            filters.append(item)
        return filters

    def get_list_display(self, request):
        display = super().get_list_display(request)
        if request.user.is_superuser:
            return display
        return [name for name in display if name != "merchant"]

    def get_changelist_formset(self, request, **kwargs):
        # list_editable: Django checks each posted row id against the model's *unscoped* manager,
        # so another merchant's id passed that check and then failed differently (400 "does not
        # allow adding") from a made-up id (the form again, "Select a valid choice"): an existence
        # oracle. Checking ids against the scoped rows answers both the same way.
        scoped = scope_queryset(self.model._default_manager.all(), request.user)

        class TenantChangelistFormSet(kwargs.pop("formset", forms.BaseModelFormSet)):
            def add_fields(self, form, index):
                super().add_fields(form, index)
                form.fields[self._pk_field.name].queryset = scoped

        return super().get_changelist_formset(request, formset=TenantChangelistFormSet, **kwargs)


class TenantInlineForm(forms.ModelForm):
    """An inline row belongs to its parent's merchant, set before validation so the model's
    clean() can refuse a choice of another merchant (a superuser's unscoped form)."""

    tenant_parent: str = ""

    def clean(self):
        cleaned = super().clean()
        # On an add page the parent is not saved yet and the row has no parent id to follow;
        # the inline foreign-key field's cleaned value is the parent itself (with its merchant).
        # Without it new rows were saved without a merchant (IntegrityError, a 500).
        parent = cleaned.get(self.tenant_parent) or getattr(self.instance, self.tenant_parent, None)
        if parent is not None and getattr(parent, "merchant_id", None):
            self.instance.merchant_id = parent.merchant_id
        return cleaned


class TenantTabularInline(_TenantScope, admin.TabularInline):
    """Inline for merchant-owned rows; `tenant_parent` names the foreign key to the parent."""

    tenant_parent: str = ""
    exclude = ("merchant",)

    def get_formset(self, request, obj=None, **kwargs):
        kwargs["form"] = type("TenantInlineForm", (TenantInlineForm,), {"tenant_parent": self.tenant_parent})
        base = kwargs.pop("formset", self.formset)
        kwargs["formset"] = type("TenantInlineFormSet", (_ParentRowIdsFormSet, base), {})
        return super().get_formset(request, obj, **kwargs)


class _ParentRowIdsFormSet(forms.BaseInlineFormSet):
    """Inline rows may name (by their hidden id) only rows of the page's parent.

    Django checks a posted row id against the model's *unscoped* manager, as in the changelist's
    list_editable: another merchant's id passed that check, found no row of this parent and was
    silently dropped (the page said "saved"), while a made-up id got "Select a valid choice": an
    existence oracle. The formset's own queryset (this parent's rows, already merchant-scoped by the
    inline) answers both alike.
    """

    def add_fields(self, form, index):
        super().add_fields(form, index)
        field = form.fields.get(self._pk_field.name)
        if isinstance(field, forms.ModelChoiceField):
            field.queryset = self.queryset


# --------------------------------------------------------------------------- API


class IsMerchantStaff(permissions.BasePermission):
    """Signed in, active, and either platform superuser or staff of an active merchant."""

    message = NoMerchantScope.default_message

    def has_permission(self, request, view):
        user = request.user
        return bool(user and user.is_authenticated and user.is_active) and (
            user.is_superuser or staff_role_of(user) is not None
        )


class ManagersWriteOthersRead(IsMerchantStaff):
    """Every staff role reads; only managers (and platform superusers) write."""

    def has_permission(self, request, view):
        if not super().has_permission(request, view):
            return False
        if request.method in permissions.SAFE_METHODS:
            return True
        return request.user.is_superuser or role_name_of(request.user) == MANAGER


def request_merchant(request: HttpRequest) -> Merchant:
    """The merchant a write acts for; platform users without a staff role must use the admin."""
    merchant = merchant_of(request.user)
    if merchant is None:
        raise NoMerchantScope()
    return merchant


class TenantViewSetMixin:
    """Scope a viewset's rows to the merchant; new rows belong to it."""

    def get_queryset(self):
        return scope_queryset(super().get_queryset(), self.request.user)

    def perform_create(self, serializer):
        serializer.save(merchant=request_merchant(self.request))


class TenantModelSerializer(serializers.ModelSerializer):
    """Related-field choices are limited to the requesting user's merchant.

    A write that points a foreign key at another merchant's row is answered exactly like one
    that points at a row that does not exist.
    """

    def get_fields(self):
        fields = super().get_fields()
        request = self.context.get("request")
        if request is None:
            return fields
        for field in fields.values():
            relation = getattr(field, "child_relation", field)
            if isinstance(relation, serializers.RelatedField) and relation.queryset is not None:
                relation.queryset = scope_queryset(relation.queryset, request.user)
        return fields


def tenant_choices(model: type[Model]):
    """A django-filter `queryset=` callable: the model's rows of the requesting user's merchant."""

    def choices(request):
        queryset = model._default_manager.all()
        if request is None:
            return queryset.none()
        return scope_queryset(queryset, request.user)

    return choices
