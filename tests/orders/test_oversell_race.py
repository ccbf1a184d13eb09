"""Buyers racing each other on PostgreSQL: each in its own thread with its own connection, released
together by a barrier. SQLite serialises writers on one file lock, so these races only mean something
on PostgreSQL (marker `services`)."""

from collections import Counter
from datetime import timedelta

import pytest
from django.test import Client
from django.utils import timezone

from members.models import Member
from orders.errors import OrderNotPayable, SoldOut
from orders.lifecycle import HOLDS_STOCK
from orders.models import Order, OrderEvent, Promotion
from orders.services import order_mark_paid, order_place, orders_cancel_unpaid
from tests.factories import MerchantFactory, StoreFactory, promotion
from tests.races import race

pytestmark = [pytest.mark.services, pytest.mark.django_db(transaction=True)]




def outcomes(results: list[object]) -> Counter:
    return Counter(type(result).__name__ for result in results)


def buy(promotion_id: int, store_id: int, *, phone: str, submit_key: str, quantity: int = 1) -> Order:
    """What one customer's request does: load the promotion afresh on its own connection and order."""
    promo = Promotion.objects.select_related("merchant").get(pk=promotion_id)
    return order_place(
        promotion=promo, quantity=quantity, phone=phone, fulfilment="pickup",
        pickup_store=promo.pickup_stores.get(pk=store_id), submit_key=submit_key,
    )


@pytest.fixture
def shop():
    merchant = MerchantFactory(slug="race")
    return merchant, StoreFactory(merchant=merchant)


def test_twenty_buyers_for_the_last_five_units_make_exactly_five_orders(shop):
    # Given a live promotion of 12 of which 7 are already sold: 5 left
    merchant, store = shop
    promo = promotion(merchant, stores=[store], stock_cap=12, per_member_limit=1)
    for i in range(7):
        buy(promo.pk, store.pk, phone=f"1370000{i:04d}", submit_key=f"early-{i}")
    # When 20 customers press Pay at the same instant
    results = race(20, lambda i: buy(promo.pk, store.pk, phone=f"1390000{i:04d}", submit_key=f"race-{i}"))
    # Then 5 got an order, 15 were told it is sold out, and nobody got an error page
    assert outcomes(results) == {"Order": 5, "SoldOut": 15}, results
    promo.refresh_from_db()
    assert promo.sold_count == promo.stock_cap == 12
    assert promo.status == Promotion.Status.SOLD_OUT
    assert Order.objects.filter(promotion=promo, status__in=HOLDS_STOCK).count() == 12
    # The refused buyers left no members behind.
    assert Member.objects.count() == 12


def test_buyers_of_two_never_split_the_last_five_units(shop):
    merchant, store = shop
    promo = promotion(merchant, stores=[store], stock_cap=5, per_member_limit=2)
    results = race(
        20, lambda i: buy(promo.pk, store.pk, phone=f"1390000{i:04d}", submit_key=f"race-{i}", quantity=2)
    )
    assert outcomes(results) == {"Order": 2, "SoldOut": 18}, results
    assert all(r.details["stock_left"] == 1 for r in results if isinstance(r, SoldOut))
    promo.refresh_from_db()
    assert promo.sold_count == 4 and promo.stock_left == 1
    assert promo.status == Promotion.Status.LIVE


def test_one_customer_ordering_ten_times_at_once_gets_only_their_limit(shop):
    # Given a new customer and a limit of 2 per customer
    merchant, store = shop
    promo = promotion(merchant, stores=[store], stock_cap=100, per_member_limit=2)
    # When their phone sends 10 separate orders of 1 at the same instant (10 forms, 10 keys)
    results = race(10, lambda i: buy(promo.pk, store.pk, phone="138 1234 5678", submit_key=f"tab-{i}"))
    # Then exactly 2 orders exist, the rest were told the limit, and there is one member
    assert outcomes(results) == {"Order": 2, "OverMemberLimit": 8}, results
    assert Order.objects.filter(promotion=promo).count() == 2
    assert Member.objects.filter(merchant=merchant).count() == 1
    promo.refresh_from_db()
    assert promo.sold_count == 2


@pytest.mark.parametrize(("stock_cap", "limit"), [(100, 1), (1, 5)], ids=["limit-reached", "last-unit"])
def test_one_form_submitted_five_times_at_once_makes_one_order(shop, stock_cap, limit):
    # Given a form whose order will use up the customer's limit, or the last unit
    merchant, store = shop
    promo = promotion(merchant, stores=[store], stock_cap=stock_cap, per_member_limit=limit)
    # When the same form (one submit key) arrives five times at once
    results = race(5, lambda i: buy(promo.pk, store.pk, phone="138 1234 5678", submit_key="one-form"))
    # Then every request answers with the same order: not "sold out", not "over the limit"
    assert outcomes(results) == {"Order": 5}, results
    assert len({order.pk for order in results}) == 1
    assert Order.objects.count() == 1 and OrderEvent.objects.count() == 1
    promo.refresh_from_db()
    assert promo.sold_count == 1


def test_a_payment_racing_the_unpaid_sweep_is_either_paid_or_cancelled_never_both(shop):
    # Given ten orders just past the unpaid limit
    merchant, store = shop
    promo = promotion(merchant, stores=[store], stock_cap=10, per_member_limit=1)
    orders = [buy(promo.pk, store.pk, phone=f"1390000{i:04d}", submit_key=f"k{i}") for i in range(10)]
    late = timezone.now() - timedelta(minutes=merchant.unpaid_order_minutes + 1)
    Order.objects.update(created_at=late)
    # When their payments arrive while the sweep runs
    results = race(
        11,
        lambda i: orders_cancel_unpaid() if i == 10 else order_mark_paid(order=Order.objects.get(pk=orders[i].pk)),
    )
    # Then each order is paid (its payment won) or cancelled (the payment is refused), and the stock
    # held is exactly the paid orders'
    assert not [r for r in results if isinstance(r, Exception) and not isinstance(r, OrderNotPayable)], results
    for order, result in zip(orders, results[:10], strict=True):
        order.refresh_from_db()
        if isinstance(result, OrderNotPayable):
            assert order.status == Order.Status.CANCELLED
        else:
            assert order.status == Order.Status.PAID
        statuses = list(order.events.values_list("to_status", flat=True))
        assert statuses == [Order.Status.PENDING_PAYMENT, order.status]
    promo.refresh_from_db()
    assert promo.sold_count == Order.objects.filter(status=Order.Status.PAID).count()
    assert results[10] == Order.objects.filter(status=Order.Status.CANCELLED).count()


def test_refused_buyers_see_no_error_page_through_the_landing_page(shop):
    # The same oversell race through the whole web stack: a form error for the losers, never a 500.
    merchant, store = shop
    promo = promotion(merchant, stores=[store], stock_cap=3, per_member_limit=1)
    url = f"/p/{promo.wall_code}?s={store.code}"

    def customer(i: int) -> int:
        client = Client(raise_request_exception=True)
        client.get(url)
        return client.post(url, {
            "quantity": 1, "phone": f"1390000{i:04d}", "fulfilment": "pickup", "pickup_store": store.code,
            "submit_key": f"web-{i}",
        }).status_code

    results = race(12, customer)
    assert Counter(results) == {302: 3, 400: 9}, results
    promo.refresh_from_db()
    assert promo.sold_count == 3 and Order.objects.count() == 3
