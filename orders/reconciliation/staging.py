"""A reconciliation run's statement lines in a staging table, for set-based matching in SQL.

The table is TEMP, named after the run, and lives inside the run's transaction: on PostgreSQL it is
created ON COMMIT DROP and filled with binary COPY (psycopg 3 `cursor.copy()`), so nothing is written
to the WAL and a killed worker leaves nothing behind; on SQLite the same table is filled with batched
executemany. Lines are consumed from an iterator one at a time, so memory does not grow with the file.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from django.db import connection
from django.utils.translation import gettext as _

from ..payments.providers.base import StatementError, StatementLine

TRADE, REFUND = "trade", "refund"
_KINDS = frozenset({TRADE, REFUND})
# Longer than our columns (and no real provider's numbers): refused with the line number rather than
# failing somewhere inside COPY without one.
MAX_NUMBER_LENGTH = 64
# Amounts beyond this are not money (and would overflow the discrepancy columns).
MAX_MINOR = 10**14
SQLITE_BATCH = 5000

_COLUMNS = (
    "line_no", "kind", "out_trade_no", "provider_trade_no", "out_refund_no", "amount_minor", "fee_minor",
    "occurred_at", "currency",
)  # fmt: skip
_COPY_TYPES = ["int4", "text", "text", "text", "text", "int8", "int8", "timestamptz", "text"]


@dataclass
class StagedStatement:
    """The staging table of one run and the day's totals as the statement bills them (minor units)."""

    table: str
    lines: int = 0
    trade_count: int = 0
    refund_count: int = 0
    trades_minor: int = 0
    refunds_minor: int = 0
    fees_minor: int = 0
    currency: str = ""


def stage_table_name(run_id: int) -> str:
    return f"reconciliation_stage_{int(run_id)}"


def statement_stage(*, run_id: int, lines: Iterable[StatementLine]) -> StagedStatement:
    """Load `lines` into a new staging table for `run_id`; call inside the run's transaction.

    Raises StatementError (with the line number) for a line the matching cannot use.
    """
    staged = StagedStatement(table=stage_table_name(run_id))
    postgres = connection.vendor == "postgresql"
    with connection.cursor() as cursor:
        cursor.execute(
            f"CREATE TEMP TABLE {staged.table} ("  # noqa: S608 - the name is built from an integer
            "line_no integer NOT NULL, kind varchar(8) NOT NULL, out_trade_no varchar(64) NOT NULL, "
            "provider_trade_no varchar(64) NOT NULL, out_refund_no varchar(64) NOT NULL, "
            "amount_minor bigint NOT NULL, fee_minor bigint NOT NULL, occurred_at timestamp with time zone NULL, "
            "currency varchar(3) NOT NULL)" + (" ON COMMIT DROP" if postgres else "")
        )
        rows = _rows(lines, staged)
        if postgres:
            columns = ", ".join(_COLUMNS)
            with cursor.copy(f"COPY {staged.table} ({columns}) FROM STDIN (FORMAT BINARY)") as copy:
                copy.set_types(_COPY_TYPES)
                for row in rows:
                    copy.write_row(row)
            # The planner knows nothing of a fresh temp table: without statistics it guesses a few
            # hundred rows and may pick nested loops over a million.
            cursor.execute(f"ANALYZE {staged.table}")
        else:
            insert = f"INSERT INTO {staged.table} ({', '.join(_COLUMNS)}) VALUES ({', '.join(['%s'] * len(_COLUMNS))})"  # noqa: S608
            batch = []
            moment = connection.ops.adapt_datetimefield_value  # as Django stores it: naive UTC text
            for row in rows:
                batch.append(row[:7] + (moment(row[7]),) + row[8:])
                if len(batch) >= SQLITE_BATCH:
                    cursor.executemany(insert, batch)
                    batch = []
            if batch:
                cursor.executemany(insert, batch)
    return staged


def statement_unstage(staged: StagedStatement) -> None:
    """Drop the staging table now (PostgreSQL would drop it at commit anyway)."""
    with connection.cursor() as cursor:
        cursor.execute(f"DROP TABLE IF EXISTS {staged.table}")


def _rows(lines: Iterable[StatementLine], staged: StagedStatement):
    """Check each line and keep the day's totals while it streams past."""
    for line in lines:
        kind, amount, fee, occurred_at = line.kind, line.amount_minor, line.fee_minor, line.occurred_at
        out_trade_no, provider_trade_no, out_refund_no = line.out_trade_no, line.provider_trade_no, line.out_refund_no
        if not (
            kind in _KINDS
            and type(amount) is int
            and type(fee) is int
            and 0 <= amount < MAX_MINOR
            and 0 <= fee < MAX_MINOR
            and len(out_trade_no) <= MAX_NUMBER_LENGTH
            and len(provider_trade_no) <= MAX_NUMBER_LENGTH
            and len(out_refund_no) <= MAX_NUMBER_LENGTH
            and len(line.currency) == 3
            and (occurred_at is None or occurred_at.tzinfo is not None)
        ):
            _refuse(line)
        staged.lines += 1
        # Fees are never negative (see StatementLine): charged on a trade, handed back with a refund.
        if kind == TRADE:
            staged.trade_count += 1
            staged.trades_minor += amount
            staged.fees_minor += fee
        else:
            staged.refund_count += 1
            staged.refunds_minor += amount
            staged.fees_minor -= fee
        if not staged.currency:
            staged.currency = line.currency
        yield (
            line.line_no,
            kind,
            out_trade_no,
            provider_trade_no,
            out_refund_no,
            amount,
            fee,
            occurred_at,
            line.currency,
        )


def _refuse(line: StatementLine) -> None:
    """Say which check a line failed (the fast path above only knows that one did)."""
    if line.kind not in _KINDS:
        why = _("unknown kind %(kind)r") % {"kind": line.kind}
    elif type(line.amount_minor) is not int or not 0 <= line.amount_minor < MAX_MINOR:
        why = _("amount %(amount_minor)r is not a whole number of minor units in range") % {
            "amount_minor": line.amount_minor
        }
    elif type(line.fee_minor) is not int or not 0 <= line.fee_minor < MAX_MINOR:
        # Never negative: the kind says whether the fee was charged or handed back.
        why = _("fee %(fee_minor)r is not a whole number of minor units in range, zero or more") % {
            "fee_minor": line.fee_minor
        }
    elif len(line.currency) != 3:
        why = _("currency %(currency)r is not a currency code") % {"currency": line.currency}
    elif line.occurred_at is not None and line.occurred_at.tzinfo is None:
        why = _("its time has no time zone")
    else:
        why = _("a trade or refund number is longer than %(limit)s characters") % {"limit": MAX_NUMBER_LENGTH}
    raise StatementError(why, line_no=line.line_no)
