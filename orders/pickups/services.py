"""Writes at the counter: hand a voucher's goods over exactly once (in one go or in parts), void a
hand-over, answer POS retries.

Exactly once: a hand-over locks the order's row (SELECT ... FOR UPDATE, read together with its lines)
inside a transaction, checks what is asked against what is left of each line, adds it to the lines'
`handed_over`, and writes one Redemption per part; the part that leaves nothing moves the order to
picked up (with its OrderEvent) and fires `order_completed`. Every writer of `handed_over` holds the
order's lock, so concurrent parts queue on it and never hand over more than was bought. Voids lock
the redemption, then the order: always that order, so a void never deadlocks against a hand-over.
"""

import json
from collections.abc import Callable
from datetime import datetime, timedelta
from functools import reduce
from operator import or_
from typing import Any

from django.core.serializers.json import DjangoJSONEncoder
from django.db import IntegrityError, transaction
from django.db.models import Case, Exists, F, PositiveIntegerField, Q, When
from django.utils import timezone
from django.utils.translation import gettext as _

from merchants.models import Store
from o2o.tenancy import MANAGER, staff_role_of

from ..lifecycle import AWAITING_PICKUP
from ..models import Order, OrderEvent, OrderItem
from . import signals
from .codes import voucher_code_parse
from .errors import (
    AlreadyVoided,
    IdempotencyKeyReused,
    LinesError,
    NotAManager,
    NotRedeemable,
    PickupError,
    VoidRefused,
    VoidWindowClosed,
)
from .models import PickupIdempotencyKey, Redemption
from .selectors import (
    HeldOrder,
    already_redeemed,
    handover_quantities,
    order_for_handover,
    pickup_refusal,
    redemption_lines_of,
    redemption_standing,
)

O = Order.Status  # noqa: E741 - reads as O.PAID, as in orders/lifecycle.py

# A read older than the lock (someone handed a part over while we waited) is read again; twice is
# already rare, a third time means something is wrong.
_REDEEM_ATTEMPTS = 3
_EVENT_CHANNEL = {Redemption.Channel.WEB: OrderEvent.Channel.WEB, Redemption.Channel.API: OrderEvent.Channel.API}


def pickup_redeem(
    *,
    code: str,
    cashier: Any,
    store: Store,
    channel: str,
    lines: list[dict] | None = None,
    client: str = "",
    client_ip: str | None = None,
    idempotency_key: str = "",
    now: datetime | None = None,
) -> Redemption:
    """Hand the voucher's goods over at `store` (all that is left, or the `lines` asked for), exactly
    once, and record who, where, when, how and what.

    `lines` is `[{"item": OrderItem id, "quantity": n}, ...]`: a partial pickup. Each part is its own
    Redemption; the order moves to picked up (and `order_completed` fires) with the part that leaves
    nothing to collect. Raises a PickupError saying why not (UnknownCode, AlreadyRedeemed with
    who/when/where, WrongStore, NotPaid, Refunded, Expired, Cancelled, StoreNotAllowed, and for
    `lines` UnknownLine / TooManyUnits / NothingToHandOver naming the line). The same
    `idempotency_key` from the same cashier returns the first redemption instead: a double tap hands
    nothing over twice. Five queries for a full hand-over, three for a part that completes nothing.
    """
    now = now or timezone.now()
    code = voucher_code_parse(code)
    with transaction.atomic():
        for _attempt in range(_REDEEM_ATTEMPTS):
            held = order_for_handover(code=code, cashier=cashier, store=store, idempotency_key=idempotency_key)
            earlier = _earlier_answer(held=held, cashier=cashier, idempotency_key=idempotency_key)
            if earlier is not None:
                return earlier
            redemption = _hand_over(
                held=held, lines=lines, cashier=cashier, store=store, channel=channel, client=client,
                client_ip=client_ip, idempotency_key=idempotency_key, now=now,
            )
            if redemption is not None:
                return redemption
            # What we read was older than the lock we hold (a part handed over while we waited): read
            # again; the lock is ours now, so the next read is current.
    raise NotRedeemable()


def _hand_over(
    *, held: HeldOrder, lines: list[dict] | None, cashier: Any, store: Store, channel: str, client: str,
    client_ip: str | None, idempotency_key: str, now: datetime,
) -> Redemption | None:
    """The hand-over under the order's row lock; None if the items changed since they were read."""
    order, items = held.order, held.items
    refusal = pickup_refusal(order=order, store=store, now=now)
    if refusal is not None:
        raise refusal
    # Our read of the items may predate the lock we now hold (a part handed over, or voided, while we
    # waited): act only if every line still has the count we read, else read again. Writers of
    # handed_over all hold the order's lock, so a statement from now on sees the counts as they stand;
    # the check constraint (handed_over <= quantity) stands behind it.
    changed = OrderItem.objects.filter(order_id=order.pk).exclude(
        reduce(or_, (Q(pk=item.pk, handed_over=item.handed_over) for item in items))
    )
    try:
        wanted = handover_quantities(items=items, lines=lines)
    except LinesError:
        if changed.exists():  # a refusal must be right when made: a void may have given units back
            return None
        raise
    completes = all(item.handed_over + wanted.get(item.pk, 0) == item.quantity for item in items)
    moved = OrderItem.objects.filter(order_id=order.pk).filter(~Exists(changed)).update(
        handed_over=Case(
            *(When(pk=pk, then=F("handed_over") + units) for pk, units in wanted.items()),
            default=F("handed_over"), output_field=PositiveIntegerField(),
        )
    )
    if not moved:
        return None
    before = order.status
    if completes:
        won = Order.objects.filter(pk=order.pk, status=before).update(status=O.PICKED_UP, closed_at=now)
        if not won:  # cannot happen while we hold the row's lock; if it does, undo the lines with it
            raise NotRedeemable()
    redemption = Redemption.objects.create(
        merchant_id=order.merchant_id, order=order, store=store, cashier=cashier, channel=channel,
        client=(client or "")[:255], client_ip=client_ip or None, idempotency_key=idempotency_key[:64],
        created_at=now, lines=redemption_lines_of(items, wanted), order_status_before=before,
    )
    for item in items:
        item.handed_over += wanted.get(item.pk, 0)
    redemption.order_items = items  # what is left, for the answer; no query to read it again
    if completes:
        OrderEvent.objects.create(
            merchant_id=order.merchant_id, order=order, from_status=before, to_status=O.PICKED_UP, actor=cashier,
            channel=_EVENT_CHANNEL[channel], note=f"Redemption #{redemption.pk} at {store.name}"[:255],
        )
        order.status, order.closed_at = O.PICKED_UP, now
        order_completed(order=order, channel=_EVENT_CHANNEL[channel], actor=cashier, now=now)
    return redemption


def _earlier_answer(*, held: HeldOrder, cashier: Any, idempotency_key: str) -> Redemption | None:
    """The first redemption of this (cashier, key) if this is a retry; AlreadyRedeemed if nothing is left."""
    if held.earlier_redemption_id is not None:
        return Redemption.objects.select_related("cashier", "store", "order").get(pk=held.earlier_redemption_id)
    if held.order.status != O.PICKED_UP:
        return None
    # The key's redemption may have committed after our read's snapshot (we waited on its lock):
    # ask again now, before calling it an alarm.
    earlier = redemption_standing(order_id=held.order.pk)
    if earlier and idempotency_key and (earlier.cashier_id, earlier.idempotency_key) == (cashier.pk, idempotency_key):
        return earlier
    raise already_redeemed(order=held.order, redemption=earlier)


def order_completed(*, order: Order, channel: str, actor: Any, now: datetime) -> None:
    """The order is complete (picked up; later also delivered): the one hook member points hang on.

    Called inside the completing transaction; see signals.py for what receivers may do there.
    """
    signals.order_completed.send(sender=Order, order=order, channel=channel, actor=actor, at=now)


def _status_before_completion(*, order: Order, fallback: str) -> str:
    completed = OrderEvent.objects.filter(order=order, to_status=O.PICKED_UP).order_by("-created_at", "-id").first()
    return completed.from_status if completed and completed.from_status in AWAITING_PICKUP else fallback


def redemption_void_deadline(redemption: Redemption) -> datetime:
    return redemption.created_at + timedelta(minutes=redemption.merchant.redemption_void_minutes)


def redemption_may_void(*, user: Any, redemption: Redemption) -> bool:
    """Managers of the redemption's merchant, and platform superusers."""
    if getattr(user, "is_superuser", False):
        return True
    role = staff_role_of(user)
    return bool(role and role.role == MANAGER and role.merchant_id == redemption.merchant_id)


def redemption_void(
    *, redemption: Redemption, manager: Any, reason: str, channel: str = OrderEvent.Channel.ADMIN,
    now: datetime | None = None,
) -> Redemption:
    """Take a hand-over (or one part of it) back within the merchant's window: its units are to be
    collected again, the redemption is marked voided (never deleted), and if the order had been
    completed it returns to the status it had (paid, or ready for pickup) with an OrderEvent saying
    who and why, and `order_completion_voided` undoes the completion. The voucher is valid again."""
    now = now or timezone.now()
    reason = " ".join((reason or "").split())
    if not redemption_may_void(user=manager, redemption=redemption):
        raise NotAManager()
    if not reason:
        raise VoidRefused(_("Say why the hand-over is voided."), field="reason")
    with transaction.atomic():
        locked = Redemption.objects.select_for_update().select_related("merchant").get(pk=redemption.pk)
        if locked.voided_at is not None:
            raise AlreadyVoided()
        deadline = redemption_void_deadline(locked)
        if now > deadline:
            raise VoidWindowClosed(
                _("Too late to void: redemptions can be voided for %(minutes)d minutes.")
                % {"minutes": locked.merchant.redemption_void_minutes},
                deadline=deadline.isoformat(),
            )
        # Then the order, as every hand-over does before it touches handed_over.
        order = Order.objects.select_for_update().get(pk=locked.order_id)
        if order.status not in (O.PICKED_UP, *AWAITING_PICKUP):
            raise VoidRefused(_("The order has moved on since the hand-over (refunded?); it cannot be put back."))
        units = {line["item"]: line["quantity"] for line in locked.lines if line.get("quantity")}
        if units:
            OrderItem.objects.filter(order_id=order.pk, pk__in=units).update(
                handed_over=Case(
                    *(When(pk=pk, then=F("handed_over") - n) for pk, n in units.items()),
                    output_field=PositiveIntegerField(),
                )
            )
        Redemption.objects.filter(pk=locked.pk).update(voided_at=now, voided_by=manager, void_reason=reason[:255])
        if order.status == O.PICKED_UP:
            # The order is no longer all handed over: back to what it was when it was completed.
            restored_to = _status_before_completion(order=order, fallback=locked.order_status_before)
            Order.objects.filter(pk=order.pk, status=O.PICKED_UP).update(status=restored_to, closed_at=None)
            order.status, order.closed_at = restored_to, None
            OrderEvent.objects.create(
                merchant_id=locked.merchant_id, order=order, from_status=O.PICKED_UP, to_status=restored_to,
                actor=manager, channel=channel, note=f"Redemption #{locked.pk} voided: {reason}"[:255],
            )
            signals.order_completion_voided.send(
                sender=Order, order=order, channel=channel, actor=manager, at=now, reason=reason
            )
    locked.refresh_from_db()
    return locked


# --------------------------------------------------------------------------- POS retries


def pickup_answer_once(
    *, user: Any, key: str, code: str, answer: Callable[[], tuple[int, dict]]
) -> tuple[int, dict]:
    """Run `answer` at most once per (user, Idempotency-Key) and give every retry the same (status, body).

    The key is claimed (a row inserted) in the transaction that runs `answer`, so a twin request with
    the same key waits on the unique index and then reads the first one's answer. If `answer` raises
    (a rate limit, a crash), nothing is stored: the retry runs afresh. The same key for another code
    is IdempotencyKeyReused (422).
    """
    code = voucher_code_parse(code)
    # Claim first, read only when the claim fails: a first request (nearly all of them) costs no read,
    # a retry one failed INSERT.
    with transaction.atomic():
        try:
            with transaction.atomic():
                claim = PickupIdempotencyKey.objects.create(user=user, key=key, code=code)
        except IntegrityError:
            claim = None
        if claim is not None:
            status, body = answer()
            claim.status_code, claim.body = status, json.dumps(body, cls=DjangoJSONEncoder)
            claim.save(update_fields=["status_code", "body"])
            return status, body
    stored = PickupIdempotencyKey.objects.get(user=user, key=key)
    if stored.code != code:
        raise IdempotencyKeyReused()
    return stored.status_code, json.loads(stored.body)


def pickup_idempotency_keys_prune(*, older_than: timedelta = timedelta(days=2), now: datetime | None = None) -> int:
    """Forget stored POS answers older than any retry (set-based; safe to run any time)."""
    now = now or timezone.now()
    deleted, _by_model = PickupIdempotencyKey.objects.filter(created_at__lt=now - older_than).delete()
    return deleted


__all__ = [
    "PickupError",
    "order_completed",
    "pickup_answer_once",
    "pickup_idempotency_keys_prune",
    "pickup_redeem",
    "redemption_may_void",
    "redemption_void",
    "redemption_void_deadline",
]
