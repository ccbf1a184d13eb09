"""Customer pages: the landing page a wall QR opens, ordering, and the order/voucher page."""

from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils import timezone
from django.views.decorators.http import require_http_methods

from merchants.models import Store

from . import selectors
from .errors import OrderError
from .forms import OrderForm, scan_sign, scan_unsign
from .models import Order, Promotion, Scan
from .payments import payment_start
from .qr import qr_svg, voucher_url
from .services import order_place, scan_record

P = Promotion.Status


@require_http_methods(["GET", "POST"])
def landing(request: HttpRequest, wall_code: str) -> HttpResponse:
    promotion = selectors.promotion_for_landing(wall_code=wall_code.upper())
    if promotion is None:
        return render(request, "orders/unknown_code.html", status=404)
    now = timezone.now()
    status = promotion.effective_status(now)
    store = selectors.store_by_code(merchant_id=promotion.merchant_id, code=request.GET.get("s"))

    if request.method == "POST":
        form = OrderForm(request.POST, promotion=promotion, scanned_store=store)
        if status == P.LIVE and form.is_valid():
            order = _place(form, promotion)
            if isinstance(order, Order):
                return redirect(payment_start(order=order))
        http_status = 400
    else:
        scan = scan_record(promotion=promotion, store=store)
        form = OrderForm(promotion=promotion, scanned_store=store, initial={"scan": scan_sign(scan.pk)})
        http_status = 410 if status == P.ENDED else 200
    context = {"promotion": promotion, "status": status, "store": store, "form": form, "now": now}
    return render(request, "orders/landing.html", context, status=http_status)


def _place(form: OrderForm, promotion: Promotion) -> Order | None:
    data = form.cleaned_data
    scan_id = scan_unsign(data.get("scan", ""))
    scan = Scan.objects.filter(pk=scan_id, promotion=promotion).first() if scan_id else None
    store: Store | None = data.get("pickup_store")
    try:
        return order_place(
            promotion=promotion, quantity=data["quantity"], phone=data["phone"], fulfilment=data["fulfilment"],
            submit_key=data["submit_key"], pickup_store=store if data["fulfilment"] == "pickup" else None,
            recipient_name=data.get("recipient_name", ""), recipient_phone=data.get("recipient_phone", ""),
            shipping_address=data.get("shipping_address", ""), scan=scan,
        )
    except OrderError as error:
        form.add_error(error.details.get("field"), error.message)
        return None


def order_page(request: HttpRequest, token: str) -> HttpResponse:
    order = selectors.order_for_customer(token=token)
    if order is None:
        return render(request, "orders/unknown_code.html", status=404)
    voucher_svg = ""
    if order.pickup_code and order.status in (Order.Status.PAID, Order.Status.READY_FOR_PICKUP):
        voucher_svg = qr_svg(voucher_url(pickup_code=order.pickup_code), scale=6, title=order.pickup_code)
    return render(request, "orders/order.html", {"order": order, "voucher_svg": voucher_svg})
