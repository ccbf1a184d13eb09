"""Payment providers. `payment_start` is the one hand-off from a placed order to paying it."""

from django.urls import reverse

from ..models import Order


def payment_start(*, order: Order) -> str:
    """Where the customer's phone goes to pay `order`: the sandbox pay page.

    The payments issue puts the real providers (Alipay, WeChat Pay) behind this same call.
    """
    return reverse("orders:sandbox-pay", args=[order.token])
