"""Refunds through the provider: full, partial, never more than was paid, and what a refusal leaves."""

from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from orders.models import Order, OrderEvent, Payment, Refund
from orders.payments.models import SandboxRefund, SandboxTrade
from orders.payments.providers.base import ProviderError, RefundResult
from orders.payments.providers.sandbox import SandboxProvider, sandbox_trade_pay
from orders.payments.services import (
    OverRefund,
    RefundNotAllowed,
    order_refunded,
    payment_query,
    refund_create,
    refunds_resume,
)
from tests.factories import staff
from tests.payments.sandbox_world import placed_order, sandbox_shop, sandbox_trade, started_payment

RS = Refund.Status


@pytest.fixture
def shop(db):
    return sandbox_shop("teahouse")


@pytest.fixture
def manager(shop):
    return staff(shop.merchant, "manager", username="tea_manager")


def paid_order(shop, quantity: int = 2) -> tuple[Order, Payment]:
    """An order of `quantity` × 99.00, paid in the sandbox and confirmed (through the provider's ledger)."""
    order = placed_order(shop, quantity=quantity, phone=f"139 {Order.objects.count():04d} 0000")
    payment = started_payment(order)
    sandbox_trade_pay(trade=sandbox_trade(payment), deliveries=0)
    payment_query(payment=payment)
    order.refresh_from_db()
    payment.refresh_from_db()
    assert order.status == Order.Status.PAID and payment.status == Payment.Status.PAID
    return order, payment


def test_a_full_refund_gives_everything_back_and_refunds_the_order(shop, manager):
    order, payment = paid_order(shop)
    refund = refund_create(order=order, reason="Customer changed their mind", requested_by=manager)
    payment.refresh_from_db()
    order.refresh_from_db()
    assert (refund.status, refund.amount, refund.requested_by) == (RS.SUCCEEDED, Decimal("198.00"), manager)
    assert refund.provider_refund_no.startswith("SBR") and refund.completed_at
    assert payment.refunded_amount == Decimal("198.00") and payment.status == Payment.Status.PAID
    assert order.status == Order.Status.REFUNDED and order.closed_at
    event = OrderEvent.objects.get(order=order, to_status=Order.Status.REFUNDED)
    assert (event.from_status, event.actor, event.channel) == (Order.Status.PAID, manager, OrderEvent.Channel.ADMIN)
    assert "Full refund 198.00 CNY" in event.note and "changed their mind" in event.note
    assert sandbox_trade(payment).refunded_minor == 19800  # the provider's books agree


def test_partial_refunds_keep_the_order_until_nothing_is_left(shop, manager):
    order, payment = paid_order(shop)
    refund_create(payment=payment, amount=Decimal("50.00"), reason="One box dented", requested_by=manager)
    order.refresh_from_db()
    assert order.status == Order.Status.PAID  # still to be picked up
    partial = OrderEvent.objects.filter(order=order).last()
    assert (partial.from_status, partial.to_status) == ("paid", "paid") and "Partial refund 50.00" in partial.note
    refund_create(payment=payment, amount=Decimal("148.00"), reason="Out of stock after all", requested_by=manager)
    order.refresh_from_db()
    payment.refresh_from_db()
    assert payment.refunded_amount == Decimal("198.00") and order.status == Order.Status.REFUNDED


def test_over_refund_is_refused_with_the_limit_and_writes_nothing(shop, manager):
    order, payment = paid_order(shop)
    refund_create(payment=payment, amount=Decimal("150.00"), reason="Partly", requested_by=manager)
    with pytest.raises(OverRefund) as refused:
        refund_create(payment=payment, amount=Decimal("48.01"), reason="Too much", requested_by=manager)
    assert refused.value.message == (
        "At most 48.00 CNY can be refunded: 198.00 paid, 150.00 refunded or being refunded already."
    )
    assert Refund.objects.count() == 1 and SandboxRefund.objects.count() == 1
    payment.refresh_from_db()
    assert payment.refunded_amount == Decimal("150.00")


@pytest.mark.parametrize(("amount", "message"), [
    (Decimal("0"), "greater than zero"), (Decimal("-5"), "greater than zero"), (Decimal("1.005"), "more decimals"),
])  # fmt: skip
def test_nonsense_amounts_are_refused(shop, manager, amount, message):
    _order, payment = paid_order(shop)
    with pytest.raises((OverRefund, RefundNotAllowed), match=message):
        refund_create(payment=payment, amount=amount, reason="x", requested_by=manager)
    assert not Refund.objects.exists()


def test_a_refund_needs_a_reason(shop, manager):
    order, _payment = paid_order(shop)
    with pytest.raises(RefundNotAllowed, match="Say why"):
        refund_create(order=order, reason="   ", requested_by=manager)


def test_nothing_is_refunded_of_a_payment_that_received_no_money(shop, manager):
    payment = started_payment(placed_order(shop))
    with pytest.raises(RefundNotAllowed, match="has received no money"):
        refund_create(payment=payment, reason="?", requested_by=manager)
    with pytest.raises(RefundNotAllowed, match="no payment that received money"):
        refund_create(order=payment.order, reason="?", requested_by=manager)


def test_a_refund_the_provider_refuses_is_failed_with_its_reason_and_changes_no_totals(shop, manager):
    order, payment = paid_order(shop)
    # The provider's ledger says the trade is gone (say, refunded elsewhere and settled)
    SandboxTrade.objects.filter(out_trade_no=payment.out_trade_no).delete()
    refund = refund_create(order=order, amount=Decimal("10.00"), reason="Late", requested_by=manager)
    assert refund.status == RS.FAILED and f"no paid trade {payment.out_trade_no}" in refund.failure
    payment.refresh_from_db()
    order.refresh_from_db()
    assert payment.refunded_amount == 0 and order.status == Order.Status.PAID
    assert not OrderEvent.objects.filter(order=order, note__contains="refund").exists()
    # and the failed one does not hold any of the amount back
    SandboxTrade.objects.create(
        merchant=shop.merchant, out_trade_no=payment.out_trade_no, provider_trade_no="SBX1", amount_minor=19800,
        currency="CNY", notify_url="-", paid_at=payment.paid_at,
    )
    assert refund_create(order=order, reason="Again", requested_by=manager).amount == Decimal("198.00")


def test_an_unreachable_provider_leaves_the_refund_pending_and_the_sweep_finishes_it(shop, manager, monkeypatch):
    order, payment = paid_order(shop)
    real = SandboxProvider.refund

    def timeout(self, refund):
        raise ProviderError("read timed out")

    monkeypatch.setattr(SandboxProvider, "refund", timeout)
    refund = refund_create(order=order, amount=Decimal("98.00"), reason="Dented", requested_by=manager)
    assert refund.status == RS.PENDING
    # A pending refund holds its amount: no second refund can take it too
    with pytest.raises(OverRefund, match="At most 100.00 CNY"):
        refund_create(order=order, amount=Decimal("100.01"), reason="More", requested_by=manager)
    monkeypatch.setattr(SandboxProvider, "refund", real)
    assert refunds_resume(after=timedelta(0)) == 1
    refund.refresh_from_db()
    payment.refresh_from_db()
    assert refund.status == RS.SUCCEEDED and payment.refunded_amount == Decimal("98.00")
    assert refunds_resume(after=timedelta(0)) == 0


def test_a_refund_the_provider_is_still_processing_stays_pending_until_the_sweep_hears_it_succeeded(
    shop, manager, monkeypatch
):
    order, payment = paid_order(shop)
    real = SandboxProvider.refund

    def processing(self, refund):
        return RefundResult(provider_refund_no="SBR-PROCESSING", succeeded=False, pending=True)

    monkeypatch.setattr(SandboxProvider, "refund", processing)
    refund = refund_create(order=order, amount=Decimal("50.00"), reason="Dented", requested_by=manager)
    # accepted, not final: pending with the provider's number, no totals moved, the order still paid
    assert (refund.status, refund.provider_refund_no, refund.failure) == (RS.PENDING, "SBR-PROCESSING", "")
    payment.refresh_from_db()
    order.refresh_from_db()
    assert payment.refunded_amount == 0 and order.status == Order.Status.PAID
    assert refunds_resume(after=timedelta(0)) == 0  # still processing: still pending
    monkeypatch.setattr(SandboxProvider, "refund", real)
    assert refunds_resume(after=timedelta(0)) == 1
    refund.refresh_from_db()
    payment.refresh_from_db()
    assert refund.status == RS.SUCCEEDED and payment.refunded_amount == Decimal("50.00")
    assert SandboxRefund.objects.count() == 1


def test_asking_the_provider_twice_for_one_refund_books_it_once(shop, manager):
    order, payment = paid_order(shop)
    refund = refund_create(order=order, amount=Decimal("20.00"), reason="Dented", requested_by=manager)
    again = SandboxProvider(payment.merchant.payment_configs.get()).refund(refund)
    assert again.succeeded and again.provider_refund_no == refund.provider_refund_no
    assert SandboxRefund.objects.count() == 1 and sandbox_trade(payment).refunded_minor == 2000


def test_the_order_refunded_hook_is_called_inside_the_refund(shop, manager):
    calls = []

    def receiver(sender, refund, order, fully, **kwargs):
        calls.append((refund.amount, order.status, fully))

    order_refunded.connect(receiver)
    try:
        order, payment = paid_order(shop)
        refund_create(payment=payment, amount=Decimal("98.00"), reason="a", requested_by=manager)
        refund_create(payment=payment, reason="b", requested_by=manager)
    finally:
        order_refunded.disconnect(receiver)
    assert calls == [(Decimal("98.00"), "paid", False), (Decimal("100.00"), "refunded", True)]


def test_an_expired_order_refunded_in_full_stays_expired(shop, manager):
    order, _payment = paid_order(shop)
    Order.objects.filter(pk=order.pk).update(status=Order.Status.EXPIRED)
    refund_create(order=order, reason="Not picked up in time", requested_by=manager)
    order.refresh_from_db()
    assert order.status == Order.Status.EXPIRED
    assert order.refunds.get().status == RS.SUCCEEDED


def test_money_that_came_in_for_a_cancelled_order_can_be_refunded_and_the_order_stays_cancelled(shop, manager):
    from orders.services import orders_cancel_unpaid

    order = placed_order(shop)
    payment = started_payment(order)
    orders_cancel_unpaid(now=timezone.now() + timedelta(hours=1))
    sandbox_trade_pay(trade=sandbox_trade(payment), deliveries=0)
    payment_query(payment=payment)
    payment.refresh_from_db()
    assert payment.status == Payment.Status.NEEDS_REVIEW
    refund = refund_create(order=order, reason="Paid after cancellation", requested_by=manager)
    order.refresh_from_db()
    assert refund.status == RS.SUCCEEDED and refund.amount == Decimal("99.00")
    assert order.status == Order.Status.CANCELLED


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(amounts=st.lists(st.integers(min_value=1, max_value=25000), min_size=1, max_size=6))
def test_refunds_never_add_up_to_more_than_was_paid(shop, manager, amounts):
    order, payment = paid_order(shop)  # 198.00
    left = 19800
    for fen in amounts:
        amount = Decimal(fen).scaleb(-2)
        if fen <= left:
            refund = refund_create(payment=payment, amount=amount, reason="r", requested_by=manager)
            assert refund.status == RS.SUCCEEDED
            left -= fen
        else:
            with pytest.raises(OverRefund):
                refund_create(payment=payment, amount=amount, reason="r", requested_by=manager)
    payment.refresh_from_db()
    order.refresh_from_db()
    assert payment.refunded_amount == Decimal(19800 - left).scaleb(-2)
    assert sandbox_trade(payment).refunded_minor == 19800 - left
    assert (order.status == Order.Status.REFUNDED) == (left == 0)
