"""Set-based matching of a staged settlement statement against our payments and refunds.

A few INSERT ... SELECT / UPDATE statements write a run's discrepancies; matched lines leave no row and
are counted as the lines that have none. Each statement line gets exactly one outcome:

- the second and later lines of one trade (or refund) number: *duplicate* (the first is reconciled);
- a trade of ours with money in (paid, or under review), same amount and currency: matched, else
  *amount_mismatch*;
- a trade of ours still awaiting money with the same amount: *healed* (services then applies it through
  the notification path); any other trade: *missing_here*;
- a refund of ours that succeeded with the same amount: matched, else *refund_mismatch*.

And each payment of ours with money in, paid that day in the merchant's time zone, that no trade line
names is *missing_at_provider*; each refund of ours that succeeded that day and that no refund line names
is a *refund_mismatch* without a line.

Cost follows the day, not the merchant's history: trade lines meet the day's payments (an index range)
in one hash FULL JOIN, which also finds the day's payments the statement lacks; the few lines left over
(heals, trades we never saw, payments of other days) are looked up by their number (a unique index).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from django.db import connection

from ..payments.services import AWAITING_MONEY, MONEY_IN

HEALED_NOTE = "Healed automatically: marked paid from the settlement statement."
# Hash joins and the duplicate GROUP BY over a million staged lines spill to disk at the 4 MB default.
MATCH_WORK_MEM = "256MB"

_INSERT = """
    INSERT INTO orders_discrepancy (
        run_id, merchant_id, kind, status, line_no, out_trade_no, provider_trade_no, out_refund_no, payment_id,
        our_amount, their_amount, occurred_at, detail, created_at, resolution_note, resolved_at
    )"""

# One trade (or refund) number's first line is reconciled, each repeat is a duplicate. A line without our
# number is keyed by the provider's, then by itself, so lines without numbers never "repeat" each other.
_DUPS = """
    dups AS (
        SELECT {key} AS k, MIN(s.line_no) AS first_line FROM {stage} s
        WHERE s.kind = '{kind}' GROUP BY 1 HAVING COUNT(*) > 1
    )"""
_TRADE_KEY = "COALESCE(NULLIF(s.out_trade_no, ''), '#p' || NULLIF(s.provider_trade_no, ''), '#l' || s.line_no)"
_REFUND_KEY = "COALESCE(NULLIF(s.out_refund_no, ''), '#l' || s.line_no)"

# Templates: {names} are filled with our own identifiers and code constants (see statement_match); every
# value is a query parameter.

# The trade lines against the day's payments. A first line with no payment of the day is written as
# *missing_here* without a payment for now; _TRADES_ELSEWHERE looks those few up by number.
_TRADES = """
    WITH {trade_dups},
    day AS (
        SELECT p.id, p.out_trade_no, p.provider_trade_no, p.amount, p.currency FROM orders_payment p
        WHERE p.merchant_id = %(merchant)s AND p.provider = %(provider)s AND p.status IN {money_in}
          AND p.paid_at >= %(start)s AND p.paid_at < %(end)s
    ),
    lines AS (
        SELECT s.*, d.first_line,
               CASE WHEN d.first_line IS NOT NULL AND s.line_no <> d.first_line THEN 1 ELSE 0 END AS is_dup
        FROM {stage} s LEFT JOIN dups d ON d.k = {trade_key}
        WHERE s.kind = 'trade'
    ),
    classified AS (
        SELECT l.line_no, COALESCE(l.out_trade_no, y.out_trade_no) AS out_trade_no,
               COALESCE(l.provider_trade_no, y.provider_trade_no) AS provider_trade_no, l.amount_minor,
               l.occurred_at, l.first_line, y.id AS payment_id, y.amount AS our_amount,
               CASE
                   WHEN l.is_dup = 1 THEN 'duplicate'
                   WHEN l.line_no IS NULL THEN 'missing_at_provider'
                   WHEN y.id IS NULL THEN 'missing_here'
                   WHEN ROUND(y.amount * %(scale)s) = l.amount_minor AND y.currency = l.currency THEN 'matched'
                   ELSE 'amount_mismatch'
               END AS kind
        -- A repeated line joins nothing (a NULL key): one pass over the lines, one hash of the day.
        FROM lines l FULL JOIN day y ON y.out_trade_no = CASE WHEN l.is_dup = 0 THEN l.out_trade_no END
    )
    {insert}
    SELECT %(run)s, %(merchant)s, c.kind, 'open', c.line_no, c.out_trade_no, c.provider_trade_no, '',
           c.payment_id, CASE WHEN c.kind = 'duplicate' THEN NULL ELSE c.our_amount END, {their}, c.occurred_at,
           CASE c.kind
               WHEN 'duplicate' THEN 'repeats line ' || c.first_line
               WHEN 'missing_at_provider' THEN 'paid here, not in the statement'
               WHEN 'amount_mismatch' THEN 'amount or currency differs'
               ELSE 'no such payment here'
           END,
           %(now)s, '', NULL
    FROM classified c WHERE c.kind <> 'matched'
"""

# The first lines no payment of the day claimed, by number: paid another day (matched or a mismatch),
# still awaiting money (healed when the amount agrees), or not ours at all (stays missing here).
_TRADES_ELSEWHERE = """
    UPDATE orders_discrepancy SET
        payment_id = r.payment_id, our_amount = r.our_amount, kind = r.kind,
        status = CASE WHEN r.kind = 'healed' THEN 'resolved' ELSE 'open' END,
        detail = CASE
            WHEN r.kind = 'healed' THEN 'paid at the provider; marked paid here'
            WHEN r.kind = 'amount_mismatch' THEN 'amount or currency differs'
            WHEN r.same = 1 THEN 'our payment is ' || r.payment_status
            ELSE 'our payment is ' || r.payment_status || '; amounts differ'
        END,
        resolution_note = CASE WHEN r.kind = 'healed' THEN %(healed_note)s ELSE '' END,
        resolved_at = CASE WHEN r.kind = 'healed' THEN %(now)s END
    FROM (
        SELECT x.*,
               CASE
                   WHEN x.payment_status IN {money_in} AND x.same = 1 THEN 'matched'
                   WHEN x.payment_status IN {money_in} THEN 'amount_mismatch'
                   WHEN x.payment_status IN {awaiting} AND x.same = 1 THEN 'healed'
                   ELSE 'missing_here'
               END AS kind
        FROM (
            SELECT d.id, p.id AS payment_id, p.amount AS our_amount, p.status AS payment_status,
                   CASE WHEN ROUND(p.amount * %(scale)s) = s.amount_minor AND p.currency = s.currency
                        THEN 1 ELSE 0 END AS same
            FROM orders_discrepancy d
            JOIN {stage} s ON s.line_no = d.line_no AND s.kind = 'trade'
            JOIN orders_payment p
              ON p.out_trade_no = d.out_trade_no AND p.merchant_id = %(merchant)s AND p.provider = %(provider)s
            WHERE d.run_id = %(run)s AND d.kind = 'missing_here' AND d.payment_id IS NULL AND d.out_trade_no <> ''
        ) x
    ) r
    WHERE orders_discrepancy.id = r.id
"""

_REFUNDS = """
    WITH {refund_dups},
    lines AS (
        SELECT s.*, d.first_line,
               CASE WHEN d.first_line IS NOT NULL AND s.line_no <> d.first_line THEN 1 ELSE 0 END AS is_dup
        FROM {stage} s LEFT JOIN dups d ON d.k = {refund_key}
        WHERE s.kind = 'refund'
    ),
    classified AS (
        SELECT l.line_no, l.out_trade_no, l.provider_trade_no, l.out_refund_no, l.amount_minor, l.occurred_at,
               l.first_line, r.id AS refund_id, r.payment_id, r.amount AS our_amount, r.status AS refund_status,
               CASE
                   WHEN l.is_dup = 1 THEN 'duplicate'
                   WHEN r.status = 'succeeded' AND ROUND(r.amount * %(scale)s) = l.amount_minor
                        AND rp.currency = l.currency THEN 'matched'
                   ELSE 'refund_mismatch'
               END AS kind
        FROM lines l
        LEFT JOIN (orders_refund r JOIN orders_payment rp ON rp.id = r.payment_id AND rp.provider = %(provider)s)
               ON l.is_dup = 0 AND r.out_refund_no = l.out_refund_no AND r.merchant_id = %(merchant)s
    )
    {insert}
    SELECT %(run)s, %(merchant)s, c.kind, 'open', c.line_no, c.out_trade_no, c.provider_trade_no, c.out_refund_no,
           c.payment_id, CASE WHEN c.kind = 'duplicate' THEN NULL ELSE c.our_amount END, {their}, c.occurred_at,
           CASE
               WHEN c.kind = 'duplicate' THEN 'repeats line ' || c.first_line
               WHEN c.refund_id IS NULL THEN 'no such refund here'
               WHEN c.refund_status <> 'succeeded' THEN 'our refund is ' || c.refund_status
               ELSE 'amount or currency differs'
           END,
           %(now)s, '', NULL
    FROM classified c WHERE c.kind <> 'matched'
"""

_REFUNDS_MISSING = """
    {insert}
    SELECT %(run)s, %(merchant)s, 'refund_mismatch', 'open', NULL, p.out_trade_no, p.provider_trade_no,
           r.out_refund_no, r.payment_id, r.amount, NULL, r.completed_at, 'refunded here, not in the statement',
           %(now)s, '', NULL
    FROM orders_refund r JOIN orders_payment p ON p.id = r.payment_id
    WHERE r.merchant_id = %(merchant)s AND p.provider = %(provider)s AND r.status = 'succeeded'
      AND r.completed_at >= %(start)s AND r.completed_at < %(end)s
      AND NOT EXISTS (SELECT 1 FROM {stage} s WHERE s.kind = 'refund' AND s.out_refund_no = r.out_refund_no)
"""

# Lines matched to a payment of another day leave no row, like every match.
_MATCHED_ELSEWHERE = "DELETE FROM orders_discrepancy WHERE run_id = %(run)s AND kind = 'matched'"


@dataclass(frozen=True)
class MatchScope:
    run_id: int
    merchant_id: int
    provider: str
    start: datetime  # the statement's day in the merchant's time zone: [start, end)
    end: datetime
    scale: int  # minor units per major unit of the merchant's currency
    now: datetime


def statement_match(*, stage: str, scope: MatchScope) -> None:
    """Write the run's discrepancies from the staged statement `stage` (inside the run's transaction)."""
    postgres = connection.vendor == "postgresql"
    names = {
        # Filled first: they hold {stage} and {trade_key}.
        "trade_dups": _fill(_DUPS, {"key": _TRADE_KEY, "kind": "trade"}),
        "refund_dups": _fill(_DUPS, {"key": _REFUND_KEY, "kind": "refund"}),
        "insert": _INSERT,
        "stage": stage,
        "trade_key": _TRADE_KEY,
        "refund_key": _REFUND_KEY,
        "money_in": _sql_in(MONEY_IN),
        "awaiting": _sql_in(AWAITING_MONEY),
        # Amounts in minor units back to money; SQLite has no exact decimal (Django rounds what it reads).
        "their": f"CAST(c.amount_minor AS {'numeric' if postgres else 'REAL'}) / %(scale)s",
    }
    # Raw SQL gets no field adaptation: datetimes as the backend stores them (naive UTC text on SQLite).
    moment = connection.ops.adapt_datetimefield_value
    params = {
        "run": scope.run_id, "merchant": scope.merchant_id, "provider": scope.provider,
        "start": moment(scope.start), "end": moment(scope.end), "scale": scope.scale, "now": moment(scope.now),
        "healed_note": HEALED_NOTE,
    }  # fmt: skip
    with connection.cursor() as cursor:
        if postgres:
            cursor.execute(f"SET LOCAL work_mem = '{MATCH_WORK_MEM}'")
            # Row estimates through the duplicate join are far off, and JIT-compiling plans it thinks huge
            # costs half a second on a million lines and saves nothing.
            cursor.execute("SET LOCAL jit = off")
        for template in (_TRADES, _TRADES_ELSEWHERE, _MATCHED_ELSEWHERE, _REFUNDS, _REFUNDS_MISSING):
            # Only our own identifiers and code constants are formatted in; every value is a parameter.
            cursor.execute(_fill(template, names), params)


def _fill(template: str, names: dict[str, str]) -> str:
    for name, value in names.items():
        template = template.replace("{" + name + "}", value)
    return template


def _sql_in(values) -> str:
    return "(" + ", ".join(f"'{value}'" for value in sorted(values)) + ")"
