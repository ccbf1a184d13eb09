"""Express fulfilment and overdue pickups: ship, deliver, import shipments, expire and refund, and the
needs-attention flag staff clear.

Every status move is one conditional UPDATE along ORDER_TRANSITIONS whose row count names the winner,
with its OrderEvent in the same transaction. Delivery completes the order through `order_completed`,
the one hook member points hang on. Provider calls (refunds) happen outside database transactions.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from itertools import islice
from typing import Any, BinaryIO

from django.db import transaction
from django.db.models import Case, Exists, OuterRef, QuerySet, Value, When
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from rest_framework import status

from o2o.exceptions import DomainError

from .carriers import CarrierInvalid, carrier_name, carrier_parse, tracking_number_parse
from .lifecycle import AWAITING_PICKUP, ORDER_TRANSITIONS
from .models import Order, OrderEvent, OrderItem
from .pickups.services import order_completed
from .shipment_csv import ShipmentProblem, ShipmentRow, shipment_lines

logger = logging.getLogger("orders.fulfilment")

O, Channel = Order.Status, OrderEvent.Channel  # noqa: E741 - O.PAID, as in orders/lifecycle.py
assert O.SHIPPED in ORDER_TRANSITIONS[O.PAID] and O.DELIVERED in ORDER_TRANSITIONS[O.SHIPPED]
assert all(O.EXPIRED in ORDER_TRANSITIONS[status] for status in AWAITING_PICKUP)

# The reason kept with the sweep's refunds (and shown to staff with them).
EXPIRY_REFUND_REASON = "Not picked up by the deadline: automatic refund"
# A refund the provider has not answered for this long puts its order on the needs-attention list.
REFUND_PATIENCE = timedelta(hours=1)
# Orders read and written per statement in the import and the sweep: bounded memory and lock lists.
BATCH = 500


class FulfilmentError(DomainError):
    code = "fulfilment_error"
    http_status = status.HTTP_409_CONFLICT

    def __init__(self, message: str | None = None, *, field: str = "", **details: object) -> None:
        super().__init__(message, **details)
        self.field = field


class ShipmentInvalid(FulfilmentError):
    code = "shipment_invalid"
    http_status = status.HTTP_400_BAD_REQUEST


class NotShippable(FulfilmentError):
    code = "not_shippable"
    default_message = gettext_lazy("Only paid express orders can be shipped.")


class AlreadyShipped(FulfilmentError):
    code = "already_shipped"


class NotDeliverable(FulfilmentError):
    code = "not_deliverable"
    default_message = gettext_lazy("Only shipped orders can be marked delivered.")


class AttentionNotNeeded(FulfilmentError):
    code = "attention_not_needed"
    default_message = gettext_lazy("This order is not on the needs-attention list.")


# --------------------------------------------------------------------------- one order


def order_ship(
    *, order: Order, carrier: str, tracking_number: str, actor: Any, channel: str, now: datetime | None = None
) -> Order:
    """Paid express order -> shipped with this carrier and tracking number, exactly once.

    Shipping it again with the same carrier and number changes nothing (a double submit, a file
    imported twice); with different ones it is AlreadyShipped, naming what it was shipped with.
    """
    now = now or timezone.now()
    try:
        carrier = carrier_parse(carrier)
    except CarrierInvalid as error:
        raise ShipmentInvalid(str(error), field="carrier") from None
    try:
        tracking_number = tracking_number_parse(tracking_number)
    except CarrierInvalid as error:
        raise ShipmentInvalid(str(error), field="tracking_number") from None
    with transaction.atomic():
        shipped = Order.objects.filter(pk=order.pk, status=O.PAID, fulfilment=Order.Fulfilment.EXPRESS).update(
            status=O.SHIPPED, carrier=carrier, tracking_number=tracking_number, shipped_at=now
        )
        if shipped:
            OrderEvent.objects.create(
                merchant_id=order.merchant_id, order_id=order.pk, from_status=O.PAID, to_status=O.SHIPPED,
                actor=actor, channel=channel, note=_shipment_note(carrier, tracking_number),
            )
    order.refresh_from_db()
    if shipped:
        return order
    problem = shipment_refusal(
        status=order.status, fulfilment=order.fulfilment, carrier=order.carrier,
        tracking_number=order.tracking_number, order_id=order.pk, wanted=(carrier, tracking_number),
    )
    if problem is not None:
        raise problem
    return order  # shipped already with exactly these: nothing to do


def shipment_refusal(
    *, status: str, fulfilment: str, carrier: str, tracking_number: str, order_id: int, wanted: tuple[str, str]
) -> FulfilmentError | None:
    """Why an order in this state cannot be shipped with `wanted` (carrier, number); None: it can, or it
    already was with exactly those. The one wording for the ship form and every import line."""
    if fulfilment != Order.Fulfilment.EXPRESS:
        return NotShippable(_("Order #%(order)s is for pickup in store, not express delivery.") % {"order": order_id})
    if status in (O.SHIPPED, O.DELIVERED):
        if (carrier, tracking_number) == wanted:
            return None
        return AlreadyShipped(
            _("Order #%(order)s was already shipped with %(carrier)s %(number)s.")
            % {"order": order_id, "carrier": carrier_name(carrier), "number": tracking_number},
            field="tracking_number",
        )
    if status != O.PAID:
        return NotShippable(
            _("Order #%(order)s is %(status)s; only paid express orders can be shipped.")
            % {"order": order_id, "status": O(status).label.lower()}
        )
    return None


def _shipment_note(carrier: str, tracking_number: str) -> str:
    return f"{carrier} {tracking_number}"


def order_deliver(*, order: Order, actor: Any, channel: str, now: datetime | None = None) -> Order:
    """Shipped -> delivered, exactly once; the order is complete (order_completed, in the same
    transaction). Marking a delivered order delivered again changes nothing and completes nothing."""
    now = now or timezone.now()
    with transaction.atomic():
        delivered = Order.objects.filter(pk=order.pk, status=O.SHIPPED).update(
            status=O.DELIVERED, delivered_at=now, closed_at=now
        )
        if delivered:
            OrderEvent.objects.create(
                merchant_id=order.merchant_id, order_id=order.pk, from_status=O.SHIPPED, to_status=O.DELIVERED,
                actor=actor, channel=channel,
            )
            order.status, order.delivered_at, order.closed_at = O.DELIVERED, now, now
            order_completed(order=order, channel=channel, actor=actor, now=now)
    if delivered:
        return order
    order.refresh_from_db()
    if order.status == O.DELIVERED:
        return order
    raise NotDeliverable(
        _("Order #%(order)s is %(status)s; only shipped orders can be marked delivered.")
        % {"order": order.pk, "status": order.get_status_display().lower()}
    )


def order_attention_clear(*, order: Order, actor: Any, note: str, channel: str = Channel.ADMIN) -> Order:
    """Take an order off the needs-attention list with a note of what was done.

    The note stays on the order (and in its history): an order a person has looked at is never
    refunded automatically again.
    """
    note = " ".join((note or "").split())
    if not note:
        raise FulfilmentError(_("Say what was done about it."), field="note")
    kept = (_("Cleared by %(user)s: %(note)s") % {"user": getattr(actor, "username", "?"), "note": note})[:255]
    with transaction.atomic():
        cleared = Order.objects.filter(pk=order.pk, needs_attention=True).update(
            needs_attention=False, attention_note=kept
        )
        if not cleared:
            raise AttentionNotNeeded()
        OrderEvent.objects.create(
            merchant_id=order.merchant_id, order_id=order.pk, from_status=order.status, to_status=order.status,
            actor=actor, channel=channel, note=(_("Attention cleared: %(note)s") % {"note": note})[:255],
        )
    order.refresh_from_db()
    return order


# --------------------------------------------------------------------------- many orders: the import


@dataclass
class ShipmentImport:
    """What an import found (problems: nothing was applied) or did."""

    problems: list[ShipmentProblem] = field(default_factory=list)
    problem_count: int = 0
    rows: int = 0
    shipped: int = 0
    unchanged: int = 0

    MAX_SHOWN = 200

    def add(self, problem: ShipmentProblem) -> None:
        self.problem_count += 1
        if len(self.problems) < self.MAX_SHOWN:
            self.problems.append(problem)

    @property
    def ok(self) -> bool:
        return self.problem_count == 0


def shipments_import(
    *, stream: BinaryIO, orders: QuerySet[Order], actor: Any, channel: str = Channel.ADMIN,
    now: datetime | None = None,
) -> ShipmentImport:
    """Ship every order a shipments file names, or none of them.

    `orders` are the orders the importing user may see (o2o.tenancy scopes them); any other order
    number, another merchant's included, is an "unknown order", exactly like one that does not exist.
    The file is read twice, one line at a time: first every line is checked and all problems are
    collected (with line numbers and fields); only a file without problems is read again and applied,
    in one transaction, a batch of orders per statement, re-checked under row locks (an order may have
    been refunded between the two reads: then nothing is applied and the line is reported). Lines of
    orders already shipped with the same carrier and number change nothing, so a file imported twice
    ships nothing the second time.
    """

    def read() -> Iterator[ShipmentRow | ShipmentProblem]:
        stream.seek(0)
        return shipment_lines(stream)

    return _shipments_apply(read=read, orders=orders, actor=actor, channel=channel, now=now or timezone.now())


def shipments_ship(
    *, rows: list[ShipmentRow | ShipmentProblem], orders: QuerySet[Order], actor: Any,
    channel: str = Channel.ADMIN, now: datetime | None = None,
) -> ShipmentImport:
    """Ship several orders typed into one form (the order list's "Ship selected" action): all or none,
    with the import's checks; a row's `line_no` is its place in the form."""
    return _shipments_apply(
        read=lambda: iter(rows), orders=orders, actor=actor, channel=channel, now=now or timezone.now()
    )


def _shipments_apply(
    *, read: Callable[[], Iterator[ShipmentRow | ShipmentProblem]], orders: QuerySet[Order], actor: Any,
    channel: str, now: datetime,
) -> ShipmentImport:
    result = ShipmentImport()
    seen: dict[int, tuple[int, str, str]] = {}  # order -> (line, carrier, number): the file agrees with itself
    for batch in _batches(read(), BATCH):
        rows, found = [], []
        for item in batch:
            if isinstance(item, ShipmentProblem):
                found.append(item)
                continue
            earlier = seen.setdefault(item.order_id, (item.line_no, item.carrier, item.tracking_number))
            if earlier[0] != item.line_no and earlier[1:] != (item.carrier, item.tracking_number):
                found.append(ShipmentProblem(
                    item.line_no, "tracking_number",
                    _("Order #%(order)s is also on line %(line)d with another carrier or tracking number.")
                    % {"order": item.order_id, "line": earlier[0]},
                ))
                continue
            rows.append(item)
        result.rows += len(rows)
        found += [problem for _row, problem, _state in _rows_checked(rows, orders=orders, lock=False) if problem]
        # A batch's parsing problems are found before its database ones: list them as the file reads.
        for problem in sorted(found, key=lambda problem: problem.line_no):
            result.add(problem)
    if not result.ok:
        return result
    if result.rows == 0:
        result.add(ShipmentProblem(2, "", _("The file has a header line but no shipments.")))
        return result
    try:
        with transaction.atomic():
            for batch in _batches(read(), BATCH):
                shipped, unchanged = _rows_apply(
                    [row for row in batch if isinstance(row, ShipmentRow)], orders=orders, actor=actor,
                    channel=channel, now=now,
                )
                result.shipped += shipped
                result.unchanged += unchanged
    except _Changed as changed:
        # Something moved between the check and the apply; everything is rolled back.
        result.shipped = result.unchanged = 0
        for problem in changed.problems:
            result.add(problem)
    return result


class _Changed(Exception):
    def __init__(self, problems: list[ShipmentProblem]) -> None:
        self.problems = problems


def _batches(items: Iterable, size: int) -> Iterator[list]:
    iterator = iter(items)
    while batch := list(islice(iterator, size)):
        yield batch


_CHECK_FIELDS = ("pk", "merchant_id", "status", "fulfilment", "carrier", "tracking_number")


def _rows_checked(
    rows: list[ShipmentRow], *, orders: QuerySet[Order], lock: bool
) -> list[tuple[ShipmentRow, ShipmentProblem | None, tuple]]:
    """Each row with its problem (None: it can be shipped, or is shipped so already) and the order's
    (pk, merchant, status, ...) as read. One query per batch."""
    found = orders.filter(pk__in={row.order_id for row in rows})
    if lock:
        # In primary-key order within the batch, as the sweeps lock theirs. (Two imports of files longer than
        # one batch that name the same orders in crossing orders could still deadlock; PostgreSQL then
        # aborts one of them whole, nothing of it applied, and its user uploads again.)
        found = found.select_for_update(of=("self",)).order_by("pk")
    states = {values[0]: values for values in found.values_list(*_CHECK_FIELDS)}
    checked = []
    for row in rows:
        state = states.get(row.order_id)
        if state is None:
            problem = ShipmentProblem(row.line_no, "order", _("Unknown order #%(order)s.") % {"order": row.order_id})
            checked.append((row, problem, ()))
            continue
        _pk, _merchant, order_status, fulfilment, carrier, tracking = state
        refusal = shipment_refusal(
            status=order_status, fulfilment=fulfilment, carrier=carrier, tracking_number=tracking,
            order_id=row.order_id, wanted=(row.carrier, row.tracking_number),
        )
        problem = ShipmentProblem(row.line_no, refusal.field or "order", refusal.message) if refusal else None
        checked.append((row, problem, state))
    return checked


def _rows_apply(
    rows: list[ShipmentRow], *, orders: QuerySet[Order], actor: Any, channel: str, now: datetime
) -> tuple[int, int]:
    """Ship a checked batch with one UPDATE (values per row by CASE) and one INSERT of events."""
    if not rows:
        return 0, 0
    problems, fresh, merchants = [], {}, {}
    for row, problem, state in _rows_checked(rows, orders=orders, lock=True):
        if problem is not None:
            problems.append(problem)
        elif state[2] == O.PAID:  # not shipped yet (shipped already with these: nothing to do)
            fresh[row.order_id], merchants[row.order_id] = row, state[1]
    if problems:
        raise _Changed(problems)
    if fresh:
        updated = Order.objects.filter(pk__in=fresh, status=O.PAID, fulfilment=Order.Fulfilment.EXPRESS).update(
            status=O.SHIPPED, shipped_at=now,
            carrier=Case(*(When(pk=pk, then=Value(row.carrier)) for pk, row in fresh.items())),
            tracking_number=Case(*(When(pk=pk, then=Value(row.tracking_number)) for pk, row in fresh.items())),
        )
        assert updated == len(fresh), "the rows are locked; nobody can have moved them"
        OrderEvent.objects.bulk_create(
            OrderEvent(
                merchant_id=merchants[pk], order_id=pk, from_status=O.PAID, to_status=O.SHIPPED, actor=actor,
                channel=channel, note=_shipment_note(row.carrier, row.tracking_number),
            )
            for pk, row in fresh.items()
        )
    return len(fresh), len(rows) - len(fresh)


# --------------------------------------------------------------------------- overdue pickups


@dataclass
class SweepResult:
    expired: int = 0
    flagged_partial: int = 0
    refunded: int = 0
    refund_failed: int = 0
    refund_pending: int = 0
    flagged_slow: int = 0

    def as_dict(self) -> dict[str, int]:
        return dict(self.__dict__)


def pickups_expire_overdue(*, now: datetime | None = None, batch_size: int = BATCH) -> dict[str, int]:
    """Expire paid (or ready) pickup orders past their deadline and give the money back.

    1. Expire: a conditional UPDATE per batch (status still paid/ready, deadline before `now`), rows
       claimed with SKIP LOCKED, so a hand-over at the counter (which locks the row and checks
       deadline >= its now) and the sweep never both win. Orders with units already handed over
       (a partial pickup) are expired and flagged for staff to refund the rest by hand.
    2. Refund: every expired pickup order with nothing handed over, no refund yet and nobody's
       attention on it is refunded in full through the provider. A refusal flags the order with
       the provider's reason; an unanswered request stays pending (refunds_resume asks again) and
       flags the order if it is still pending after REFUND_PATIENCE.
    Set-based and idempotent: a repeated run finds nothing more to expire and no order without a
    refund to refund; a crashed run's leftovers are found by the next one.
    """
    now = now or timezone.now()
    result = SweepResult()
    _expire(now=now, batch_size=batch_size, result=result)
    _refund_expired(now=now, batch_size=batch_size, result=result)
    _flag_slow_refunds(now=now, result=result)
    if result.expired or result.refund_failed or result.flagged_slow:
        logger.info("overdue pickups: %s", result.as_dict())
    return result.as_dict()


def _expire(*, now: datetime, batch_size: int, result: SweepResult) -> None:
    due = Order.objects.filter(
        status__in=AWAITING_PICKUP, fulfilment=Order.Fulfilment.PICKUP, pickup_deadline__lt=now
    ).order_by("pk")
    while True:
        with transaction.atomic():
            rows = list(
                due.select_for_update(skip_locked=True, of=("self",)).values_list("pk", "merchant_id", "status")[
                    :batch_size
                ]
            )
            if not rows:
                return
            ids = [pk for pk, _merchant, _status in rows]
            expired = Order.objects.filter(pk__in=ids, status__in=AWAITING_PICKUP, pickup_deadline__lt=now).update(
                status=O.EXPIRED, closed_at=now
            )
            assert expired == len(ids), "the rows are locked; nobody can have moved them"
            partial = set(
                OrderItem.objects.filter(order_id__in=ids, handed_over__gt=0).values_list("order_id", flat=True)
            )
            if partial:
                Order.objects.filter(pk__in=partial).update(
                    needs_attention=True,
                    attention_note=_(
                        "Expired after part of it was picked up: refund what was not handed over by hand."
                    ),
                )
            OrderEvent.objects.bulk_create(
                OrderEvent(
                    merchant_id=merchant_id, order_id=pk, from_status=before, to_status=O.EXPIRED,
                    channel=Channel.WORKER,
                    note="Pickup deadline passed" + (" after a partial pickup" if pk in partial else ""),
                )
                for pk, merchant_id, before in rows
            )
            result.expired += len(ids)
            result.flagged_partial += len(partial)


def expired_awaiting_refund() -> QuerySet[Order]:
    """Expired pickup orders the sweep still owes a refund: nothing handed over, no refund asked for
    yet, and no person has looked at them (a cleared flag keeps its note)."""
    from .payments.models import Refund

    return Order.objects.filter(
        status=O.EXPIRED, fulfilment=Order.Fulfilment.PICKUP, needs_attention=False, attention_note=""
    ).exclude(
        Exists(OrderItem.objects.filter(order_id=OuterRef("pk"), handed_over__gt=0))
    ).exclude(Exists(Refund.objects.filter(order_id=OuterRef("pk"))))


def _refund_expired(*, now: datetime, batch_size: int, result: SweepResult) -> None:
    # Every order handled leaves the list (it has a refund, or a flag), so each pass takes new ones;
    # a pass that changed nothing (all refunded meanwhile by someone else) ends the loop.
    while batch := list(expired_awaiting_refund().order_by("pk")[:batch_size]):
        if not _refund_batch(batch, result=result):
            return


def _refund_batch(batch: list[Order], *, result: SweepResult) -> int:
    from .payments.models import Refund
    from .payments.services import OverRefund, RefundError, refund_create

    handled = 0
    for order in batch:
        try:
            refund = refund_create(
                order=order, reason=EXPIRY_REFUND_REASON, requested_by=None, channel=Channel.WORKER
            )
        except OverRefund:
            # Nothing left to give back: refunded meanwhile by staff or a concurrent sweep. Not a failure.
            continue
        except RefundError as error:
            _flag(order, _("Automatic refund not possible: %(reason)s") % {"reason": error.message})
            result.refund_failed += 1
            handled += 1
            continue
        handled += 1
        if refund.status == Refund.Status.SUCCEEDED:
            result.refunded += 1
        elif refund.status == Refund.Status.FAILED:
            _flag(order, _("The provider refused the automatic refund: %(reason)s") % {"reason": refund.failure})
            result.refund_failed += 1
        else:
            result.refund_pending += 1
    return handled


def _flag_slow_refunds(*, now: datetime, result: SweepResult) -> None:
    from .payments.models import Refund

    slow = Refund.objects.filter(
        order_id=OuterRef("pk"), status=Refund.Status.PENDING, created_at__lt=now - REFUND_PATIENCE
    )
    result.flagged_slow = (
        Order.objects.filter(status=O.EXPIRED, needs_attention=False, attention_note="")
        .filter(Exists(slow))
        .update(
            needs_attention=True,
            attention_note=_("The provider has not answered the automatic refund for an hour; check it."),
        )
    )


def _flag(order: Order, note: str) -> None:
    Order.objects.filter(pk=order.pk).update(needs_attention=True, attention_note=note[:255])
    OrderEvent.objects.create(
        merchant_id=order.merchant_id, order_id=order.pk, from_status=order.status, to_status=order.status,
        channel=Channel.WORKER, note=note[:255],
    )

