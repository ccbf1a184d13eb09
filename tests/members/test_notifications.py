"""Customer notifications: exactly one message per (order, kind, channel) whatever the retries,
redeliveries and races; failures recorded and retried with a growing wait, then given up; the sweep
sends what was never published; the HTTP SMS gateway backend speaks its documented protocol."""

from datetime import timedelta

import pytest
from django.utils import timezone

from members.models import Notification
from members.notifications import services
from members.notifications.backends import DeliveryFailed, HttpSMSBackend
from members.tasks import notification_send as send_task
from orders.pickups.ready import order_mark_ready

from . import fakes

N = Notification.Status


def queued(shop, **order_kwargs) -> Notification:
    """An order marked ready whose SMS is queued but not yet sent (its on-commit publish not run)."""
    order_mark_ready(order=shop.order(**order_kwargs), actor=shop.manager)
    return Notification.objects.get(order__pk=Notification.objects.latest("id").order_id, channel="sms")


def test_a_redelivered_or_doubled_send_sends_nothing_twice(shop, recorded_sms):
    notification = queued(shop)
    for _delivery in range(3):  # the task, then a redelivery after a lost ack, then the sweep's copy
        send_task.delay(notification.pk)
    assert len(recorded_sms) == 1
    notification.refresh_from_db()
    assert (notification.status, notification.attempts) == (N.SENT, 1)
    assert recorded_sms[0]["reference"] == f"o2o-notification-{notification.pk}"


def test_queueing_twice_keeps_one_row_per_order_kind_and_channel(
    shop, recorded_sms, django_capture_on_commit_callbacks
):
    notification = queued(shop)
    order = notification.order
    with django_capture_on_commit_callbacks(execute=True):
        services.notifications_queue(orders=[order], kind=Notification.Kind.ORDER_READY)
        services.notifications_queue(orders=[order], kind=Notification.Kind.ORDER_READY)
    assert Notification.objects.filter(order=order).count() == 1
    assert len(recorded_sms) == 1


def test_a_failure_is_recorded_and_retried_later_with_a_growing_wait(shop, settings, recorded_sms):
    settings.NOTIFICATIONS_SMS_BACKEND = "tests.members.fakes.FailingSMS"
    notification = queued(shop)
    start = timezone.now()

    row, tried = services.notification_send(notification_id=notification.pk, now=start)
    assert tried and (row.status, row.attempts) == (N.FAILED, 1)
    assert row.last_error == "gateway answered HTTP 503: try later"
    assert row.next_attempt_at == start + timedelta(minutes=1)

    # Not due yet: a retry that comes early sends nothing
    row, tried = services.notification_send(notification_id=notification.pk, now=start + timedelta(seconds=30))
    assert not tried and fakes.FailingSMS.calls == 1

    row, tried = services.notification_send(notification_id=notification.pk, now=start + timedelta(minutes=1))
    assert tried and row.attempts == 2 and row.next_attempt_at == start + timedelta(minutes=1 + 2)

    # The gateway recovers: the next due attempt goes through, and only once
    settings.NOTIFICATIONS_SMS_BACKEND = "tests.members.fakes.RecordingSMS"
    row, tried = services.notification_send(notification_id=notification.pk, now=start + timedelta(minutes=4))
    assert tried and (row.status, row.attempts, row.last_error) == (N.SENT, 3, "")
    assert len(recorded_sms) == 1


def test_after_the_last_attempt_it_gives_up_and_says_why(shop, settings):
    settings.NOTIFICATIONS_SMS_BACKEND = "tests.members.fakes.FailingSMS"
    settings.NOTIFICATION_MAX_ATTEMPTS = 3
    notification = queued(shop)
    moment = timezone.now()
    for _attempt in range(5):
        row, _tried = services.notification_send(notification_id=notification.pk, now=moment)
        moment += timedelta(hours=2)
    assert (row.status, row.attempts, fakes.FailingSMS.calls) == (N.GAVE_UP, 3, 3)
    assert "503" in row.last_error


def test_the_task_retries_a_failure_through_celery_and_stops_when_it_is_not_due(shop, settings, monkeypatch):
    settings.NOTIFICATIONS_SMS_BACKEND = "tests.members.fakes.FailingSMS"
    notification = queued(shop)
    retries = []
    original = send_task.retry

    def spy(*args, **kwargs):
        retries.append(kwargs.get("countdown"))
        return original(*args, **kwargs)

    monkeypatch.setattr(send_task, "retry", spy)
    send_task.delay(notification.pk)
    # One retry scheduled about a minute out (eager Celery runs it at once: not due, so nothing is sent)
    assert len(retries) == 1 and 55 <= retries[0] <= 60
    assert fakes.FailingSMS.calls == 1
    assert Notification.objects.get(pk=notification.pk).status == N.FAILED


def test_the_sweep_sends_what_was_never_published_and_what_is_due_again(shop, settings, recorded_sms):
    lost = queued(shop)  # committed, but its task never reached the broker
    failed = queued(shop)
    stale = queued(shop)
    fresh = queued(shop)  # just queued: its own task is on the way, the sweep leaves it alone
    now = timezone.now()
    Notification.objects.filter(pk=lost.pk).update(created_at=now - timedelta(minutes=5))
    Notification.objects.filter(pk=failed.pk).update(status=N.FAILED, attempts=1, next_attempt_at=now)
    Notification.objects.filter(pk=stale.pk).update(status=N.SENDING, attempts=1,
                                                    claimed_at=now - timedelta(minutes=10))
    assert services.notifications_resume(now=now + timedelta(seconds=1)) == 3
    assert sorted(sms["reference"] for sms in recorded_sms) == sorted(
        f"o2o-notification-{n.pk}" for n in (lost, failed, stale)
    )
    assert Notification.objects.get(pk=fresh.pk).status == N.PENDING
    # and a second run finds nothing to do
    assert services.notifications_resume(now=now + timedelta(seconds=2)) == 0


def test_a_claim_in_flight_is_not_sent_by_anyone_else(shop, recorded_sms):
    notification = queued(shop)
    Notification.objects.filter(pk=notification.pk).update(status=N.SENDING, claimed_at=timezone.now(), attempts=1)
    row, tried = services.notification_send(notification_id=notification.pk)
    assert not tried and recorded_sms == [] and row.status == N.SENDING


# --------------------------------------------------------------------------- the HTTP gateway


def test_http_gateway_gets_the_message_with_its_reference_as_idempotency_key(gateway):
    answer = HttpSMSBackend().send(to="+8613812345678", subject="", body="Ready!", reference="o2o-notification-9")
    assert answer == "msg-77"
    request = gateway.seen[0]
    assert request["json"] == {"to": "+8613812345678", "text": "Ready!", "sender": "Lotus",
                               "reference": "o2o-notification-9"}
    assert request["headers"]["Authorization"] == "Bearer secret-token"
    assert request["headers"]["Idempotency-Key"] == "o2o-notification-9"


def test_http_gateway_errors_and_silence_are_delivery_failures(gateway, settings):
    gateway.answers = [503]
    with pytest.raises(DeliveryFailed, match="HTTP 503"):
        HttpSMSBackend().send(to="+8613812345678", subject="", body="x", reference="r")
    settings.SMS_GATEWAY_URL = "http://127.0.0.1:9/nothing-listens-here"
    with pytest.raises(DeliveryFailed, match="unreachable"):
        HttpSMSBackend().send(to="+8613812345678", subject="", body="x", reference="r")


def test_through_the_http_gateway_a_failed_send_is_retried_and_then_delivered_once(shop, gateway, settings):
    settings.NOTIFICATIONS_SMS_BACKEND = "members.notifications.backends.HttpSMSBackend"
    notification = queued(shop, phone="13812345678")
    gateway.answers = [500]
    start = timezone.now()
    services.notification_send(notification_id=notification.pk, now=start)
    row, _tried = services.notification_send(notification_id=notification.pk, now=start + timedelta(minutes=1))
    assert (row.status, row.provider_reference) == (N.SENT, "msg-77")
    assert [r["json"]["reference"] for r in gateway.seen] == [f"o2o-notification-{notification.pk}"] * 2
    assert gateway.seen[0]["json"]["to"] == "+8613812345678"


def test_settings_refuse_an_http_sms_backend_without_a_gateway_url():
    import subprocess
    import sys

    result = subprocess.run(
        [sys.executable, "-c",
         "import django, os; os.environ['DJANGO_SETTINGS_MODULE'] = 'o2o.settings'; django.setup()"],
        env={**__import__("os").environ, "NOTIFICATIONS_SMS": "http", "SMS_GATEWAY_URL": ""},
        capture_output=True, text=True, timeout=60,
    )
    assert result.returncode != 0 and "NOTIFICATIONS_SMS=http needs SMS_GATEWAY_URL" in result.stderr


def test_the_console_backend_prints_the_sms_for_development(capsys):
    from members.notifications.backends import ConsoleSMSBackend

    assert ConsoleSMSBackend().send(to="+8613812345678", subject="", body="Ready!", reference="o2o-notification-3") \
        == "o2o-notification-3"
    assert "SMS to +8613812345678 [o2o-notification-3]\nReady!" in capsys.readouterr().out


class RefusingMailServer:
    def __init__(self, *args, **kwargs):
        pass

    def send_messages(self, messages):
        raise ConnectionRefusedError("mail server refused the connection")


def test_an_e_mail_the_mail_server_refuses_is_recorded_as_failed(shop, settings):
    from members.models import Member

    settings.EMAIL_BACKEND = "tests.members.test_notifications.RefusingMailServer"
    order = shop.order()
    Member.objects.filter(pk=order.member_id).update(email="mei@example.com")
    order_mark_ready(order=order, actor=shop.manager)
    email = Notification.objects.get(channel="email")
    row, tried = services.notification_send(notification_id=email.pk)
    assert tried and row.status == N.FAILED
    assert row.last_error == "ConnectionRefusedError: mail server refused the connection"
    # the SMS of the same order is a row of its own, unaffected
    assert Notification.objects.get(channel="sms").status == N.PENDING


def test_a_channel_switched_off_queues_nothing_on_it(shop, settings, recorded_sms):
    from members.models import Member

    settings.NOTIFICATIONS_SMS_BACKEND = ""
    order = shop.order()
    Member.objects.filter(pk=order.member_id).update(email="mei@example.com")
    order_mark_ready(order=order, actor=shop.manager)
    assert list(Notification.objects.values_list("channel", flat=True)) == ["email"]
