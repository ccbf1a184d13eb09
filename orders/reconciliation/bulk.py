"""WeChat Pay trade bills (and the sandbox's, which are the same format) staged in SQL, in bulk.

Reading a million-line bill in Python costs microseconds a line whatever one does; PostgreSQL's COPY
splits and types lines many times faster. So on PostgreSQL a trade bill is not parsed line by line:
its bytes are turned, a few megabytes at a time with one bytes.replace() in the usual case, into COPY's
text format (one column per bill column), copied into a temporary table, and typed and checked there in
one set-based statement.

The Python reader (wechatpay.tradebill_lines) stays the definition of the format. This path vouches
only for files inside a strict subset of it (every row starts with a backtick, amounts of digits and
one point, times as YYYY-MM-DD HH:MM:SS, numbers without surrounding spaces, ...);
for those it stages exactly the lines the reader would. Anything else (a malformed file, but also an
odd-but-valid one) makes `tradebill_stage` return None after rolling its work back, and the caller
reads the file with the Python reader, which accepts it or names the line that is wrong. Memory stays
bounded: one chunk of the file at a time, and the summary at the end (a few lines).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from decimal import Decimal
from typing import BinaryIO

import psycopg
from django.db import DatabaseError, connection, transaction

from ..payments.providers.base import StatementError
from ..payments.providers.csvstream import MAX_LINE_BYTES, column_index, ungzipped
from ..payments.providers.wechatpay import (
    BILL_COLUMNS,
    BILL_REQUIRED,
    CROSS_CHECKS,
    FEE_PLACES,
    FEE_SUM,
    SUMMARY_COLUMNS,
    SUMMARY_FIRST,
    _backtick_cells,
    _check_summary,
)
from .staging import MAX_NUMBER_LENGTH, StagedStatement, stage_table_name

CHUNK_BYTES = 4 * 1024 * 1024
# The summary header, its line and blank lines: anything longer after the rows is not a trade bill.
MAX_TAIL_BYTES = 64 * 1024
# A newline not followed by a backtick: the end of the rows (the summary header starts there).
_NOT_A_ROW = re.compile(rb"\n(?=[^`])")


class _NotVouched(Exception):
    """The file is outside what this path vouches for: the Python reader decides."""


# psycopg's own errors too: COPY runs on the driver's cursor, outside Django's error translation (and it
# refuses mixed line ends or a carriage return inside a cell, which the reader takes).
_DECLINED = (
    _NotVouched, DatabaseError, psycopg.Error, StatementError, UnicodeDecodeError, OSError, EOFError, ValueError,
)  # fmt: skip


def tradebill_stage(*, run_id: int, stream: BinaryIO, merchant_no: str) -> StagedStatement | None:
    """Stage the trade bill in `stream` for `run_id` (inside the run's transaction, PostgreSQL only).

    Returns None, with nothing left behind and `stream` at its start, when the caller must read the file
    with the Python reader instead.
    """
    start = stream.tell()
    try:
        with transaction.atomic():
            return _stage(run_id=run_id, stream=stream, merchant_no=merchant_no)
    except _DECLINED:
        stream.seek(start)
        return None


def _stage(*, run_id: int, stream: BinaryIO, merchant_no: str) -> StagedStatement:
    source = ungzipped(stream)
    header_line = source.readline(MAX_LINE_BYTES + 1)
    if len(header_line) > MAX_LINE_BYTES or not header_line.strip():
        raise _NotVouched
    header = [cell.strip() for cell in header_line.decode("utf-8").removeprefix("\ufeff").rstrip("\r\n").split(",")]
    columns = column_index(header, wanted=BILL_COLUMNS, required=BILL_REQUIRED, line_no=1)
    width = len(header)
    bill, stage = f"reconciliation_bill_{int(run_id)}", stage_table_name(run_id)
    tail = bytearray()
    rows = 0
    with connection.cursor() as cursor:
        # Times are checked by printing them back: that needs ISO output.
        cursor.execute("SET LOCAL DateStyle = 'ISO, YMD'")
        cells = ", ".join(f"c{position} text" for position in range(width))
        # Line numbers as the reader counts them: the header is line 1 and every following line is a row.
        # (CACHE: numbering a million rows one sequence call at a time costs a second.)
        cursor.execute(
            f"CREATE TEMP TABLE {bill} (line_no integer GENERATED ALWAYS AS IDENTITY (START WITH 2 CACHE 100000), "
            f"{cells}) ON COMMIT DROP"
        )
        names = ", ".join(f"c{position}" for position in range(width))
        with cursor.copy(f"COPY {bill} ({names}) FROM STDIN") as copy:
            for body in _row_chunks(source, tail):
                rows += body.count(b"\n")
                copy.write(_copy_text(body))
        summary = _summary(bytes(tail), first_line_no=rows + 2)
        if summary is None:
            raise _NotVouched
        cursor.execute(_typed_sql(bill=bill, stage=stage, columns=columns), {"mchid": merchant_no})
        cursor.execute(f"DROP TABLE {bill}")
        cursor.execute(_totals_sql(stage=stage, columns=columns))
        (count, valid, sums, staged) = _totals(cursor.fetchone(), columns)
        if count != rows or not valid:
            raise _NotVouched
        summary_header, summary_values, summary_line_no = summary
        summary_columns = column_index(summary_header, wanted=SUMMARY_COLUMNS, required=("count",), line_no=0)
        try:
            _check_summary(summary_header, summary_columns, summary_values, rows, sums, summary_line_no)
        except StatementError:
            raise _NotVouched from None
        if count > staged.lines:
            # REVOKED rows count towards the summary only (see wechatpay.ROW_STATES).
            cursor.execute(f"DELETE FROM {stage} WHERE kind IS NULL")  # noqa: S608 - our own identifier
        # The planner knows nothing of a fresh temp table (see staging.statement_stage).
        # Only the columns the matching joins and filters on: sampling the rest costs time and helps no plan.
        cursor.execute(f"ANALYZE {stage} (kind, out_trade_no, provider_trade_no, out_refund_no, line_no)")
    staged.table = stage
    return staged


def _row_chunks(source: BinaryIO, tail: bytearray) -> Iterator[bytes]:
    """Whole rows of the bill, a chunk at a time; what follows the rows is put into `tail`."""
    carry = b""
    in_tail = False
    while True:
        data = source.read(CHUNK_BYTES)
        if in_tail:
            tail.extend(data)
            if len(tail) > MAX_TAIL_BYTES:
                raise _NotVouched
            if not data:
                return
            continue
        if not data:
            if carry:
                tail.extend(carry)  # a last line without its newline: the reader's business
            return
        data = carry + data
        cut = data.rfind(b"\n") + 1
        if cut == 0:
            if len(data) > MAX_LINE_BYTES:
                raise _NotVouched
            carry = data
            continue
        body, carry = data[:cut], data[cut:]
        end = 0 if not body.startswith(b"`") else None
        if end is None:
            found = _NOT_A_ROW.search(body)
            end = found.end() if found else None
        if end is not None:
            tail.extend(body[end:] + carry)
            body, carry, in_tail = body[:end], b"", True
            if len(tail) > MAX_TAIL_BYTES:
                raise _NotVouched
        if body:
            _check_line_lengths(body)
            yield body


def _check_line_lengths(body: bytes) -> None:
    """Every line at most MAX_LINE_BYTES long (the reader refuses longer ones), checked a window at a time."""
    position, size = 0, len(body)
    while size - position > MAX_LINE_BYTES:
        newline = body.rfind(b"\n", position, position + MAX_LINE_BYTES)
        if newline < 0:
            raise _NotVouched
        position = newline + 1


def _copy_text(body: bytes) -> bytes:
    """Rows `body` (each "`cell,`cell...\\r\\n") in COPY's text format: a tab between cells, backslashes and
    tabs escaped. One pass over the bytes in the usual case (each pass over a 200 MB bill costs a quarter of
    a second): escapes only when there is something to escape; each row's leading backtick stays in its
    first cell (SQL drops it, see _typed_sql); line ends stay as they are, since COPY takes \\r\\n as well
    as \\n and refuses a file that mixes them or holds a bare carriage return (the reader then decides)."""
    if b"\\" in body or b"\t" in body:
        body = body.replace(b"\\", b"\\\\").replace(b"\t", b"\\t")
    # Each row starts with a backtick (checked by _row_chunks) and each cell after it with ",`".
    return body.replace(b",`", b"\t")


def _summary(tail: bytes, *, first_line_no: int) -> tuple[list[str], list[str], int] | None:
    """The summary header and line right after the rows, then nothing but blank lines; else None."""
    lines = tail.decode("utf-8").split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    lines = [line.rstrip("\r") for line in lines]
    if len(lines) < 2 or not lines[0].strip() or not lines[1].strip() or any(line.strip() for line in lines[2:]):
        return None
    header = [cell.strip() for cell in lines[0].split(",")]
    if header[0] != SUMMARY_FIRST or lines[0].startswith("`"):
        return None
    return header, _backtick_cells(lines[1], line_no=first_line_no + 1), first_line_no + 1


def _typed_sql(*, bill: str, stage: str, columns: dict[str, int]) -> str:
    """The staging table typed from the bill's text cells, with `ok`: whether the reader would read this row
    to exactly these values. Casts that fail abort the statement (the reader then names the line)."""
    amounts = [field for field in (*CROSS_CHECKS, "fee") if field in columns]
    trade_amount = "total" if "total" in columns else "settlement"
    refund_amount = "refund_applied" if "refund_applied" in columns else "refund"

    def cell(field: str) -> str:
        # The first cell still holds its row's backtick (see _copy_text): b0 is that cell without it.
        return ("b0" if columns[field] == 0 else f"c{columns[field]}") if field in columns else "''"

    def value(field: str) -> str:
        return f"n_{field}" if field in columns else "0"

    def amount_ok(field: str, places: int) -> str:
        # "" counts as 0, as in the reader. Otherwise digits, a point and an optional leading minus only
        # (no "+", exponent, spaces, NaN: a cast alone would take those), a digit before the point, 1 to
        # `places` after it, at most 12 before it. A cast that fails aborts the statement (the reader
        # decides); string functions, not number formatting, keep this cheap over a million rows.
        # First the common case, cheaply: the number prints back as written (PostgreSQL prints no sign but
        # "-", no exponent, no leading zero, every decimal it was given; NaN and Infinity fail the range);
        # string functions, not number formatting, only for the rest (leading zeros).
        text, number = cell(field), value(field)
        return (
            f"({text} = '' OR (abs({number}) < 1e12 AND ("
            f"{number}::text = {text} AND scale({number}) BETWEEN 1 AND {places}"
            f" OR translate({text}, '0123456789', '') IN ('.', '-.')"
            f" AND NOT ({text} LIKE '.%%' OR {text} LIKE '-.%%')"
            f" AND length({text}) - position('.' IN {text}) BETWEEN 1 AND {places})))"
        )

    def number_ok(field: str) -> str:
        # ASCII without whitespace at either end (all of ASCII's is at or below the space): nothing for the
        # reader to strip. Anything else (non-ASCII numbers) goes to the reader.
        text = cell(field)
        return (
            f"(octet_length({text}) BETWEEN 1 AND {MAX_NUMBER_LENGTH} AND octet_length({text}) = length({text})"
            f" AND ascii({text}) > 32 AND ascii(right({text}, 1)) > 32)"
        )

    summed = [field for field in CROSS_CHECKS if field in columns]
    state, when, currency = cell("state"), cell("time"), cell("currency")
    refund_ok = (
        f"{value(refund_amount)} >= 0 AND {number_ok('out_refund_no')}" if "refund" in columns else "false"
    )
    checks = [
        f"{state} IN ('SUCCESS', 'REFUND', 'REVOKED')",
        *(amount_ok(field, 2) for field in summed),
        amount_ok("fee", FEE_PLACES),
        # merchant_no "" checks nothing, as in the reader
        f"(%(mchid)s = '' OR {cell('mchid')} = %(mchid)s)",
        # The reader reads a REVOKED row no further than its amounts, state and account.
        f"""({state} = 'REVOKED' OR (
            {number_ok('transaction_id')} AND {number_ok('out_trade_no')}
            AND ({when} = '' OR (length({when}) = 19 AND ts::text = {when}))
            AND ({currency} IN ('', 'CNY') OR octet_length({currency}) = 3 AND {currency} = upper({currency})
                 AND ascii({currency}) > 32 AND ascii(right({currency}, 1)) > 32)
            AND ({state} = 'SUCCESS' AND {value(trade_amount)} >= 0 OR {state} = 'REFUND' AND {refund_ok})))""",
    ]
    typed = "".join(f", CASE WHEN {cell(f)} = '' THEN 0 ELSE {cell(f)}::numeric END AS n_{f}" for f in amounts)
    sums = "".join(f", {value(field)} AS sum_{field}" for field in summed)
    return f"""
        CREATE TEMP TABLE {stage} ON COMMIT DROP AS
        SELECT line_no,
               CASE {state} WHEN 'SUCCESS' THEN 'trade' WHEN 'REFUND' THEN 'refund' END::varchar(8) AS kind,
               {cell('out_trade_no')}::varchar(64) AS out_trade_no,
               {cell('transaction_id')}::varchar(64) AS provider_trade_no,
               CASE WHEN {state} = 'REFUND' THEN {cell('out_refund_no')} ELSE '' END::varchar(64) AS out_refund_no,
               CASE WHEN {state} = 'SUCCESS' THEN {value(trade_amount)} * 100
                    WHEN {state} = 'REFUND' THEN {value(refund_amount)} * 100 END::bigint AS amount_minor,
               -- positive, rounded half away from zero to the fen, as the reader's fee_minor
               abs(round({value('fee')}, 2) * 100)::bigint AS fee_minor,
               CASE WHEN {state} <> 'REVOKED' THEN ts AT TIME ZONE 'Asia/Shanghai' END AS occurred_at,
               COALESCE(NULLIF({currency}, ''), 'CNY')::varchar(3) AS currency,
               {value('fee')} AS fee_written{sums},
               COALESCE({' AND '.join(checks)}, false) AS ok
        FROM (
            -- Each cast once (OFFSET 0 keeps the planner from copying them into every use above).
            SELECT w.*, CASE WHEN {when} = '' THEN NULL ELSE {when}::timestamp END AS ts{typed}
            FROM (SELECT r.*, substr(r.c0, 2) AS b0 FROM {bill} r) w OFFSET 0
        ) t
    """  # noqa: S608 - only our own identifiers and column numbers are formatted in


def _totals_sql(*, stage: str, columns: dict[str, int]) -> str:
    summed = [field for field in CROSS_CHECKS if field in columns]
    sums = "".join(f", SUM(sum_{field})" for field in summed)
    return f"""
        SELECT COUNT(*), COALESCE(BOOL_AND(ok), true), SUM(fee_written){sums},
               COUNT(*) FILTER (WHERE kind = 'trade'), COUNT(*) FILTER (WHERE kind = 'refund'),
               COALESCE(SUM(amount_minor) FILTER (WHERE kind = 'trade'), 0),
               COALESCE(SUM(amount_minor) FILTER (WHERE kind = 'refund'), 0),
               COALESCE(SUM(CASE kind WHEN 'trade' THEN fee_minor WHEN 'refund' THEN -fee_minor ELSE 0 END), 0),
               (SELECT currency FROM {stage} WHERE kind IS NOT NULL ORDER BY line_no LIMIT 1)
        FROM {stage}
    """  # noqa: S608


def _totals(row: tuple, columns: dict[str, int]) -> tuple[int, bool, dict[str, int], StagedStatement]:
    summed = [field for field in CROSS_CHECKS if field in columns]
    count, valid, fee_written, *rest = row
    # NUMERIC sums may come back as int or Decimal; both are exact.
    sums = {field: int(Decimal(value or 0).scaleb(2)) for field, value in zip(summed, rest, strict=False)}
    sums[FEE_SUM] = int(Decimal(fee_written or 0).scaleb(FEE_PLACES))
    trade_count, refund_count, trades, refunds, fees, currency = rest[len(summed) :]
    staged = StagedStatement(
        table="", lines=trade_count + refund_count, trade_count=trade_count, refund_count=refund_count,
        trades_minor=int(trades), refunds_minor=int(refunds), fees_minor=int(fees), currency=currency or "",
    )  # fmt: skip
    return count, bool(valid), sums, staged
