"""Merchant (the tenant), its stores, staff roles, products and per-store stock."""

import zoneinfo

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import MinValueValidator, RegexValidator
from django.db import models
from django.utils.translation import gettext_lazy as _

from o2o.money import CURRENCY_MINOR_UNITS


def validate_timezone(value: str) -> None:
    if value not in zoneinfo.available_timezones():
        raise ValidationError(_("“%(value)s” is not a known time zone (e.g. Asia/Shanghai)."), params={"value": value})


class Merchant(models.Model):
    name = models.CharField(_("name"), max_length=120)
    slug = models.SlugField(
        _("slug"), max_length=50, unique=True, help_text=_("Short name used in URLs and commands; cannot change later.")
    )
    currency = models.CharField(
        _("currency"), max_length=3, default="CNY", choices=[(c, c) for c in sorted(CURRENCY_MINOR_UNITS)]
    )
    timezone = models.CharField(_("time zone"), max_length=64, default="Asia/Shanghai", validators=[validate_timezone])
    logo = models.ImageField(_("logo"), upload_to="merchants/logos/", blank=True)
    contact_name = models.CharField(_("contact name"), max_length=80, blank=True)
    contact_phone = models.CharField(_("contact phone"), max_length=32, blank=True)
    contact_email = models.EmailField(_("contact e-mail"), blank=True)
    unpaid_order_minutes = models.PositiveIntegerField(
        _("cancel unpaid orders after (minutes)"),
        default=15,
        validators=[MinValueValidator(1)],
        help_text=_("Unpaid orders are cancelled after this long and their stock goes back on sale."),
    )
    redemption_void_minutes = models.PositiveIntegerField(
        _("void hand-overs within (minutes)"),
        default=30,
        validators=[MinValueValidator(1)],
        help_text=_("How long after a hand-over a manager may void it."),
    )
    is_active = models.BooleanField(_("active"), default=True)
    created_at = models.DateTimeField(_("created"), auto_now_add=True)

    class Meta:
        ordering = ["name"]
        verbose_name = _("merchant")
        verbose_name_plural = _("merchants")

    def __str__(self) -> str:
        return self.name


class Store(models.Model):
    merchant = models.ForeignKey(Merchant, on_delete=models.PROTECT, related_name="stores", verbose_name=_("merchant"))
    name = models.CharField(_("name"), max_length=120)
    code = models.SlugField(
        _("code"), max_length=32, help_text=_("Short store code, unique within the merchant, used in QR links.")
    )
    address = models.CharField(_("address"), max_length=255)
    phone = models.CharField(_("phone"), max_length=32, blank=True)
    opening_hours = models.CharField(
        _("opening hours"), max_length=255, blank=True, help_text=_("e.g. Mon–Sun 10:00–22:00")
    )
    pickup_instructions = models.TextField(
        _("pickup counter instructions"), blank=True, help_text=_("Shown to customers on their pickup voucher.")
    )
    is_active = models.BooleanField(_("active"), default=True)
    created_at = models.DateTimeField(_("created"), auto_now_add=True)

    class Meta:
        ordering = ["merchant", "name"]
        verbose_name = _("store")
        verbose_name_plural = _("stores")
        constraints = [
            models.UniqueConstraint(fields=["merchant", "code"], name="store_code_unique_per_merchant"),
            models.UniqueConstraint(fields=["merchant", "name"], name="store_name_unique_per_merchant"),
        ]

    def __str__(self) -> str:
        return self.name


class StaffRole(models.Model):
    """A user's membership in one merchant. A user serves at most one merchant."""

    class Role(models.TextChoices):
        MANAGER = "manager", _("Manager")
        CASHIER = "cashier", _("Cashier")
        ANALYST = "analyst", _("Analyst")

    user = models.OneToOneField(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="staff_role", verbose_name=_("user")
    )
    merchant = models.ForeignKey(Merchant, on_delete=models.CASCADE, related_name="staff", verbose_name=_("merchant"))
    role = models.CharField(_("role"), max_length=16, choices=Role.choices)
    stores = models.ManyToManyField(
        Store,
        blank=True,
        related_name="cashiers",
        verbose_name=_("stores"),
        help_text=_("Cashiers verify pickups only here."),
    )
    created_at = models.DateTimeField(_("created"), auto_now_add=True)

    class Meta:
        ordering = ["merchant", "user__username"]
        verbose_name = _("staff member")
        verbose_name_plural = _("staff")

    def __str__(self) -> str:
        return f"{self.user.get_username()} ({self.get_role_display()})"


sku_validator = RegexValidator(r"^[A-Za-z0-9._-]+$", _("Use letters, digits, dot, dash or underscore."))


class Product(models.Model):
    merchant = models.ForeignKey(
        Merchant, on_delete=models.PROTECT, related_name="products", verbose_name=_("merchant")
    )
    name = models.CharField(_("name"), max_length=200)
    sku = models.CharField(_("SKU"), max_length=64, validators=[sku_validator])
    price = models.DecimalField(
        _("price"),
        max_digits=12,
        decimal_places=2,
        validators=[MinValueValidator(0)],
        help_text=_("Regular price in the merchant's currency."),
    )
    description = models.TextField(_("description"), blank=True)
    image = models.ImageField(_("image"), upload_to="products/", blank=True)
    is_active = models.BooleanField(_("active"), default=True)
    created_at = models.DateTimeField(_("created"), auto_now_add=True)

    class Meta:
        ordering = ["merchant", "name"]
        verbose_name = _("product")
        verbose_name_plural = _("products")
        constraints = [models.UniqueConstraint(fields=["merchant", "sku"], name="product_sku_unique_per_merchant")]
        indexes = [models.Index(fields=["merchant", "is_active"])]

    def __str__(self) -> str:
        return f"{self.name} ({self.sku})"


class StoreStock(models.Model):
    """How many units of a product one store holds."""

    merchant = models.ForeignKey(Merchant, on_delete=models.PROTECT, related_name="+", verbose_name=_("merchant"))
    product = models.ForeignKey(Product, on_delete=models.CASCADE, related_name="stock", verbose_name=_("product"))
    store = models.ForeignKey(Store, on_delete=models.CASCADE, related_name="stock", verbose_name=_("store"))
    quantity = models.PositiveIntegerField(_("quantity"), default=0)
    updated_at = models.DateTimeField(_("updated"), auto_now=True)

    class Meta:
        ordering = ["store", "product"]
        verbose_name = _("store stock")
        verbose_name_plural = _("store stock")
        constraints = [models.UniqueConstraint(fields=["product", "store"], name="stock_unique_per_product_store")]

    def __str__(self) -> str:
        return f"{self.product} @ {self.store}: {self.quantity}"

    def clean(self) -> None:
        # The admin and API scope their choices; this is the backstop for anything that does not
        # (a superuser's form, a script): stock never joins rows of two merchants.
        errors = {}
        if self.product_id and self.merchant_id and self.product.merchant_id != self.merchant_id:
            errors["product"] = _("This product belongs to another merchant.")
        if self.store_id and self.merchant_id and self.store.merchant_id != self.merchant_id:
            errors["store"] = _("This store belongs to another merchant.")
        if errors:
            raise ValidationError(errors)
