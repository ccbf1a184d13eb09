"""Redeem races on PostgreSQL: each contender in its own thread with its own connection, released together
by a barrier. SQLite serialises writers on one file lock, so these mean something only on PostgreSQL."""

from collections import Counter

import pytest
from django.test import Client

from orders.models import Order, OrderEvent
from orders.pickups.models import PickupIdempotencyKey, Redemption
from orders.pickups.services import pickup_redeem
from tests.races import race

from .conftest import signed_in

pytestmark = [pytest.mark.services, pytest.mark.django_db(transaction=True)]

OS = Order.Status




def test_a_hundred_redeems_of_one_voucher_at_once_hand_it_over_exactly_once(shop):
    # Given one paid voucher and three members of staff who may hand it over at Xintiandi
    order = shop.order()
    staff = [shop.cashier, shop.floater, shop.manager]

    # When 100 redeem requests for it arrive at the same instant, each on its own connection
    def attempt(i: int):
        cashier = type(shop.cashier).objects.get(pk=staff[i % 3].pk)
        return pickup_redeem(
            code=order.pickup_code, cashier=cashier, store=shop.xtd, channel="api", client=f"POS-{i}",
        )

    results = race(100, attempt)

    # Then exactly one hand-over happened, and the 99 others were told who did it
    kinds = Counter(type(result).__name__ for result in results)
    assert kinds == {"Redemption": 1, "AlreadyRedeemed": 99}, results
    winner = next(result for result in results if isinstance(result, Redemption))
    assert Redemption.objects.count() == 1 and Redemption.objects.get().pk == winner.pk
    assert {(r.by, r.store) for r in results if not isinstance(r, Redemption)} == {
        (winner.cashier.username, "Lotus Xintiandi")
    }
    order.refresh_from_db()
    assert order.status == OS.PICKED_UP and order.closed_at == winner.created_at
    assert list(OrderEvent.objects.filter(order=order).values_list("to_status", flat=True)) == [
        OS.PENDING_PAYMENT, OS.PAID, OS.PICKED_UP,
    ]


def test_a_pos_retrying_one_key_ten_times_at_once_gets_one_answer_ten_times(shop):
    # Given a POS whose redeem request timed out, and which retries it with the same Idempotency-Key
    order = shop.order()
    clients = [signed_in(shop.cashier) for _ in range(10)]

    def attempt(i: int):
        response = clients[i].post(
            f"/api/v1/pickups/{order.pickup_code}/redeem/", {}, content_type="application/json",
            HTTP_IDEMPOTENCY_KEY="pos3-000042",
        )
        return response.status_code, response.content

    # When all ten copies arrive at once
    results = race(10, attempt)

    # Then every copy gets the same 200 and the same body: one hand-over, one stored answer
    assert len(set(results)) == 1, results
    assert results[0][0] == 200
    assert Redemption.objects.count() == 1 and PickupIdempotencyKey.objects.count() == 1
    assert Order.objects.get(pk=order.pk).status == OS.PICKED_UP


def test_cashier_page_double_taps_from_two_devices_make_one_redemption(shop):
    # Two phones of one cashier post the same rendered form (the same form key) at once, ten times each.
    order = shop.order()
    clients = [Client() for _ in range(20)]
    for client in clients:
        client.force_login(shop.cashier)

    def attempt(i: int):
        return clients[i].post(
            "/cashier/redeem/", {"code": order.pickup_code, "store": shop.xtd.pk, "form_key": "form-1"}
        ).status_code

    results = race(20, attempt)
    assert results == [302] * 20, results
    assert Redemption.objects.count() == 1


def test_forty_concurrent_parts_never_hand_over_more_than_was_bought(shop):
    # Given a voucher for 5 gift sets (5 teas, 10 cups) and forty requests for parts of 1 to 3 units
    # of one line or the other, 80 units asked for in all: far more than the 15 there are
    import random

    from orders.models import OrderItem
    from orders.pickups.errors import AlreadyRedeemed, TooManyUnits

    order = shop.order(quantity=5)
    items = list(OrderItem.objects.filter(order=order).order_by("id"))
    rng = random.Random(5)
    asks = [(items[rng.randrange(2)], rng.randint(1, 3)) for _ in range(40)]
    staff = [shop.cashier, shop.floater, shop.manager]

    def attempt(i: int):
        item, units = asks[i]
        cashier = type(shop.cashier).objects.get(pk=staff[i % 3].pk)
        return pickup_redeem(
            code=order.pickup_code, cashier=cashier, store=shop.xtd, channel="api",
            lines=[{"item": item.pk, "quantity": units}],
        )

    results = race(40, attempt)

    # Then every answer is a part handed over or a clear refusal, nothing else (no deadlock, no error)
    assert all(isinstance(r, Redemption | TooManyUnits | AlreadyRedeemed) for r in results), results
    won = [r for r in results if isinstance(r, Redemption)]
    given = {item.pk: 0 for item in items}
    for redemption in won:
        for line in redemption.lines:
            given[line["item"]] += line["quantity"]
    stored = {item.pk: item.handed_over for item in OrderItem.objects.filter(order=order)}
    # what the lines say was handed over is what the redemptions say, and never more than was bought
    assert stored == given
    assert all(given[item.pk] <= item.quantity for item in items), given
    assert Redemption.objects.filter(order=order).count() == len(won)
    # every refusal for too many was right when it was made: that line had fewer left than asked
    for result in results:
        if isinstance(result, TooManyUnits):
            assert result.details["asked"] > result.details["left"]
    complete = all(given[item.pk] == item.quantity for item in items)
    order.refresh_from_db()
    assert (order.status == OS.PICKED_UP) == complete
    assert OrderEvent.objects.filter(order=order, to_status=OS.PICKED_UP).count() == (1 if complete else 0)
