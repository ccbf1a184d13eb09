"""Payment providers. `payment_start` is the one hand-off from a placed order to paying it."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ..models import Order


def payment_start(*, order: Order, provider: str | None = None, client_ip: str = "", openid: str = "") -> str:
    """Where the customer's phone goes to pay `order` at the merchant's active provider (the sandbox
    pay page unless the merchant set up Alipay or WeChat Pay); `client_ip` is the customer's (WeChat Pay
    H5 wants it). See services.payment_start."""
    # Imported on call: orders.models imports this package (for its models) before services can load.
    from .services import payment_start as start

    return start(order=order, provider=provider, client_ip=client_ip, openid=openid)
