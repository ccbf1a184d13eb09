"""Partial pickup in real headless Chromium on a phone: the cashier steps a line down, hands over part,
sees what is still to collect, later hands over the rest; the customer's voucher shows it is ready and
what is left."""

import re

import pytest
from playwright.sync_api import Page, expect

from members.models import Notification
from orders.models import Order
from orders.pickups.ready import order_mark_ready

from .test_cashier_browser import PHONE, assert_fits_phone, assert_tappable, shot, sign_in
from .test_partial import counts, lines_of

pytestmark = [
    pytest.mark.browser,
    pytest.mark.django_db(transaction=True),
    pytest.mark.browser_context_args(**PHONE, locale="en-US"),
]


def test_cashier_hands_over_part_now_and_the_rest_later_on_a_phone(page: Page, live_server, shop):
    order = shop.order(quantity=2, phone="13812345678")  # 2 teas, 4 cups
    order_mark_ready(order=order, actor=shop.manager)
    tea, cup = lines_of(order).values()

    sign_in(page, live_server, "wang.fang", next_path=f"/cashier/%3Fcode%3D{order.pickup_code}")
    expect(page.locator(".verdict.go .word")).to_have_text("OK to hand over")
    expect(page.locator(f"#qty-{cup.pk}")).to_have_value("4")
    assert_tappable(page, ".stepper .step", min_height=52)
    # One cup fewer, twice: the button now says it hands over part
    minus = page.locator(f"#qty-{cup.pk}").locator("xpath=preceding-sibling::button")
    minus.click()
    minus.click()
    expect(page.locator(f"#qty-{cup.pk}")).to_have_value("2")
    expect(page.locator("#hand-over")).to_have_text("Hand over 4 of 6")
    assert_fits_phone(page)
    box = page.locator("#hand-over").bounding_box()
    assert box["y"] + box["height"] <= 844 and box["width"] >= 300
    shot(page, "partial-1-choose-part")

    page.locator("#hand-over").click()
    page.wait_for_url(re.compile(r"/cashier/redeemed/\d+/$"))
    expect(page.locator(".verdict.ok .word")).to_have_text("Handed over")
    expect(page.locator("#still-left")).to_contain_text("2 × Celadon tea cup")
    expect(page.locator("#still-left")).to_contain_text("The voucher stays valid for the rest.")
    assert counts(order) == {"tea": (2, 2), "cup": (2, 4)}
    assert_fits_phone(page)
    shot(page, "partial-2-part-handed-over")

    # The customer's voucher, on their phone: ready since when, and what is left to collect
    customer = page.context.new_page()
    customer.goto(f"{live_server.url}/o/{order.token}")
    expect(customer.locator("#ready-banner")).to_contain_text("Ready for pickup since")
    expect(customer.locator(".line-left")).to_have_text([re.compile(r"2 collected\s*✓ all collected"),
                                                         re.compile(r"2 collected\s*2 left to collect")])
    assert_fits_phone(customer)
    shot(customer, "partial-3-voucher-ready-with-rest")
    customer.close()

    # Later: the rest
    page.locator("#next-customer").click()
    page.locator("#code").fill(order.pickup_code)
    page.locator("#look-up").click()
    expect(page.locator(".verdict.go .word")).to_have_text("OK to hand over the rest")
    expect(page.locator("#collected")).to_contain_text("at Lotus Xintiandi by wang.fang")
    expect(page.locator("#collected")).to_contain_text("2 × West Lake Longjing tea 250g, 2 × Celadon tea cup")
    expect(page.locator(f"#qty-{tea.pk}")).to_have_count(0)
    expect(page.locator(f"#qty-{cup.pk}")).to_have_value("2")
    expect(page.locator("#hand-over")).to_have_text("Hand over")
    assert_fits_phone(page)
    shot(page, "partial-4-the-rest")
    page.locator("#hand-over").click()
    page.wait_for_url(re.compile(r"/cashier/redeemed/\d+/$"))
    expect(page.locator("#still-left")).to_have_count(0)
    assert Order.objects.get(pk=order.pk).status == Order.Status.PICKED_UP

    # and a third try is "already handed over"
    page.locator("#next-customer").click()
    page.locator("#code").fill(order.pickup_code)
    page.locator("#look-up").click()
    expect(page.locator("#outcome")).to_have_attribute("data-outcome", "already_redeemed")
    assert Notification.objects.filter(order=order, status="sent").count() == 1


def test_stepping_every_line_to_zero_leaves_nothing_to_tap(page: Page, live_server, shop):
    order = shop.order()
    sign_in(page, live_server, "wang.fang", next_path=f"/cashier/%3Fcode%3D{order.pickup_code}")
    for minus in page.locator('.step[data-step="-1"]').all():
        for _ in range(3):
            minus.click()
    expect(page.locator("#hand-over")).to_be_disabled()
    page.locator('.step[data-step="1"]').first.click()
    expect(page.locator("#hand-over")).to_be_enabled()
    expect(page.locator("#hand-over")).to_have_text("Hand over 1 of 3")
