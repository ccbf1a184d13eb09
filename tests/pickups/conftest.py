"""A merchant with three stores, a bundle on offer at two of them, paid vouchers, and its staff; a rival
merchant with a voucher of its own. Rate-limit counters are private to each test."""

import uuid
from dataclasses import dataclass
from decimal import Decimal
from itertools import count

import pytest
from django.contrib.auth.models import User
from django.test import Client

from merchants.models import Merchant, Product, Store
from orders.models import Order, Promotion
from orders.services import order_mark_paid, order_place
from tests.factories import MerchantFactory, ProductFactory, StoreFactory, promotion, staff

_phones = count(1)


@pytest.fixture(autouse=True)
def _own_rate_limit_counters(monkeypatch):
    """Counters live in the shared cache (Redis under CI): a fresh prefix keeps each test's to itself."""
    from orders.pickups import throttling

    monkeypatch.setattr(throttling, "KEY_PREFIX", f"test-pickup-miss-{uuid.uuid4().hex}")


def paid_order(promo: Promotion, store: Store, *, quantity: int = 1, phone: str | None = None) -> Order:
    """A pickup order of `promo` at `store`, placed and paid: it has its voucher code and deadline."""
    order = order_place(
        promotion=Promotion.objects.select_related("merchant").get(pk=promo.pk), quantity=quantity,
        phone=phone or f"1391234{next(_phones):04d}", fulfilment="pickup", pickup_store=store,
        submit_key=uuid.uuid4().hex,
    )
    return order_mark_paid(order=order)


@dataclass
class Shop:
    merchant: Merchant
    xtd: Store  # Lotus Xintiandi
    jingan: Store  # Lotus Jing'an
    pudong: Store  # a third store, not a pickup store of the offer
    tea: Product
    cup: Product
    offer: Promotion
    cashier: User  # at Xintiandi only
    floater: User  # a cashier at Xintiandi and Jing'an
    manager: User
    analyst: User
    rival_cashier: User
    rival_order: Order

    def order(self, *, store: Store | None = None, quantity: int = 1, phone: str | None = None) -> Order:
        return paid_order(self.offer, store or self.xtd, quantity=quantity, phone=phone)


@pytest.fixture
def shop(db) -> Shop:
    merchant = MerchantFactory(slug="lotus", name="Lotus Department Store")
    xtd = StoreFactory(merchant=merchant, name="Lotus Xintiandi", code="xtd", address="123 Madang Road")
    jingan = StoreFactory(merchant=merchant, name="Lotus Jing'an", code="jingan", address="1 Nanjing West Road")
    pudong = StoreFactory(merchant=merchant, name="Lotus Pudong", code="pudong", address="8 Century Avenue")
    tea = ProductFactory(merchant=merchant, name="West Lake Longjing tea 250g", sku="LJ-250")
    cup = ProductFactory(merchant=merchant, name="Celadon tea cup", sku="CUP-1")
    offer = promotion(
        merchant, products=[(tea, 1), (cup, 2)], stores=[xtd, jingan], title="Longjing tea gift set",
        promo_price=Decimal("99.00"), per_member_limit=50, stock_cap=500,
    )
    rival = MerchantFactory(slug="rival", name="Rival Mall")
    rival_store = StoreFactory(merchant=rival, name="Rival Counter", code="xtd")
    rival_offer = promotion(rival, stores=[rival_store], title="Rival offer")
    return Shop(
        merchant=merchant, xtd=xtd, jingan=jingan, pudong=pudong, tea=tea, cup=cup, offer=offer,
        cashier=staff(merchant, "cashier", [xtd], username="wang.fang"),
        floater=staff(merchant, "cashier", [xtd, jingan], username="li.lei"),
        manager=staff(merchant, "manager", username="boss"),
        analyst=staff(merchant, "analyst", username="numbers"),
        rival_cashier=staff(rival, "cashier", [rival_store], username="rival.cashier"),
        rival_order=paid_order(rival_offer, rival_store),
    )


def signed_in(user: User) -> Client:
    client = Client()
    client.force_login(user)
    return client
