"""Customer pages: the landing page a wall QR opens, ordering, and the order/voucher page."""

import hashlib
import uuid
from dataclasses import dataclass

from axes.helpers import get_client_ip_address
from django.conf import settings
from django.contrib import messages
from django.core.cache import caches
from django.http import HttpRequest, HttpResponse
from django.middleware.csrf import get_token
from django.shortcuts import redirect, render
from django.template.loader import render_to_string
from django.utils import timezone, translation
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_http_methods

from merchants.models import Store

from . import selectors
from .errors import OrderError
from .forms import OrderForm, scan_sign, scan_unsign
from .lifecycle import promotion_status_at
from .models import Order, Promotion
from .payments import payment_start
from .qr import qr_svg, voucher_url
from .scan_buffer import scan_record
from .services import order_place

P = Promotion.Status

# How long a rendered landing page is reused. The promotion row is read on every visit and is part of
# the key, so price, stock, times and status are always current; only the related rows (merchant name
# and logo, stores, products of the bundle) may show up to this many seconds late.
LANDING_CACHE_SECONDS = 5
_NO_ROW = "none"
# Per-visit values rendered as placeholders into the shared page and filled in for each visitor.
_HOLE_CSRF, _HOLE_SUBMIT_KEY, _HOLE_SCAN = "o2oHoleCsrf7Q", "o2oHoleSubmitKey7Q", "o2oHoleScan7Q"


@dataclass(frozen=True)
class _LandingPage:
    html: str
    status: int
    promotion_id: int
    merchant_id: int
    store_id: int | None


@never_cache  # every visit must reach us: it is a scan, and the form's one-time key must be new
@require_http_methods(["GET", "POST"])
def landing(request: HttpRequest, wall_code: str) -> HttpResponse:
    wall_code = wall_code.upper()
    if request.method == "GET" and not _may_have_messages(request):
        return _landing_shared(request, wall_code)
    promotion = selectors.promotion_for_landing(wall_code=wall_code)
    if promotion is None:
        return render(request, "orders/unknown_code.html", status=404)
    now = timezone.now()
    status = promotion.effective_status(now)
    store = selectors.store_for_scan(promotion=promotion, code=request.GET.get("s"))

    if request.method == "POST":
        # A double tap whose first request already placed the order: show that order, whatever
        # the stock or status say now.
        earlier = Order.objects.filter(promotion=promotion, submit_key=request.POST.get("submit_key", "")).first()
        if earlier:
            return _to_payment(request, earlier)
        form = OrderForm(request.POST, promotion=promotion, scanned_store=store)
        if status == P.LIVE and form.is_valid():
            order = _place(form, promotion)
            if isinstance(order, Order):
                return _to_payment(request, order)
        http_status = 410 if status == P.ENDED else 400
    else:
        scan_key = scan_record(
            merchant_id=promotion.merchant_id, promotion_id=promotion.pk, store_id=store.pk if store else None
        )
        form = OrderForm(
            promotion=promotion, scanned_store=store,
            initial={"scan": scan_sign(promotion_id=promotion.pk, scan_key=scan_key)},
        )
        http_status = 410 if status == P.ENDED else 200
    context = {"promotion": promotion, "status": status, "store": store, "form": form, "now": now}
    return render(request, "orders/landing.html", context, status=http_status)


def _landing_shared(request: HttpRequest, wall_code: str) -> HttpResponse:
    """The GET every scan makes: the promotion row (at most a second old), the scan, and a page that is
    rendered once per promotion state, store and language, then reused with this visit's holes filled."""
    pages = caches["pages"]  # per process: reusing a row or a page costs no round trip
    row = pages.get(f"landing-row:{wall_code}")
    if row is None:
        row = selectors.promotion_row_for_landing(wall_code=wall_code) or _NO_ROW
        pages.set(f"landing-row:{wall_code}", row, settings.LANDING_ROW_CACHE_SECONDS)
    if row == _NO_ROW:  # unknown codes are remembered too: guessing costs the database nothing
        return render(request, "orders/unknown_code.html", status=404)
    now = timezone.now()
    status = promotion_status_at(
        status=row["status"], starts_at=row["starts_at"], ends_at=row["ends_at"],
        stock_left=max(row["stock_cap"] - row["sold_count"], 0), now=now,
    )
    store_code = request.GET.get("s") or ""
    fingerprint = repr((wall_code, sorted(row.items()), status, store_code, translation.get_language()))
    key = "landing:" + hashlib.sha256(fingerprint.encode()).hexdigest()
    page = pages.get(key)
    if page is None:
        page = _landing_render_shared(request, wall_code=wall_code, store_code=store_code, now=now)
        if page is None:  # unpublished between the two reads
            return render(request, "orders/unknown_code.html", status=404)
        pages.set(key, page, LANDING_CACHE_SECONDS)
    # The scan needs only the ids; the shared page did not load the rows for this visit.
    scan_key = scan_record(merchant_id=page.merchant_id, promotion_id=page.promotion_id, store_id=page.store_id)
    html = (
        page.html.replace(_HOLE_CSRF, get_token(request))
        .replace(_HOLE_SUBMIT_KEY, uuid.uuid4().hex)
        .replace(_HOLE_SCAN, scan_sign(promotion_id=page.promotion_id, scan_key=scan_key))
    )
    return HttpResponse(html, status=page.status)


def _landing_render_shared(request: HttpRequest, *, wall_code: str, store_code: str, now) -> _LandingPage | None:
    promotion = selectors.promotion_for_landing(wall_code=wall_code)
    if promotion is None:
        return None
    status = promotion.effective_status(now)
    store = selectors.store_for_scan(promotion=promotion, code=store_code)
    form = OrderForm(
        promotion=promotion, scanned_store=store, initial={"scan": _HOLE_SCAN, "submit_key": _HOLE_SUBMIT_KEY}
    )
    context = {
        "promotion": promotion, "status": status, "store": store, "form": form, "now": now,
        # Nothing of this visitor goes into a page other visitors get.
        "csrf_token": _HOLE_CSRF, "messages": (),
    }
    return _LandingPage(
        html=render_to_string("orders/landing.html", context, request=request),
        status=410 if status == P.ENDED else 200,
        promotion_id=promotion.pk,
        merchant_id=promotion.merchant_id,
        store_id=store.pk if store else None,
    )


def _may_have_messages(request: HttpRequest) -> bool:
    """Flash messages live in a cookie or the session; a visitor with either gets a page of their own."""
    return bool(
        request.COOKIES.get(getattr(settings, "MESSAGE_COOKIE_NAME", "messages"))
        or request.COOKIES.get(settings.SESSION_COOKIE_NAME)
    )


def _place(form: OrderForm, promotion: Promotion) -> Order | None:
    data = form.cleaned_data
    store: Store | None = data.get("pickup_store")
    try:
        return order_place(
            promotion=promotion, quantity=data["quantity"], phone=data["phone"], fulfilment=data["fulfilment"],
            submit_key=data["submit_key"], pickup_store=store if data["fulfilment"] == "pickup" else None,
            recipient_name=data.get("recipient_name", ""), recipient_phone=data.get("recipient_phone", ""),
            shipping_address=data.get("shipping_address", ""),
            scan_key=scan_unsign(data.get("scan", ""), promotion_id=promotion.pk),
        )
    except OrderError as error:
        form.add_error(error.details.get("field"), error.message)
        return None


def _to_payment(request: HttpRequest, order: Order) -> HttpResponse:
    """The one hand-off to paying: the provider's page, or the order page saying why not."""
    from .payments.services import PaymentError

    try:
        return redirect(payment_start(order=order, client_ip=get_client_ip_address(request) or ""))
    except PaymentError as error:
        messages.error(request, error.message)
        return redirect("orders:order", token=order.token)


@require_http_methods(["POST"])
def order_pay(request: HttpRequest, token: str) -> HttpResponse:
    """'Pay now' on the order page: start (or resume) paying at the merchant's provider."""
    order = selectors.order_for_customer(token=token)
    if order is None:
        return render(request, "orders/unknown_code.html", status=404)
    if order.status != Order.Status.PENDING_PAYMENT:
        return redirect("orders:order", token=order.token)
    return _to_payment(request, order)


@never_cache  # the status changes (paid, picked up) and the page is the customer's receipt
def order_page(request: HttpRequest, token: str) -> HttpResponse:
    from .payments.selectors import order_awaiting_confirmation, order_money

    order = selectors.order_for_customer(token=token)
    if order is None:
        return render(request, "orders/unknown_code.html", status=404)
    voucher_svg = ""
    if order.pickup_code and order.status in (Order.Status.PAID, Order.Status.READY_FOR_PICKUP):
        voucher_svg = qr_svg(voucher_url(pickup_code=order.pickup_code), scale=6, title=order.pickup_code)
    context = {
        "order": order,
        "voucher_svg": voucher_svg,
        "confirming": order_awaiting_confirmation(order=order),
        "money": order_money(order=order),
    }
    return render(request, "orders/order.html", context)
