"""Promotions on the goods wall, the scans they get, and the orders customers place."""

import uuid
from datetime import datetime
from decimal import Decimal

from django.core.validators import MinValueValidator
from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from django.utils.translation import pgettext_lazy

from .codes import WALL_CODE_LENGTH


class Promotion(models.Model):
    """A time-boxed offer on one product or a bundle, hung in stores as a QR code."""

    class Status(models.TextChoices):
        DRAFT = "draft", _("Draft")
        SCHEDULED = "scheduled", _("Scheduled")
        LIVE = "live", _("Live")
        SOLD_OUT = "sold_out", _("Sold out")
        ENDED = "ended", _("Ended")

    merchant = models.ForeignKey(
        "merchants.Merchant", on_delete=models.PROTECT, related_name="promotions", verbose_name=_("merchant")
    )
    title = models.CharField(_("title"), max_length=120)
    description = models.TextField(_("description"), blank=True)
    image = models.ImageField(_("image"), upload_to="promotions/", blank=True)
    wall_code = models.CharField(_("wall code"), max_length=WALL_CODE_LENGTH, unique=True, editable=False)
    status = models.CharField(_("status"), max_length=16, choices=Status.choices, default=Status.DRAFT)

    promo_price = models.DecimalField(_("promo price"), max_digits=12, decimal_places=2)
    original_price = models.DecimalField(
        _("original price"),
        max_digits=12,
        decimal_places=2,
        help_text=_("Shown struck through beside the promo price."),
    )
    starts_at = models.DateTimeField(_("starts"))
    ends_at = models.DateTimeField(_("ends"))
    stock_cap = models.PositiveIntegerField(
        _("stock cap"), validators=[MinValueValidator(1)], help_text=_("How many can be sold in all.")
    )
    # Units held by orders that are not cancelled. Changed only by conditional UPDATEs
    # (sold_count + n <= stock_cap), so concurrent buyers can never oversell.
    sold_count = models.PositiveIntegerField(_("sold"), default=0, editable=False)
    per_member_limit = models.PositiveIntegerField(_("limit per member"), default=1, validators=[MinValueValidator(1)])

    allow_pickup = models.BooleanField(_("pickup in store"), default=True)
    pickup_stores = models.ManyToManyField(
        "merchants.Store", blank=True, related_name="pickup_promotions", verbose_name=_("pickup stores")
    )
    pickup_days = models.PositiveIntegerField(
        _("pickup deadline (days after payment)"), default=7, validators=[MinValueValidator(1)]
    )
    allow_express = models.BooleanField(_("express delivery"), default=False)
    shipping_fee = models.DecimalField(
        _("shipping fee"), max_digits=12, decimal_places=2, default=Decimal("0.00"), validators=[MinValueValidator(0)]
    )

    created_at = models.DateTimeField(_("created"), auto_now_add=True)
    published_at = models.DateTimeField(_("published"), null=True, blank=True, editable=False)
    ended_at = models.DateTimeField(_("ended"), null=True, blank=True, editable=False)

    class Meta:
        ordering = ["-starts_at", "-id"]
        verbose_name = _("promotion")
        verbose_name_plural = _("promotions")
        indexes = [models.Index(fields=["merchant", "status", "ends_at"])]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(sold_count__lte=models.F("stock_cap")), name="promotion_not_oversold"
            ),
            models.CheckConstraint(
                condition=models.Q(ends_at__gt=models.F("starts_at")), name="promotion_ends_after_start"
            ),
            models.CheckConstraint(condition=models.Q(promo_price__gt=0), name="promotion_price_positive"),
        ]

    def __str__(self) -> str:
        return self.title

    def clean(self) -> None:
        from django.core.exceptions import ValidationError

        errors = {}
        if self.starts_at and self.ends_at and self.ends_at <= self.starts_at:
            errors["ends_at"] = _("The end must be after the start.")
        if self.promo_price is not None and self.promo_price <= 0:
            errors["promo_price"] = _("The promo price must be more than zero.")
        if self.promo_price is not None and self.original_price is not None and self.original_price < self.promo_price:
            errors["original_price"] = _("The original price cannot be lower than the promo price.")
        if not (self.allow_pickup or self.allow_express):
            errors["allow_pickup"] = _("Allow pickup in store, express delivery, or both.")
        if self.stock_cap is not None and self.stock_cap < self.sold_count:
            errors["stock_cap"] = _("%(sold)d are already sold; the cap cannot be lower.") % {"sold": self.sold_count}
        if errors:
            raise ValidationError(errors)

    @property
    def stock_left(self) -> int:
        return max(self.stock_cap - self.sold_count, 0)

    def effective_status(self, now: datetime) -> str:
        """The status as of `now`, even if the sweep that stores it has not run yet."""
        from .lifecycle import promotion_status_at

        return promotion_status_at(
            status=self.status, starts_at=self.starts_at, ends_at=self.ends_at, stock_left=self.stock_left, now=now
        )


class PromotionItem(models.Model):
    """One product of a promotion, with how many units one purchase includes (a bundle has several)."""

    merchant = models.ForeignKey("merchants.Merchant", on_delete=models.PROTECT, related_name="+")
    promotion = models.ForeignKey(
        Promotion, on_delete=models.CASCADE, related_name="items", verbose_name=_("promotion")
    )
    product = models.ForeignKey(
        "merchants.Product", on_delete=models.PROTECT, related_name="promotion_items", verbose_name=_("product")
    )
    quantity = models.PositiveIntegerField(_("units per purchase"), default=1, validators=[MinValueValidator(1)])

    class Meta:
        verbose_name = _("promotion item")
        verbose_name_plural = _("promotion items")
        constraints = [models.UniqueConstraint(fields=["promotion", "product"], name="promotion_item_unique_product")]

    def __str__(self) -> str:
        return f"{self.quantity} × {self.product}"

    def clean(self) -> None:
        from django.core.exceptions import ValidationError

        if self.product_id and self.merchant_id and self.product.merchant_id != self.merchant_id:
            raise ValidationError({"product": _("This product belongs to another merchant.")})


class Scan(models.Model):
    """One visit of a wall code: which promotion, in which store, when. The funnel starts here.

    `key` is made when the page is served; with Redis the row itself is written a few seconds
    later by the scan buffer's flush, so orders refer to their scan by key, not by row id.
    """

    key = models.UUIDField(unique=True, default=uuid.uuid4, editable=False)
    merchant = models.ForeignKey("merchants.Merchant", on_delete=models.CASCADE, related_name="+")
    promotion = models.ForeignKey(Promotion, on_delete=models.CASCADE, related_name="scans")
    store = models.ForeignKey("merchants.Store", on_delete=models.SET_NULL, null=True, blank=True, related_name="scans")
    created_at = models.DateTimeField(_("scanned"), default=timezone.now, db_index=True)

    class Meta:
        ordering = ["-created_at"]
        verbose_name = _("scan")
        verbose_name_plural = _("scans")
        indexes = [models.Index(fields=["promotion", "store", "created_at"])]

    def __str__(self) -> str:
        return f"{self.promotion_id}@{self.store_id} {self.created_at:%Y-%m-%d %H:%M}"


class Order(models.Model):
    class Status(models.TextChoices):
        PENDING_PAYMENT = "pending_payment", _("Pending payment")
        PAID = "paid", _("Paid")
        READY_FOR_PICKUP = "ready_for_pickup", _("Ready for pickup")
        PICKED_UP = "picked_up", _("Picked up")
        SHIPPED = "shipped", _("Shipped")
        DELIVERED = "delivered", _("Delivered")
        CANCELLED = "cancelled", _("Cancelled")
        REFUNDED = "refunded", _("Refunded")
        EXPIRED = "expired", _("Expired")

    class Fulfilment(models.TextChoices):
        PICKUP = "pickup", _("Pickup in store")
        EXPRESS = "express", _("Express delivery")

    merchant = models.ForeignKey(
        "merchants.Merchant", on_delete=models.PROTECT, related_name="orders", verbose_name=_("merchant")
    )
    promotion = models.ForeignKey(
        Promotion, on_delete=models.PROTECT, related_name="orders", verbose_name=_("promotion")
    )
    # The scan this order came from (Scan.key): which QR, in which store, sold it.
    scan_key = models.UUIDField(_("scan"), null=True, blank=True, db_index=True, editable=False)
    member = models.ForeignKey(
        "members.Member", on_delete=models.PROTECT, related_name="orders", verbose_name=_("member")
    )
    token = models.CharField(_("link token"), max_length=32, unique=True, editable=False)
    # The order form's one-time key: a double submit finds the first order instead of making two.
    submit_key = models.CharField(max_length=64, editable=False)
    status = models.CharField(
        _("status"), max_length=20, choices=Status.choices, default=Status.PENDING_PAYMENT, db_index=True
    )

    quantity = models.PositiveIntegerField(_("quantity"), validators=[MinValueValidator(1)])
    unit_price = models.DecimalField(_("unit price"), max_digits=12, decimal_places=2)
    subtotal = models.DecimalField(_("subtotal"), max_digits=12, decimal_places=2)
    shipping_fee = models.DecimalField(_("shipping"), max_digits=12, decimal_places=2, default=Decimal("0.00"))
    total = models.DecimalField(_("total"), max_digits=12, decimal_places=2)
    currency = models.CharField(_("currency"), max_length=3)

    fulfilment = models.CharField(_("fulfilment"), max_length=10, choices=Fulfilment.choices)
    pickup_store = models.ForeignKey(
        "merchants.Store",
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="pickup_orders",
        verbose_name=_("pickup store"),
    )
    recipient_name = models.CharField(_("recipient"), max_length=80, blank=True)
    recipient_phone = models.CharField(_("recipient phone"), max_length=20, blank=True)
    shipping_address = models.TextField(_("shipping address"), blank=True)

    pickup_code = models.CharField(_("pickup code"), max_length=16, unique=True, null=True, blank=True, editable=False)
    pickup_deadline = models.DateTimeField(_("pick up by"), null=True, blank=True)

    created_at = models.DateTimeField(_("created"), auto_now_add=True)
    paid_at = models.DateTimeField(_("paid"), null=True, blank=True)
    ready_at = models.DateTimeField(_("ready for pickup"), null=True, blank=True)
    closed_at = models.DateTimeField(
        _("closed"), null=True, blank=True, help_text=_("Cancelled, completed or expired.")
    )

    # Express fulfilment: the parcel.
    carrier = models.CharField(_("carrier"), max_length=40, blank=True)
    tracking_number = models.CharField(_("tracking number"), max_length=64, blank=True)
    shipped_at = models.DateTimeField(_("shipped"), null=True, blank=True)
    delivered_at = models.DateTimeField(_("delivered"), null=True, blank=True)

    # Set when something automatic could not finish (say, the refund of an expired pickup) and a person
    # must look; cleared by staff.
    needs_attention = models.BooleanField(_("needs attention"), default=False)
    attention_note = models.CharField(_("attention note"), max_length=255, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        verbose_name = _("order")
        verbose_name_plural = _("orders")
        constraints = [
            models.UniqueConstraint(fields=["promotion", "submit_key"], name="order_submit_once"),
            models.CheckConstraint(condition=models.Q(total__gte=0), name="order_total_not_negative"),
        ]
        indexes = [
            models.Index(fields=["status", "created_at"]),
            models.Index(fields=["merchant", "status", "created_at"]),
            models.Index(fields=["member", "promotion"]),
            # The overdue-pickup sweep: paid or ready orders past their deadline.
            models.Index(fields=["status", "pickup_deadline"], name="order_status_deadline"),
            # Staff's "needs attention" list stays small: index only those rows.
            models.Index(
                fields=["merchant", "created_at"], condition=models.Q(needs_attention=True),
                name="order_needs_attention",
            ),
        ]

    def __str__(self) -> str:
        return f"#{self.pk} {self.get_status_display()}"


class OrderItem(models.Model):
    merchant = models.ForeignKey("merchants.Merchant", on_delete=models.PROTECT, related_name="+")
    order = models.ForeignKey(Order, on_delete=models.CASCADE, related_name="items")
    product = models.ForeignKey(
        "merchants.Product", on_delete=models.PROTECT, related_name="order_items", verbose_name=_("product")
    )
    quantity = models.PositiveIntegerField(_("quantity"))
    # Units given to the customer so far (partial pickups add up here, under the order's row lock); the
    # Redemption rows are the audit trail of each part.
    handed_over = models.PositiveIntegerField(_("handed over"), default=0)

    class Meta:
        verbose_name = _("order item")
        verbose_name_plural = _("order items")
        constraints = [
            models.CheckConstraint(
                condition=models.Q(handed_over__lte=models.F("quantity")),
                name="order_item_handed_over_at_most_quantity",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.quantity} × {self.product}"


class OrderEvent(models.Model):
    """Every status change of an order: who, when, from which channel. Never edited."""

    class Channel(models.TextChoices):
        WEB = "web", _("Web")
        ADMIN = "admin", _("Admin")
        API = "api", _("API")
        WORKER = "worker", _("Worker")

    merchant = models.ForeignKey("merchants.Merchant", on_delete=models.PROTECT, related_name="+")
    order = models.ForeignKey(Order, on_delete=models.CASCADE, related_name="events")
    from_status = models.CharField(
        pgettext_lazy("order status change", "from"), max_length=20, blank=True, choices=Order.Status.choices
    )
    to_status = models.CharField(
        pgettext_lazy("order status change", "to"), max_length=20, choices=Order.Status.choices
    )
    actor = models.ForeignKey(
        "auth.User", on_delete=models.SET_NULL, null=True, blank=True, related_name="+", verbose_name=_("by")
    )
    channel = models.CharField(_("channel"), max_length=10, choices=Channel.choices)
    note = models.CharField(_("note"), max_length=255, blank=True)
    created_at = models.DateTimeField(_("when"), auto_now_add=True)

    class Meta:
        ordering = ["created_at", "id"]
        verbose_name = _("order event")
        verbose_name_plural = _("order events")

    def __str__(self) -> str:
        return f"{self.get_from_status_display() if self.from_status else '∅'} → {self.get_to_status_display()}"


# Payments live in their own sub-package (orders/payments/); Django finds models through this module.
from .payments.models import Payment, PaymentConfig, PaymentNotification, Refund  # noqa: E402, F401
from .pickups.models import *  # noqa: E402, F401, F403
from .reconciliation.models import Discrepancy, ReconciliationRun  # noqa: E402, F401
