"""QR codes for the goods wall and pickup vouchers (segno; always full-size QR, never Micro QR,
which many phone scanners cannot read)."""

import io
from urllib.parse import urlencode

import segno
from django.conf import settings
from django.urls import reverse

from merchants.models import Store

from .models import Promotion


def landing_url(*, promotion: Promotion, store: Store | None) -> str:
    """The absolute URL a wall QR encodes; the store code attributes the scan to where it hung."""
    path = reverse("orders:landing", args=[promotion.wall_code])
    query = f"?{urlencode({'s': store.code})}" if store else ""
    return f"{settings.SITE_URL}{path}{query}"


def voucher_url(*, pickup_code: str) -> str:
    """What a pickup voucher's QR encodes: the cashier page for that code (staff must sign in)."""
    return f"{settings.SITE_URL}/cashier/?{urlencode({'code': pickup_code})}"


def qr_svg(data: str, *, scale: int = 4, title: str = "", border: int = 2) -> str:
    """Inline SVG with both a viewBox and a natural size: CSS may resize it (the voucher, the wall's
    fixed 38 mm squares) and the drawing scales with the box instead of being clipped or left small.

    The default 2-module border suits pages that are white around the code; files meant for print
    (downloads) take the standard 4, as the PNG does."""
    qr = segno.make_qr(data, error="m")
    out = io.BytesIO()
    qr.save(
        out, kind="svg", scale=scale, border=border, xmldecl=False, svgns=True, title=title or None, svgclass="qr",
        omitsize=True,
    )
    width, height = qr.symbol_size(scale=scale, border=border)
    svg = out.getvalue().decode()
    return svg.replace("<svg ", f'<svg width="{width}" height="{height}" ', 1)


def qr_png(data: str, *, scale: int = 10) -> bytes:
    qr = segno.make_qr(data, error="m")
    out = io.BytesIO()
    qr.save(out, kind="png", scale=scale, border=4)
    return out.getvalue()
