"""A customer's way through the pages: landing page -> order -> sandbox pay page -> the sandbox's
signed notification (a Celery task, run inline; delivered through the test client) -> voucher.
Also what the sandbox page can be told to do, and the query sweep that heals a lost notification."""

import re
from datetime import timedelta
from unittest import mock

import pytest
from django.test import Client
from django.utils import timezone

from orders.models import Order, Payment, PaymentNotification
from orders.payments import tasks
from orders.payments.models import PaymentConfig, SandboxTrade
from orders.payments.providers.base import ProviderError
from orders.payments.providers.sandbox import SandboxProvider
from orders.payments.services import payment_query_sweep
from tests.payments.sandbox_world import deliver_with_test_client, placed_order, sandbox_shop, started_payment

NS, PS = PaymentNotification.Status, Payment.Status


@pytest.fixture
def shop(db):
    return sandbox_shop("teahouse")


@pytest.fixture
def sent(monkeypatch):
    """Notifications reach the notify URL through the test client; errors in inline tasks surface."""
    from o2o.celery import app

    before = app.conf.task_eager_propagates
    app.conf.task_eager_propagates = True
    yield deliver_with_test_client(monkeypatch)
    app.conf.task_eager_propagates = before


def order_from_landing(client, shop, quantity: int = 1):
    """Scan, fill in the form, submit: the customer lands on the pay page."""
    html = client.get(f"/p/{shop.offer.wall_code}?s={shop.store.code}").content.decode()
    data = {
        "submit_key": re.search(r'name="submit_key" value="([^"]+)"', html).group(1),
        "scan": re.search(r'name="scan" value="([^"]*)"', html).group(1),
        "quantity": quantity, "phone": "138 1234 5678", "fulfilment": "pickup", "pickup_store": shop.store.code,
    }
    response = client.post(f"/p/{shop.offer.wall_code}?s={shop.store.code}", data)
    assert response.status_code == 302
    return Order.objects.get(), response["Location"]


def pay(client, order: Order, capture, **options):
    """Press Pay on the sandbox page; the notification goes out when the page's transaction commits."""
    with capture(execute=True):
        response = client.post(f"/pay/sandbox/{order.token}", {"outcome": "pay", **options})
    return response


def test_customer_scans_orders_pays_in_the_sandbox_and_sees_the_voucher(
    client, shop, sent, django_capture_on_commit_callbacks
):
    # Given a customer who ordered 2 from the landing page and was sent to the sandbox pay page
    order, pay_url = order_from_landing(client, shop, quantity=2)
    assert pay_url == f"/pay/sandbox/{order.token}"
    page = client.get(pay_url)
    assert page.status_code == 200 and 'id="amount">¥198.00<' in page.content.decode()
    # When they press Pay
    response = pay(client, order, django_capture_on_commit_callbacks)
    # Then the sandbox notified the shop (over the notify URL, signed) and the order page shows the voucher
    assert response.status_code == 302 and response["Location"] == f"/o/{order.token}"
    assert [status for _url, status in sent] == [200]
    assert sent[0][0] == "http://127.0.0.1:8000/api/v1/payments/notify/sandbox/teahouse/"
    order.refresh_from_db()
    assert order.status == Order.Status.PAID
    assert PaymentNotification.objects.get().status == NS.APPLIED
    html = client.get(f"/o/{order.token}").content.decode()
    code = order.pickup_code
    assert "Paid. Show this voucher at the pickup counter." in html
    assert f"{code[:4]}-{code[4:8]}-{code[8:]}" in html and "<svg" in html


def test_pressing_pay_does_not_mark_the_order_paid_by_itself(client, shop, sent, django_capture_on_commit_callbacks):
    # Given the notification is lost on its way (the sandbox told to send none)
    order, _ = order_from_landing(client, shop)
    response = pay(client, order, django_capture_on_commit_callbacks, deliver="never")
    # Then the customer sees the payment is waiting for the shop's confirmation, and the order is unpaid
    assert sent == []
    order.refresh_from_db()
    assert order.status == Order.Status.PENDING_PAYMENT
    page = client.get(response["Location"]).content.decode()
    assert "Payment sent. Waiting for the shop to confirm it…" in page
    assert SandboxTrade.objects.get().paid_at is not None  # the provider has the money


def test_the_sandbox_told_to_send_twice_pays_once(client, shop, sent, django_capture_on_commit_callbacks):
    order, _ = order_from_landing(client, shop)
    pay(client, order, django_capture_on_commit_callbacks, deliver="twice")
    assert [status for _url, status in sent] == [200, 200]
    assert sorted(PaymentNotification.objects.values_list("status", flat=True)) == [NS.APPLIED, NS.DUPLICATE]
    order.refresh_from_db()
    assert order.status == Order.Status.PAID


def test_the_sandbox_told_to_send_late_schedules_the_notification_later(
    client, shop, django_capture_on_commit_callbacks
):
    order, _ = order_from_landing(client, shop)
    with mock.patch.object(tasks.sandbox_notification_send, "apply_async") as send:
        pay(client, order, django_capture_on_commit_callbacks, deliver="late", delay="45")
    trade = SandboxTrade.objects.get()
    send.assert_called_once_with(args=[trade.pk], countdown=45)


def test_pressing_pay_twice_sends_one_notification(client, shop, sent, django_capture_on_commit_callbacks):
    order, _ = order_from_landing(client, shop)
    with django_capture_on_commit_callbacks(execute=True):
        trade = SandboxTrade.objects.get()
        client.post(f"/pay/sandbox/{order.token}", {"outcome": "pay", "trade": trade.out_trade_no,
                                                     "deliver": "never"})
        client.post(f"/pay/sandbox/{order.token}", {"outcome": "pay", "trade": trade.out_trade_no})
    assert sent == []  # the second press found the trade paid: nothing more is sent


def test_a_failed_payment_charges_nothing_and_offers_to_try_again(client, shop, sent):
    order, pay_url = order_from_landing(client, shop)
    response = client.post(pay_url, {"outcome": "fail"}, follow=True)
    assert "Payment failed. Nothing was charged; you can try again." in response.content.decode()
    assert 'id="sandbox-pay"' in response.content.decode()
    assert SandboxTrade.objects.get().paid_at is None and sent == []


def test_the_pay_page_of_a_paid_order_leads_to_the_order(client, shop, sent, django_capture_on_commit_callbacks):
    order, pay_url = order_from_landing(client, shop)
    pay(client, order, django_capture_on_commit_callbacks)
    response = client.get(pay_url)
    assert response.status_code == 302 and response["Location"] == f"/o/{order.token}"


def test_opening_the_pay_page_again_keeps_one_payment_and_one_trade(client, shop):
    order, pay_url = order_from_landing(client, shop)
    for _ in range(3):
        assert client.get(pay_url).status_code == 200
        assert client.get(f"/pay/sandbox/{order.token}").status_code == 200
    assert Payment.objects.count() == 1 and SandboxTrade.objects.count() == 1


def test_a_switched_off_sandbox_account_takes_no_payment_even_for_an_open_attempt(client, shop, sent):
    order, pay_url = order_from_landing(client, shop)
    PaymentConfig.objects.update(is_active=False)
    trade = SandboxTrade.objects.get()
    response = client.post(pay_url, {"outcome": "pay", "trade": trade.out_trade_no}, follow=True)
    assert "Online payment is not available for this shop right now." in response.content.decode()
    trade.refresh_from_db()
    assert trade.paid_at is None and sent == []


def test_the_sandbox_pay_page_is_gone_where_the_sandbox_is_switched_off(client, shop, settings):
    order, pay_url = order_from_landing(client, shop)
    settings.PAYMENTS_SANDBOX = False
    assert client.get(pay_url).status_code == 404
    assert client.post("/api/v1/payments/notify/sandbox/teahouse/", b"{}", content_type="application/json"
                       ).status_code == 404


def test_an_unknown_order_token_on_the_pay_page_is_404(client, db):
    assert client.get("/pay/sandbox/no-such-order").status_code == 404


def test_the_first_order_of_a_new_shop_gets_a_sandbox_account_with_a_random_secret(client, db):
    shop = sandbox_shop("newshop")
    shop.config.delete()
    order = placed_order(shop)
    started_payment(order)
    other = sandbox_shop("othershop")
    other.config.delete()
    started_payment(placed_order(other))
    secrets = list(PaymentConfig.objects.values_list("signing_secret", flat=True))
    assert len(secrets) == 2 and len(set(secrets)) == 2 and all(len(s) >= 32 for s in secrets)


def test_a_shop_whose_accounts_are_all_switched_off_takes_no_payment(shop):
    from orders.payments.services import PaymentUnavailable

    PaymentConfig.objects.update(is_active=False)
    with pytest.raises(PaymentUnavailable):
        started_payment(placed_order(shop))
    assert not Payment.objects.exists()


# --------------------------------------------------------------------------- the query sweep


def test_the_sweep_heals_a_payment_whose_notification_was_lost(client, shop, sent, django_capture_on_commit_callbacks):
    # Given a customer who paid, and a notification that never arrived
    order, _ = order_from_landing(client, shop)
    pay(client, order, django_capture_on_commit_callbacks, deliver="never")
    # When the sweep runs a few minutes later
    counts = payment_query_sweep(now=timezone.now() + timedelta(minutes=3))
    # Then it asked the provider and paid the order through the same path, recorded as a query
    assert counts == {"queried": 1, "paid": 1, "needs_review": 0, "errors": 0}
    order.refresh_from_db()
    assert order.status == Order.Status.PAID and order.pickup_code
    notification = PaymentNotification.objects.get()
    assert (notification.source, notification.status) == (PaymentNotification.Source.QUERY, NS.APPLIED)
    # and a repeated sweep, or the late notification itself, changes nothing
    assert payment_query_sweep(now=timezone.now() + timedelta(minutes=6))["queried"] == 0


def test_the_sweep_leaves_payments_younger_than_two_minutes_alone(client, shop):
    order, _ = order_from_landing(client, shop)
    assert payment_query_sweep()["queried"] == 0
    order.refresh_from_db()
    assert order.status == Order.Status.PENDING_PAYMENT


def test_the_sweep_closes_attempts_of_orders_cancelled_unpaid(client, shop):
    from orders.services import orders_cancel_unpaid

    order, _ = order_from_landing(client, shop)
    orders_cancel_unpaid(now=timezone.now() + timedelta(hours=1))
    counts = payment_query_sweep(now=timezone.now() + timedelta(hours=1))
    assert counts["queried"] == 1 and counts["paid"] == 0
    assert Payment.objects.get().status == PS.CLOSED
    assert payment_query_sweep(now=timezone.now() + timedelta(hours=2))["queried"] == 0  # asked no more


def test_an_unpaid_attempt_of_a_pending_order_stays_open_for_the_next_sweep(client, shop):
    order_from_landing(client, shop)
    assert payment_query_sweep(now=timezone.now() + timedelta(minutes=3))["paid"] == 0
    assert Payment.objects.get().status == PS.CREATED


def test_a_provider_that_cannot_be_asked_is_counted_and_asked_again_next_time(client, shop, monkeypatch):
    order_from_landing(client, shop)

    def unreachable(self, payment):
        raise ProviderError("connection timed out")

    monkeypatch.setattr(SandboxProvider, "query", unreachable)
    counts = payment_query_sweep(now=timezone.now() + timedelta(minutes=3))
    assert counts["errors"] == 1 and Payment.objects.get().status == PS.CREATED


def test_the_beat_tasks_run_their_sweeps(client, shop, sent, django_capture_on_commit_callbacks):
    order, _ = order_from_landing(client, shop)
    pay(client, order, django_capture_on_commit_callbacks, deliver="never")
    Payment.objects.update(created_at=timezone.now() - timedelta(minutes=5))
    assert tasks.payment_query_sweep.delay().get()["paid"] == 1
    assert tasks.payment_notifications_reapply.delay().get() == {
        "applied": 0, "still_deferred": 0, "given_up": 0, "other": 0,
    }
    assert tasks.refunds_resume.delay().get() == 0


def test_the_customers_ip_and_openid_reach_the_provider_for_its_choice_of_flow(client, monkeypatch, db):
    from orders.payments.services import payment_start

    shop = sandbox_shop("ipshop")
    order = placed_order(shop)
    seen = {}
    real = SandboxProvider.checkout

    def checkout(self, payment, **kwargs):
        seen.update(kwargs)
        return real(self, payment, **kwargs)

    monkeypatch.setattr(SandboxProvider, "checkout", checkout)
    url = payment_start(order=order, client_ip="203.0.113.7", openid="oUpF8uMuAJO")
    assert (seen["client_ip"], seen["openid"]) == ("203.0.113.7", "oUpF8uMuAJO")
    assert url.endswith(f"/{order.token}") or order.token in url  # the sandbox's one flow: its pay page


def test_ordering_from_the_landing_page_hands_the_customers_address_to_the_provider(shop, monkeypatch):
    """WeChat Pay H5 wants the payer's IP: the order form's hand-off passes the one the request came from."""
    seen = {}
    real = SandboxProvider.checkout

    def checkout(self, payment, **kwargs):
        seen.update(kwargs)
        return real(self, payment, **kwargs)

    monkeypatch.setattr(SandboxProvider, "checkout", checkout)
    order_from_landing(Client(REMOTE_ADDR="198.51.100.23"), shop)
    assert seen["client_ip"] == "198.51.100.23"
