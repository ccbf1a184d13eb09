"""The fast path under concurrency on PostgreSQL, through the POS API: each request in its own thread with
its own connection (tests/races.py). What its one statement reads may be older than the lock it waits for:
these tests make that happen."""

import threading
import time
from collections import Counter

import pytest
from django.db import connection, transaction

from orders.models import Order, OrderEvent, OrderItem
from orders.pickups import api, fast
from orders.pickups.models import PickupIdempotencyKey, Redemption
from orders.pickups.services import pickup_redeem
from tests.races import race

from .test_api import terminal

pytestmark = [pytest.mark.services, pytest.mark.django_db(transaction=True)]

OS = Order.Status


@pytest.fixture
def answered_fast(monkeypatch) -> list[bool]:
    answered: list[bool] = []

    def spy(request, code):
        response = fast.pickup_redeem_fast_answer(request, code)
        answered.append(response is not None)
        return response

    monkeypatch.setattr(api, "pickup_redeem_fast_answer", spy)
    return answered


def test_a_hundred_pos_redeems_of_one_voucher_at_once_hand_it_over_exactly_once(shop, answered_fast):
    # Given one paid voucher and the POS terminals of three members of staff who may hand it over
    order = shop.order(quantity=2)
    terminals = [terminal(shop, user) for user in (shop.cashier, shop.floater, shop.manager)]

    # When 100 redeem requests for it arrive at once, each with its own key, each on its own connection
    def attempt(i: int):
        client, auth = terminals[i % 3]
        response = client.post(
            f"/api/v1/pickups/{order.pickup_code}/redeem/", {"store": "xtd"}, content_type="application/json",
            HTTP_IDEMPOTENCY_KEY=f"pos-{i}", **auth,
        )
        return response.status_code, response.json()

    results = race(100, attempt)

    # Then exactly one hand-over happened, and the 99 others were told who did it, where and when
    assert Counter(status for status, _body in results) == {200: 1, 409: 99}, results
    winner = next(body for status, body in results if status == 200)
    assert {(body["code"], body["by"], body["store"]) for status, body in results if status == 409} == {
        ("already_redeemed", winner["cashier"], "Lotus Xintiandi")
    }
    assert Redemption.objects.count() == 1 and Redemption.objects.get().pk == winner["redemption"]
    order.refresh_from_db()
    assert order.status == OS.PICKED_UP
    assert [i.handed_over for i in OrderItem.objects.filter(order=order).order_by("id")] == [2, 4]
    assert list(OrderEvent.objects.filter(order=order).values_list("to_status", flat=True)) == [
        OS.PENDING_PAYMENT, OS.PAID, OS.PICKED_UP,
    ]
    # every request was answered and kept under its key: the winner by the fast path
    assert PickupIdempotencyKey.objects.filter(status_code=200).count() == 1
    assert PickupIdempotencyKey.objects.filter(status_code=409).count() == 99
    assert answered_fast.count(True) == 1


def _waiting_for_a_lock() -> bool:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'"
        )
        return cursor.fetchone()[0] > 0


def test_a_part_handed_over_while_the_statement_waits_for_the_lock_is_not_handed_over_twice(shop, answered_fast):
    # Given a voucher (1 tea, 2 cups) whose order a cashier's part (1 cup) holds locked, not yet committed
    order = shop.order()
    cup = OrderItem.objects.get(order=order, product=shop.cup)
    client, auth = terminal(shop)
    locked, release = threading.Event(), threading.Event()
    part: list = []

    def cashier_part():
        try:
            with transaction.atomic():
                part.append(pickup_redeem(code=order.pickup_code, cashier=shop.cashier, store=shop.xtd,
                                          channel="web", lines=[{"item": cup.pk, "quantity": 1}]))
                locked.set()
                release.wait(timeout=30)
        finally:
            locked.set()
            connection.close()

    holder = threading.Thread(target=cashier_part)
    holder.start()
    assert locked.wait(timeout=30) and part

    # When a POS asks for everything meanwhile: its statement reads the lines as they were (nothing
    # handed over) and waits for the order's lock; the part commits; the statement goes on
    def pos_whole():
        try:
            response = client.post(f"/api/v1/pickups/{order.pickup_code}/redeem/", {},
                                   content_type="application/json", HTTP_IDEMPOTENCY_KEY="pos-late", **auth)
            return response.status_code, response.json()
        finally:
            connection.close()

    answers: list = []
    pos = threading.Thread(target=lambda: answers.append(pos_whole()))
    pos.start()
    deadline = time.monotonic() + 30
    while not _waiting_for_a_lock():
        assert time.monotonic() < deadline and not answers, f"the POS never waited for the lock: {answers}"
        time.sleep(0.02)
    release.set()
    holder.join(timeout=30)
    pos.join(timeout=30)

    # Then the POS got what was left (1 tea, 1 cup), through the general path after the fast path
    # declined, and no unit was handed over twice
    (status, body), = answers
    assert status == 200, body
    assert [(line["name"], line["quantity"]) for line in body["lines"]] == [
        ("West Lake Longjing tea 250g", 1), ("Celadon tea cup", 1),
    ]
    assert answered_fast == [False]
    assert [i.handed_over for i in OrderItem.objects.filter(order=order).order_by("id")] == [1, 2]
    assert sorted(r.units for r in Redemption.objects.filter(order=order)) == [1, 2]
    order.refresh_from_db()
    assert order.status == OS.PICKED_UP
    assert OrderEvent.objects.filter(order=order, to_status=OS.PICKED_UP).count() == 1
    assert PickupIdempotencyKey.objects.get(key="pos-late").status_code == 200
