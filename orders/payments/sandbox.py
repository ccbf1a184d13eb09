"""The built-in sandbox provider's pay page: for demos and tests, no money moves."""

from django.contrib import messages
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils.translation import gettext as _
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_http_methods

from ..errors import OrderNotPayable
from ..models import Order
from ..selectors import order_for_customer
from ..services import order_mark_paid


@never_cache  # a pay page from the browser's cache could offer to pay an order already paid
@require_http_methods(["GET", "POST"])
def sandbox_pay(request: HttpRequest, token: str) -> HttpResponse:
    order = order_for_customer(token=token)
    if order is None:
        raise Http404
    if request.method == "POST":
        if request.POST.get("outcome") == "pay":
            try:
                order_mark_paid(order=order)
            except OrderNotPayable as error:
                messages.error(request, error.message)
        else:
            messages.warning(request, _("Payment failed. Nothing was charged; you can try again."))
            return redirect("orders:sandbox-pay", token=order.token)
        return redirect("orders:order", token=order.token)
    if order.status != Order.Status.PENDING_PAYMENT:
        return redirect("orders:order", token=order.token)
    return render(request, "orders/sandbox_pay.html", {"order": order})
