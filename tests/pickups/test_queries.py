"""Lookup and redeem cost a fixed, small number of queries, however many items an order has and however
many orders the merchant holds."""

from decimal import Decimal

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from orders.pickups.selectors import pickup_lookup
from orders.pickups.services import pickup_redeem
from tests.factories import ProductFactory, promotion

from .conftest import paid_order, signed_in

# Savepoints are how nested atomic() blocks look inside a test's transaction; in a request they are
# BEGIN/COMMIT, which Django does not log. Count the statements that do work.
WORK = ("SAVEPOINT", "RELEASE SAVEPOINT", "ROLLBACK TO SAVEPOINT")


def statements(context: CaptureQueriesContext) -> list[str]:
    return [q["sql"] for q in context.captured_queries if not q["sql"].startswith(WORK)]


def bundle(shop, items: int):
    products = [(ProductFactory(merchant=shop.merchant), 1 + i % 3) for i in range(items)]
    return promotion(shop.merchant, products=products, stores=[shop.xtd], promo_price=Decimal("10.00"),
                     per_member_limit=99)


def orders_of(shop, *, items: int, orders: int):
    offer = bundle(shop, items)
    return [paid_order(offer, shop.xtd, quantity=2) for _ in range(orders)]


@pytest.mark.parametrize("who", ["cashier", "manager"])
def test_redeem_is_at_most_five_queries_whatever_the_order_holds(shop, who):
    cashier = getattr(shop, who)
    counts = {}
    for items, orders in ((1, 1), (12, 25)):
        order = orders_of(shop, items=items, orders=orders)[-1]
        cashier_fresh = type(cashier).objects.get(pk=cashier.pk)  # a request's user: nothing cached
        cashier_fresh.__dict__.pop("_o2o_staff_role", None)
        with CaptureQueriesContext(connection) as context:
            redemption = pickup_redeem(code=order.pickup_code, cashier=cashier_fresh, store=shop.xtd, channel="web")
        assert len(redemption.lines) == items
        counts[items] = statements(context)
    # One of them reads the staff role, which a request reads once for its permission check anyway.
    assert len(counts[1]) == len(counts[12]) <= 6, counts[12]
    without_role = [sql for sql in counts[12] if "merchants_staffrole" not in sql or "orders_order" in sql]
    assert len(without_role) <= 5, without_role


def test_lookup_is_three_queries_at_most_whatever_the_order_holds(shop):
    counts = []
    for items, orders in ((1, 1), (15, 30)):
        order = orders_of(shop, items=items, orders=orders)[-1]
        shop.cashier.__dict__.pop("_o2o_staff_role", None)
        with CaptureQueriesContext(connection) as context:
            pickup = pickup_lookup(code=order.pickup_code, cashier=shop.cashier, store=shop.xtd)
            [item.product.name for item in pickup.items], pickup.masked_phone, pickup.pickup_store.name
        counts.append(len(statements(context)))
    assert counts[0] == counts[1] <= 3, counts


def test_the_cashier_page_and_api_do_not_grow_with_items_or_orders(shop):
    page, api, redeem = [], [], []
    for items, orders in ((1, 1), (10, 20)):
        order_a, order_b = orders_of(shop, items=items, orders=orders + 1)[-2:]
        client = signed_in(shop.cashier)
        client.get("/cashier/")  # the session exists
        with CaptureQueriesContext(connection) as context:
            assert client.get("/cashier/", {"code": order_a.pickup_code}).status_code == 200
        page.append(len(statements(context)))
        with CaptureQueriesContext(connection) as context:
            assert client.get(f"/api/v1/pickups/{order_a.pickup_code}/").status_code == 200
        api.append(len(statements(context)))
        with CaptureQueriesContext(connection) as context:
            assert client.post(f"/api/v1/pickups/{order_b.pickup_code}/redeem/", {},
                               content_type="application/json").status_code == 200
        redeem.append(len(statements(context)))
    # session, user, staff role, store + the service's queries (lookup 2; redeem 5)
    assert page[0] == page[1] <= 6, page
    assert api[0] == api[1] <= 6, api
    assert redeem[0] == redeem[1] <= 9, redeem
