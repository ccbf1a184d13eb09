"""Races on real PostgreSQL: threads with their own connections, released together by a barrier."""

import threading
from datetime import timedelta

import pytest
from django.db import connection
from django.test import Client
from django.utils import timezone

from orders.models import Order, OrderEvent, Payment, PaymentNotification
from orders.services import orders_cancel_unpaid
from tests.payments.sandbox_world import (
    notification_for,
    placed_order,
    post_notification,
    sandbox_shop,
    started_payment,
)

pytestmark = [pytest.mark.services, pytest.mark.django_db(transaction=True)]


def run_together(jobs: list) -> list:
    """Run each job in its own thread (own database connection), all released at once."""
    barrier = threading.Barrier(len(jobs))
    results: list = [None] * len(jobs)

    def run(index, job):
        try:
            barrier.wait(timeout=30)
            results[index] = job()
        except BaseException as error:  # reported by the test, not lost in the thread
            results[index] = error
        finally:
            connection.close()

    threads = [threading.Thread(target=run, args=(i, job)) for i, job in enumerate(jobs)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    return results


def test_the_same_notification_delivered_20_times_at_once_pays_once():
    # Given an order waiting for its payment, and the provider's notification of it
    shop = sandbox_shop("teahouse")
    order = placed_order(shop)
    payment = started_payment(order)
    body, headers = notification_for(payment)

    # When the provider delivers it 20 times at the same instant
    answers = run_together([
        lambda: post_notification(Client(), "teahouse", body, headers).status_code for _ in range(20)
    ])  # fmt: skip

    # Then every delivery is answered "got it", stored, and exactly one paid the order
    assert answers == [200] * 20, answers
    statuses = list(PaymentNotification.objects.values_list("status", flat=True))
    assert sorted(statuses) == ["applied"] + ["duplicate"] * 19
    payment.refresh_from_db()
    order.refresh_from_db()
    assert payment.status == Payment.Status.PAID and order.status == Order.Status.PAID
    assert OrderEvent.objects.filter(order=order, to_status=Order.Status.PAID).count() == 1
    assert order.pickup_code


def test_a_payment_racing_the_unpaid_sweep_ends_paid_or_in_review_never_both():
    # Given 10 orders left unpaid past the limit, each with its payment's notification on its way
    shop = sandbox_shop("teahouse")
    orders = [placed_order(shop, phone=f"139 0000 {i:04d}") for i in range(10)]
    notifications = [notification_for(started_payment(order)) for order in orders]
    later = timezone.now() + timedelta(hours=1)

    # When the notifications and the sweep that cancels unpaid orders run at once
    jobs = [lambda n=n: post_notification(Client(), "teahouse", *n).status_code for n in notifications]
    results = run_together([*jobs, lambda: orders_cancel_unpaid(now=later)])

    # Then each order is paid by its payment, or cancelled with its payment in review (to refund)
    assert results[:-1] == [200] * 10, results
    for order in orders:
        order.refresh_from_db()
        payment = order.payments.get()
        if order.status == Order.Status.PAID:
            assert payment.status == Payment.Status.PAID
        else:
            assert order.status == Order.Status.CANCELLED
            assert payment.status == Payment.Status.NEEDS_REVIEW and "refund" in payment.review_reason
    cancelled = sum(order.status == Order.Status.CANCELLED for order in orders)
    assert results[-1] == cancelled
