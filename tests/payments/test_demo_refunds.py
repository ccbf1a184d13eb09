"""seed_demo's refunded orders are refunded for real: a Refund through the sandbox, consistent with the payment."""

from io import StringIO

import pytest
from django.core.management import call_command

from orders.models import Order, Payment, Refund
from orders.payments.models import SandboxRefund, SandboxTrade

pytestmark = pytest.mark.django_db


def test_every_refunded_demo_order_has_a_refund_that_gave_its_payment_back():
    call_command("seed_demo", password="demo-horse-battery", stdout=StringIO())

    # Refunded orders, and the expired pickup the overdue sweep refunded (it stays expired).
    refunded = Order.objects.filter(merchant__slug="demo", status__in=[Order.Status.REFUNDED, Order.Status.EXPIRED])
    assert set(refunded.values_list("status", flat=True)) == {Order.Status.REFUNDED, Order.Status.EXPIRED}
    for order in refunded:
        payment = Payment.objects.get(order=order, status=Payment.Status.PAID)
        refund = Refund.objects.get(order=order)
        assert (refund.status, refund.payment, refund.amount) == ("succeeded", payment, payment.amount)
        assert refund.reason and refund.provider_refund_no and refund.completed_at
        assert payment.refunded_amount == payment.amount
        # the sandbox's ledger (and so its statement) agrees
        booked = SandboxRefund.objects.get(out_refund_no=refund.out_refund_no)
        assert booked.amount_minor == int(payment.amount * 100)
        assert SandboxTrade.objects.get(out_trade_no=payment.out_trade_no).refunded_minor == booked.amount_minor
    # and no other order has money given back
    assert not Refund.objects.exclude(order__in=refunded).filter(order__merchant__slug="demo")
