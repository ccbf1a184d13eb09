from django import forms
from django.contrib import admin
from django.contrib.auth import get_user_model, password_validation
from django.db.models import Sum
from django.utils.translation import gettext_lazy as _

from o2o.tenancy import ANALYST, MANAGER, TenantAdmin, TenantTabularInline, merchant_of

from . import services
from .models import Merchant, Product, StaffRole, Store, StoreStock

User = get_user_model()


@admin.register(Merchant)
class MerchantAdmin(TenantAdmin):
    # Managers keep their own merchant's profile up to date; only the platform creates merchants.
    role_permissions = {MANAGER: frozenset({"view", "change"}), ANALYST: frozenset({"view"})}
    list_display = ["name", "slug", "currency", "timezone", "contact_name", "is_active"]
    list_filter = ["is_active", "currency"]
    search_fields = ["name", "slug"]
    prepopulated_fields = {"slug": ["name"]}
    fieldsets = [
        (None, {"fields": ["name", "slug", "currency", "timezone", "logo", "is_active"]}),
        (_("Contact"), {"fields": ["contact_name", "contact_phone", "contact_email"]}),
        (_("Orders and pickups"), {"fields": ["unpaid_order_minutes", "redemption_void_minutes"]}),
    ]

    def get_prepopulated_fields(self, request, obj=None):
        return {} if obj else super().get_prepopulated_fields(request, obj)

    def get_readonly_fields(self, request, obj=None):
        if request.user.is_superuser:
            return ["slug"] if obj else []
        # Slug is in notify URLs and commands; currency changes would re-price history.
        return ["slug", "currency", "is_active"]


@admin.register(Store)
class StoreAdmin(TenantAdmin):
    list_display = ["name", "code", "merchant", "address", "opening_hours", "is_active"]
    list_filter = ["is_active", "merchant"]
    list_select_related = ["merchant"]
    search_fields = ["name", "code", "address"]
    prepopulated_fields = {"code": ["name"]}
    fields = ["merchant", "name", "code", "address", "phone", "opening_hours", "pickup_instructions", "is_active"]


class StaffCreationForm(forms.ModelForm):
    """Adding staff creates their login too: a manager never picks from the platform's users."""

    username = forms.CharField(label=_("Username"), max_length=150)
    first_name = forms.CharField(label=_("First name"), max_length=150, required=False)
    last_name = forms.CharField(label=_("Last name"), max_length=150, required=False)
    email = forms.EmailField(label=_("E-mail"), required=False)
    password1 = forms.CharField(label=_("Password"), widget=forms.PasswordInput, strip=False)
    password2 = forms.CharField(label=_("Password (again)"), widget=forms.PasswordInput, strip=False)

    class Meta:
        model = StaffRole
        fields = ["merchant", "role", "stores"]

    def clean_username(self):
        username = self.cleaned_data["username"]
        User.username_validator(username)
        if User.objects.filter(username__iexact=username).exists():
            raise forms.ValidationError(_("This username is taken; choose another."))
        return username

    def clean(self):
        cleaned = super().clean()
        p1, p2 = cleaned.get("password1"), cleaned.get("password2")
        if p1 and p2 and p1 != p2:
            self.add_error("password2", _("The two passwords differ."))
        elif p1:
            try:
                password_validation.validate_password(p1, User(username=cleaned.get("username", "")))
            except forms.ValidationError as error:
                self.add_error("password1", error)
        _validate_stores(self, cleaned)
        return cleaned


class StaffChangeForm(forms.ModelForm):
    new_password = forms.CharField(
        label=_("New password"),
        widget=forms.PasswordInput,
        strip=False,
        required=False,
        help_text=_("Leave empty to keep the current password."),
    )

    class Meta:
        model = StaffRole
        fields = ["merchant", "role", "stores"]

    def clean_new_password(self):
        password = self.cleaned_data.get("new_password")
        if password:
            password_validation.validate_password(password, self.instance.user)
        return password

    def clean(self):
        cleaned = super().clean()
        _validate_stores(self, cleaned)
        return cleaned


def _validate_stores(form: forms.ModelForm, cleaned: dict) -> None:
    merchant, role = cleaned.get("merchant"), cleaned.get("role")
    if merchant and role:
        try:
            services.staff_stores_validate(merchant=merchant, role=role, stores=cleaned.get("stores") or [])
        except forms.ValidationError as error:
            form.add_error(None, error)


@admin.register(StaffRole)
class StaffRoleAdmin(TenantAdmin):
    role_permissions = {MANAGER: frozenset({"view", "add", "change", "delete"})}
    list_display = ["user", "full_name", "role", "merchant", "store_list", "is_active"]
    list_filter = ["role", "merchant", "stores"]
    list_select_related = ["user", "merchant"]
    search_fields = ["user__username", "user__first_name", "user__last_name", "user__email"]
    filter_horizontal = ["stores"]

    def get_queryset(self, request):
        return super().get_queryset(request).prefetch_related("stores")

    def get_form(self, request, obj=None, change=False, **kwargs):
        kwargs["form"] = StaffChangeForm if obj else StaffCreationForm
        return super().get_form(request, obj, change=change, **kwargs)

    def get_fieldsets(self, request, obj=None):
        if obj is None:
            return [
                (_("Login"), {"fields": ["username", "password1", "password2"]}),
                (_("Person"), {"fields": ["first_name", "last_name", "email"]}),
                (_("Role"), {"fields": ["merchant", "role", "stores"]}),
            ]
        return [(None, {"fields": ["merchant", "role", "stores", "new_password"]})]

    def get_readonly_fields(self, request, obj=None):
        # Nobody demotes themselves out of the portal by accident.
        if obj is not None and obj.user_id == request.user.pk:
            return ["role"]
        return []

    def has_delete_permission(self, request, obj=None):
        if obj is not None and obj.user_id == request.user.pk:
            return False
        return super().has_delete_permission(request, obj)

    def save_model(self, request, obj, form, change):
        if not request.user.is_superuser:
            obj.merchant = merchant_of(request.user)
        if change:
            obj.save()
            if form.cleaned_data.get("new_password"):
                obj.user.set_password(form.cleaned_data["new_password"])
                obj.user.save(update_fields=["password"])
            services.staff_user_sync(staff_role=obj)
            return
        data = form.cleaned_data
        created = services.staff_member_create(
            merchant=obj.merchant,
            username=data["username"],
            password=data["password1"],
            role=data["role"],
            stores=data.get("stores") or [],
            first_name=data.get("first_name", ""),
            last_name=data.get("last_name", ""),
            email=data.get("email", ""),
        )
        # The admin goes on with this object (log entry, redirect, save_related for stores).
        obj.pk, obj.user = created.pk, created.user
        obj._state.adding = False

    @admin.display(description=_("name"))
    def full_name(self, obj):
        return obj.user.get_full_name()

    @admin.display(description=_("stores"))
    def store_list(self, obj):
        return ", ".join(store.name for store in obj.stores.all())

    @admin.display(description=_("active"), boolean=True)
    def is_active(self, obj):
        return obj.user.is_active


class StoreStockInline(TenantTabularInline):
    model = StoreStock
    tenant_parent = "product"
    fields = ["store", "quantity"]
    extra = 0


@admin.register(Product)
class ProductAdmin(TenantAdmin):
    list_display = ["name", "sku", "price", "total_stock", "merchant", "is_active"]
    list_filter = ["is_active", "merchant"]
    list_select_related = ["merchant"]
    search_fields = ["name", "sku"]
    fields = ["merchant", "name", "sku", "price", "description", "image", "is_active"]
    inlines = [StoreStockInline]

    def get_queryset(self, request):
        # Meta.ordering is dropped from GROUP BY queries: without an explicit order the
        # autocomplete (which pages this queryset as is) could repeat or skip products.
        total = super().get_queryset(request).annotate(_total_stock=Sum("stock__quantity"))
        return total.order_by(*Product._meta.ordering, "pk")

    @admin.display(description=_("stock, all stores"), ordering="_total_stock")
    def total_stock(self, obj):
        return obj._total_stock or 0


@admin.register(StoreStock)
class StoreStockAdmin(TenantAdmin):
    list_display = ["product", "store", "quantity", "merchant", "updated_at"]
    list_editable = ["quantity"]
    list_filter = ["store", "merchant"]
    list_select_related = ["product", "store", "merchant"]
    search_fields = ["product__name", "product__sku", "store__name"]
    autocomplete_fields = ["product"]
    fields = ["merchant", "product", "store", "quantity"]
