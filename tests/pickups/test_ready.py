"""Ready for pickup: staff mark paid pickup orders ready (one, or many at once); each customer is told once
(SMS, and e-mail when they gave one); everything else is left alone and reported with the reason; no
one sees or moves another merchant's orders."""

from datetime import timedelta

import pytest
from django.contrib.messages import get_messages
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from members.models import Member, Notification
from orders.models import Order, OrderEvent
from orders.pickups.ready import NotMarkedReady, order_mark_ready, orders_mark_ready
from tests.factories import promotion, staff
from tests.members import fakes

from .conftest import paid_order, signed_in
from .test_queries import statements

OS = Order.Status


@pytest.fixture(autouse=True)
def recorded_sms(settings):
    settings.NOTIFICATIONS_SMS_BACKEND = "tests.members.fakes.RecordingSMS"
    settings.NOTIFICATIONS_EMAIL_BACKEND = "members.notifications.backends.EmailBackend"
    fakes.SENT.clear()
    return fakes.SENT


def test_marking_an_order_ready_moves_it_and_tells_the_customer_by_sms(
    shop, recorded_sms, mailoutbox, django_capture_on_commit_callbacks
):
    order = shop.order(phone="13812345678")
    with django_capture_on_commit_callbacks(execute=True):
        ready = order_mark_ready(order=order, actor=shop.manager)
    assert ready.status == OS.READY_FOR_PICKUP and ready.ready_at is not None
    event = OrderEvent.objects.filter(order=order).last()
    assert (event.from_status, event.to_status, event.actor, event.channel) == (
        OS.PAID, OS.READY_FOR_PICKUP, shop.manager, "admin",
    )
    # One SMS to the member's phone, naming the store and the order page; no e-mail (they gave none).
    assert [sms["to"] for sms in recorded_sms] == ["+8613812345678"]
    assert "Lotus Xintiandi" in recorded_sms[0]["body"] and f"/o/{order.token}" in recorded_sms[0]["body"]
    assert mailoutbox == []
    sms = Notification.objects.get()
    assert (sms.channel, sms.status, sms.attempts, sms.provider_reference) == ("sms", "sent", 1, "gw-1")


def test_a_member_with_an_e_mail_also_gets_an_e_mail(shop, recorded_sms, mailoutbox,
                                                     django_capture_on_commit_callbacks):
    order = shop.order()
    Member.objects.filter(pk=order.member_id).update(email="mei@example.com")
    with django_capture_on_commit_callbacks(execute=True):
        order_mark_ready(order=order, actor=shop.manager)
    assert len(recorded_sms) == 1
    assert [mail.to for mail in mailoutbox] == [["mei@example.com"]]
    assert mailoutbox[0].subject == "Ready for pickup: Longjing tea gift set"
    assert f"/o/{order.token}" in mailoutbox[0].body
    assert sorted(Notification.objects.values_list("channel", "status")) == [("email", "sent"), ("sms", "sent")]


def test_nothing_is_told_when_the_transaction_that_marked_it_rolls_back(shop, recorded_sms,
                                                                       django_capture_on_commit_callbacks):
    from django.db import transaction

    order = shop.order()
    with django_capture_on_commit_callbacks(execute=True) as published:
        with pytest.raises(RuntimeError), transaction.atomic():
            order_mark_ready(order=order, actor=shop.manager)
            raise RuntimeError("something after it failed")
    assert published == [] and recorded_sms == []
    assert Order.objects.get(pk=order.pk).status == OS.PAID and not Notification.objects.exists()


def test_marking_it_ready_again_is_refused_and_tells_nobody_twice(shop, recorded_sms,
                                                                  django_capture_on_commit_callbacks):
    order = shop.order()
    with django_capture_on_commit_callbacks(execute=True):
        order_mark_ready(order=order, actor=shop.manager)
        with pytest.raises(NotMarkedReady) as refused:
            order_mark_ready(order=order, actor=shop.manager)
    assert refused.value.reason == "already_ready" and refused.value.message == "Already ready for pickup."
    assert len(recorded_sms) == 1 and Notification.objects.count() == 1


def _orders_in_every_state(shop):
    paid = [shop.order() for _ in range(3)]
    pending = shop.order()
    Order.objects.filter(pk=pending.pk).update(status=OS.PENDING_PAYMENT)
    ready = shop.order()
    Order.objects.filter(pk=ready.pk).update(status=OS.READY_FOR_PICKUP)
    picked_up = shop.order()
    Order.objects.filter(pk=picked_up.pk).update(status=OS.PICKED_UP)
    late = shop.order()
    Order.objects.filter(pk=late.pk).update(pickup_deadline=timezone.now() - timedelta(hours=1))
    express = shop.order()
    Order.objects.filter(pk=express.pk).update(fulfilment="express")
    return paid, {
        pending.pk: "not_paid", ready.pk: "already_ready", picked_up.pk: "closed", late.pk: "past_deadline",
        express.pk: "not_pickup", shop.rival_order.pk: "not_found", 999_999: "not_found",
    }


def test_bulk_moves_the_paid_ones_and_says_why_it_skipped_each_other(shop, recorded_sms,
                                                                     django_capture_on_commit_callbacks):
    paid, skipped = _orders_in_every_state(shop)
    with django_capture_on_commit_callbacks(execute=True):
        outcome = orders_mark_ready(order_ids=[o.pk for o in paid] + list(skipped), actor=shop.manager)
    assert outcome.moved == sorted(o.pk for o in paid)
    assert outcome.skipped == skipped
    assert set(Order.objects.filter(status=OS.READY_FOR_PICKUP).values_list("pk", flat=True)) == {
        *outcome.moved, *[pk for pk, why in skipped.items() if why == "already_ready"]
    }
    assert Order.objects.get(pk=shop.rival_order.pk).status == OS.PAID  # the rival's order untouched
    assert len(recorded_sms) == 3 and outcome.notifications == 3


def test_bulk_costs_the_same_queries_for_three_orders_or_thirty(shop):
    small = [shop.order().pk for _ in range(3)]
    large = [shop.order().pk for _ in range(30)]
    manager = type(shop.manager).objects.get(pk=shop.manager.pk)
    orders_mark_ready(order_ids=[shop.order().pk], actor=manager)  # the staff role is read once per user
    counts = []
    for ids in (small, large):
        with CaptureQueriesContext(connection) as context:
            outcome = orders_mark_ready(order_ids=[*ids, 999_999], actor=manager)
        assert len(outcome.moved) == len(ids) and outcome.skipped == {999_999: "not_found"}
        counts.append(statements(context))
    # lock + read, update, events, notifications, their ids, the skipped ones' reasons
    assert len(counts[0]) == len(counts[1]) == 6, counts[1]


def test_a_cashier_marks_ready_only_orders_of_their_own_stores(shop):
    here, there = shop.order(store=shop.xtd), shop.order(store=shop.jingan)
    outcome = orders_mark_ready(order_ids=[here.pk, there.pk], actor=shop.cashier)
    assert outcome.moved == [here.pk] and outcome.skipped == {there.pk: "not_found"}


def test_analysts_and_other_merchants_staff_move_nothing(shop):
    order = shop.order()
    rival_manager = staff(shop.rival_order.merchant, "manager", username="rival.boss")
    for user in (shop.analyst, rival_manager, shop.rival_cashier):
        outcome = orders_mark_ready(order_ids=[order.pk], actor=user)
        assert outcome.moved == [] and outcome.skipped == {order.pk: "not_found"}
    assert Order.objects.get(pk=order.pk).status == OS.PAID and not Notification.objects.exists()


# --------------------------------------------------------------------------- admin


def changelist_action(client, ids):
    return client.post(
        reverse("admin:orders_order_changelist"),
        {"action": "mark_ready_for_pickup", "_selected_action": [str(pk) for pk in ids]}, follow=True,
    )


def test_manager_marks_orders_ready_from_the_order_list(shop, django_capture_on_commit_callbacks, recorded_sms):
    paid = [shop.order(), shop.order()]
    pending = shop.order()
    Order.objects.filter(pk=pending.pk).update(status=OS.PENDING_PAYMENT)
    client = signed_in(shop.manager)
    with django_capture_on_commit_callbacks(execute=True):
        response = changelist_action(client, [o.pk for o in paid] + [pending.pk])
    assert response.status_code == 200
    said = [str(m) for m in get_messages(response.wsgi_request)]
    assert "2 orders marked ready for pickup; their customers are being told." in said
    assert f"1 order left as it was (#{pending.pk}): Not paid yet." in said
    assert len(recorded_sms) == 2


def test_the_order_page_has_a_ready_button_that_marks_it_ready(shop, django_capture_on_commit_callbacks):
    order = shop.order()
    client = signed_in(shop.manager)
    page = client.get(reverse("admin:orders_order_change", args=[order.pk]))
    assert b'id="mark-ready"' in page.content and b"Mark ready for pickup and tell the customer" in page.content
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(reverse("admin:orders_order_ready", args=[order.pk]), follow=True)
    assert Order.objects.get(pk=order.pk).status == OS.READY_FOR_PICKUP
    html = response.content.decode()
    assert "1 order marked ready for pickup" in html
    assert 'id="mark-ready"' not in html and "Ready for pickup" in html
    assert "+8613912" in html and "Sent" in html  # the notification, on the order page


def test_another_merchants_manager_can_neither_mark_ready_nor_see_the_notifications(
    shop, django_capture_on_commit_callbacks
):
    order = shop.order()
    with django_capture_on_commit_callbacks(execute=True):
        order_mark_ready(order=order, actor=shop.manager)
    other = shop.order()
    rival = signed_in(staff(shop.rival_order.merchant, "manager", username="rival.boss"))
    assert rival.post(reverse("admin:orders_order_ready", args=[other.pk])).status_code == 404
    changelist_action(rival, [other.pk])
    assert Order.objects.get(pk=other.pk).status == OS.PAID
    listing = rival.get(reverse("admin:members_notification_changelist"))
    assert listing.status_code == 200 and list(listing.context["cl"].result_list) == []
    notification = Notification.objects.get()
    assert rival.get(reverse("admin:members_notification_change", args=[notification.pk])).status_code == 404
    # while our manager sees it, read-only
    ours = signed_in(shop.manager)
    assert list(ours.get(reverse("admin:members_notification_changelist")).context["cl"].result_list) == [
        notification
    ]
    assert ours.post(reverse("admin:members_notification_delete", args=[notification.pk]), {"post": "yes"}
                     ).status_code == 403


def test_analysts_get_no_ready_action_and_no_ready_url(shop):
    order = shop.order()
    analyst = signed_in(shop.analyst)
    page = analyst.get(reverse("admin:orders_order_changelist"))
    assert b"mark_ready_for_pickup" not in page.content
    assert analyst.post(reverse("admin:orders_order_ready", args=[order.pk])).status_code == 403
    assert Order.objects.get(pk=order.pk).status == OS.PAID


# --------------------------------------------------------------------------- API


def test_pos_marks_an_order_ready_by_its_code(shop, django_capture_on_commit_callbacks, recorded_sms):
    order = shop.order()
    client = signed_in(shop.cashier)
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(f"/api/v1/pickups/{order.pickup_code.lower()}/ready/")
    assert response.status_code == 200, response.json()
    body = response.json()
    assert body["order"] == order.pk and body["status"] == "ready_for_pickup" and body["ready_at"]
    assert len(recorded_sms) == 1
    again = client.post(f"/api/v1/pickups/{order.pickup_code}/ready/")
    assert again.status_code == 409 and again.json()["reason"] == "already_ready"
    assert OrderEvent.objects.filter(order=order, channel="api", to_status=OS.READY_FOR_PICKUP).count() == 1


def test_api_ready_of_another_store_or_merchant_is_an_unknown_code(shop):
    elsewhere = shop.order(store=shop.jingan)
    client = signed_in(shop.cashier)  # serves Xintiandi only
    for code in (elsewhere.pickup_code, shop.rival_order.pickup_code, "ZZZZZZZZZZ"):
        response = client.post(f"/api/v1/pickups/{code}/ready/")
        assert response.status_code == 404 and response.json()["code"] == "unknown_code", code
    assert Order.objects.get(pk=elsewhere.pk).status == OS.PAID
    assert Order.objects.get(pk=shop.rival_order.pk).status == OS.PAID
    assert signed_in(shop.analyst).post(f"/api/v1/pickups/{elsewhere.pickup_code}/ready/").status_code == 403


def test_api_bulk_ready_reports_moved_and_skipped(shop):
    paid = shop.order()
    pending = shop.order()
    Order.objects.filter(pk=pending.pk).update(status=OS.PENDING_PAYMENT)
    response = signed_in(shop.manager).post(
        "/api/v1/pickups/ready/", {"orders": [paid.pk, pending.pk, shop.rival_order.pk]},
        content_type="application/json",
    )
    assert response.status_code == 200
    assert response.json() == {
        "moved": [paid.pk],
        "skipped": sorted([
            {"order": pending.pk, "reason": "not_paid", "detail": "Not paid yet."},
            {"order": shop.rival_order.pk, "reason": "not_found", "detail": "No such order of yours."},
        ], key=lambda row: row["order"]),
    }
    bad = signed_in(shop.manager).post("/api/v1/pickups/ready/", {"orders": ["x"]}, content_type="application/json")
    assert bad.status_code == 400 and "orders" in bad.json()


# --------------------------------------------------------------------------- the voucher


def test_the_voucher_says_ready_for_pickup_since_when(shop, client):
    order = shop.order()
    order_mark_ready(order=order, actor=shop.manager, now=timezone.now().replace(hour=6, minute=5))
    page = client.get(f"/o/{order.token}").content.decode()
    assert 'id="ready-banner"' in page and "Ready for pickup since" in page and "14:05" in page


def test_orders_of_another_merchant_with_paid_pickups_stay_paid(db, shop):
    rival_offer = promotion(shop.rival_order.merchant, stores=[shop.rival_order.pickup_store])
    theirs = paid_order(rival_offer, shop.rival_order.pickup_store)
    orders_mark_ready(order_ids=[theirs.pk], actor=shop.manager)
    assert Order.objects.get(pk=theirs.pk).status == OS.PAID
