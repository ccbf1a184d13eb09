"""The cashier page in real headless Chromium on a phone screen: sign in, type a code, hand over, and a
second try says it is already handed over; the camera reads a voucher QR (jsQR, since desktop Linux
Chromium has no BarcodeDetector); every outcome screen fits the phone."""

import io
import re
from datetime import timedelta
from pathlib import Path

import pytest
import segno
from django.conf import settings
from django.utils import timezone
from PIL import Image
from playwright.sync_api import Page, expect

from orders.models import Order
from orders.pickups.models import Redemption
from orders.qr import voucher_url

SCREENSHOTS = Path(settings.BASE_DIR) / "var" / "screenshots"
PHONE = {"viewport": {"width": 390, "height": 844}, "is_mobile": True, "has_touch": True, "device_scale_factor": 2}
PASSWORD = "correct-horse-battery"

pytestmark = [
    pytest.mark.browser,
    pytest.mark.django_db(transaction=True),
    pytest.mark.browser_context_args(**PHONE, locale="en-US"),
]


def shot(page: Page, name: str) -> None:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / f"{name}.png"), full_page=True)


def assert_fits_phone(page: Page) -> None:
    overflow = page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
    assert overflow <= 0, f"page is {overflow}px wider than the phone screen"


def assert_tappable(page: Page, selector: str, *, min_height: int = 44) -> None:
    box = page.locator(selector).first.bounding_box()
    assert box and box["height"] >= min_height, f"{selector} is {box} (tap targets need {min_height}px)"


def sign_in(page: Page, live_server, username: str, next_path: str = "/cashier/") -> None:
    page.goto(f"{live_server.url}/cashier/login/?next={next_path}")
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()


def test_cashier_signs_in_types_a_code_hands_over_and_a_second_try_is_already_redeemed(page: Page, live_server, shop):
    order = shop.order(quantity=2, phone="13812345678")
    code = order.pickup_code

    sign_in(page, live_server, "wang.fang")
    page.wait_for_url(re.compile(r"/cashier/$"))
    expect(page.locator("#current-store")).to_have_text("Lotus Xintiandi")
    assert_fits_phone(page)
    assert_tappable(page, "#code", min_height=52)
    assert_tappable(page, "#look-up", min_height=52)
    shot(page, "cashier-1-scan")

    # Typed the way a person reads it off a phone screen: lower case, a space instead of a dash.
    page.locator("#code").fill(f"{code[:4].lower()} {code[4:8]}-{code[8:]}")
    page.locator("#code").press("Enter")
    expect(page.locator(".verdict.go .word")).to_have_text("OK to hand over")
    expect(page.locator("#pickup-code")).to_have_text(f"{code[:4]}-{code[4:8]}-{code[8:]}")
    expect(page.locator("#items li")).to_have_count(2)
    expect(page.locator("#items li").first).to_contain_text("2 × West Lake Longjing tea 250g")
    expect(page.locator("#member-phone")).to_have_text("+86138****5678")
    assert_fits_phone(page)
    assert_tappable(page, "#hand-over", min_height=70)
    # The decisive button is on the first screen, within the thumb's reach, without scrolling.
    box = page.locator("#hand-over").bounding_box()
    assert box["y"] + box["height"] <= 844 and box["width"] >= 300
    shot(page, "cashier-2-order")

    page.locator("#hand-over").click()
    page.wait_for_url(re.compile(r"/cashier/redeemed/\d+/$"))
    expect(page.locator(".verdict.ok .word")).to_have_text("Handed over")
    assert Order.objects.get(pk=order.pk).status == Order.Status.PICKED_UP
    assert Redemption.objects.get().cashier == shop.cashier
    assert_fits_phone(page)
    shot(page, "cashier-3-handed-over")

    page.locator("#next-customer").click()
    page.locator("#code").fill(code)
    page.locator("#look-up").click()
    outcome = page.locator("#outcome")
    expect(outcome).to_have_attribute("data-outcome", "already_redeemed")
    expect(outcome).to_contain_text("Already handed over")
    expect(outcome).to_contain_text("by wang.fang at Lotus Xintiandi")
    expect(outcome).to_contain_text("Do not hand it over again.")
    expect(page.locator("#hand-over")).to_have_count(0)
    expect(outcome).to_have_css("color", "rgb(200, 16, 46)")
    assert_fits_phone(page)
    shot(page, "cashier-4-already-redeemed")
    assert Redemption.objects.count() == 1


def test_a_customer_scanning_their_own_voucher_sees_the_staff_sign_in_only(page: Page, live_server, shop):
    order = shop.order()
    page.goto(voucher_url(pickup_code=order.pickup_code).replace(settings.SITE_URL, live_server.url))
    page.wait_for_url(re.compile(r"/cashier/login/"))
    expect(page.locator("#customer-hint")).to_have_text("Customer? Your order page is the link you received.")
    body = page.locator("body").inner_text()
    assert "Longjing" not in body and "Xintiandi" not in body
    assert_fits_phone(page)
    shot(page, "cashier-0-customer-scans-voucher")
    # Staff signing in from here land on that voucher.
    page.get_by_label("Username").fill("wang.fang")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    expect(page.locator(".verdict.go .word")).to_have_text("OK to hand over")


def _set_expired(order):
    Order.objects.filter(pk=order.pk).update(pickup_deadline=timezone.now() - timedelta(hours=2))


OUTCOMES = {
    "wrong_store": (lambda shop: shop.order(store=shop.jingan), "Wrong store", "Lotus Jing'an"),
    "unknown_code": (lambda shop: Order(pickup_code="ABCDEFGHJK"), "Unknown code", "ABCDEFGHJK"),
    "expired": (lambda shop: (o := shop.order(), _set_expired(o))[0], "Expired", "The pickup deadline was"),
    "refunded": (
        lambda shop: (o := shop.order(), Order.objects.filter(pk=o.pk).update(status="refunded"))[0],
        "Refunded", "Do not hand anything over",
    ),
    "not_paid": (
        lambda shop: (o := shop.order(), Order.objects.filter(pk=o.pk).update(status="pending_payment"))[0],
        "Not paid", "Do not hand anything over",
    ),
}


@pytest.mark.parametrize("outcome", list(OUTCOMES))
def test_every_outcome_screen_is_clear_on_a_phone(page: Page, live_server, shop, outcome):
    make, word, detail = OUTCOMES[outcome]
    order = make(shop)
    sign_in(page, live_server, "wang.fang", next_path=f"/cashier/%3Fcode%3D{order.pickup_code}")
    verdict = page.locator("#outcome")
    expect(verdict).to_have_attribute("data-outcome", outcome)
    expect(verdict.locator(".word")).to_have_text(word)
    expect(verdict).to_contain_text(detail)
    expect(page.locator("#hand-over")).to_have_count(0)
    # Big words: readable across a counter.
    size = float(verdict.locator(".word").evaluate("e => getComputedStyle(e).fontSize").rstrip("px"))
    assert size >= 32
    assert_fits_phone(page)
    shot(page, f"cashier-outcome-{outcome}")


def test_rate_limited_screen_counts_down(page: Page, live_server, shop, monkeypatch):
    from orders.pickups import throttling

    monkeypatch.setattr(throttling, "MISSES_PER_USER", 1)
    sign_in(page, live_server, "wang.fang", next_path="/cashier/%3Fcode%3DZZZZZZZZZZ")
    page.locator("#code").fill("YYYYYYYYYY")
    page.locator("#code").press("Enter")
    expect(page.locator("#outcome")).to_have_attribute("data-outcome", "rate_limited")
    first = int(page.locator("#retry-after").inner_text())
    page.wait_for_timeout(1500)
    assert int(page.locator("#retry-after").inner_text()) < first
    assert_fits_phone(page)
    shot(page, "cashier-outcome-rate_limited")


def test_a_cashier_of_two_stores_chooses_one_first(page: Page, live_server, shop):
    order = shop.order(store=shop.jingan)
    sign_in(page, live_server, "li.lei", next_path=f"/cashier/%3Fcode%3D{order.pickup_code}")
    expect(page.get_by_text("Which store are you at?")).to_be_visible()
    assert_tappable(page, ".stores .store", min_height=60)
    shot(page, "cashier-5-choose-store")
    page.get_by_role("button", name=re.compile("Lotus Jing'an")).click()
    expect(page.locator(".verdict.go .word")).to_have_text("OK to hand over")
    expect(page.locator("#current-store")).to_have_text("Lotus Jing'an")


# --------------------------------------------------------------------------- the camera


def y4m_showing(data: str, path: Path, *, width: int = 640, height: int = 480) -> Path:
    """A one-frame Y4M video of a QR code on a grey desk: what Chromium's fake camera will film."""
    qr = segno.make_qr(data, error="m")
    buffer = io.BytesIO()
    qr.save(buffer, kind="png", scale=7, border=4)
    code = Image.open(buffer).convert("L")
    frame = Image.new("L", (width, height), 170)
    frame.paste(code, ((width - code.width) // 2, (height - code.height) // 2))
    chroma = bytes([128]) * (width // 2 * height // 2)
    path.write_bytes(
        f"YUV4MPEG2 W{width} H{height} F10:1 Ip A1:1 C420jpeg\n".encode() + b"FRAME\n" + frame.tobytes() + chroma * 2
    )
    return path


def test_the_camera_reads_a_voucher_qr_and_looks_it_up(browser_type, browser_type_launch_args, live_server, shop,
                                                        tmp_path):
    order = shop.order()
    video = y4m_showing(voucher_url(pickup_code=order.pickup_code), tmp_path / "voucher.y4m")
    args = [
        *browser_type_launch_args["args"], "--use-fake-ui-for-media-stream", "--use-fake-device-for-media-stream",
        f"--use-file-for-fake-video-capture={video}",
    ]
    browser = browser_type.launch(**{**browser_type_launch_args, "args": args})
    try:
        context = browser.new_context(**PHONE, locale="en-US")
        page = context.new_page()
        sign_in(page, live_server, "wang.fang")
        camera = page.locator("#camera-open")
        expect(camera).to_be_visible()
        assert_tappable(page, "#camera-open", min_height=60)
        assert page.evaluate("'BarcodeDetector' in window") is False  # so this is the vendored jsQR at work
        camera.click()
        expect(page.locator(".verdict.go .word")).to_have_text("OK to hand over", timeout=15_000)
        expect(page.locator("#pickup-code")).to_contain_text(order.pickup_code[:4])
        # The order page it opened never loaded the decoder: only the camera does, on demand.
        assert page.evaluate("typeof window.jsQR") == "undefined"
        shot(page, "cashier-6-camera-found")
    finally:
        browser.close()
