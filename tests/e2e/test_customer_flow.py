"""A customer on a phone: scan a wall QR, order, pay in the sandbox, get the voucher (real Chromium)."""

import io
import re
from decimal import Decimal
from pathlib import Path

import pytest
import zxingcpp
from django.conf import settings
from PIL import Image
from playwright.sync_api import Page, expect

from orders.models import Order, Scan
from orders.qr import voucher_url
from tests.factories import MerchantFactory, ProductFactory, StoreFactory, promotion

SCREENSHOTS = Path(settings.BASE_DIR) / "var" / "screenshots"
PHONE = {"viewport": {"width": 390, "height": 844}, "is_mobile": True, "has_touch": True, "device_scale_factor": 2}

pytestmark = [
    pytest.mark.browser,
    pytest.mark.django_db(transaction=True),
    pytest.mark.browser_context_args(**PHONE, locale="en-US"),
]



def shot(page: Page, name: str) -> None:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / f"{name}.png"), full_page=True)


def assert_fits_phone(page: Page) -> None:
    """Nothing wider than the screen: a phone user must never scroll sideways."""
    overflow = page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
    assert overflow <= 0, f"page is {overflow}px wider than the phone screen"


def assert_tappable(page: Page, selector: str, *, min_height: int = 44) -> None:
    box = page.locator(selector).first.bounding_box()
    assert box and box["height"] >= min_height, f"{selector} is {box} (tap targets need {min_height}px)"


@pytest.fixture
def shop(settings, live_server):
    # The sandbox sends its signed payment notification over HTTP to SITE_URL, as a provider would.
    settings.SITE_URL = live_server.url
    merchant = MerchantFactory(slug="lotus", name="Lotus Department Store")
    store = StoreFactory(
        merchant=merchant, name="Lotus Xintiandi", code="xtd", address="123 Madang Road, Huangpu",
        opening_hours="Mon–Sun 10:00–22:00",
        pickup_instructions="Pickup counter: B1, next to the cashier window 3. Show the QR code.",
    )
    other = StoreFactory(merchant=merchant, name="Lotus Jing'an", code="jingan", address="1 Nanjing West Road")
    tea = ProductFactory(merchant=merchant, name="West Lake Longjing tea 250g", sku="LJ-250")
    promo = promotion(
        merchant, products=[(tea, 1)], stores=[store, other], title="Longjing tea 250g spring harvest",
        promo_price=Decimal("99.00"), original_price=Decimal("268.00"), stock_cap=30, per_member_limit=3,
        allow_express=True, shipping_fee=Decimal("12.00"),
        description="Hand-fried spring tea from the West Lake hills, vacuum packed.",
    )
    return promo, store, other


def test_customer_orders_for_pickup_pays_and_sees_the_voucher(page: Page, live_server, shop):
    promo, store, _other = shop
    page.goto(f"{live_server.url}/p/{promo.wall_code}?s={store.code}")

    # The landing page: price, stock, the store where the QR hung.
    expect(page.locator("h1")).to_have_text(promo.title)
    expect(page.locator(".price .promo")).to_have_text("¥99.00")
    expect(page.locator(".price .was")).to_have_text("¥268.00")
    expect(page.get_by_text("30 left")).to_be_visible()
    expect(page.locator(".store")).to_contain_text("Lotus Xintiandi")
    assert Scan.objects.filter(promotion=promo, store=store).count() == 1
    assert_fits_phone(page)
    shot(page, "customer-1-landing")

    # Pickup is the default and the scanned store is preselected; the delivery fields are hidden.
    expect(page.get_by_label("Pickup store")).to_be_visible()
    expect(page.get_by_label("Pickup store")).to_have_value(store.code)
    expect(page.get_by_label("Delivery address")).to_be_hidden()

    page.get_by_label("Quantity").fill("2")
    page.get_by_label("Mobile phone").fill("138 1234 5678")
    page.get_by_label("Pickup in store").check()
    expect(page.locator("#pay")).to_contain_text("¥198.00")
    assert_tappable(page, "#pay")
    assert_tappable(page, "#id_phone")
    assert_tappable(page, ".choices label")
    shot(page, "customer-2-form-filled")

    page.locator("#pay").click()
    page.wait_for_url(re.compile(r"/pay/sandbox/"))
    expect(page.locator("#amount")).to_have_text("¥198.00")
    assert_fits_phone(page)
    shot(page, "customer-3-sandbox-pay")

    page.locator("#sandbox-pay").click()
    page.wait_for_url(re.compile(r"/o/"))
    order = Order.objects.get()
    assert order.status == Order.Status.PAID
    assert order.pickup_code and len(order.pickup_code) == 10
    assert order.total == Decimal("198.00") and order.pickup_store == store

    voucher = page.locator(".voucher")
    expect(voucher.locator("svg")).to_be_visible()
    code = order.pickup_code
    expect(page.locator("#pickup-code")).to_have_text(f"{code[:4]}-{code[4:8]}-{code[8:]}")
    expect(page.get_by_text("Pickup counter: B1, next to the cashier window 3.")).to_be_visible()
    expect(page.get_by_text("Paid. Show this voucher at the pickup counter.")).to_be_visible()
    # The voucher QR is big enough for a counter scanner, and the code does not spill off the screen.
    qr = voucher.locator("svg")
    box, drawing = qr.bounding_box(), qr.locator("path").bounding_box()
    assert box and box["width"] >= 240
    assert drawing and drawing["width"] >= 0.8 * box["width"], "the QR drawing must fill its box, not sit small in it"
    # What a counter scanner sees on the phone screen decodes to the voucher's link.
    decoded = zxingcpp.read_barcodes(Image.open(io.BytesIO(qr.screenshot())))
    assert [b.text for b in decoded] == [voucher_url(pickup_code=code)]
    assert_fits_phone(page)
    shot(page, "customer-4-voucher")


def test_customer_orders_express_delivery_through_to_paid(page: Page, live_server, shop):
    promo, store, _other = shop
    page.goto(f"{live_server.url}/p/{promo.wall_code}?s={store.code}")

    page.get_by_label("Quantity").fill("1")
    page.get_by_label("Mobile phone").fill("13900001111")
    page.get_by_label("Express delivery").check()
    # Choosing delivery swaps the store picker for the address fields, and adds the shipping fee.
    expect(page.get_by_label("Pickup store")).to_be_hidden()
    expect(page.get_by_label("Delivery address")).to_be_visible()
    expect(page.locator("#pay")).to_contain_text("¥111.00")

    page.get_by_label("Recipient", exact=True).fill("Li Lei")
    page.get_by_label("Delivery address").fill("Room 1201, 88 Century Avenue, Pudong, Shanghai")
    assert_fits_phone(page)
    shot(page, "customer-5-express-form")

    page.locator("#pay").click()
    page.wait_for_url(re.compile(r"/pay/sandbox/"))
    expect(page.locator("#amount")).to_have_text("¥111.00")
    page.locator("#sandbox-pay").click()
    page.wait_for_url(re.compile(r"/o/"))

    order = Order.objects.get()
    assert order.status == Order.Status.PAID and order.fulfilment == Order.Fulfilment.EXPRESS
    assert order.total == Decimal("111.00") and order.shipping_fee == Decimal("12.00")
    assert order.pickup_code is None
    assert order.recipient_name == "Li Lei" and order.recipient_phone == "+8613900001111"
    expect(page.get_by_text("Paid. We will ship it soon.")).to_be_visible()
    expect(page.get_by_text("88 Century Avenue")).to_be_visible()
    expect(page.locator(".voucher")).to_have_count(0)
    assert_fits_phone(page)
    shot(page, "customer-6-express-paid")


def test_form_errors_keep_the_chosen_fulfilment_visible(page: Page, live_server, shop):
    promo, store, _other = shop
    page.goto(f"{live_server.url}/p/{promo.wall_code}?s={store.code}")
    page.get_by_label("Mobile phone").fill("12345")
    page.get_by_label("Express delivery").check()
    page.locator("#pay").click()

    expect(page.locator(".errorlist").first).to_be_visible()
    expect(page.get_by_text("is not a phone number we can reach")).to_be_visible()
    # After the round trip the express fields (with their errors) are still the ones shown.
    expect(page.get_by_label("Delivery address")).to_be_visible()
    expect(page.get_by_text("Needed for delivery.").first).to_be_visible()
    # The fields to fix are marked, for eyes (a red border) and for screen readers.
    for label in ("Mobile phone", "Recipient", "Delivery address"):
        field = page.get_by_label(label, exact=True)
        expect(field).to_have_attribute("aria-invalid", "true")
        expect(field).to_have_css("border-top-color", "rgb(215, 38, 61)")
    assert Order.objects.count() == 0
    assert_fits_phone(page)
    shot(page, "customer-7-form-errors")
