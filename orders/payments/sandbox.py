"""The built-in sandbox provider's pay page: for demos and tests, no money moves.

The page plays the provider's hosted cashier. "Pay" books the money in the sandbox's ledger and
makes the sandbox send a signed notification to our notify URL, as a real provider would; the
order is paid only when that notification is applied. For demos and tests the page can be told
(form options, prefilled from the query string) to send the notification twice, late, or never.
"""

from django.contrib import messages
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils.translation import gettext as _
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_http_methods

from o2o.money import money_from_minor

from ..models import Order
from ..selectors import order_for_customer
from . import payment_start
from .models import Payment, PaymentConfig, Provider, SandboxTrade
from .providers.sandbox import sandbox_trade_pay
from .services import PaymentUnavailable, sandbox_enabled

# What the page may be told to do with the notification: (how many are sent, how late).
DELIVERIES = {
    "once": (1, 0),
    "twice": (2, 0),
    "late": (1, 30),
    "never": (0, 0),
}
MAX_DELAY_SECONDS = 600


@never_cache  # a pay page from the browser's cache could offer to pay an order already paid
@require_http_methods(["GET", "POST"])
def sandbox_pay(request: HttpRequest, token: str) -> HttpResponse:
    if not sandbox_enabled():
        raise Http404
    order = order_for_customer(token=token)
    if order is None:
        raise Http404
    if order.status != Order.Status.PENDING_PAYMENT:
        return redirect("orders:order", token=order.token)
    # A shop that switched its sandbox account off takes no pretend money, not even for an attempt
    # opened before.
    active = PaymentConfig.objects.filter(merchant_id=order.merchant_id, provider=Provider.SANDBOX, is_active=True)
    trade = _trade(order, request.POST.get("trade")) if active.exists() else None
    if trade is None:
        # No sandbox attempt open (the order page's "Pay now" after the last one closed, or the shop
        # pays with another provider now): the hand-off decides where to pay.
        try:
            url = payment_start(order=order)
        except PaymentUnavailable as error:
            messages.error(request, error.message)
            return redirect("orders:order", token=order.token)
        trade = _trade(order, None)
        if trade is None or url != request.path:
            return redirect(url)
    if trade.paid_at is not None:
        return redirect("orders:order", token=order.token)
    if request.method == "POST":
        if request.POST.get("outcome") != "pay":
            messages.warning(request, _("Payment failed. Nothing was charged; you can try again."))
            return redirect("orders:sandbox-pay", token=order.token)
        deliveries, delay = _delivery(request.POST)
        sandbox_trade_pay(trade=trade, deliveries=deliveries, delay_seconds=delay)
        order.refresh_from_db(fields=["status"])
        if order.status == Order.Status.PENDING_PAYMENT:
            messages.info(request, _("Payment sent. Waiting for the shop to confirm it…"))
        return redirect("orders:order", token=order.token)
    context = {
        # What the provider will charge: its trade, not our order.
        "order": order, "trade": trade, "amount": money_from_minor(trade.amount_minor, trade.currency),
        "deliveries": list(DELIVERIES),
        "delivery": request.GET.get("deliver", "once"), "delay": request.GET.get("delay", ""),
    }
    return render(request, "orders/sandbox_pay.html", context)


def _trade(order: Order, out_trade_no: str | None) -> SandboxTrade | None:
    """The sandbox trade of the order's open sandbox payment (the one named, if any)."""
    payments = Payment.objects.filter(order=order, provider=Provider.SANDBOX)
    if out_trade_no:
        payments = payments.filter(out_trade_no=out_trade_no)
    else:
        payments = payments.filter(status=Payment.Status.CREATED, amount=order.total)
    payment = payments.order_by("-created_at", "-id").first()
    if payment is None:
        return None
    return SandboxTrade.objects.filter(merchant_id=order.merchant_id, out_trade_no=payment.out_trade_no).first()


def _delivery(data) -> tuple[int, int]:
    deliveries, delay = DELIVERIES.get(data.get("deliver", "once"), DELIVERIES["once"])
    raw = (data.get("delay") or "").strip()
    if raw.isdigit():
        delay = min(int(raw), MAX_DELAY_SECONDS)
    return deliveries, delay
