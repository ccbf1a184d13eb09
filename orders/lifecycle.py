"""The state machines of promotions and orders: one map of allowed transitions each, and pure rules.

Services move rows along these maps with conditional UPDATEs; nothing else writes a status.
"""

from datetime import datetime
from decimal import Decimal

from o2o.money import money_quantize

from .models import Order, Promotion

P = Promotion.Status
PROMOTION_TRANSITIONS: dict[str, frozenset[str]] = {
    P.DRAFT: frozenset({P.SCHEDULED, P.LIVE}),  # publish: scheduled or live depending on the start
    P.SCHEDULED: frozenset({P.LIVE, P.ENDED}),
    P.LIVE: frozenset({P.SOLD_OUT, P.ENDED}),
    P.SOLD_OUT: frozenset({P.LIVE, P.ENDED}),  # back to live when cancelled orders release stock
    P.ENDED: frozenset(),
}
# Statuses in which a promotion is on the wall (whether or not it can be bought right now).
PUBLISHED = frozenset({P.SCHEDULED, P.LIVE, P.SOLD_OUT})

O = Order.Status  # noqa: E741 - reads as O.PAID beside P.LIVE; no digit 0 in sight
ORDER_TRANSITIONS: dict[str, frozenset[str]] = {
    O.PENDING_PAYMENT: frozenset({O.PAID, O.CANCELLED}),
    O.PAID: frozenset({O.READY_FOR_PICKUP, O.PICKED_UP, O.SHIPPED, O.REFUNDED, O.EXPIRED}),
    O.READY_FOR_PICKUP: frozenset({O.PICKED_UP, O.REFUNDED, O.EXPIRED}),
    O.SHIPPED: frozenset({O.DELIVERED, O.REFUNDED}),
    # A manager's void of a hand-over puts the order back where it was.
    O.PICKED_UP: frozenset({O.REFUNDED, O.PAID, O.READY_FOR_PICKUP}),
    O.DELIVERED: frozenset({O.REFUNDED}),
    O.CANCELLED: frozenset(),
    O.REFUNDED: frozenset(),
    O.EXPIRED: frozenset(),
}
# Paid pickup orders whose goods are still at the counter: what a cashier may hand over, what a
# void of a part leaves the order in, and what the overdue sweep expires.
AWAITING_PICKUP = frozenset(status for status, targets in ORDER_TRANSITIONS.items() if O.PICKED_UP in targets)
# Orders that hold promotion stock and count against the per-member limit.
HOLDS_STOCK = frozenset(ORDER_TRANSITIONS) - {O.CANCELLED}
# Orders a full refund closes as refunded; the others (expired, cancelled) keep their status.
REFUNDABLE = frozenset(status for status, targets in ORDER_TRANSITIONS.items() if O.REFUNDED in targets)


def promotion_status_at(*, status: str, starts_at: datetime, ends_at: datetime, stock_left: int, now: datetime) -> str:
    """What a published promotion is at `now`; drafts and ended promotions stay what they are."""
    if status not in PUBLISHED:
        return status
    if now >= ends_at:
        return P.ENDED
    if now < starts_at:
        return P.SCHEDULED
    return P.LIVE if stock_left > 0 else P.SOLD_OUT


def order_totals(*, unit_price: Decimal, quantity: int, shipping_fee: Decimal, currency: str) -> dict[str, Decimal]:
    """Subtotal, shipping and total of an order, computed here and only here."""
    subtotal = money_quantize(unit_price * quantity, currency)
    shipping = money_quantize(shipping_fee, currency)
    return {"subtotal": subtotal, "shipping_fee": shipping, "total": subtotal + shipping}
