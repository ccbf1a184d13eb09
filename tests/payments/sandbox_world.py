"""A shop that takes sandbox payments, and ways to send it notifications (helpers, not tests)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from urllib.parse import urlsplit

from django.test import Client
from django.utils import timezone

from merchants.models import Merchant, Store
from o2o.money import money_to_minor
from orders.models import Order, Payment, PaymentConfig, Promotion
from orders.payments import payment_start
from orders.payments.models import Provider, SandboxTrade
from orders.payments.providers import sandbox as sandbox_provider
from orders.services import order_place
from tests.factories import MerchantFactory, StoreFactory, promotion


@dataclass
class Shop:
    merchant: Merchant
    store: Store
    offer: Promotion
    config: PaymentConfig


def sandbox_shop(slug: str = "teahouse", *, price: Decimal = Decimal("99.00"), **offer) -> Shop:
    """A merchant with one store, a live offer (pickup there) and a sandbox account with its own secret."""
    merchant = MerchantFactory(slug=slug, name=slug.title())
    store = StoreFactory(merchant=merchant, code=f"{slug}-1")
    config = PaymentConfig.objects.create(
        merchant=merchant, provider=Provider.SANDBOX, signing_secret=f"secret-of-{slug}-0123456789abcdef"
    )
    offer = promotion(merchant, stores=[store], promo_price=price, per_member_limit=5, stock_cap=1000, **offer)
    return Shop(merchant=merchant, store=store, offer=offer, config=config)


def placed_order(shop: Shop, *, quantity: int = 1, phone: str = "139 0000 0001", key: str | None = None) -> Order:
    return order_place(
        promotion=Promotion.objects.get(pk=shop.offer.pk),
        quantity=quantity,
        phone=phone,
        fulfilment="pickup",
        pickup_store=shop.store,
        submit_key=key or f"form-{Order.objects.count()}-{phone}",
    )


def started_payment(order: Order) -> Payment:
    """Send the customer to pay, as the landing page does; the payment that opened."""
    payment_start(order=order)
    return order.payments.get(status=Payment.Status.CREATED)


def signed_notification(
    config: PaymentConfig,
    *,
    out_trade_no: str,
    amount_minor: int,
    currency: str = "CNY",
    transaction_id: str = "SBX2026112500000001",
    state: str = "SUCCESS",
    secret: str | None = None,
    now: datetime | None = None,
    mchid: str | None = None,
) -> tuple[bytes, dict[str, str]]:
    """A notification as the sandbox would sign it (with another secret, time or account if told)."""
    body = sandbox_provider.sandbox_notification_body(
        mchid=mchid or sandbox_provider.sandbox_merchant_id(config),
        out_trade_no=out_trade_no,
        transaction_id=transaction_id,
        amount_minor=amount_minor,
        currency=currency,
        success_time=timezone.now(),
        trade_state=state,
    )
    headers = sandbox_provider.sandbox_notification_headers(
        secret=config.signing_secret if secret is None else secret, body=body, now=now
    )
    return body, headers


def notification_for(payment: Payment, **overrides) -> tuple[bytes, dict[str, str]]:
    """The sandbox's notification that `payment` was paid in full (fields overridable)."""
    config = PaymentConfig.objects.get(merchant_id=payment.merchant_id, provider=payment.provider)
    fields = {
        "out_trade_no": payment.out_trade_no,
        "amount_minor": money_to_minor(payment.amount, payment.currency),
        "currency": payment.currency,
        **overrides,
    }
    return signed_notification(config, **fields)


def notify_url(slug: str, provider: str = "sandbox") -> str:
    return f"/api/v1/payments/notify/{provider}/{slug}/"


def post_notification(client: Client, slug: str, body: bytes, headers: dict[str, str], provider: str = "sandbox"):
    extra = {name: value for name, value in headers.items() if name.lower() != "content-type"}
    return client.post(notify_url(slug, provider), data=body, content_type="application/json", headers=extra)


def deliver_with_test_client(monkeypatch) -> list[tuple[str, int]]:
    """Make the sandbox's notifier POST through the Django test client instead of the network
    (tasks run inline in tests); returns the log of (url, status) it fills in."""
    sent: list[tuple[str, int]] = []

    def deliver(*, url: str, body: bytes, headers: dict[str, str]) -> int:
        response = post_notification(Client(), _slug_of(url), body, headers)
        sent.append((url, response.status_code))
        return response.status_code

    monkeypatch.setattr(sandbox_provider, "notification_deliver", deliver)
    return sent


def _slug_of(url: str) -> str:
    return urlsplit(url).path.rstrip("/").rsplit("/", 1)[-1]


def sandbox_trade(payment: Payment) -> SandboxTrade:
    return SandboxTrade.objects.get(out_trade_no=payment.out_trade_no)
