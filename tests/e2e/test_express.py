"""Express orders in real headless Chromium: a manager ships an order from its admin page, uploads a
shipments file with mistakes and sees each one by line, then the customer's phone shows the parcel."""

import re
from datetime import timedelta
from pathlib import Path

import pytest
from django.conf import settings
from django.db.models import F
from django.urls import reverse
from django.utils import timezone
from playwright.sync_api import Browser, Page, expect

from orders.fulfilment import pickups_expire_overdue
from orders.models import Order
from orders.payments.models import SandboxTrade
from tests.orders.fulfilment_world import fulfilment_shop

SCREENSHOTS = Path(settings.BASE_DIR) / "var" / "screenshots"
PHONE = {"viewport": {"width": 390, "height": 844}, "is_mobile": True, "has_touch": True, "device_scale_factor": 2}
DESK = {"viewport": {"width": 1280, "height": 900}, "locale": "en-US"}
PASSWORD = "correct-horse-battery"

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def shot(page: Page, name: str) -> None:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / f"{name}.png"), full_page=True)


@pytest.fixture
def lotus(settings, live_server):
    settings.SITE_URL = live_server.url
    return fulfilment_shop("lotus")


@pytest.fixture
def contexts(browser: Browser, live_server):
    """New browser contexts (a desk and a phone in one test), closed before the live server stops: an open
    keep-alive connection to a stopped server ends in a thread error on its way out."""
    opened = []

    def new(**options):
        opened.append(browser.new_context(**options))
        return opened[-1]

    yield new
    for context in opened:
        context.close()


def admin_page(contexts, live_server, username: str) -> Page:
    page = contexts(**DESK).new_page()
    page.goto(f"{live_server.url}/admin/login/")
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name=re.compile("Log in", re.I)).click()
    page.wait_for_url(re.compile(r"/admin/$"))
    return page


def test_a_manager_ships_an_order_and_the_customer_sees_the_parcel_on_the_phone(contexts, live_server, lotus):
    order = lotus.order()
    page = admin_page(contexts, live_server, "lotus_manager")

    page.goto(live_server.url + reverse("admin:orders_order_change", args=[order.pk]))
    page.locator("#order-ship").click()
    expect(page.locator("#parcel-items")).to_contain_text("1")
    page.get_by_label("Carrier").select_option("SF")
    page.get_by_label("Tracking number").fill("sf 1234")  # a slip: a space in it
    shot(page, "express-1a-admin-ship-form")
    page.get_by_role("button", name="Mark shipped").click()
    expect(page.locator(".errorlist")).to_contain_text("letters, digits and inner hyphens")
    assert Order.objects.get(pk=order.pk).status == Order.Status.PAID
    shot(page, "express-1b-admin-ship-form-error")
    page.get_by_label("Tracking number").fill("sf1234567890123")
    page.get_by_role("button", name="Mark shipped").click()
    expect(page.locator(".messagelist")).to_contain_text(f"Order #{order.pk} shipped with SF Express SF1234567890123.")
    assert Order.objects.get(pk=order.pk).status == Order.Status.SHIPPED

    phone = contexts(**PHONE, locale="en-US").new_page()
    phone.goto(live_server.url + reverse("orders:order", args=[order.token]))
    expect(phone.locator(".banner")).to_have_text("On its way.")
    expect(phone.locator("#shipping")).to_contain_text("SF Express")
    expect(phone.locator("#tracking-number")).to_have_text("SF1234567890123")
    overflow = phone.evaluate("document.documentElement.scrollWidth - window.innerWidth")
    assert overflow <= 0, f"the order page is {overflow}px wider than the phone"
    shot(phone, "express-3-customer-order-shipped")

    page.goto(live_server.url + reverse("admin:orders_order_change", args=[order.pk]))
    shipping = page.get_by_role("group", name="Parcel")
    expect(shipping).to_contain_text("SF Express (SF)")
    expect(shipping).to_contain_text("SF1234567890123")
    shipping.scroll_into_view_if_needed()
    page.screenshot(path=str(SCREENSHOTS / "express-5-admin-order-shipping.png"))
    page.locator("#order-deliver").click()
    page.get_by_role("button", name="Mark delivered").click()
    phone.reload()
    expect(phone.locator(".banner")).to_have_text("Completed. Enjoy!")
    expect(phone.locator("#shipping")).to_contain_text("Delivered")
    shot(phone, "express-4-customer-order-delivered")


def test_a_shipments_file_with_mistakes_lists_them_by_line_and_imports_nothing(
    contexts, live_server, lotus, tmp_path
):
    a, b, pickup = lotus.order(), lotus.order(), lotus.order(fulfilment="pickup")
    bad = tmp_path / "shipments.csv"
    bad.write_text(
        "order,carrier,tracking_number\n"
        f"{a.pk},SF,SF1234567890123\n"
        f"{b.pk},DHL,JD0001\n"
        f"{pickup.pk},ZTO,773012345678901\n"
        "99999,顺丰,SF1234567890124\n",
        encoding="utf-8",
    )
    page = admin_page(contexts, live_server, "lotus_manager")

    page.goto(live_server.url + reverse("admin:orders_order_changelist"))
    page.locator("#import-shipments").click()
    page.get_by_label("Shipments file (CSV)").set_input_files(str(bad))
    page.get_by_role("button", name="Check and import").click()

    expect(page.locator("#import-refused")).to_contain_text("The file has 3 problems. Nothing was imported")
    rows = page.locator("#import-problems tbody tr")
    expect(rows).to_have_count(3)
    expect(rows.nth(0)).to_contain_text("Unknown carrier “DHL”")
    expect(rows.nth(1)).to_contain_text(f"Order #{pickup.pk} is for pickup in store")
    expect(rows.nth(2)).to_contain_text("Unknown order #99999.")
    shot(page, "express-2-admin-import-errors")
    assert set(Order.objects.filter(pk__in=[a.pk, b.pk]).values_list("status", flat=True)) == {Order.Status.PAID}


def test_a_manager_ships_two_selected_orders_from_the_list(contexts, live_server, lotus):
    a, b = lotus.order(), lotus.order()
    page = admin_page(contexts, live_server, "lotus_manager")

    page.goto(live_server.url + reverse("admin:orders_order_changelist"))
    page.locator(f"input[name=_selected_action][value='{a.pk}']").check()
    page.locator(f"input[name=_selected_action][value='{b.pk}']").check()
    page.locator("select[name=action]").select_option("ship_selected")
    page.get_by_role("button", name="Go").click()
    page.locator(f"select[name=carrier-{a.pk}]").select_option("SF")
    page.locator(f"input[name=tracking-{a.pk}]").fill("SF1234567890123")
    page.locator(f"select[name=carrier-{b.pk}]").select_option("ZTO")
    page.locator(f"input[name=tracking-{b.pk}]").fill("7730 1234")  # a slip
    page.get_by_role("button", name="Mark shipped").click()
    expect(page.locator("#ship-selected .errorlist")).to_contain_text("letters, digits and inner hyphens")
    shot(page, "express-6-admin-ship-selected-error")
    assert set(Order.objects.filter(pk__in=[a.pk, b.pk]).values_list("status", flat=True)) == {Order.Status.PAID}

    page.locator(f"input[name=tracking-{b.pk}]").fill("773012345678901")
    page.get_by_role("button", name="Mark shipped").click()
    expect(page.locator(".messagelist")).to_contain_text("2 orders marked shipped.")
    assert set(Order.objects.filter(pk__in=[a.pk, b.pk]).values_list("status", flat=True)) == {Order.Status.SHIPPED}


def test_a_manager_finds_a_failed_refund_on_the_needs_attention_list_and_clears_it(
    contexts, live_server, lotus
):
    order = lotus.order(fulfilment="pickup")
    lotus.order(fulfilment="pickup")  # a calm one, not on the list
    Order.objects.filter(pk=order.pk).update(pickup_deadline=timezone.now() - timedelta(minutes=5))
    SandboxTrade.objects.filter(out_trade_no=lotus.payment(order).out_trade_no).update(
        refunded_minor=F("amount_minor")
    )
    pickups_expire_overdue()
    page = admin_page(contexts, live_server, "lotus_manager")

    page.goto(live_server.url + reverse("admin:orders_order_changelist"))
    page.locator("#changelist-filter").get_by_role("link", name="Needs attention", exact=True).click()
    expect(page.locator("#result_list tbody tr")).to_have_count(1)
    expect(page.locator("#result_list tbody tr")).to_contain_text("⚠ needs attention")
    shot(page, "overdue-1-admin-needs-attention-list")
    page.locator("#result_list tbody tr th a").click()
    expect(page.get_by_role("group", name="Needs attention")).to_contain_text(
        "The provider refused the automatic refund"
    )
    page.locator("#order-attention-clear").click()
    page.get_by_label("What was done").fill("Refunded 99.00 by bank transfer; provider ticket 4411")
    page.get_by_role("button", name="Clear the flag").click()

    expect(page.locator(".messagelist")).to_contain_text(f"Order #{order.pk} is off the needs-attention list.")
    assert not Order.objects.get(pk=order.pk).needs_attention
