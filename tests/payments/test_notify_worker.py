"""The production path of a sandbox payment: the pay page queues the notification, a real Celery
worker signs it and POSTs it over HTTP to the notify URL of a running server, and the order is paid."""

import pytest

from orders.models import Order, PaymentNotification
from tests.payments.sandbox_world import placed_order, sandbox_shop, started_payment
from tests.test_celery_worker import celery_via_broker, celery_worker, wait_until  # noqa: F401 - fixtures

pytestmark = [pytest.mark.services, pytest.mark.django_db(transaction=True)]


def test_a_worker_delivers_the_sandbox_notification_over_http_and_the_order_is_paid(
    client, live_server, settings, celery_worker, celery_via_broker  # noqa: F811
):
    # Given a customer on the sandbox pay page of a shop served by a real server
    from o2o.celery import app

    settings.SITE_URL = live_server.url
    queue_before, app.conf.task_default_queue = app.conf.task_default_queue, celery_worker.queue
    try:
        shop = sandbox_shop("teahouse")
        order = placed_order(shop)
        started_payment(order)
        # When they press Pay (the notification task goes through Redis to the worker)
        response = client.post(f"/pay/sandbox/{order.token}", {"outcome": "pay"})
        assert response.status_code == 302
        # Then the worker's signed POST reaches the notify URL and pays the order
        paid = wait_until(lambda: Order.objects.get(pk=order.pk).status == Order.Status.PAID, timeout=30)
        assert paid, f"order not paid after 30s; worker log:\n{celery_worker.log()}"
        assert PaymentNotification.objects.get().status == PaymentNotification.Status.APPLIED
        assert "X-Sandbox-Signature".lower() in PaymentNotification.objects.get().headers
        sent = "Task orders.payments.tasks.sandbox_notification_send"
        assert wait_until(lambda: sent in celery_worker.log(), timeout=5), celery_worker.log()
    finally:
        app.conf.task_default_queue = queue_before
