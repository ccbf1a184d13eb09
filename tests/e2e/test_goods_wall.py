"""A manager signs in to the admin, sees a promotion's QR codes and prints a store's goods wall (real Chromium)."""

import io
import re
from datetime import timedelta
from decimal import Decimal
from pathlib import Path

import pytest
import zxingcpp
from django.conf import settings
from django.utils import timezone
from PIL import Image
from playwright.sync_api import Page, expect

from orders.qr import landing_url
from tests.factories import MerchantFactory, StoreFactory, promotion, staff

SCREENSHOTS = Path(settings.BASE_DIR) / "var" / "screenshots"
PASSWORD = "correct-horse-battery"
A4_AT_96_DPI = {"width": 794, "height": 1123}

pytestmark = [
    pytest.mark.browser,
    pytest.mark.django_db(transaction=True),
    pytest.mark.browser_context_args(viewport={"width": 1280, "height": 900}, locale="en-US"),
]

TITLES = [
    "Longjing tea 250g spring harvest",
    "Silk scarf",
    "Mooncake gift box (8 pieces, lotus seed and salted egg yolk) – Mid-Autumn edition",
    "Ceramic teapot",
    "Cashmere sweater, charcoal, all sizes",
    "Hairy crab voucher ×4",
]



def shot(page: Page, name: str, **kwargs) -> None:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / f"{name}.png"), full_page=True, **kwargs)


def pdf_pages(pdf: bytes) -> int:
    """Page objects in a PDF (Chromium writes plain `/Type /Page` dictionaries)."""
    return len(re.findall(rb"/Type\s*/Page(?![a-zA-Z])", pdf))


def log_in(page: Page, live_server, user) -> None:
    page.goto(f"{live_server.url}/admin/login/?next=/admin/")
    page.get_by_label("Username").fill(user.username)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    page.wait_for_url(f"{live_server.url}/admin/")


@pytest.fixture
def wall():
    merchant = MerchantFactory(slug="lotus", name="Lotus Department Store")
    store = StoreFactory(
        merchant=merchant, name="Lotus Xintiandi", code="xtd", address="123 Madang Road, Huangpu",
        opening_hours="Mon–Sun 10:00–22:00",
    )
    other = StoreFactory(merchant=merchant, name="Lotus Jing'an", code="jingan", address="1 Nanjing West Road")
    now = timezone.now()
    promotions = [
        promotion(
            merchant, stores=[store], title=title, promo_price=Decimal("99.00") + i * 10,
            original_price=Decimal("268.00") + i * 10, allow_express=(i % 2 == 1), ends_at=now + timedelta(days=3 + i),
        )
        for i, title in enumerate(TITLES)
    ]
    manager = staff(merchant, "manager", username="lotus_manager")
    return merchant, store, other, promotions, manager


def test_manager_sees_the_qr_codes_of_a_promotion(page: Page, live_server, wall):
    _merchant, store, other, promotions, manager = wall
    log_in(page, live_server, manager)
    promo = promotions[0]
    page.goto(f"{live_server.url}/admin/orders/promotion/{promo.pk}/change/")

    qr_codes = page.locator(".field-qr_codes figure")
    expect(qr_codes).to_have_count(2)  # one per active store of the merchant
    for store_ in (store, other):
        figure = qr_codes.filter(has_text=store_.name)
        expect(figure.locator("svg")).to_be_visible()
        expect(figure).to_contain_text(landing_url(promotion=promo, store=store_))
        expect(figure.get_by_role("link", name="PNG")).to_be_visible()
        expect(figure.get_by_role("link", name="SVG")).to_be_visible()
    # The preview on screen is a scannable code for that store's landing URL.
    preview = qr_codes.filter(has_text=store.name).locator("svg")
    decoded = zxingcpp.read_barcodes(Image.open(io.BytesIO(preview.screenshot())))
    assert [b.text for b in decoded] == [landing_url(promotion=promo, store=store)]
    page.locator(".field-qr_codes").scroll_into_view_if_needed()
    shot(page, "admin-1-promotion-qr")


def test_manager_prints_the_goods_wall_of_a_store_on_one_a4_page(page: Page, live_server, wall):
    _merchant, store, _other, promotions, manager = wall
    log_in(page, live_server, manager)
    page.goto(f"{live_server.url}/admin/orders/promotion/")
    page.get_by_role("link", name="Goods walls (print)").click()
    expect(page.get_by_role("cell", name=store.name)).to_be_visible()
    shot(page, "admin-2-walls-list")

    with page.context.expect_page() as opened:
        page.get_by_role("row", name=re.compile(store.name)).get_by_role("link", name="Open goods wall").click()
    wall_page = opened.value
    wall_page.wait_for_load_state()
    wall_page.set_viewport_size(A4_AT_96_DPI)

    cards = wall_page.locator(".card")
    expect(cards).to_have_count(len(promotions))
    for promo in promotions:
        expect(cards.filter(has_text=promo.title)).to_have_count(1)
    expect(wall_page.locator("header")).to_contain_text(store.name)
    # Every card's QR is scannable from the page and leads to that promotion at this store.
    first = promotions[0]
    qr = cards.filter(has_text=first.title).locator("svg")
    decoded = zxingcpp.read_barcodes(Image.open(io.BytesIO(qr.screenshot())))
    assert [b.text for b in decoded] == [landing_url(promotion=first, store=store)]
    # Long titles wrap inside their card instead of pushing the QR out of it.
    for i in range(cards.count()):
        card, code = cards.nth(i).bounding_box(), cards.nth(i).locator("svg").bounding_box()
        assert code["x"] >= card["x"] and code["x"] + code["width"] <= card["x"] + card["width"]
    shot(wall_page, "admin-3-goods-wall-screen")

    wall_page.emulate_media(media="print")
    expect(wall_page.locator(".toolbar")).to_be_hidden()
    shot(wall_page, "admin-4-goods-wall-print")
    pdf = wall_page.pdf(format="A4", prefer_css_page_size=True, print_background=True)
    (SCREENSHOTS / "goods-wall.pdf").write_bytes(pdf)
    assert pdf_pages(pdf) == 1


def test_a_long_goods_wall_breaks_between_cards(page: Page, live_server, wall):
    """More than fits on a sheet: the counter still prints every card whole (and the page count is real)."""
    merchant, store, _other, promotions, manager = wall
    for i in range(8):
        promotion(merchant, stores=[store], title=f"Extra offer {i}")
    log_in(page, live_server, manager)
    page.goto(f"{live_server.url}/admin/orders/promotion/walls/{store.pk}/")
    page.emulate_media(media="print")
    expect(page.locator(".card")).to_have_count(len(promotions) + 8)
    pdf = page.pdf(format="A4", prefer_css_page_size=True)
    assert pdf_pages(pdf) == 2
