"""Writes at the counter: hand a voucher's goods over exactly once, void a hand-over, answer POS retries.

Exactly once: the hand-over is one conditional UPDATE of the order (`status=<what we read>` at this
pickup store, before the deadline) inside a transaction with its Redemption and OrderEvent rows. The
row count names the winner; on PostgreSQL every other request waits on the row lock, re-reads the
row when the winner commits, updates nothing, and reports who won. Voids lock the redemption first,
then update the order: always that order, so a void never deadlocks against anything.
"""

import json
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from django.core.serializers.json import DjangoJSONEncoder
from django.db import IntegrityError, transaction
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext as _

from merchants.models import Store
from o2o.tenancy import MANAGER, staff_role_of

from ..models import Order, OrderEvent
from . import signals
from .codes import voucher_code_parse
from .errors import (
    AlreadyVoided,
    IdempotencyKeyReused,
    NotAManager,
    NotRedeemable,
    PickupError,
    VoidRefused,
    VoidWindowClosed,
)
from .models import PickupIdempotencyKey, Redemption
from .selectors import (
    already_redeemed,
    order_for_cashier,
    pickup_refusal,
    redemption_lines_of,
    redemption_standing,
)

O = Order.Status  # noqa: E741 - reads as O.PAID, as in orders/lifecycle.py

# The order's status may move between our read and our UPDATE (paid -> ready for pickup): read again.
_REDEEM_ATTEMPTS = 3
_EVENT_CHANNEL = {Redemption.Channel.WEB: OrderEvent.Channel.WEB, Redemption.Channel.API: OrderEvent.Channel.API}


def pickup_redeem(
    *,
    code: str,
    cashier: Any,
    store: Store,
    channel: str,
    client: str = "",
    client_ip: str | None = None,
    idempotency_key: str = "",
    now: datetime | None = None,
) -> Redemption:
    """Hand the voucher's goods over at `store`, exactly once, and record who, where, when and how.

    Raises a PickupError saying why not (UnknownCode, AlreadyRedeemed with who/when/where, WrongStore,
    NotPaid, Refunded, Expired, Cancelled, StoreNotAllowed). The same `idempotency_key` from the same
    cashier (one per rendered form, or a POS's key) returns the first redemption instead of
    AlreadyRedeemed: a double tap is not an alarm. Five queries on the way to a hand-over.
    """
    now = now or timezone.now()
    code = voucher_code_parse(code)
    order = order_for_cashier(code=code, cashier=cashier, store=store)
    items = list(order.items.all())
    for _attempt in range(_REDEEM_ATTEMPTS):
        if order.status == O.PICKED_UP:
            earlier = redemption_standing(order_id=order.pk)
            if earlier and idempotency_key and (earlier.cashier_id, earlier.idempotency_key) == (
                cashier.pk, idempotency_key
            ):
                return earlier
            raise already_redeemed(order=order, redemption=earlier)
        refusal = pickup_refusal(order=order, store=store, now=now)
        if refusal is not None:
            raise refusal
        redemption = _hand_over(
            order=order, items=items, cashier=cashier, store=store, channel=channel, client=client,
            client_ip=client_ip, idempotency_key=idempotency_key, now=now,
        )
        if redemption is not None:
            return redemption
        # Someone else changed the order first: read what it is now and explain that.
        order = Order.objects.select_related("pickup_store").get(pk=order.pk)
    raise NotRedeemable()


def _hand_over(
    *, order: Order, items: list, cashier: Any, store: Store, channel: str, client: str, client_ip: str | None,
    idempotency_key: str, now: datetime,
) -> Redemption | None:
    before = order.status
    with transaction.atomic():
        won = (
            Order.objects.filter(pk=order.pk, status=before, pickup_store=store)
            .filter(Q(pickup_deadline__isnull=True) | Q(pickup_deadline__gte=now))
            .update(status=O.PICKED_UP, closed_at=now)
        )
        if not won:
            return None
        redemption = Redemption.objects.create(
            merchant_id=order.merchant_id, order=order, store=store, cashier=cashier, channel=channel,
            client=(client or "")[:255], client_ip=client_ip or None, idempotency_key=idempotency_key[:64],
            created_at=now, lines=redemption_lines_of(items), order_status_before=before,
        )
        OrderEvent.objects.create(
            merchant_id=order.merchant_id, order=order, from_status=before, to_status=O.PICKED_UP, actor=cashier,
            channel=_EVENT_CHANNEL[channel], note=f"Redemption #{redemption.pk} at {store.name}"[:255],
        )
        order.status, order.closed_at = O.PICKED_UP, now
        order_completed(order=order, channel=_EVENT_CHANNEL[channel], actor=cashier, now=now)
    return redemption


def order_completed(*, order: Order, channel: str, actor: Any, now: datetime) -> None:
    """The order is complete (picked up; later also delivered): the one hook member points hang on.

    Called inside the completing transaction; see signals.py for what receivers may do there.
    """
    signals.order_completed.send(sender=Order, order=order, channel=channel, actor=actor, at=now)


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
    """Take a hand-over back within the merchant's window: the order returns to the status it had
    (paid, or ready for pickup), the voucher is valid again, the redemption is marked voided (never
    deleted), an OrderEvent says who and why, and `order_completion_voided` undoes the completion."""
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
        restored = Order.objects.filter(pk=locked.order_id, status=O.PICKED_UP).update(
            status=locked.order_status_before, closed_at=None
        )
        if not restored:
            raise VoidRefused(_("The order has moved on since the hand-over (refunded?); it cannot be put back."))
        Redemption.objects.filter(pk=locked.pk).update(voided_at=now, voided_by=manager, void_reason=reason[:255])
        order = Order.objects.get(pk=locked.order_id)
        OrderEvent.objects.create(
            merchant_id=locked.merchant_id, order=order, from_status=O.PICKED_UP,
            to_status=locked.order_status_before, actor=manager, channel=channel,
            note=f"Redemption #{locked.pk} voided: {reason}"[:255],
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
    stored = PickupIdempotencyKey.objects.filter(user=user, key=key).first()
    if stored is None:
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
