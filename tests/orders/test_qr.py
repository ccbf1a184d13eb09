"""QR codes round trip: what the admin hands out and what the voucher shows decode to the right links."""

import io
import re
from datetime import timedelta

import pytest
import segno
import zxingcpp
from django.db.models import F
from django.urls import reverse
from django.utils import timezone
from PIL import Image, ImageDraw

from orders.models import Promotion
from orders.qr import landing_url, qr_png, qr_svg, voucher_url
from orders.services import order_mark_paid, order_place
from tests.factories import MerchantFactory, StoreFactory, promotion, staff

SITE = "https://shop.example.com"


@pytest.fixture(autouse=True)
def _public_site_url(settings):
    settings.SITE_URL = SITE


def decode(image: Image.Image) -> list[str]:
    return [barcode.text for barcode in zxingcpp.read_barcodes(image)]


def decode_png(data: bytes) -> list[str]:
    return decode(Image.open(io.BytesIO(data)))


def decode_svg(svg: str, *, pixels_per_module: int = 4) -> list[str]:
    """Rasterise segno's SVG (one path of horizontal 1-module strokes: M/m moves, h draws) and decode it."""
    viewbox = re.search(r'viewBox="0 0 ([\d.]+) ([\d.]+)"', svg)
    scale = float(re.search(r'transform="scale\(([\d.]+)\)"', svg).group(1))
    size = round(float(viewbox.group(1)) / scale) + 4  # modules, plus a wider quiet zone for the decoder
    image = Image.new("L", (size * pixels_per_module, size * pixels_per_module), 255)
    draw = ImageDraw.Draw(image)
    x = y = 0.0
    for command, args in re.findall(r"([Mmh])([-\d.\s]+)", re.search(r' d="([^"]+)"', svg).group(1)):
        numbers = [float(n) for n in args.split()]
        if command == "M":
            x, y = numbers
        elif command == "m":
            x, y = x + numbers[0], y + numbers[1]
        else:  # h: a black run on row y - 0.5 (strokes are centred on the half module)
            row, start, end = int(y - 0.5) + 2, x + 2, x + numbers[0] + 2
            draw.rectangle(
                [start * pixels_per_module, row * pixels_per_module, end * pixels_per_module - 1,
                 (row + 1) * pixels_per_module - 1],
                fill=0,
            )
            x += numbers[0]
    return decode(image)


@pytest.fixture
def shop():
    merchant = MerchantFactory(slug="lotus")
    store = StoreFactory(merchant=merchant, code="xtd")
    promo = promotion(merchant, stores=[store])
    manager = staff(merchant, "manager", username="lotus_manager")
    return merchant, store, promo, manager


def qr_download(client, promo, store, fmt):
    return client.get(reverse("admin:orders_promotion_qr", args=[promo.pk, store.pk, fmt]))


# --------------------------------------------------------------------------- the wall QR


@pytest.mark.django_db
def test_png_download_decodes_to_the_absolute_landing_url_with_the_store(client, shop):
    _merchant, store, promo, manager = shop
    client.force_login(manager)

    response = qr_download(client, promo, store, "png")

    assert response.status_code == 200
    assert response["Content-Type"] == "image/png"
    assert response["Content-Disposition"] == f'attachment; filename="{promo.wall_code}-xtd.png"'
    expected = f"{SITE}/p/{promo.wall_code}?s=xtd"
    assert landing_url(promotion=promo, store=store) == expected
    assert decode_png(response.content) == [expected]


@pytest.mark.django_db
def test_svg_download_decodes_to_the_same_landing_url(client, shop):
    _merchant, store, promo, manager = shop
    client.force_login(manager)

    response = qr_download(client, promo, store, "svg")

    assert response.status_code == 200
    assert response["Content-Type"] == "image/svg+xml"
    assert response["Content-Disposition"] == f'attachment; filename="{promo.wall_code}-xtd.svg"'
    svg = response.content.decode()
    assert svg.startswith("<svg") and 'viewBox="' in svg
    assert decode_svg(svg) == [f"{SITE}/p/{promo.wall_code}?s=xtd"]
    # A file for print keeps the standard 4-module quiet zone, like the PNG.
    side = segno.make_qr(f"{SITE}/p/{promo.wall_code}?s=xtd", error="m").symbol_size(scale=10, border=4)[0]
    assert f'viewBox="0 0 {side} {side}"' in svg


@pytest.mark.django_db
def test_the_wall_qr_is_a_full_size_qr_even_for_short_data():
    # Micro QR (segno.make's choice for short data) is what many phone scanners cannot read.
    assert decode_png(qr_png("A", scale=4)) == ["A"]
    decoded = zxingcpp.read_barcodes(Image.open(io.BytesIO(qr_png("A", scale=4))))
    assert decoded[0].format == zxingcpp.BarcodeFormat.QRCode


@pytest.mark.django_db
def test_store_code_is_url_encoded_in_the_landing_url():
    merchant = MerchantFactory()
    store = StoreFactory(merchant=merchant, code="a-b_c")
    promo = promotion(merchant, stores=[store])
    assert landing_url(promotion=promo, store=store).endswith(f"/p/{promo.wall_code}?s=a-b_c")
    assert landing_url(promotion=promo, store=None) == f"{SITE}/p/{promo.wall_code}"


# --------------------------------------------------------------------------- the voucher QR


@pytest.mark.django_db
def test_the_order_pages_voucher_qr_encodes_the_voucher_link(client, shop):
    _merchant, store, promo, _manager = shop
    order = order_place(
        promotion=promo, quantity=1, phone="13812345678", fulfilment="pickup", submit_key="k1", pickup_store=store
    )
    order = order_mark_paid(order=order)

    html = client.get(reverse("orders:order", args=[order.token])).content.decode()

    svg = re.search(r'<section class="voucher".*?(<svg.*?</svg>)', html, re.S).group(1)
    link = voucher_url(pickup_code=order.pickup_code)
    assert link == f"{SITE}/cashier/?code={order.pickup_code}"
    assert decode_svg(svg) == [link]
    # The same drawing as the helper makes for that link (so the PNG round trip covers it too).
    assert svg == qr_svg(link, scale=6, title=order.pickup_code).strip()
    assert decode_png(qr_png(link)) == [link]


@pytest.mark.django_db
def test_an_unpaid_order_shows_no_voucher(client, shop):
    _merchant, store, promo, _manager = shop
    order = order_place(
        promotion=promo, quantity=1, phone="13812345678", fulfilment="pickup", submit_key="k1", pickup_store=store
    )
    html = client.get(reverse("orders:order", args=[order.token])).content.decode()
    assert "<svg" not in html and "Waiting for payment." in html


# --------------------------------------------------------------------------- tenancy of downloads and walls


@pytest.mark.django_db
def test_qr_of_another_merchants_promotion_or_store_is_not_found(client, shop):
    _merchant, store, promo, manager = shop
    rival = MerchantFactory(slug="rival")
    rival_store = StoreFactory(merchant=rival, code="rival-store")
    rival_promo = promotion(rival, stores=[rival_store])
    client.force_login(manager)

    assert qr_download(client, rival_promo, rival_store, "png").status_code == 404
    assert qr_download(client, rival_promo, store, "png").status_code == 404  # their promotion, our store
    assert qr_download(client, promo, rival_store, "png").status_code == 404  # our promotion, their store
    assert qr_download(client, promo, rival_store, "svg").status_code == 404
    assert qr_download(client, promo, store, "gif").status_code == 404


@pytest.mark.django_db
def test_qr_of_an_inactive_store_is_not_found(client, shop):
    _merchant, store, promo, manager = shop
    store.is_active = False
    store.save()
    client.force_login(manager)
    assert qr_download(client, promo, store, "png").status_code == 404


@pytest.mark.django_db
def test_qr_downloads_and_walls_need_a_signed_in_manager(client, shop):
    merchant, store, promo, _manager = shop
    cashier = staff(merchant, "cashier", [store])
    for user in (None, cashier):
        if user:
            client.force_login(user)
        response = qr_download(client, promo, store, "png")
        assert response.status_code == 302 and "/admin/login/" in response["Location"]
        response = client.get(reverse("admin:orders_promotion_wall", args=[store.pk]))
        assert response.status_code == 302 and "/admin/login/" in response["Location"]


@pytest.mark.django_db
def test_the_goods_wall_of_another_merchants_store_is_not_found(client, shop):
    _merchant, _store, _promo, manager = shop
    rival = MerchantFactory(slug="rival")
    rival_store = StoreFactory(merchant=rival, code="rival-store")
    promotion(rival, stores=[rival_store], title="Rival secret offer")
    client.force_login(manager)

    response = client.get(reverse("admin:orders_promotion_wall", args=[rival_store.pk]))

    assert response.status_code == 404
    assert b"Rival secret offer" not in response.content
    walls = client.get(reverse("admin:orders_promotion_walls")).content.decode()
    assert "rival" not in walls.lower()


@pytest.mark.django_db
def test_the_goods_wall_lists_only_what_can_be_bought_from_that_store_now(client, shop):
    merchant, store, _promo, manager = shop
    other_store = StoreFactory(merchant=merchant, code="other")
    now = timezone.now()
    P = Promotion.Status

    def offer(title, **fields):
        return promotion(merchant, title=title, **fields)

    offer("Pickup here", stores=[store])
    offer("Pickup here or elsewhere", stores=[store, other_store])
    offer("Delivery only", allow_pickup=False, allow_express=True)
    offer("Pickup elsewhere or delivery", stores=[other_store], allow_express=True)
    offer("Scheduled but started", stores=[store], status=P.SCHEDULED)
    offer("Pickup only elsewhere", stores=[other_store])
    offer("A draft", stores=[store], status=P.DRAFT)
    offer("Ended", stores=[store], status=P.ENDED)
    offer("Live but past its end", stores=[store], ends_at=now - timedelta(minutes=1),
          starts_at=now - timedelta(days=1))
    offer("Scheduled for later", stores=[store], status=P.SCHEDULED, starts_at=now + timedelta(days=1))
    sold_out = offer("Sold out", stores=[store], status=P.SOLD_OUT, stock_cap=5)
    sold_out_unswept = offer("Stock gone, sweep not run yet", stores=[store], stock_cap=3)
    Promotion.objects.filter(pk__in=[sold_out.pk, sold_out_unswept.pk]).update(sold_count=F("stock_cap"))
    rival = MerchantFactory(slug="rival")
    promotion(rival, title="Rival offer", allow_express=True)
    client.force_login(manager)

    response = client.get(reverse("admin:orders_promotion_wall", args=[store.pk]))

    assert response.status_code == 200
    titles = sorted(card["promotion"].title for card in response.context["cards"])
    assert titles == sorted([
        "Longjing tea 250g",  # the fixture's live promotion, pickup here
        "Pickup here",
        "Pickup here or elsewhere",
        "Delivery only",
        "Pickup elsewhere or delivery",
        "Scheduled but started",
    ])
    assert response.content.decode().count("<svg") == len(titles)
