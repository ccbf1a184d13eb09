"""A manager takes a hand-over back within the merchant's window: the voucher is valid again, the void is
recorded, nothing is deleted. Redemptions are read-only in the admin for everyone."""

from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from merchants.models import Merchant
from orders.models import Order, OrderEvent
from orders.pickups.errors import AlreadyVoided, NotAManager, VoidRefused, VoidWindowClosed
from orders.pickups.models import Redemption
from orders.pickups.services import pickup_redeem, redemption_void
from orders.pickups.signals import order_completion_voided
from tests.factories import UserFactory

from .conftest import signed_in

OS = Order.Status
# The Merchant field's default void window.
REDEMPTION_VOID_MINUTES_DEFAULT = Merchant._meta.get_field("redemption_void_minutes").default


def handed_over(shop, *, status=None, minutes_ago: float = 0) -> Redemption:
    order = shop.order()
    if status:
        Order.objects.filter(pk=order.pk).update(status=status)
    return pickup_redeem(
        code=order.pickup_code, cashier=shop.cashier, store=shop.xtd, channel="web",
        now=timezone.now() - timedelta(minutes=minutes_ago),
    )


def test_void_within_the_window_makes_the_voucher_valid_again(shop):
    redemption = handed_over(shop, minutes_ago=REDEMPTION_VOID_MINUTES_DEFAULT - 1)
    voided = redemption_void(redemption=redemption, manager=shop.manager, reason="Handed to the wrong customer")
    order = Order.objects.get(pk=redemption.order_id)
    assert order.status == OS.PAID and order.closed_at is None
    assert voided.voided_by == shop.manager and voided.void_reason == "Handed to the wrong customer"
    assert voided.voided_at is not None
    assert Redemption.objects.filter(pk=redemption.pk).exists()  # recorded, never deleted
    event = OrderEvent.objects.filter(order=order).last()
    assert (event.from_status, event.to_status, event.actor, event.channel) == (
        OS.PICKED_UP, OS.PAID, shop.manager, "admin",
    )
    assert "Handed to the wrong customer" in event.note
    # and the voucher can be handed over again, as a new redemption
    again = pickup_redeem(code=order.pickup_code, cashier=shop.cashier, store=shop.xtd, channel="web")
    assert again.pk != redemption.pk and Redemption.objects.filter(order=order).count() == 2


def test_void_puts_a_ready_for_pickup_order_back_to_ready(shop):
    redemption = handed_over(shop, status=OS.READY_FOR_PICKUP)
    redemption_void(redemption=redemption, manager=shop.manager, reason="Mistake")
    assert Order.objects.get(pk=redemption.order_id).status == OS.READY_FOR_PICKUP


def test_void_after_the_window_is_refused(shop):
    redemption = handed_over(shop, minutes_ago=REDEMPTION_VOID_MINUTES_DEFAULT + 1)
    with pytest.raises(VoidWindowClosed):
        redemption_void(redemption=redemption, manager=shop.manager, reason="Too late")
    assert Order.objects.get(pk=redemption.order_id).status == OS.PICKED_UP
    assert Redemption.objects.get(pk=redemption.pk).voided_at is None


def test_the_window_is_the_merchants_when_it_sets_one(shop):
    redemption = handed_over(shop, minutes_ago=5)
    Merchant.objects.filter(pk=shop.merchant.pk).update(redemption_void_minutes=3)
    with pytest.raises(VoidWindowClosed):
        redemption_void(redemption=Redemption.objects.get(pk=redemption.pk), manager=shop.manager, reason="x")


def test_only_a_manager_of_the_merchant_may_void(shop):
    redemption = handed_over(shop)
    rival_manager = UserFactory()
    from merchants.models import StaffRole

    StaffRole.objects.create(user=rival_manager, merchant=shop.rival_order.merchant, role="manager")
    for user in (shop.cashier, shop.analyst, rival_manager):
        with pytest.raises(NotAManager):
            redemption_void(redemption=redemption, manager=user, reason="Not mine to void")
    assert Redemption.objects.get(pk=redemption.pk).voided_at is None


def test_void_needs_a_reason_and_happens_once(shop):
    redemption = handed_over(shop)
    with pytest.raises(VoidRefused):
        redemption_void(redemption=redemption, manager=shop.manager, reason="   ")
    redemption_void(redemption=redemption, manager=shop.manager, reason="Mistake")
    with pytest.raises(AlreadyVoided):
        redemption_void(redemption=redemption, manager=shop.manager, reason="Mistake again")
    assert OrderEvent.objects.filter(order_id=redemption.order_id, to_status=OS.PAID).count() == 2  # paid, void


def test_void_of_an_order_refunded_since_is_refused(shop):
    redemption = handed_over(shop)
    Order.objects.filter(pk=redemption.order_id).update(status=OS.REFUNDED)
    with pytest.raises(VoidRefused):
        redemption_void(redemption=redemption, manager=shop.manager, reason="Mistake")
    assert Order.objects.get(pk=redemption.order_id).status == OS.REFUNDED
    assert Redemption.objects.get(pk=redemption.pk).voided_at is None


def test_void_tells_the_completion_hook(shop):
    redemption = handed_over(shop)
    heard = []

    def receiver(sender, order, reason, actor, **kwargs):
        heard.append((order.pk, order.status, reason, actor))

    order_completion_voided.connect(receiver)
    try:
        redemption_void(redemption=redemption, manager=shop.manager, reason="Mistake")
    finally:
        order_completion_voided.disconnect(receiver)
    assert heard == [(redemption.order_id, OS.PAID, "Mistake", shop.manager)]


# --------------------------------------------------------------------------- admin


def admin_url(view: str, *args) -> str:
    return reverse(f"admin:orders_redemption_{view}", args=args)


def test_manager_lists_their_merchants_redemptions_read_only(shop):
    redemption = handed_over(shop)
    manager = signed_in(shop.manager)
    listing = manager.get(admin_url("changelist"))
    assert listing.status_code == 200
    assert list(listing.context["cl"].result_list) == [redemption]
    detail = manager.get(admin_url("change", redemption.pk))
    assert detail.status_code == 200
    assert b"West Lake Longjing tea 250g" in detail.content and b"Void this hand-over" in detail.content
    assert b'name="_save"' not in detail.content
    assert manager.get(admin_url("add")).status_code == 403
    assert manager.post(admin_url("delete", redemption.pk), {"post": "yes"}).status_code == 403
    assert manager.post(admin_url("change", redemption.pk), {"void_reason": "edited"}).status_code == 403
    assert Redemption.objects.get(pk=redemption.pk).void_reason == ""


def test_superuser_cannot_change_or_delete_a_redemption_either(shop):
    redemption = handed_over(shop)
    platform = signed_in(UserFactory(is_staff=True, is_superuser=True))
    assert platform.get(admin_url("changelist")).status_code == 200
    assert platform.get(admin_url("add")).status_code == 403
    assert platform.post(admin_url("delete", redemption.pk), {"post": "yes"}).status_code == 403
    response = platform.post(
        admin_url("changelist"), {"action": "delete_selected", "_selected_action": [redemption.pk], "post": "yes"}
    )
    assert response.status_code in (200, 302)
    assert Redemption.objects.filter(pk=redemption.pk).exists()


def test_other_merchants_and_other_roles_do_not_see_redemptions(shop):
    redemption = handed_over(shop)
    from merchants.models import StaffRole

    rival_manager = UserFactory(is_staff=True)
    StaffRole.objects.create(user=rival_manager, merchant=shop.rival_order.merchant, role="manager")
    rival = signed_in(rival_manager)
    assert list(rival.get(admin_url("changelist")).context["cl"].result_list) == []
    assert rival.get(admin_url("change", redemption.pk)).status_code == 404
    assert rival.get(admin_url("void", redemption.pk)).status_code == 404
    assert signed_in(shop.analyst).get(admin_url("changelist")).status_code == 403
    cashier = signed_in(shop.cashier).get(admin_url("changelist"))
    assert cashier.status_code == 302 and "/admin/login/" in cashier["Location"]


def test_manager_voids_in_the_admin_with_a_reason(shop):
    redemption = handed_over(shop)
    manager = signed_in(shop.manager)
    page = manager.get(admin_url("void", redemption.pk))
    assert page.status_code == 200 and b"Why is this hand-over voided?" in page.content
    assert manager.post(admin_url("void", redemption.pk), {"reason": ""}).status_code == 200  # form error
    response = manager.post(admin_url("void", redemption.pk), {"reason": "Customer returned the set"}, follow=True)
    assert b"can be picked up again" in response.content
    redemption.refresh_from_db()
    assert redemption.void_reason == "Customer returned the set" and redemption.voided_by == shop.manager
    assert Order.objects.get(pk=redemption.order_id).status == OS.PAID


def test_void_page_after_the_window_says_it_is_too_late(shop):
    redemption = handed_over(shop, minutes_ago=REDEMPTION_VOID_MINUTES_DEFAULT + 5)
    manager = signed_in(shop.manager)
    assert b"Void this hand-over" not in manager.get(admin_url("change", redemption.pk)).content
    response = manager.post(admin_url("void", redemption.pk), {"reason": "late"}, follow=True)
    assert b"Too late to void" in response.content
    assert Order.objects.get(pk=redemption.order_id).status == OS.PICKED_UP


def test_the_redemption_inline_offered_for_the_order_page_shows_hand_overs_read_only(shop, monkeypatch):
    # orders/admin.py is not this package's: the inline is ready for OrderAdmin.inlines (see README/report).
    from django.contrib import admin as django_admin

    from orders.pickups.admin import RedemptionInline

    order_admin = django_admin.site._registry[Order]
    monkeypatch.setattr(order_admin, "inlines", [*order_admin.inlines, RedemptionInline])
    redemption = handed_over(shop)
    page = signed_in(shop.manager).get(reverse("admin:orders_order_change", args=[redemption.order_id]))
    assert page.status_code == 200
    html = page.content.decode()
    assert "Redemptions" in html and "wang.fang" in html and "Lotus Xintiandi" in html


def test_a_hand_over_recorded_before_units_were_counted_is_counted_by_the_migration_and_voids_cleanly(shop):
    """Orders handed over before 0007 had handed_over 0 on every line; 0010 counts them, so a void gives
    the units back like any other instead of going below zero."""
    import importlib

    from django.apps import apps

    from orders.models import OrderItem

    backfill = importlib.import_module("orders.migrations.0010_backfill_handed_over").backfill
    redemption = handed_over(shop)
    voided = handed_over(shop)
    redemption_void(redemption=voided, manager=shop.manager, reason="wrong customer")
    # As they were before 0007:
    OrderItem.objects.filter(order_id__in=[redemption.order_id, voided.order_id]).update(handed_over=0)

    backfill(apps, None)
    items = list(OrderItem.objects.filter(order_id=redemption.order_id))
    assert items and all(item.handed_over == item.quantity for item in items)
    assert not OrderItem.objects.filter(order_id=voided.order_id, handed_over__gt=0).exists()  # nothing to count

    redemption_void(redemption=redemption, manager=shop.manager, reason="handed to the wrong person")
    assert Order.objects.get(pk=redemption.order_id).status == Order.Status.PAID
    assert not OrderItem.objects.filter(order_id=redemption.order_id, handed_over__gt=0).exists()
