"""The overdue sweep against the counter, and against itself, on PostgreSQL: each contender in its own
thread with its own connection, released together by a barrier (SQLite serialises writers, so these mean
something only on PostgreSQL)."""

from collections import Counter
from datetime import timedelta

import pytest
from django.utils import timezone

from orders.fulfilment import pickups_expire_overdue
from orders.models import Order, Refund
from orders.payments.models import SandboxTrade
from orders.pickups.errors import Expired
from orders.pickups.models import Redemption
from orders.pickups.services import pickup_redeem
from tests.orders.fulfilment_world import fulfilment_shop
from tests.races import race

pytestmark = [pytest.mark.services, pytest.mark.django_db(transaction=True)]

O, RS = Order.Status, Refund.Status  # noqa: E741


def test_at_the_deadline_each_voucher_is_either_handed_over_or_expired_and_refunded_never_both(db):
    # Given 30 paid vouchers whose deadline is this very instant
    lotus = fulfilment_shop("lotus")
    orders = [lotus.order(fulfilment="pickup") for _ in range(30)]
    deadline = timezone.now().replace(microsecond=0) + timedelta(seconds=1)
    Order.objects.filter(pk__in=[o.pk for o in orders]).update(pickup_deadline=deadline)
    cashier, store = lotus.cashier, lotus.shop.store

    # When the counter hands each one over at the deadline (still allowed: deadline >= now) while the sweep,
    # a microsecond later (overdue: deadline < now), expires them
    def attempt(i: int):
        if i == 0:
            # One order per transaction: the sweep and the counter interleave as much as they can.
            return pickups_expire_overdue(now=deadline + timedelta(microseconds=1), batch_size=1)
        return pickup_redeem(
            code=orders[i - 1].pickup_code, cashier=type(cashier).objects.get(pk=cashier.pk), store=store,
            channel="api", now=deadline,
        )

    results = race(len(orders) + 1, attempt)

    # Then every voucher went exactly one way, and the cashier was told which
    sweep, redeems = results[0], results[1:]
    assert isinstance(sweep, dict), sweep
    assert all(isinstance(r, Redemption | Expired) for r in redeems), redeems
    for order, outcome in zip(orders, redeems, strict=True):
        order.refresh_from_db()
        refunds = list(Refund.objects.filter(order=order).values_list("status", "amount"))
        if isinstance(outcome, Redemption):
            assert order.status == O.PICKED_UP and refunds == [], (order.pk, refunds)
        else:
            assert order.status == O.EXPIRED and [s for s, _ in refunds] == [RS.SUCCEEDED], (order.pk, refunds)
    kinds = Counter(type(r).__name__ for r in redeems)
    assert Redemption.objects.count() == kinds["Redemption"] == Order.objects.filter(status=O.PICKED_UP).count()
    assert sweep["expired"] == kinds["Expired"] == sweep["refunded"]

    # And a later run of the sweep finds nothing left to do
    assert set(pickups_expire_overdue(now=deadline + timedelta(minutes=10)).values()) == {0}


def test_four_sweeps_at_once_refund_every_overdue_voucher_exactly_once(db):
    lotus = fulfilment_shop("lotus")
    orders = [lotus.order(fulfilment="pickup") for _ in range(12)]
    Order.objects.filter(pk__in=[o.pk for o in orders]).update(pickup_deadline=timezone.now() - timedelta(hours=1))

    results = race(4, lambda i: pickups_expire_overdue())

    assert all(isinstance(r, dict) for r in results), results
    assert sum(r["expired"] for r in results) == 12 and sum(r["refunded"] for r in results) == 12
    assert sum(r["refund_failed"] for r in results) == 0
    assert Order.objects.filter(status=O.EXPIRED, needs_attention=False).count() == 12
    assert Refund.objects.filter(status=RS.SUCCEEDED).count() == 12 and Refund.objects.count() == 12
    assert set(SandboxTrade.objects.values_list("refunded_minor", flat=True)) == {9900}
