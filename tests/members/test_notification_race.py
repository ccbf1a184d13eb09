"""On PostgreSQL: many senders of one notification at once (redeliveries, the sweep, a retry) send it
once; and a real Celery worker, through Redis, tells the customer through the HTTP gateway once."""

from collections import Counter

import pytest

from members.models import Notification
from members.notifications import services
from orders.pickups.ready import order_mark_ready
from tests.races import race
from tests.test_celery_worker import CeleryWorker, wait_until

from .conftest import Gateway

pytestmark = [pytest.mark.services, pytest.mark.django_db(transaction=True)]


def test_twenty_senders_of_one_notification_at_once_send_it_once(shop, recorded_sms):
    order_mark_ready(order=shop.order(), actor=shop.manager)  # queued; its on-commit task ran eagerly
    notification = Notification.objects.get()
    Notification.objects.filter(pk=notification.pk).update(status=Notification.Status.PENDING, attempts=0)
    recorded_sms.clear()

    results = race(20, lambda i: services.notification_send(notification_id=notification.pk)[1])

    assert Counter(results) == {True: 1, False: 19}, results
    assert len(recorded_sms) == 1
    notification.refresh_from_db()
    assert (notification.status, notification.attempts) == (Notification.Status.SENT, 1)


def test_a_real_worker_tells_the_customer_once_through_the_gateway(shop, gateway, settings, monkeypatch,
                                                                  tmp_path, _eager_celery):
    from o2o.celery import app

    # The worker is its own process: it reads the gateway from its environment.
    monkeypatch.setenv("NOTIFICATIONS_SMS", "http")
    monkeypatch.setenv("SMS_GATEWAY_URL", settings.SMS_GATEWAY_URL)
    monkeypatch.setenv("SMS_GATEWAY_TOKEN", "secret-token")
    worker = CeleryWorker(log_dir=tmp_path).start()
    app.conf.task_always_eager = False
    app.conf.task_routes = {"members.tasks.*": {"queue": worker.queue}}
    try:
        order_mark_ready(order=shop.order(phone="13812345678"), actor=shop.manager)  # commits: published
        sent = wait_until(
            lambda: Notification.objects.filter(status=Notification.Status.SENT).exists(), timeout=30
        )
        assert sent, worker.log()
        # a redelivered copy of the same task changes nothing
        notification = Notification.objects.get()
        app.send_task("members.tasks.notification_send", args=[notification.pk], queue=worker.queue)
        assert wait_until(lambda: worker.log().count("succeeded") >= 2, timeout=30), worker.log()
    finally:
        app.conf.task_routes = None
        app.conf.task_always_eager = True
        worker.stop()
        worker.delete_queue()
    assert [r["json"]["to"] for r in Gateway.seen] == ["+8613812345678"]
    assert Gateway.seen[0]["headers"]["Idempotency-Key"] == f"o2o-notification-{notification.pk}"
