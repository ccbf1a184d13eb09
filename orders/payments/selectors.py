"""Reads for payments: the notify URL's account, what an order has paid and can still refund."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from django.db.models import Q, QuerySet, Sum

from o2o.money import money_quantize

from ..models import Order
from .models import Payment, PaymentConfig, Provider, Refund


def payment_config_for_notify(*, provider: str, merchant_slug: str) -> PaymentConfig | None:
    """The account a notification names by URL; None (a 404) for an unknown provider or merchant.

    Inactive accounts still receive: a payment made before the account was switched off must not be lost.
    """
    if provider not in Provider.values:
        return None
    from .services import sandbox_enabled

    if provider == Provider.SANDBOX and not sandbox_enabled():
        return None
    return (
        PaymentConfig.objects.select_related("merchant")
        .filter(provider=provider, merchant__slug=merchant_slug)
        .first()
    )


def payments_refundable(*, order: Order) -> QuerySet[Payment]:
    """The order's payments that received money and still have some to give back, with `refundable`
    (paid minus refunded minus refunds still pending) on each."""
    pending = Sum("refunds__amount", filter=Q(refunds__status=Refund.Status.PENDING), default=Decimal("0"))
    return (
        Payment.objects.filter(order=order, status__in=[Payment.Status.PAID, Payment.Status.NEEDS_REVIEW],
                               paid_at__isnull=False)
        .annotate(pending=pending)
        .order_by("paid_at", "id")
    )


@dataclass(frozen=True)
class OrderMoney:
    paid: Decimal
    refunded: Decimal
    pending: Decimal

    @property
    def refundable(self) -> Decimal:
        return self.paid - self.refunded - self.pending


def order_money(*, order: Order) -> OrderMoney:
    """What came in for the order (all payments that received money) and what went back."""
    payments = Payment.objects.filter(
        order=order, status__in=[Payment.Status.PAID, Payment.Status.NEEDS_REVIEW], paid_at__isnull=False
    ).aggregate(paid=Sum("amount", default=Decimal("0")), refunded=Sum("refunded_amount", default=Decimal("0")))
    pending = Refund.objects.filter(order=order, status=Refund.Status.PENDING).aggregate(
        total=Sum("amount", default=Decimal("0"))
    )["total"]
    # Quantised: SQLite's SUM of decimals comes back without its places (198, not 198.00).
    return OrderMoney(
        paid=money_quantize(payments["paid"], order.currency),
        refunded=money_quantize(payments["refunded"], order.currency),
        pending=money_quantize(pending, order.currency),
    )


def order_awaiting_confirmation(*, order: Order) -> bool:
    """An unpaid order whose customer has gone to pay: its page says "waiting for payment confirmation"."""
    return order.status == Order.Status.PENDING_PAYMENT and order.payments.filter(
        status=Payment.Status.CREATED
    ).exists()
