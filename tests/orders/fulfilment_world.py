"""Shops with paid express and pickup orders, paid through the sandbox provider so refunds really go
through it (helpers for the shipping and overdue-pickup tests, not tests)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from decimal import Decimal
from itertools import count

from django.contrib.auth.models import User
from django.test import Client

from orders.models import Order, Payment, Promotion
from orders.payments.providers.sandbox import sandbox_trade_pay
from orders.payments.services import payment_query
from orders.services import order_place
from tests.factories import staff
from tests.payments.sandbox_world import Shop, sandbox_shop, sandbox_trade, started_payment

_phones = count(1)


@dataclass
class FulfilmentShop:
    shop: Shop
    manager: User
    analyst: User
    cashier: User

    @property
    def merchant(self):
        return self.shop.merchant

    def order(self, *, fulfilment: str = "express", quantity: int = 1, pay: bool = True) -> Order:
        """An order of the shop's offer, paid through the sandbox (the provider's ledger has the trade)."""
        offer = Promotion.objects.select_related("merchant").get(pk=self.shop.offer.pk)
        delivery = (
            {"recipient_name": "Zhang Wei", "shipping_address": "88 Century Avenue, Pudong, Shanghai"}
            if fulfilment == "express" else {"pickup_store": self.shop.store}
        )
        order = order_place(
            promotion=offer, quantity=quantity, phone=f"1391234{next(_phones):04d}", fulfilment=fulfilment,
            submit_key=uuid.uuid4().hex, **delivery,
        )
        if pay:
            payment = started_payment(order)
            sandbox_trade_pay(trade=sandbox_trade(payment), deliveries=0)
            payment_query(payment=payment)
            order.refresh_from_db()
            assert order.status == Order.Status.PAID
        return order

    def payment(self, order: Order) -> Payment:
        return Payment.objects.get(order=order, status=Payment.Status.PAID)


def fulfilment_shop(slug: str = "lotus") -> FulfilmentShop:
    shop = sandbox_shop(slug, price=Decimal("99.00"), allow_express=True, shipping_fee=Decimal("12.00"))
    return FulfilmentShop(
        shop=shop,
        manager=staff(shop.merchant, "manager", username=f"{slug}_manager"),
        analyst=staff(shop.merchant, "analyst", username=f"{slug}_analyst"),
        cashier=staff(shop.merchant, "cashier", [shop.store], username=f"{slug}_cashier"),
    )


def signed_in(user: User) -> Client:
    client = Client()
    client.force_login(user)
    return client
