"""The counter's common case in one SQL statement: a whole voucher handed over through the POS API.

A POS redeem is nearly always "hand everything over" of a paid voucher, by a cashier at their store.
On PostgreSQL that case is one data-modifying statement (`_WHOLE_SQL`): claim the Idempotency-Key,
lock the order if it may be handed over here and now, hand every line over, write the redemption and
the order's event, mark the order picked up, and return what the answer needs. Then one more statement
stores the answer for retries, and `order_completed` fires, all in the same transaction.

It only ever says yes. Whenever the statement finds anything else (an unknown code, another store, a
status or a deadline that refuses, a retried key, a line that changed while we waited for the lock),
everything it did is rolled back and the caller takes the general path (services.pickup_redeem and
pickup_answer_once), which explains why: the rules that refuse live in one place only. SQLite, partial
pickups (`lines`), platform users and anything unusual in the request take the general path from the
start.
"""

import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from axes.helpers import get_client_ip_address
from django.core.serializers.json import DjangoJSONEncoder
from django.db import connection, transaction
from django.http import QueryDict
from django.utils import timezone
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response

from members.models import phone_mask
from o2o.prepared import PreparedStatement
from o2o.tenancy import CASHIER, MANAGER, staff_role_of

from ..lifecycle import AWAITING_PICKUP
from ..models import Order, OrderEvent
from .codes import voucher_code_is_wellformed, voucher_code_parse
from .errors import RateLimited
from .models import Redemption
from .selectors import staff_name
from .services import order_completed
from .throttling import pickup_misses_check

O = Order.Status  # noqa: E741 - reads as O.PAID, as in orders/lifecycle.py
IDEMPOTENCY_KEY_MAX = 64  # as api.IDEMPOTENCY_KEY_MAX: a longer key is the general path's 400
_ORDER_FIELDS = [field.attname for field in Order._meta.concrete_fields]
_ORDER_COLUMNS = ", ".join(f'o."{field.column}"' for field in Order._meta.concrete_fields)

# Read it as a pipeline; each step feeds the next, so none runs ahead of the one it depends on.
#   store  the one store the request means (named, or the user's only one) among those the user serves;
#   claim  the Idempotency-Key, first (keyed requests only): a retry or a twin finds it taken and gets
#          nothing more from this statement (a twin in flight makes us wait on the unique index);
#   held   the order, locked, if it may be handed over at that store now (FOR UPDATE returns the row as
#          it is once the lock is ours: its status before the hand-over is the current one);
#   items  every line handed over in full, but only where its count is still what this statement's
#          snapshot read: a part handed over (or voided) while we waited for the lock leaves that line
#          alone, the caller sees fewer lines than the order has, rolls back and takes the general path;
#   red, event, done  the redemption (what each line gave), the order's event, the order picked up.
# One row comes back: the order's columns, the redemption, what the answer shows, the lines as JSON.
_WHOLE_SQL = """
WITH candidates AS (
    SELECT s.id, s.code, s.name FROM merchants_store s
    WHERE s.merchant_id = %(merchant)s AND s.is_active
      AND (%(cashier_role)s::bigint IS NULL OR EXISTS (
          SELECT 1 FROM merchants_staffrole_stores rs WHERE rs.staffrole_id = %(cashier_role)s AND rs.store_id = s.id))
      AND (%(store_code)s::text IS NULL OR s.code = %(store_code)s::text)
), store AS (
    SELECT * FROM candidates WHERE (SELECT count(*) FROM candidates) = 1
){claim}, held AS (
    SELECT o.id, o.merchant_id, o.pickup_store_id, o.status
    FROM orders_order o JOIN store ON store.id = o.pickup_store_id
    WHERE o.pickup_code = %(code)s AND o.merchant_id = %(merchant)s AND o.fulfilment = %(pickup)s
      AND o.status = ANY(%(redeemable)s::text[])
      AND (o.pickup_deadline IS NULL OR o.pickup_deadline >= %(now)s){claimed}
    FOR UPDATE OF o
), items AS (
    UPDATE orders_orderitem i SET handed_over = i.quantity
    FROM held, orders_orderitem was
    WHERE i.order_id = held.id AND was.id = i.id AND i.handed_over = was.handed_over
    RETURNING i.id, i.product_id, i.quantity, i.quantity - was.handed_over AS units
), red AS (
    INSERT INTO orders_redemption (merchant_id, order_id, store_id, cashier_id, channel, client, client_ip,
        idempotency_key, created_at, lines, order_status_before, voided_at, voided_by_id, void_reason)
    SELECT held.merchant_id, held.id, held.pickup_store_id, %(user)s, %(channel)s, %(client)s, %(client_ip)s,
        %(key)s, %(now)s,
        (SELECT coalesce(jsonb_agg(jsonb_build_object('item', it.id, 'product', it.product_id, 'name', p.name,
                                                      'quantity', it.units) ORDER BY it.id), '[]'::jsonb)
         FROM items it JOIN merchants_product p ON p.id = it.product_id WHERE it.units > 0),
        held.status, NULL, NULL, ''
    FROM held
    RETURNING id
), event AS (
    INSERT INTO orders_orderevent (merchant_id, order_id, from_status, to_status, actor_id, channel, note, created_at)
    SELECT held.merchant_id, held.id, held.status, %(picked_up)s, %(user)s, %(event_channel)s,
        left('Redemption #' || red.id || ' at ' || store.name, 255), %(now)s
    FROM held, red, store
), done AS (
    UPDATE orders_order o SET status = %(picked_up)s, closed_at = %(now)s FROM held WHERE o.id = held.id
    RETURNING {order_columns}
)
SELECT {done_columns}, red.id, {claim_id}, store.code, store.name, m.phone,
    (SELECT count(*) FROM orders_orderitem WHERE order_id = done.id),
    (SELECT json_agg(json_build_array(it.id, it.product_id, p.name, it.quantity, it.units) ORDER BY it.id)::text
     FROM items it JOIN merchants_product p ON p.id = it.product_id)
FROM done, red, store, members_member m
WHERE m.id = done.member_id
"""
_CLAIM = """, claim AS (
    INSERT INTO orders_pickupidempotencykey (user_id, key, code, status_code, body, created_at)
    SELECT %(user)s, %(key)s, %(code)s, NULL, '', %(now)s FROM store
    ON CONFLICT ON CONSTRAINT pickup_idempotency_key_once DO NOTHING
    RETURNING id
)"""


def _sql(*, keyed: bool) -> str:
    return _WHOLE_SQL.format(
        claim=_CLAIM if keyed else "",
        claimed="\n      AND EXISTS (SELECT 1 FROM claim)" if keyed else "",
        claim_id="(SELECT id FROM claim)" if keyed else "NULL",
        order_columns=_ORDER_COLUMNS,
        done_columns=", ".join(f'done."{field.column}"' for field in Order._meta.concrete_fields),
    )


_PARAMETER_TYPES = {
    "merchant": "bigint", "cashier_role": "bigint", "store_code": "text", "user": "integer", "key": "text",
    "code": "text", "now": "timestamptz", "pickup": "text", "redeemable": "text[]", "channel": "text",
    "client": "text", "client_ip": "inet", "picked_up": "text", "event_channel": "text",
}


# Prepared once per connection: planning this statement costs more than running it (o2o/prepared.py).
_STATEMENT = {
    True: PreparedStatement("o2o_pickup_whole_keyed", _sql(keyed=True), types=_PARAMETER_TYPES),
    False: PreparedStatement("o2o_pickup_whole", _sql(keyed=False), types=_PARAMETER_TYPES),
}


_DATETIME = serializers.DateTimeField()  # as the API writes every time


class _Declined(Exception):
    """The statement did not hand the voucher over whole: undo what it did, take the general path."""


@dataclass(frozen=True)
class WholeHandOver:
    """What one whole hand-over did, as the answer shows it."""

    order: Order
    redemption_id: int
    claim_id: int | None
    store_code: str
    store_name: str
    member_phone: str
    # (item id, product id, product name, quantity, units handed over now), in line order
    lines: list[tuple[int, int, str, int, int]]


def pickup_redeem_whole(
    *, code: str, cashier: Any, store_code: str | None, client: str, client_ip: str | None,
    idempotency_key: str, now: datetime, answer: Callable[[WholeHandOver], dict],
) -> dict | None:
    """Hand everything left of the voucher over at the store the cashier means, in one statement, if it
    may be handed over there now; return `answer(hand_over)`, kept (inside the hand-over's transaction)
    as the answer to every retry of `idempotency_key`. None, with nothing changed, in every other case:
    the general path handles it and says why. Fires `order_completed` as pickup_redeem does."""
    role = staff_role_of(cashier)
    if (
        connection.vendor != "postgresql" or getattr(cashier, "is_superuser", False) or role is None
        or role.role not in (CASHIER, MANAGER) or not voucher_code_is_wellformed(code)
    ):
        return None
    params = {
        "merchant": role.merchant_id, "cashier_role": role.pk if role.role == CASHIER else None,
        "store_code": store_code, "code": code, "pickup": Order.Fulfilment.PICKUP.value,
        "redeemable": [str(status) for status in AWAITING_PICKUP],
        "now": now, "user": cashier.pk, "channel": Redemption.Channel.API.value, "client": (client or "")[:255],
        "client_ip": client_ip or None, "key": idempotency_key, "picked_up": O.PICKED_UP.value,
        "event_channel": OrderEvent.Channel.API.value,
    }
    try:
        with transaction.atomic():
            with connection.cursor() as cursor:
                rows = _STATEMENT[bool(idempotency_key)].fetchall(cursor, params)
            if not rows:
                raise _Declined()
            width = len(_ORDER_FIELDS)
            row = rows[0]
            redemption_id, claim_id, store_code, store_name, phone, line_count, lines = row[width:]
            lines = [tuple(line) for line in json.loads(lines or "[]")]
            # Every line of the order handed over, or none: else a line moved under us (see _WHOLE_SQL).
            if len(lines) != line_count or not any(units for *_line, units in lines):
                raise _Declined()
            order = Order.from_db(connection.alias, _ORDER_FIELDS, row[:width])
            hand_over = WholeHandOver(
                order=order, redemption_id=redemption_id, claim_id=claim_id, store_code=store_code,
                store_name=store_name, member_phone=phone, lines=lines,
            )
            order_completed(order=order, channel=OrderEvent.Channel.API, actor=cashier, now=now)
            body = answer(hand_over)
            if hand_over.claim_id is not None:
                with connection.cursor() as cursor:
                    cursor.execute(
                        "UPDATE orders_pickupidempotencykey SET status_code = 200, body = %s WHERE id = %s",
                        [json.dumps(body, cls=DjangoJSONEncoder), hand_over.claim_id],
                    )
            return body
    except _Declined:
        return None


# --------------------------------------------------------------------------- the POS API's answer


def redemption_answer(*, hand_over: WholeHandOver, cashier: Any, now: datetime) -> dict:
    """The body api.RedemptionSerializer gives for the same hand-over, key for key, without a serializer."""
    order = hand_over.order
    return {
        "redemption": hand_over.redemption_id,
        "order": order.pk,
        "code": order.pickup_code,
        "status": order.status,
        "redeemed_at": _DATETIME.to_representation(now),
        "store": {"code": hand_over.store_code, "name": hand_over.store_name},
        "cashier": staff_name(cashier),
        "channel": Redemption.Channel.API.value,
        "lines": [
            {"item": item, "product": product, "name": name, "quantity": units}
            for item, product, name, _quantity, units in hand_over.lines
            if units
        ],
        "complete": True,
        "order_lines": [
            {"item": item, "name": name, "quantity": quantity, "handed_over": quantity, "left": 0}
            for item, _product, name, quantity, _units in hand_over.lines
        ],
        "member_phone": phone_mask(hand_over.member_phone),
    }


def _store_code(data: Any) -> tuple[bool, str | None]:
    """(fits, store code): the body asks for a whole hand-over, at the store it names if any. What
    RedeemRequestSerializer would read differently (or refuse) does not fit."""
    if isinstance(data, QueryDict):
        return (not data, None)
    if not isinstance(data, dict) or "lines" in data:
        return False, None
    store = data.get("store")
    if store is None:
        return "store" not in data, None
    return (isinstance(store, str) and store != "" and store == store.strip()), store


def pickup_redeem_fast_answer(request: Request, code: str) -> Response | None:
    """POST /api/v1/pickups/{code}/redeem/ for a whole hand-over that goes through: the same answer,
    status and body, as the general path gives, and the same record; None for the general path."""
    key = request.headers.get("Idempotency-Key", "").strip()
    fits, store_code = _store_code(request.data)
    if not fits or len(key) > IDEMPOTENCY_KEY_MAX:
        return None
    user, ip = request.user, get_client_ip_address(request._request)
    try:
        # While over the limit of unknown codes, even real ones are refused: the general path says so.
        pickup_misses_check(user_id=user.pk, ip=ip)
    except RateLimited:
        return None
    now = timezone.now()
    body = pickup_redeem_whole(
        code=voucher_code_parse(code), cashier=user, store_code=store_code,
        client=request.headers.get("X-Client-Name") or request.headers.get("User-Agent", ""), client_ip=ip,
        idempotency_key=key, now=now, answer=lambda done: redemption_answer(hand_over=done, cashier=user, now=now),
    )
    return None if body is None else Response(body)
