"""The POS redeem's fast path (orders/pickups/fast.py): a whole hand-over in one statement on PostgreSQL.

It must be invisible from outside: the same answers, status and body, as the general path; the same
records; the same retries; the same refusals (which it leaves to the general path) and tenancy; and at
most five statements for the whole request. `answered_fast` says which path answered each request.
"""

import json
import re
from datetime import timedelta

import pytest
from django.db import connection
from django.dispatch import receiver
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from orders.models import Order, OrderEvent, OrderItem
from orders.pickups import api, fast, signals
from orders.pickups.models import PickupIdempotencyKey, Redemption
from orders.pickups.services import pickup_redeem
from orders.pickups.throttling import MISSES_PER_USER

from .test_api import terminal

pytestmark = [pytest.mark.services]

OS = Order.Status
WORK = ("SAVEPOINT", "RELEASE SAVEPOINT", "ROLLBACK TO SAVEPOINT")


@pytest.fixture
def answered_fast(monkeypatch) -> list[bool]:
    """One entry per redeem request: True when the fast path answered it, False when it passed."""
    answered: list[bool] = []

    def spy(request, code):
        response = fast.pickup_redeem_fast_answer(request, code)
        answered.append(response is not None)
        return response

    monkeypatch.setattr(api, "pickup_redeem_fast_answer", spy)
    return answered


def general_path_only(monkeypatch) -> None:
    monkeypatch.setattr(api, "pickup_redeem_fast_answer", lambda request, code: None)


def redeem(client, auth, code, *, key=None, **body):
    headers = {**auth, **({"HTTP_IDEMPOTENCY_KEY": key} if key else {})}
    return client.post(f"/api/v1/pickups/{code}/redeem/", body, content_type="application/json", **headers)


def anonymised(body: dict) -> str:
    """The body with what differs between two orders (ids, code, time) replaced by placeholders, as JSON
    text: equal texts mean the same keys in the same order with the same values and types."""
    items = {line["item"]: f"item-{n}" for n, line in enumerate(body["order_lines"])}
    same = {
        **body, "redemption": "R", "order": "O", "code": "C",
        "redeemed_at": re.sub(r"\d", "9", body["redeemed_at"]),
        "lines": [{**line, "item": items[line["item"]]} for line in body["lines"]],
        "order_lines": [{**line, "item": items[line["item"]]} for line in body["order_lines"]],
    }
    return json.dumps(same)


def record_of(order: Order) -> dict:
    """What a hand-over leaves in the database, without ids and times."""
    order.refresh_from_db()
    redemption = Redemption.objects.get(order=order)
    event = OrderEvent.objects.get(order=order, to_status=OS.PICKED_UP)
    items = list(OrderItem.objects.filter(order=order).order_by("id"))
    numbered = {item.pk: n for n, item in enumerate(items)}
    return {
        "order": (order.status, order.closed_at == redemption.created_at),
        "items": [(item.product_id, item.quantity, item.handed_over) for item in items],
        "redemption": (
            redemption.merchant_id, redemption.store_id, redemption.cashier_id, redemption.channel, redemption.client,
            redemption.client_ip, redemption.idempotency_key != "", redemption.order_status_before,
            redemption.voided_at, redemption.voided_by_id, redemption.void_reason,
            [{**line, "item": numbered[line["item"]]} for line in redemption.lines],
        ),
        "event": (
            event.merchant_id, event.from_status, event.to_status, event.actor_id, event.channel,
            event.note == f"Redemption #{redemption.pk} at {redemption.store.name}",
        ),
    }


# --------------------------------------------------------------------------- the same answer, the same record


@pytest.mark.parametrize("keyed", [False, True])
def test_whole_hand_over_answers_and_records_exactly_as_the_general_path(shop, monkeypatch, answered_fast, keyed):
    # Given two equal vouchers (two gift sets each), one redeemed by each path
    fast_order, general_order = shop.order(quantity=2, phone="13812345678"), shop.order(quantity=2, phone="13812345678")
    client, auth = terminal(shop)

    # When the same cashier redeems one through the fast path and the other through the general path
    first = redeem(client, auth, fast_order.pickup_code, key="pos-1" if keyed else None)
    assert answered_fast == [True]
    general_path_only(monkeypatch)
    second = redeem(client, auth, general_order.pickup_code, key="pos-2" if keyed else None)

    # Then the answers are the same, key for key, and so is what each left in the database
    assert first.status_code == second.status_code == 200
    assert first["Content-Type"] == second["Content-Type"]
    assert anonymised(first.json()) == anonymised(second.json())
    assert first.json()["lines"] == [
        {"item": line["item"], "product": line["product"], "name": name, "quantity": quantity}
        for line, (name, quantity) in zip(
            first.json()["lines"], [("West Lake Longjing tea 250g", 2), ("Celadon tea cup", 4)], strict=True
        )
    ]
    assert first.json()["member_phone"] == "+86138****5678"
    assert record_of(fast_order) == record_of(general_order)
    if keyed:  # and the answer kept for retries is the one given
        stored = PickupIdempotencyKey.objects.get(key="pos-1")
        assert (stored.status_code, json.loads(stored.body)) == (200, first.json())
        assert stored.code == fast_order.pickup_code


def test_a_voucher_ready_for_pickup_is_handed_over_and_remembers_it_was_ready(shop, answered_fast):
    order = shop.order()
    Order.objects.filter(pk=order.pk).update(status=OS.READY_FOR_PICKUP, ready_at=timezone.now())
    client, auth = terminal(shop)
    assert redeem(client, auth, order.pickup_code, key="k").status_code == 200 and answered_fast == [True]
    assert Redemption.objects.get(order=order).order_status_before == OS.READY_FOR_PICKUP
    assert OrderEvent.objects.get(order=order, to_status=OS.PICKED_UP).from_status == OS.READY_FOR_PICKUP


def test_the_rest_of_a_partly_collected_voucher_is_handed_over_as_the_general_path_would(
    shop, monkeypatch, answered_fast
):
    # Given two equal vouchers, each with one cup collected already
    orders = [shop.order(quantity=2, phone="13812345678"), shop.order(quantity=2, phone="13812345678")]
    for order in orders:
        cup = OrderItem.objects.get(order=order, product=shop.cup)
        pickup_redeem(code=order.pickup_code, cashier=shop.cashier, store=shop.xtd, channel="web",
                      lines=[{"item": cup.pk, "quantity": 1}])
    client, auth = terminal(shop)

    # When the rest of one is redeemed by each path
    first = redeem(client, auth, orders[0].pickup_code)
    general_path_only(monkeypatch)
    second = redeem(client, auth, orders[1].pickup_code)

    # Then both hand over what was left (2 teas, 3 cups) and answer alike
    assert answered_fast == [True]
    assert first.status_code == second.status_code == 200
    assert anonymised(first.json()) == anonymised(second.json())
    assert [line["quantity"] for line in first.json()["lines"]] == [2, 3]
    for order in orders:
        order.refresh_from_db()
        assert order.status == OS.PICKED_UP
        assert [i.handed_over for i in OrderItem.objects.filter(order=order).order_by("id")] == [2, 4]
        assert Redemption.objects.filter(order=order).count() == 2


# --------------------------------------------------------------------------- statements


def test_a_whole_redeem_request_is_at_most_five_statements_with_authentication(shop, answered_fast):
    client, auth = terminal(shop)
    redeem(client, auth, shop.order().pickup_code, key="warm")  # the connection's statements are prepared
    counts = []
    for key in (None, "pos-3-000042"):
        order = shop.order(quantity=3)
        with CaptureQueriesContext(connection) as context:
            assert redeem(client, auth, order.pickup_code, key=key).status_code == 200
        counts.append([q["sql"] for q in context.captured_queries if not q["sql"].startswith(WORK)])
    assert answered_fast == [True, True, True]
    # token with user and role; the hand-over; with a key, its answer kept
    assert [len(statements) for statements in counts] == [2, 3], counts
    assert all(len(statements) <= 5 for statements in counts)


def test_models_read_from_raw_rows_need_no_conversion():
    """fast.py and o2o/auth.py build model instances from raw rows (Model.from_db): that is only right
    while no field needs a database converter (a JSONField would). If this fails, convert or use the ORM."""
    from django.contrib.auth.models import User
    from rest_framework.authtoken.models import Token

    from merchants.models import Merchant, StaffRole

    for model in (Order, Token, User, StaffRole, Merchant):
        for field in model._meta.concrete_fields:
            col = field.get_col(model._meta.db_table)
            assert not field.get_db_converters(connection) + connection.ops.get_db_converters(col), field


# --------------------------------------------------------------------------- retries


def test_a_retry_with_the_same_key_gets_the_same_answer_and_hands_nothing_over_twice(shop, answered_fast):
    order = shop.order(quantity=2)
    client, auth = terminal(shop)
    first = redeem(client, auth, order.pickup_code, key="pos-3-7")
    again = redeem(client, auth, order.pickup_code, key="pos-3-7")
    assert first.status_code == again.status_code == 200
    assert first.content == again.content
    assert answered_fast == [True, False]  # the retry is the general path's to answer: it finds the key kept
    assert Redemption.objects.filter(order=order).count() == 1 and PickupIdempotencyKey.objects.count() == 1
    assert OrderEvent.objects.filter(order=order, to_status=OS.PICKED_UP).count() == 1


def test_a_retry_of_a_refusal_gets_the_refusal_even_once_the_voucher_could_be_handed_over(shop, answered_fast):
    # Given a POS that asked at the wrong store and was told so, under a key
    order = shop.order(store=shop.jingan)
    client, auth = terminal(shop)
    refused = redeem(client, auth, order.pickup_code, key="pos-1-1")
    assert refused.status_code == 403 and refused.json()["code"] == "wrong_store"
    # When it retries with that key: the same refusal, nothing handed over
    again = redeem(client, auth, order.pickup_code, key="pos-1-1")
    assert (again.status_code, again.content) == (refused.status_code, refused.content)
    assert not Redemption.objects.exists()


def test_the_same_key_for_another_voucher_is_422_and_that_voucher_stays_paid(shop, answered_fast):
    first, second = shop.order(), shop.order()
    client, auth = terminal(shop)
    assert redeem(client, auth, first.pickup_code, key="pos-9").status_code == 200
    reused = redeem(client, auth, second.pickup_code, key="pos-9")
    assert reused.status_code == 422 and reused.json()["code"] == "idempotency_key_reused"
    second.refresh_from_db()
    assert second.status == OS.PAID and not Redemption.objects.filter(order=second).exists()
    assert answered_fast == [True, False]


# --------------------------------------------------------------------------- the completion hook


def test_order_completed_fires_once_inside_the_hand_overs_transaction(shop, answered_fast):
    order = shop.order()
    heard = []

    @receiver(signals.order_completed)
    def points(sender, order, channel, actor, at, **kwargs):
        heard.append({
            "order": (order.pk, order.status, order.closed_at == at, order.total, order.member_id),
            "channel": channel, "actor": actor.pk,
            "in_transaction": connection.in_atomic_block,
            "redemption_written": Redemption.objects.filter(order_id=order.pk).exists(),
        })

    try:
        client, auth = terminal(shop)
        assert redeem(client, auth, order.pickup_code, key="k1").status_code == 200
        assert redeem(client, auth, order.pickup_code, key="k2").status_code == 409  # nothing completes twice
    finally:
        signals.order_completed.disconnect(points)
    assert answered_fast == [True, False]
    assert heard == [{
        "order": (order.pk, OS.PICKED_UP, True, order.total, order.member_id), "channel": "api",
        "actor": shop.cashier.pk, "in_transaction": True, "redemption_written": True,
    }]


def test_a_failing_completion_receiver_undoes_the_hand_over(shop, answered_fast):
    order = shop.order()

    @receiver(signals.order_completed)
    def broken(sender, **kwargs):
        raise RuntimeError("points ledger down")

    client, auth = terminal(shop)
    try:
        with pytest.raises(RuntimeError):
            redeem(client, auth, order.pickup_code, key="k1")
    finally:
        signals.order_completed.disconnect(broken)
    order.refresh_from_db()
    assert order.status == OS.PAID and not Redemption.objects.exists() and not PickupIdempotencyKey.objects.exists()
    assert set(OrderItem.objects.filter(order=order).values_list("handed_over", flat=True)) == {0}


# --------------------------------------------------------------------------- refusals and tenancy


def test_refusals_are_the_general_paths_and_change_nothing(shop, answered_fast):
    client, auth = terminal(shop)
    expired = shop.order()
    Order.objects.filter(pk=expired.pk).update(pickup_deadline=timezone.now() - timedelta(minutes=1))
    refunded = shop.order()
    Order.objects.filter(pk=refunded.pk).update(status=OS.REFUNDED)
    redeemed = shop.order()
    assert redeem(client, auth, redeemed.pickup_code).status_code == 200

    answers = {
        name: redeem(client, auth, order.pickup_code)
        for name, order in (("expired", expired), ("refunded", refunded), ("redeemed", redeemed))
    }
    assert {name: (r.status_code, r.json()["code"]) for name, r in answers.items()} == {
        "expired": (410, "expired"), "refunded": (409, "refunded"), "redeemed": (409, "already_redeemed"),
    }
    assert answers["redeemed"].json()["by"] == "wang.fang"
    assert answered_fast == [True, False, False, False]
    assert Redemption.objects.count() == 1


def test_another_merchants_cashier_learns_nothing_and_changes_nothing(shop, answered_fast):
    # Given our voucher, and a rival cashier whose own store is also coded "xtd"
    order = shop.order()
    client, auth = terminal(shop, shop.rival_cashier)

    # When the rival redeems our code, at no store or at "their" xtd
    answers = [redeem(client, auth, order.pickup_code), redeem(client, auth, order.pickup_code, store="xtd")]

    # Then it is an unknown code, exactly like a made-up one, and our voucher is untouched
    made_up = redeem(client, auth, "ABCD-EFGH-JK")
    assert [(r.status_code, r.json()) for r in answers] == [(made_up.status_code, made_up.json())] * 2
    assert made_up.status_code == 404 and made_up.json()["code"] == "unknown_code"
    order.refresh_from_db()
    assert order.status == OS.PAID and not Redemption.objects.exists() and not OrderEvent.objects.filter(
        to_status=OS.PICKED_UP).exists()
    assert answered_fast == [False, False, False]


def test_our_own_staff_get_store_refusals_from_the_general_path(shop, answered_fast):
    jingan_order = shop.order(store=shop.jingan)
    cashier, cashier_auth = terminal(shop)  # serves Xintiandi only
    floater, floater_auth = terminal(shop, shop.floater)  # serves Xintiandi and Jing'an
    analyst, analyst_auth = terminal(shop, shop.analyst)

    wrong_store = redeem(cashier, cashier_auth, jingan_order.pickup_code)
    assert wrong_store.status_code == 403 and wrong_store.json()["code"] == "wrong_store"
    assert wrong_store.json()["belongs_to_code"] == "jingan"
    named_elsewhere = redeem(floater, floater_auth, jingan_order.pickup_code, store="xtd")
    assert named_elsewhere.status_code == 403 and named_elsewhere.json()["code"] == "wrong_store"
    not_theirs = redeem(floater, floater_auth, jingan_order.pickup_code, store="pudong")
    assert not_theirs.status_code == 403 and not_theirs.json()["code"] == "store_not_allowed"
    which = redeem(floater, floater_auth, jingan_order.pickup_code)
    assert which.status_code == 400 and which.json()["code"] == "store_required"
    assert redeem(analyst, analyst_auth, jingan_order.pickup_code).status_code == 403
    assert answered_fast == [False, False, False, False]  # the analyst never got to the view
    assert not Redemption.objects.exists()

    # and where it may be handed over, it is: the floater naming Jing'an, a manager at Jing'an
    assert redeem(floater, floater_auth, jingan_order.pickup_code, store="jingan").status_code == 200
    manager, manager_auth = terminal(shop, shop.manager)
    assert redeem(manager, manager_auth, shop.order(store=shop.jingan).pickup_code, store="jingan").status_code == 200
    assert answered_fast[-2:] == [True, True]


def test_requests_the_fast_path_does_not_read_go_to_the_general_path(shop, answered_fast):
    client, auth = terminal(shop)
    order = shop.order(quantity=2)
    # a part (lines), a store code with spaces (the serializer trims it), a form post, a key too long
    cup = OrderItem.objects.get(order=order, product=shop.cup)
    assert redeem(client, auth, order.pickup_code, lines=[{"item": cup.pk, "quantity": 1}]).status_code == 200
    assert redeem(client, auth, order.pickup_code, store=" xtd ").status_code == 200
    form = client.post(f"/api/v1/pickups/{shop.order().pickup_code}/redeem/", {"store": "xtd"}, **auth)
    assert form.status_code == 200
    too_long = redeem(client, auth, shop.order().pickup_code, key="k" * 65)
    assert too_long.status_code == 400 and too_long.json()["code"] == "invalid_idempotency_key"
    assert answered_fast == [False, False, False, False]


def test_unknown_codes_through_the_fast_path_count_against_the_rate_limit(shop, answered_fast):
    client, auth = terminal(shop)
    for n in range(MISSES_PER_USER):
        assert redeem(client, auth, f"ABCD-EFGH-{n + 2}{n + 2}").status_code == 404
    # Now even a real voucher is refused until the minute is over, and not handed over
    order = shop.order()
    limited = redeem(client, auth, order.pickup_code)
    assert limited.status_code == 429 and limited.json()["code"] == "rate_limited" and limited["Retry-After"]
    order.refresh_from_db()
    assert order.status == OS.PAID and not Redemption.objects.exists()
