"""Ready for pickup: staff say an order's goods are prepared, and the customer is told.

One order or many, the same set-based promise: the orders that are paid pickup orders of the
staff's merchant (a cashier: of their stores), not past their deadline, are locked in id order and
moved paid -> ready for pickup by one conditional UPDATE, with one OrderEvent each and their
notifications queued in the same transaction (sent once it commits, see members/notifications).
Everything else is reported back, with the reason, and left as it was.
"""

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from django.db import transaction
from django.db.models import Q, QuerySet
from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from rest_framework import status

from members.models import Notification
from members.notifications.services import notifications_queue
from o2o.exceptions import DomainError
from o2o.tenancy import CASHIER, MANAGER, staff_role_of

from ..models import Order, OrderEvent

O = Order.Status  # noqa: E741 - reads as O.PAID, as in orders/lifecycle.py

# Why an order was not marked ready: stable codes for the API, words for people.
SKIP_REASONS = {
    "not_found": _("No such order of yours."),
    "not_pickup": _("Delivered by express: there is nothing to pick up."),
    "already_ready": _("Already ready for pickup."),
    "not_paid": _("Not paid yet."),
    "closed": _("Already picked up, refunded, cancelled or expired."),
    "past_deadline": _("Its pickup deadline has passed."),
}


class NotMarkedReady(DomainError):
    code = "not_marked_ready"
    http_status = status.HTTP_409_CONFLICT
    default_message = _("This order cannot be marked ready for pickup.")

    def __init__(self, *, reason: str) -> None:
        super().__init__(SKIP_REASONS[reason], reason=reason)
        self.reason = reason
        if reason == "not_found":
            self.http_status = status.HTTP_404_NOT_FOUND


@dataclass
class ReadyOutcome:
    """Which orders moved, and which were skipped and why (order id -> a SKIP_REASONS key)."""

    moved: list[int] = field(default_factory=list)
    skipped: dict[int, str] = field(default_factory=dict)
    notifications: int = 0

    def skipped_by_reason(self) -> dict[str, list[int]]:
        grouped: dict[str, list[int]] = {}
        for pk, reason in sorted(self.skipped.items()):
            grouped.setdefault(reason, []).append(pk)
        return grouped


def orders_preparable_by(user: Any) -> QuerySet[Order]:
    """The orders `user` may mark ready: a platform superuser's all, a manager's merchant's, a cashier's
    for pickup at their stores; nobody else's."""
    orders = Order.objects.all()
    if getattr(user, "is_superuser", False):
        return orders
    role = staff_role_of(user)
    if role is None or role.role not in (MANAGER, CASHIER):
        return orders.none()
    orders = orders.filter(merchant_id=role.merchant_id)
    if role.role == CASHIER:
        orders = orders.filter(pickup_store__in=role.stores.all())
    return orders


def orders_mark_ready(
    *, order_ids: Iterable[int], actor: Any, channel: str = OrderEvent.Channel.ADMIN, now: datetime | None = None
) -> ReadyOutcome:
    """Move the paid pickup orders among `order_ids` that `actor` may prepare to ready for pickup (ready_at
    = now), each with an OrderEvent, and queue "ready for pickup" to each customer (SMS; e-mail too if
    they gave one), sent when the transaction commits. The rest are reported with why. A fixed number
    of queries, however many orders; safe to repeat (what is ready already is skipped, told nothing)."""
    now = now or timezone.now()
    ids = sorted({int(pk) for pk in order_ids})
    outcome = ReadyOutcome()
    if not ids:
        return outcome
    mine = orders_preparable_by(actor)
    with transaction.atomic():
        # Locked in id order (two bulk runs never deadlock); the status is checked again once locked.
        movable = list(
            mine.filter(pk__in=ids, status=O.PAID, fulfilment=Order.Fulfilment.PICKUP)
            .filter(Q(pickup_deadline__isnull=True) | Q(pickup_deadline__gte=now))
            .select_related("member", "merchant", "promotion", "pickup_store")
            .select_for_update(of=("self",))
            .order_by("pk")
        )
        if movable:
            moved = Order.objects.filter(pk__in=[o.pk for o in movable], status=O.PAID).update(
                status=O.READY_FOR_PICKUP, ready_at=now
            )
            if moved != len(movable):  # cannot happen while we hold their locks; never half a batch
                raise RuntimeError(f"{len(movable)} orders locked, {moved} moved")
            OrderEvent.objects.bulk_create(
                OrderEvent(
                    merchant_id=order.merchant_id, order=order, from_status=O.PAID, to_status=O.READY_FOR_PICKUP,
                    actor=actor, channel=channel,
                )
                for order in movable
            )
            for order in movable:
                order.status, order.ready_at = O.READY_FOR_PICKUP, now
            outcome.notifications = notifications_queue(
                orders=movable, kind=Notification.Kind.ORDER_READY, now=now
            )
        outcome.moved = [order.pk for order in movable]
    rest = [pk for pk in ids if pk not in set(outcome.moved)]
    if rest:
        seen = {
            pk: _skip_reason(status=order_status, fulfilment=fulfilment, deadline=deadline, now=now)
            for pk, order_status, fulfilment, deadline in mine.filter(pk__in=rest).values_list(
                "pk", "status", "fulfilment", "pickup_deadline"
            )
        }
        outcome.skipped = {pk: seen.get(pk, "not_found") for pk in rest}
    return outcome


def _skip_reason(*, status: str, fulfilment: str, deadline: datetime | None, now: datetime) -> str:
    if fulfilment != Order.Fulfilment.PICKUP:
        return "not_pickup"
    if status == O.READY_FOR_PICKUP:
        return "already_ready"
    if status == O.PENDING_PAYMENT:
        return "not_paid"
    if status == O.PAID and deadline is not None and deadline < now:
        return "past_deadline"
    return "closed"


def order_mark_ready(
    *, order: Order, actor: Any, channel: str = OrderEvent.Channel.ADMIN, now: datetime | None = None
) -> Order:
    """One order, paid -> ready for pickup, its customer told; NotMarkedReady (with the reason) if not."""
    outcome = orders_mark_ready(order_ids=[order.pk], actor=actor, channel=channel, now=now)
    if order.pk in outcome.skipped:
        raise NotMarkedReady(reason=outcome.skipped[order.pk])
    order.refresh_from_db()
    return order
