"""The notify URL end to end through the test client: what pays an order, what changes nothing twice,
and what is refused. Every notification is stored before anything acts on it."""

import logging
from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from orders.models import Order, OrderEvent, Payment, PaymentNotification
from orders.payments.services import payment_notifications_reapply
from orders.services import orders_cancel_unpaid
from tests.payments.sandbox_world import (
    notification_for,
    placed_order,
    post_notification,
    sandbox_shop,
    signed_notification,
    started_payment,
)

NS, PS = PaymentNotification.Status, Payment.Status


@pytest.fixture
def shop(db):
    return sandbox_shop("teahouse")


def paid_events(order: Order) -> int:
    return OrderEvent.objects.filter(order=order, to_status=Order.Status.PAID).count()


def test_a_signed_notification_pays_the_order_and_gives_it_a_voucher(client, shop):
    # Given a customer sent to pay 2 × 99.00
    order = placed_order(shop, quantity=2)
    payment = started_payment(order)
    assert payment.amount == Decimal("198.00") and payment.currency == "CNY"
    # When the provider's notification arrives
    response = post_notification(client, "teahouse", *notification_for(payment, transaction_id="SBX777"))
    # Then it is answered as the provider expects, and the payment and the order are paid once
    assert response.status_code == 200 and response.json() == {"code": "SUCCESS"}
    payment.refresh_from_db()
    order.refresh_from_db()
    assert payment.status == PS.PAID and payment.provider_trade_no == "SBX777" and payment.paid_at
    assert order.status == Order.Status.PAID and order.pickup_code and order.pickup_deadline
    notification = PaymentNotification.objects.get()
    assert (notification.status, notification.payment, notification.out_trade_no) == (
        NS.APPLIED,
        payment,
        payment.out_trade_no,
    )
    assert paid_events(order) == 1
    assert OrderEvent.objects.get(order=order, to_status="paid").channel == OrderEvent.Channel.API
    assert client.get(f"/o/{order.token}").content.decode().count(order.pickup_code[:4]) >= 1


def test_the_same_notification_delivered_again_and_again_changes_nothing_twice(client, shop):
    order = placed_order(shop)
    payment = started_payment(order)
    body, headers = notification_for(payment)
    answers = [post_notification(client, "teahouse", body, headers).status_code for _ in range(4)]
    order.refresh_from_db()
    code = order.pickup_code
    # Every copy is answered "got it" (so the provider stops), stored, and only the first did anything
    assert answers == [200] * 4
    assert sorted(PaymentNotification.objects.values_list("status", flat=True)) == [
        NS.APPLIED,
        NS.DUPLICATE,
        NS.DUPLICATE,
        NS.DUPLICATE,
    ]
    assert paid_events(order) == 1
    order.refresh_from_db()
    assert order.pickup_code == code  # the voucher was not re-issued


def test_a_replay_after_five_minutes_is_refused_and_changes_nothing(client, shop, caplog):
    # Given a notification captured when it was sent ten minutes ago, never applied
    order = placed_order(shop)
    payment = started_payment(order)
    body, headers = notification_for(payment, now=timezone.now() - timedelta(minutes=10))
    # When it is replayed now
    with caplog.at_level(logging.WARNING, logger="orders.payments"):
        response = post_notification(client, "teahouse", body, headers)
    # Then it is refused, kept as rejected, and the order stays unpaid
    assert response.status_code == 400
    assert PaymentNotification.objects.get().status == NS.REJECTED
    assert "5 minutes" in PaymentNotification.objects.get().error
    order.refresh_from_db()
    payment.refresh_from_db()
    assert order.status == Order.Status.PENDING_PAYMENT and payment.status == PS.CREATED
    assert "rejected" in caplog.text


def test_a_forged_notification_gets_400_a_warning_without_secrets_and_changes_nothing(client, shop, caplog):
    order = placed_order(shop)
    payment = started_payment(order)
    body, headers = notification_for(payment, secret="a-guessed-key")
    with caplog.at_level(logging.WARNING, logger="orders.payments"):
        response = post_notification(client, "teahouse", body, headers)
    assert response.status_code == 400
    notification = PaymentNotification.objects.get()
    assert notification.status == NS.REJECTED and notification.payment is None and notification.verified is None
    assert notification.body == body.decode()  # kept exactly as it came, for the audit
    order.refresh_from_db()
    payment.refresh_from_db()
    assert order.status == Order.Status.PENDING_PAYMENT and payment.status == PS.CREATED
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING and r.name == "orders.payments"]
    assert len(warnings) == 1 and "signature does not match" in warnings[0].getMessage()
    assert shop.config.signing_secret not in caplog.text and "a-guessed-key" not in caplog.text


@pytest.mark.parametrize("url_slug", ["nobody", "teahouse-2"])
def test_a_notification_for_an_unknown_merchant_is_404_and_stores_nothing(client, shop, url_slug):
    payment = started_payment(placed_order(shop))
    response = post_notification(client, url_slug, *notification_for(payment))
    assert response.status_code == 404
    assert not PaymentNotification.objects.exists()


@pytest.mark.parametrize("provider", ["paypal", "SANDBOX", "alipay"])
def test_a_notification_for_an_unknown_provider_or_account_is_404(client, shop, provider):
    payment = started_payment(placed_order(shop))
    response = post_notification(client, "teahouse", *notification_for(payment), provider=provider)
    assert response.status_code == 404
    assert not PaymentNotification.objects.exists()


def test_this_merchants_signature_on_another_merchants_url_is_rejected(client, shop):
    # Given a rival shop with its own sandbox account
    sandbox_shop("rival")
    order = placed_order(shop)
    payment = started_payment(order)
    # When our (valid) notification is posted to the rival's URL
    response = post_notification(client, "rival", *notification_for(payment))
    # Then the rival's key does not verify it, and nothing is paid anywhere
    assert response.status_code == 400
    assert PaymentNotification.objects.get().status == NS.REJECTED
    order.refresh_from_db()
    assert order.status == Order.Status.PENDING_PAYMENT


def test_a_notification_naming_another_merchants_payment_never_pays_it(client, shop):
    # Given the rival's payment, and a notification about it signed with *our* key on our URL
    rival = sandbox_shop("rival")
    rival_payment = started_payment(placed_order(rival))
    body, headers = signed_notification(shop.config, out_trade_no=rival_payment.out_trade_no, amount_minor=9900)
    response = post_notification(client, "teahouse", body, headers)
    # Then we look for it among our own payments only: it waits, and the rival's order stays unpaid
    assert response.status_code == 200
    assert PaymentNotification.objects.get().status == NS.DEFERRED
    rival_payment.refresh_from_db()
    assert rival_payment.status == PS.CREATED
    assert rival_payment.order.status == Order.Status.PENDING_PAYMENT


def test_a_notification_that_overtakes_its_payment_waits_and_is_applied_when_it_appears(client, shop):
    # Given a notification about a trade number whose payment is not visible yet
    order = placed_order(shop)
    body, headers = signed_notification(shop.config, out_trade_no="20261125ffffffffffffffffffff", amount_minor=9900)
    response = post_notification(client, "teahouse", body, headers)
    # Then it is kept (never a duplicate) and the provider is told we have it
    assert response.status_code == 200
    notification = PaymentNotification.objects.get()
    assert notification.status == NS.DEFERRED
    # When the payment commits, and the sweep runs
    payment = Payment.objects.create(
        merchant=shop.merchant,
        order=order,
        provider="sandbox",
        out_trade_no="20261125ffffffffffffffffffff",
        amount=order.total,
        currency=order.currency,
    )
    counts = payment_notifications_reapply()
    # Then the same notification pays the order
    assert counts["applied"] == 1
    notification.refresh_from_db()
    payment.refresh_from_db()
    order.refresh_from_db()
    assert notification.status == NS.APPLIED and notification.payment == payment
    assert payment.status == PS.PAID and order.status == Order.Status.PAID
    # and a second sweep finds nothing left to do
    assert payment_notifications_reapply()["applied"] == 0


def test_a_notification_whose_payment_never_appears_goes_to_review_after_three_days(client, shop):
    body, headers = signed_notification(shop.config, out_trade_no="20261125eeeeeeeeeeeeeeeeeeee", amount_minor=9900)
    post_notification(client, "teahouse", body, headers)
    counts = payment_notifications_reapply(now=timezone.now() + timedelta(days=3, minutes=1))
    assert counts["given_up"] == 1
    notification = PaymentNotification.objects.get()
    assert notification.status == NS.NEEDS_REVIEW and "3 days" in notification.error


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(wrong=st.integers(min_value=0, max_value=10**9).filter(lambda fen: fen != 9900))
def test_any_other_amount_puts_the_payment_in_review_and_never_pays_the_order(client, shop, wrong):
    order = placed_order(shop, phone=f"139{wrong % 10**8:08d}")
    payment = started_payment(order)
    response = post_notification(client, "teahouse", *notification_for(payment, amount_minor=wrong))
    assert response.status_code == 200  # we have it; staff take it from here
    payment.refresh_from_db()
    order.refresh_from_db()
    assert payment.status == PS.NEEDS_REVIEW and "99.00 CNY" in payment.review_reason
    assert payment.paid_at is not None  # the provider says money came in: it can be refunded
    assert order.status == Order.Status.PENDING_PAYMENT and not order.pickup_code
    assert PaymentNotification.objects.get(payment=payment).status == NS.NEEDS_REVIEW


def test_another_currency_puts_the_payment_in_review(client, shop):
    order = placed_order(shop)
    payment = started_payment(order)
    post_notification(client, "teahouse", *notification_for(payment, currency="USD"))
    payment.refresh_from_db()
    order.refresh_from_db()
    assert payment.status == PS.NEEDS_REVIEW and "USD" in payment.review_reason
    assert order.status == Order.Status.PENDING_PAYMENT


def test_money_for_an_order_cancelled_meanwhile_needs_review_and_the_order_stays_cancelled(client, shop):
    # Given an order cancelled by the unpaid sweep while the customer was paying
    order = placed_order(shop)
    payment = started_payment(order)
    assert orders_cancel_unpaid(now=timezone.now() + timedelta(hours=1)) == 1
    # When the provider reports the money
    response = post_notification(client, "teahouse", *notification_for(payment))
    # Then staff are told to refund it, and the order is not brought back to life
    assert response.status_code == 200
    payment.refresh_from_db()
    order.refresh_from_db()
    assert order.status == Order.Status.CANCELLED and not order.pickup_code
    assert payment.status == PS.NEEDS_REVIEW
    assert "after it was cancelled: refund the customer" in payment.review_reason


def test_a_second_payment_of_an_already_paid_order_needs_review(client, shop):
    # Given an order paid by one attempt, and a second attempt of the same order paid too
    order = placed_order(shop)
    first = started_payment(order)
    second = Payment.objects.create(
        merchant=shop.merchant,
        order=order,
        provider="sandbox",
        out_trade_no="20261125dddddddddddddddddddd",
        amount=order.total,
        currency=order.currency,
    )
    post_notification(client, "teahouse", *notification_for(first))
    post_notification(client, "teahouse", *notification_for(second, transaction_id="SBX2"))
    first.refresh_from_db()
    second.refresh_from_db()
    assert first.status == PS.PAID
    assert second.status == PS.NEEDS_REVIEW and "already paid: refund this payment" in second.review_reason
    assert paid_events(order) == 1


def test_a_notification_saying_not_paid_is_kept_and_ignored(client, shop):
    order = placed_order(shop)
    payment = started_payment(order)
    response = post_notification(client, "teahouse", *notification_for(payment, state="CLOSED"))
    assert response.status_code == 200
    assert PaymentNotification.objects.get().status == NS.IGNORED
    payment.refresh_from_db()
    assert payment.status == PS.CREATED


def test_credentials_in_request_headers_are_not_stored(client, shop):
    payment = started_payment(placed_order(shop))
    body, headers = notification_for(payment)
    client.cookies["sessionid"] = "someone-elses-session"
    post_notification(client, "teahouse", body, {**headers, "Authorization": "Token abc123"})
    stored = PaymentNotification.objects.get().headers
    assert "x-sandbox-signature" in stored
    assert not {"cookie", "authorization"} & set(stored)


def test_the_notify_url_needs_no_csrf_token_or_login(shop):
    from django.test import Client

    strict = Client(enforce_csrf_checks=True)
    payment = started_payment(placed_order(shop))
    assert post_notification(strict, "teahouse", *notification_for(payment)).status_code == 200


def test_a_get_on_the_notify_url_is_not_allowed(client, shop):
    assert client.get("/api/v1/payments/notify/sandbox/teahouse/").status_code == 405
    assert not PaymentNotification.objects.exists()
