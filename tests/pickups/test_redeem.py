"""Handing a voucher's goods over: exactly once, at the right store, by staff who serve there, with an
audit record, and every refusal says why (pickup_lookup / pickup_redeem)."""

from datetime import timedelta

import pytest
from django.utils import timezone

from orders.models import Order, OrderEvent
from orders.pickups.errors import (
    AlreadyRedeemed,
    Cancelled,
    Expired,
    NotPaid,
    Refunded,
    StoreNotAllowed,
    UnknownCode,
    WrongStore,
)
from orders.pickups.models import Redemption
from orders.pickups.selectors import pickup_lookup
from orders.pickups.services import pickup_redeem
from orders.pickups.signals import order_completed
from orders.services import order_place
from tests.factories import staff

OS = Order.Status
WEB = Redemption.Channel.WEB


def redeem(shop, order, *, cashier=None, store=None, **kwargs) -> Redemption:
    return pickup_redeem(
        code=order.pickup_code, cashier=cashier or shop.cashier, store=store or shop.xtd, channel=WEB, **kwargs
    )


def set_status(order, status, **fields) -> None:
    Order.objects.filter(pk=order.pk).update(status=status, **fields)


# --------------------------------------------------------------------------- lookup


def test_lookup_shows_what_the_counter_needs(shop):
    order = shop.order(quantity=2, phone="138 1234 5678")
    pickup = pickup_lookup(code=order.pickup_code, cashier=shop.cashier, store=shop.xtd)
    assert pickup.order == order
    assert [(item.product.name, item.quantity) for item in pickup.items] == [
        ("West Lake Longjing tea 250g", 2), ("Celadon tea cup", 4),
    ]
    assert pickup.masked_phone == "+86138****5678"
    assert pickup.paid_at == order.paid_at and pickup.deadline == order.pickup_deadline
    assert pickup.pickup_store == shop.xtd and pickup.status == OS.PAID
    assert pickup.code_display == f"{order.pickup_code[:4]}-{order.pickup_code[4:8]}-{order.pickup_code[8:]}"


def test_lookup_forgives_case_spaces_dashes_and_reads_the_voucher_link(shop):
    order = shop.order()
    code = order.pickup_code
    for typed in (code.lower(), f" {code[:4]}-{code[4:8]} {code[8:]} ", f"http://x.test/cashier/?code={code}"):
        assert pickup_lookup(code=typed, cashier=shop.cashier, store=shop.xtd).order == order


def test_lookup_changes_nothing(shop):
    order = shop.order()
    pickup_lookup(code=order.pickup_code, cashier=shop.cashier, store=shop.xtd)
    order.refresh_from_db()
    assert order.status == OS.PAID and not Redemption.objects.exists()


# --------------------------------------------------------------------------- redeem


def test_redeem_hands_over_once_and_records_who_where_when_what(shop):
    order = shop.order(quantity=3)
    before = timezone.now()
    redemption = redeem(shop, order, client="Mozilla/5.0 (iPhone)", client_ip="10.1.2.3")
    order.refresh_from_db()
    assert order.status == OS.PICKED_UP and order.closed_at == redemption.created_at >= before
    assert (redemption.merchant, redemption.order, redemption.store, redemption.cashier) == (
        shop.merchant, order, shop.xtd, shop.cashier,
    )
    assert (redemption.channel, redemption.client, redemption.client_ip) == ("web", "Mozilla/5.0 (iPhone)", "10.1.2.3")
    assert [(line["name"], line["quantity"]) for line in redemption.lines] == [
        ("West Lake Longjing tea 250g", 3), ("Celadon tea cup", 6),
    ]
    assert {line["item"] for line in redemption.lines} == set(order.items.values_list("pk", flat=True))
    assert redemption.order_status_before == OS.PAID and redemption.voided_at is None
    event = OrderEvent.objects.filter(order=order).last()
    assert (event.from_status, event.to_status, event.actor, event.channel) == (
        OS.PAID, OS.PICKED_UP, shop.cashier, "web",
    )


def test_second_redeem_reports_who_and_when_and_where(shop):
    order = shop.order()
    first = redeem(shop, order)
    with pytest.raises(AlreadyRedeemed) as refused:
        redeem(shop, order, cashier=shop.floater, store=shop.xtd)
    assert refused.value.redeemed_at == first.created_at
    assert refused.value.by == "wang.fang" and refused.value.store == "Lotus Xintiandi"
    assert refused.value.http_status == 409 and refused.value.code == "already_redeemed"
    assert Redemption.objects.count() == 1
    # and a lookup says the same
    with pytest.raises(AlreadyRedeemed):
        pickup_lookup(code=order.pickup_code, cashier=shop.cashier, store=shop.xtd)


def test_a_double_tap_on_one_form_returns_the_first_redemption(shop):
    order = shop.order()
    first = redeem(shop, order, idempotency_key="form-1")
    again = redeem(shop, order, idempotency_key="form-1")
    assert again.pk == first.pk and Redemption.objects.count() == 1
    # Another form (or another cashier with the same key) is a second hand-over: refused.
    with pytest.raises(AlreadyRedeemed):
        redeem(shop, order, idempotency_key="form-2")
    with pytest.raises(AlreadyRedeemed):
        redeem(shop, order, cashier=shop.floater, idempotency_key="form-1")


def test_ready_for_pickup_orders_are_handed_over_and_remember_it(shop):
    order = shop.order()
    set_status(order, OS.READY_FOR_PICKUP)
    redemption = redeem(shop, order)
    assert redemption.order_status_before == OS.READY_FOR_PICKUP


def test_completion_hook_fires_once_inside_the_hand_over(shop):
    order = shop.order()
    heard = []

    def receiver(sender, order, channel, actor, at, **kwargs):
        heard.append((order.pk, order.status, channel, actor, at))

    order_completed.connect(receiver)
    try:
        redemption = redeem(shop, order)
        with pytest.raises(AlreadyRedeemed):
            redeem(shop, order)
    finally:
        order_completed.disconnect(receiver)
    assert heard == [(order.pk, OS.PICKED_UP, "web", shop.cashier, redemption.created_at)]


def test_a_failing_completion_receiver_rolls_the_hand_over_back(shop):
    # Receivers write in the hand-over's transaction: points and pickup commit together or not at all.
    order = shop.order()

    def broken(**kwargs):
        raise RuntimeError("points ledger down")

    order_completed.connect(broken)
    try:
        with pytest.raises(RuntimeError):
            redeem(shop, order)
    finally:
        order_completed.disconnect(broken)
    order.refresh_from_db()
    assert order.status == OS.PAID and not Redemption.objects.exists()


# --------------------------------------------------------------------------- refusals


def test_wrong_store_names_the_store_the_voucher_is_for(shop):
    order = shop.order(store=shop.jingan)
    with pytest.raises(WrongStore) as refused:
        redeem(shop, order, cashier=shop.floater, store=shop.xtd)
    assert (refused.value.belongs_to, refused.value.http_status) == ("Lotus Jing'an", 403)
    with pytest.raises(WrongStore):
        pickup_lookup(code=order.pickup_code, cashier=shop.floater, store=shop.xtd)
    assert Order.objects.get(pk=order.pk).status == OS.PAID


def test_cashier_cannot_verify_at_a_store_they_do_not_serve(shop):
    order = shop.order(store=shop.jingan)
    with pytest.raises(StoreNotAllowed):
        redeem(shop, order, cashier=shop.cashier, store=shop.jingan)
    with pytest.raises(StoreNotAllowed):  # even for a code that does not exist
        pickup_lookup(code="ABCDEFGHJK", cashier=shop.cashier, store=shop.jingan)
    assert Order.objects.get(pk=order.pk).status == OS.PAID


def test_manager_may_hand_over_at_any_store_of_their_merchant(shop):
    order = shop.order(store=shop.jingan)
    assert redeem(shop, order, cashier=shop.manager, store=shop.jingan).cashier == shop.manager


def test_analysts_and_other_merchants_staff_cannot_verify(shop):
    order = shop.order()
    with pytest.raises(StoreNotAllowed):
        redeem(shop, order, cashier=shop.analyst)
    with pytest.raises(StoreNotAllowed):
        redeem(shop, order, cashier=shop.rival_cashier, store=shop.xtd)


def test_another_merchants_code_is_unknown_exactly_like_a_made_up_one(shop):
    made_up = "ABCDEFGHJK"
    assert not Order.objects.filter(pickup_code=made_up).exists()
    answers = []
    for code in (shop.rival_order.pickup_code, made_up):
        with pytest.raises(UnknownCode) as refused:
            pickup_lookup(code=code, cashier=shop.cashier, store=shop.xtd)
        answers.append((type(refused.value), refused.value.message, refused.value.details))
        with pytest.raises(UnknownCode):
            redeem(shop, Order(pickup_code=code))
    assert answers[0] == answers[1]
    assert Order.objects.get(pk=shop.rival_order.pk).status == OS.PAID


def test_a_manager_without_a_store_still_sees_only_their_merchants_codes(shop):
    with pytest.raises(UnknownCode):
        pickup_lookup(code=shop.rival_order.pickup_code, cashier=shop.manager, store=None)
    assert pickup_lookup(code=shop.order().pickup_code, cashier=shop.manager, store=None)


@pytest.mark.parametrize("garbage", ["", "   ", "ABC", "ABCDEFGHJK1", "0OIL1U0OIL", "'; drop table--", "x" * 600])
def test_garbage_is_an_unknown_code(shop, garbage):
    with pytest.raises(UnknownCode):
        pickup_lookup(code=garbage, cashier=shop.cashier, store=shop.xtd)


@pytest.mark.parametrize(
    ("status", "error", "http_status"),
    [(OS.REFUNDED, Refunded, 409), (OS.EXPIRED, Expired, 410), (OS.CANCELLED, Cancelled, 409)],
)
def test_closed_orders_are_refused_with_their_reason(shop, status, error, http_status):
    order = shop.order()
    set_status(order, status)
    for attempt in (
        lambda: pickup_lookup(code=order.pickup_code, cashier=shop.cashier, store=shop.xtd),
        lambda: redeem(shop, order),
    ):
        with pytest.raises(error) as refused:
            attempt()
        assert refused.value.http_status == http_status
    assert Order.objects.get(pk=order.pk).status == status and not Redemption.objects.exists()


def test_unpaid_order_is_not_paid(shop):
    # An order has its code only once paid; one that has a code and is pending is refused all the same.
    order = order_place(
        promotion=shop.offer, quantity=1, phone="13900000001", fulfilment="pickup", pickup_store=shop.xtd,
        submit_key="unpaid",
    )
    Order.objects.filter(pk=order.pk).update(pickup_code="PENDNG2345")
    with pytest.raises(NotPaid):
        pickup_lookup(code="PENDNG2345", cashier=shop.cashier, store=shop.xtd)


def test_past_the_deadline_is_expired_before_the_sweep_runs(shop):
    order = shop.order()
    set_status(order, OS.PAID, pickup_deadline=timezone.now() - timedelta(minutes=1))
    with pytest.raises(Expired) as refused:
        redeem(shop, order)
    assert refused.value.deadline < timezone.now()
    assert Order.objects.get(pk=order.pk).status == OS.PAID


def test_a_hand_over_decided_just_before_the_deadline_counts_at_its_own_time(shop):
    order = shop.order()
    deadline = Order.objects.get(pk=order.pk).pickup_deadline
    assert redeem(shop, order, now=deadline).created_at == deadline


def test_a_store_with_several_cashiers_records_each(shop):
    colleague = staff(shop.merchant, "cashier", [shop.xtd], username="zhao.min")
    first, second = shop.order(), shop.order()
    redeem(shop, first)
    redeem(shop, second, cashier=colleague)
    assert sorted(Redemption.objects.values_list("cashier__username", flat=True)) == ["wang.fang", "zhao.min"]
