"""The overdue-pickup sweep: paid (or ready) pickup orders past their deadline expire and their money goes
back through the provider, once; what cannot be refunded automatically is flagged for staff, never
dropped."""

from datetime import timedelta
from decimal import Decimal

import pytest
from django.conf import settings
from django.db.models import F
from django.urls import reverse
from django.utils import timezone

from o2o.celery import app
from orders import tasks  # noqa: F401 - registers the tasks, as the worker's autodiscovery does
from orders.fulfilment import REFUND_PATIENCE, order_attention_clear, pickups_expire_overdue
from orders.models import Order, OrderEvent, OrderItem, Payment, Refund
from orders.payments.models import SandboxTrade
from orders.payments.providers.base import ProviderError
from orders.payments.providers.sandbox import SandboxProvider
from orders.payments.services import OverRefund, refund_create
from orders.pickups.errors import Expired
from orders.pickups.services import pickup_redeem
from orders.services import order_mark_paid
from tests.orders.fulfilment_world import fulfilment_shop

O, RS = Order.Status, Refund.Status  # noqa: E741


@pytest.fixture
def lotus(db):
    return fulfilment_shop("lotus")


def overdue(order: Order, by: timedelta = timedelta(minutes=1)) -> Order:
    """Move the order's deadline into the past (as if the days had gone by)."""
    Order.objects.filter(pk=order.pk).update(pickup_deadline=timezone.now() - by)
    order.refresh_from_db()
    return order


def fresh(order: Order) -> Order:
    return Order.objects.get(pk=order.pk)


def trade_of(payment: Payment) -> SandboxTrade:
    return SandboxTrade.objects.get(out_trade_no=payment.out_trade_no)


def test_an_overdue_pickup_expires_and_all_its_money_goes_back_through_the_provider(lotus):
    order = overdue(lotus.order(fulfilment="pickup", quantity=2))
    payment = lotus.payment(order)

    counts = pickups_expire_overdue()

    order, refund = fresh(order), Refund.objects.get(order=order)
    payment.refresh_from_db()
    assert counts["expired"] == 1 and counts["refunded"] == 1
    assert order.status == O.EXPIRED and order.closed_at and not order.needs_attention
    assert (refund.status, refund.amount, refund.requested_by) == (RS.SUCCEEDED, Decimal("198.00"), None)
    assert payment.refunded_amount == Decimal("198.00")
    assert trade_of(payment).refunded_minor == 19800  # the provider's own books agree
    expired = OrderEvent.objects.exclude(from_status=O.EXPIRED).get(order=order, to_status=O.EXPIRED)
    assert (expired.from_status, expired.channel) == (O.PAID, OrderEvent.Channel.WORKER)


def test_ready_for_pickup_orders_expire_too(lotus):
    order = overdue(lotus.order(fulfilment="pickup"))
    Order.objects.filter(pk=order.pk).update(status=O.READY_FOR_PICKUP)

    pickups_expire_overdue()

    assert fresh(order).status == O.EXPIRED
    expired = OrderEvent.objects.exclude(from_status=O.EXPIRED).get(order=order, to_status=O.EXPIRED)
    assert expired.from_status == O.READY_FOR_PICKUP


def test_a_second_run_refunds_nothing_twice(lotus):
    order = overdue(lotus.order(fulfilment="pickup"))
    pickups_expire_overdue()
    events = OrderEvent.objects.count()

    counts = pickups_expire_overdue()

    assert counts == dict.fromkeys(counts, 0)
    assert Refund.objects.filter(order=order).count() == 1 and OrderEvent.objects.count() == events
    assert trade_of(lotus.payment(order)).refunded_minor == 9900
    # And the refund service itself would refuse a second one: it caps at what was paid.
    with pytest.raises(OverRefund, match="Nothing is left to refund"):
        refund_create(order=order, reason="again", requested_by=None)


def test_orders_within_their_deadline_picked_up_express_or_unpaid_are_left_alone(lotus):
    waiting = lotus.order(fulfilment="pickup")  # deadline days ahead
    at_the_minute = lotus.order(fulfilment="pickup")
    Order.objects.filter(pk=at_the_minute.pk).update(pickup_deadline=timezone.now() + timedelta(seconds=30))
    picked_up = lotus.order(fulfilment="pickup")
    pickup_redeem(code=picked_up.pickup_code, cashier=lotus.cashier, store=lotus.shop.store, channel="web")
    overdue(picked_up)
    express = lotus.order()
    unpaid = lotus.order(fulfilment="pickup", pay=False)
    before = list(Order.objects.order_by("pk").values())

    counts = pickups_expire_overdue()

    assert counts["expired"] == 0 and list(Order.objects.order_by("pk").values()) == before
    assert not Refund.objects.exists()
    assert {fresh(o).status for o in (waiting, at_the_minute, express)} == {O.PAID}
    assert (fresh(picked_up).status, fresh(unpaid).status) == (O.PICKED_UP, O.PENDING_PAYMENT)


def test_a_refund_the_provider_refuses_flags_the_order_with_the_reason_and_is_not_retried(lotus):
    order = overdue(lotus.order(fulfilment="pickup"))
    payment = lotus.payment(order)
    # The provider's ledger says the trade has no money left (refunded on its side by other means).
    SandboxTrade.objects.filter(out_trade_no=payment.out_trade_no).update(refunded_minor=F("amount_minor"))

    counts = pickups_expire_overdue()
    again = pickups_expire_overdue()

    order = fresh(order)
    assert counts["refund_failed"] == 1 and again["refund_failed"] == 0
    assert order.status == O.EXPIRED and order.needs_attention
    assert order.attention_note.startswith("The provider refused the automatic refund: The refund (99.00) is more")
    assert list(Refund.objects.filter(order=order).values_list("status", flat=True)) == [RS.FAILED]
    payment.refresh_from_db()
    assert payment.refunded_amount == 0
    assert OrderEvent.objects.filter(order=order, note__startswith="The provider refused").count() == 1


def test_a_cleared_flag_is_not_undone_nor_refunded_again_by_the_sweep(lotus):
    order = overdue(lotus.order(fulfilment="pickup"))
    SandboxTrade.objects.filter(out_trade_no=lotus.payment(order).out_trade_no).update(
        refunded_minor=F("amount_minor")
    )
    pickups_expire_overdue()

    order_attention_clear(order=fresh(order), actor=lotus.manager, note="Refunded in cash at the counter")
    pickups_expire_overdue()

    order = fresh(order)
    assert not order.needs_attention
    assert order.attention_note == "Cleared by lotus_manager: Refunded in cash at the counter"
    assert Refund.objects.filter(order=order).count() == 1


def test_an_order_paid_without_a_provider_payment_is_flagged_not_dropped(lotus):
    order = lotus.order(fulfilment="pickup", pay=False)
    order_mark_paid(order=order)  # e.g. marked paid by hand: no payment holds its money
    overdue(order)

    counts = pickups_expire_overdue()

    order = fresh(order)
    assert counts["refund_failed"] == 1 and order.status == O.EXPIRED and order.needs_attention
    assert order.attention_note == f"Automatic refund not possible: Order #{order.pk} has no payment that " \
                                   "received money."


def test_an_unreachable_provider_leaves_the_refund_pending_and_flags_the_order_after_an_hour(lotus, monkeypatch):
    order = overdue(lotus.order(fulfilment="pickup"))

    def unreachable(self, refund):
        raise ProviderError("connection timed out")

    monkeypatch.setattr(SandboxProvider, "refund", unreachable)
    first = pickups_expire_overdue()
    second = pickups_expire_overdue()
    assert (first["refund_pending"], second["refund_pending"]) == (1, 0)
    assert not fresh(order).needs_attention  # refunds_resume asks again; not yet staff's business

    later = pickups_expire_overdue(now=timezone.now() + REFUND_PATIENCE + timedelta(minutes=1))

    order = fresh(order)
    assert later["flagged_slow"] == 1 and order.needs_attention
    assert "has not answered the automatic refund" in order.attention_note
    assert list(Refund.objects.filter(order=order).values_list("status", flat=True)) == [RS.PENDING]


def test_a_partly_picked_up_order_expires_flagged_for_a_refund_by_hand(lotus):
    order = overdue(lotus.order(fulfilment="pickup", quantity=2))
    OrderItem.objects.filter(order=order).update(handed_over=1)

    counts = pickups_expire_overdue()

    order = fresh(order)
    assert counts["flagged_partial"] == 1 and counts["refunded"] == 0
    assert order.status == O.EXPIRED and order.needs_attention
    assert "refund what was not handed over by hand" in order.attention_note
    assert not Refund.objects.filter(order=order).exists()


def test_the_counter_refuses_an_overdue_voucher_before_and_after_the_sweep(lotus):
    order = overdue(lotus.order(fulfilment="pickup"))

    with pytest.raises(Expired):
        pickup_redeem(code=order.pickup_code, cashier=lotus.cashier, store=lotus.shop.store, channel="web")
    pickups_expire_overdue()
    with pytest.raises(Expired):
        pickup_redeem(code=order.pickup_code, cashier=lotus.cashier, store=lotus.shop.store, channel="web")


def test_a_customer_sees_the_expiry_and_the_refund_on_the_order_page(lotus, client):
    order = overdue(lotus.order(fulfilment="pickup"))
    pickups_expire_overdue()

    page = client.get(reverse("orders:order", args=[order.token]))

    assert "Not picked up in time; the payment is refunded." in page.content.decode()
    assert order.pickup_code not in page.content.decode()  # no voucher to show any more


def test_a_customer_whose_refund_failed_is_not_told_it_is_refunded(lotus, client):
    order = overdue(lotus.order(fulfilment="pickup"))
    SandboxTrade.objects.filter(out_trade_no=lotus.payment(order).out_trade_no).update(
        refunded_minor=F("amount_minor")
    )
    pickups_expire_overdue()

    page = client.get(reverse("orders:order", args=[order.token])).content.decode()

    assert "Not picked up in time; the payment will be refunded." in page and "is refunded" not in page


def test_beat_runs_the_sweep_every_ten_minutes_through_a_registered_task(lotus):
    order = overdue(lotus.order(fulfilment="pickup"))
    entry = settings.CELERY_BEAT_SCHEDULE["pickups-expire-overdue"]

    app.tasks[entry["task"]].delay()

    assert entry["schedule"] == timedelta(minutes=10)
    assert fresh(order).status == O.EXPIRED and Refund.objects.get(order=order).status == RS.SUCCEEDED
