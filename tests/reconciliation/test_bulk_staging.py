"""Trade bills staged in bulk on PostgreSQL (COPY, then typed and checked in SQL) hold exactly the lines WeChat
Pay's reader reads; a file the bulk path cannot vouch for goes to the reader, which accepts it or names the
line. Real PostgreSQL: the bulk path exists only there."""

import gzip
import io
import itertools
from dataclasses import asdict
from datetime import timedelta
from decimal import Decimal

import pytest
from django.db import connection, transaction
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from orders.models import Payment
from orders.payments.providers.base import StatementError
from orders.payments.providers.wechatpay import tradebill_lines
from orders.reconciliation.bulk import tradebill_stage
from orders.reconciliation.models import Discrepancy
from orders.reconciliation.services import reconciliation_run
from orders.reconciliation.staging import statement_stage
from tests.payments import vectors as v

from .books import DAY, NOON

pytestmark = [pytest.mark.services, pytest.mark.django_db]

MCHID = v.WECHAT_MCHID
_runs = itertools.count(900_000)


def staged(table: str) -> list[tuple]:
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT line_no, kind, out_trade_no, provider_trade_no, out_refund_no, amount_minor, fee_minor, "  # noqa: S608
            f"occurred_at, currency FROM {table} ORDER BY line_no"
        )
        return cursor.fetchall()


def totals(stage) -> dict:
    return {name: value for name, value in asdict(stage).items() if name != "table"}


def by_bulk(data: bytes):
    """(rows, totals) as the bulk path stages `data`, or None when it leaves the file to the reader."""
    with transaction.atomic():
        stream = io.BytesIO(data)
        stage = tradebill_stage(run_id=next(_runs), stream=stream, merchant_no=MCHID)
        if stage is None:
            assert stream.tell() == 0  # left at its start for the reader
            return None
        return staged(stage.table), totals(stage)


def by_reader(data: bytes):
    with transaction.atomic():
        stage = statement_stage(run_id=next(_runs), lines=tradebill_lines(io.BytesIO(data), merchant_no=MCHID))
        return staged(stage.table), totals(stage)


def entry(n: int, **fields) -> v.BillEntry:
    values = {"kind": "trade", "out_trade_no": f"T{n}", "provider_trade_no": f"42{n:026d}", "amount": "10.00",
              "fee": "0.06", "occurred_at": f"2026-03-01 10:00:{n % 60:02d}"}  # fmt: skip
    values.update(fields)
    return v.BillEntry(**values)


def refund(n: int, **fields) -> v.BillEntry:
    values = {"out_refund_no": f"R{n}", "provider_refund_no": f"50{n:026d}", "amount": "3.00", "fee": "0.02"}
    return entry(n, kind="refund", **{**values, **fields})


REVOKED = {"交易状态": "REVOKED"}


def test_a_bill_of_trades_refunds_and_a_revoked_row_is_staged_as_the_reader_reads_it():
    data = v.wechat_tradebill([entry(1), refund(1), entry(2, amount="0.01", fee="0.00"), entry(3, extra=REVOKED)])
    bulk = by_bulk(data)
    assert bulk is not None
    rows, sums = bulk
    assert [(row[0], row[1], row[2], row[4], row[5], row[6]) for row in rows] == [
        (2, "trade", "T1", "", 1000, 6), (3, "refund", "T1", "R1", 300, 2), (4, "trade", "T2", "", 1, 0),
    ]  # the REVOKED row (line 5) counts in the summary, gives no line
    assert sums == {"lines": 3, "trade_count": 2, "refund_count": 1, "trades_minor": 1001, "refunds_minor": 300,
                    "fees_minor": 4, "currency": "CNY"}  # fmt: skip
    assert bulk == by_reader(data)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                                  HealthCheck.too_slow])  # fmt: skip
@given(
    kinds=st.lists(st.sampled_from(["trade", "refund", "revoked"]), max_size=12),
    fen=st.lists(st.integers(min_value=0, max_value=10**11), min_size=12, max_size=12),
    fees=st.lists(st.integers(min_value=0, max_value=10**6), min_size=12, max_size=12),
    layout=st.sampled_from([27, 24]),
    line_end=st.sampled_from(["\r\n", "\n"]),
    gzipped=st.booleans(),
)
def test_any_bill_is_staged_exactly_as_the_reader_reads_it(kinds, fen, fees, layout, line_end, gzipped):
    entries = []
    for n, kind in enumerate(kinds):
        amount, fee = f"{fen[n] // 100}.{fen[n] % 100:02d}", f"{fees[n] // 100}.{fees[n] % 100:02d}"
        if kind == "refund":
            entries.append(refund(n, amount=amount, fee=fee))
        else:
            entries.append(entry(n, amount=amount, fee=fee, extra=REVOKED if kind == "revoked" else {}))
    data = (line_end.join(v.wechat_tradebill_lines(entries, layout=layout)) + line_end).encode()
    if gzipped:
        data = gzip.compress(data)
    bulk = by_bulk(data)
    assert bulk is not None  # a bill as WeChat Pay writes it is one the bulk path vouches for
    assert bulk == by_reader(data)


@pytest.mark.parametrize(
    "odd",
    [
        {"订单金额": "+10.00", "应结订单金额": "+10.00"},  # a plus sign
        {"订单金额": "1e1", "应结订单金额": "1e1"},  # an exponent (the reader refuses it; so the fallback says)
        {"订单金额": ".5", "应结订单金额": ".5"},  # no digit before the point (likewise)
        {"商户订单号": " T1 "},  # spaces the reader strips
        {"交易时间": "2026-03-01  10:00:00"},  # two spaces between date and time
        {"商户订单号": "订单一"},  # a trade number that is not ASCII
    ],
)
def test_an_odd_bill_is_left_to_the_reader_which_reads_it_or_names_the_line(odd):
    data = v.wechat_tradebill([entry(1, extra=odd), refund(2)])
    assert by_bulk(data) is None
    try:
        rows, _sums = by_reader(data)
    except StatementError as refused:
        assert refused.line_no == 2 and "is not an amount" in refused.message
    else:
        assert [(row[1], row[2], row[5]) for row in rows] == [("trade", odd.get("商户订单号", "T1").strip(), 1000),
                                                              ("refund", "T2", 300)]  # fmt: skip


@pytest.mark.parametrize(
    "unusual",
    [
        {"手续费": "0.06"},  # a fee with two places, not five
        {"订单金额": "010.00", "应结订单金额": "010.00"},  # a leading zero: the same amount either way
        {"交易时间": ""},  # no time
        {"货币种类": ""},  # no currency: CNY
        {"商品名称": "a \\N tab\there, and a backslash \\"},  # COPY's escapes inside a cell we do not read
    ],
)
def test_unusual_cells_the_bulk_path_vouches_for_are_staged_as_the_reader_reads_them(unusual):
    data = v.wechat_tradebill([entry(1, extra=unusual), refund(2)])
    bulk = by_bulk(data)
    assert bulk is not None
    assert bulk == by_reader(data)


def test_a_blank_line_among_the_rows_is_left_to_the_reader():
    lines = list(v.wechat_tradebill_lines([entry(1), refund(2)]))
    data = ("\r\n".join([*lines[:2], "", *lines[2:]]) + "\r\n").encode()
    assert by_bulk(data) is None
    assert [row[0] for row in by_reader(data)[0]] == [2, 4]


def test_line_ends_copy_would_read_otherwise_are_left_to_the_reader():
    # COPY, not Python, sees the line ends now: a file mixing them, or a carriage return inside a cell,
    # must still reach the reader (which takes both) rather than be misread.
    lines = list(v.wechat_tradebill_lines([entry(1), refund(2), entry(3)]))
    mixed = ("\r\n".join(lines[:2]) + "\n" + "\r\n".join(lines[2:]) + "\r\n").encode()
    inside = v.wechat_tradebill([entry(1, extra={"商品名称": "a\rb"}), refund(2)])
    for data in (mixed, inside):
        assert by_bulk(data) is None
        assert [row[1] for row in by_reader(data)[0]][:2] == ["trade", "refund"]


@pytest.mark.parametrize(
    ("bill", "line_no", "message"),
    [
        (v.wechat_tradebill([entry(1), entry(2, amount="1.001")]), 3, "has more than 2 decimal places"),
        (v.wechat_tradebill([entry(1), entry(2, extra={"交易时间": "2026-02-30 10:00:00"})]), 3, "is not a time"),
        (v.wechat_tradebill([entry(1), entry(2, extra={"交易状态": "CLOSED"})]), 3, "is not SUCCESS, REFUND"),
        (v.wechat_tradebill([entry(1), entry(2, extra={"商户号": "999"})]), 3, "商户号 '999' is not this merchant's"),
        (v.wechat_tradebill([entry(1), entry(2)], summary={"总交易单数": "3"}), 5, "the summary says 3 rows"),
        (v.wechat_tradebill([entry(1)], summary={"手续费总金额": "0.07000"}), 4, "手续费总金额 0.07000"),
        (v.wechat_tradebill([entry(1)], with_summary=False), 2, "the summary line is missing"),
        (v.wechat_tradebill([entry(1), entry(2, out_trade_no="T" * 65)]), 3, "longer than 64"),
    ],
)
def test_a_malformed_bill_is_not_vouched_for_and_the_reader_names_its_line(bill, line_no, message):
    assert by_bulk(bill) is None
    with pytest.raises(StatementError, match=message) as refused:
        by_reader(bill)
    assert refused.value.line_no == line_no


# --------------------------------------------------------------------------- whole runs


def sandbox_bill(books, entries) -> bytes:
    return v.wechat_tradebill(entries, mchid=f"sandbox-{books.merchant.slug}")


def test_a_run_on_a_sandbox_bill_reconciles_through_the_bulk_path_as_through_the_reader(books, monkeypatch):
    paid, waiting = books.payment(paid_at=NOON, amount="10.00"), books.payment(status="created", amount="5.00")
    books.payment(paid_at=NOON, amount="7.00")  # not in the bill
    when = (NOON + timedelta(hours=1)).strftime("%Y-%m-%d %H:%M:%S")
    bill = [
        entry(1, out_trade_no=paid.out_trade_no, amount="10.00", occurred_at=when),
        entry(2, out_trade_no=waiting.out_trade_no, amount="5.00", occurred_at=when),
        entry(3, out_trade_no="NEVER-SEEN", amount="1.00", occurred_at=when),
        entry(4, out_trade_no=paid.out_trade_no, amount="10.00", occurred_at=when),  # a repeated line
    ]
    data = sandbox_bill(books, bill)
    used = []
    import orders.reconciliation.services as services

    real = services.tradebill_stage
    monkeypatch.setattr(services, "tradebill_stage", lambda **kw: used.append(real(**kw)) or used[-1])

    run = reconciliation_run(merchant=books.merchant, provider="sandbox", statement_date=DAY,
                             stream=io.BytesIO(data), source="command")  # fmt: skip

    assert used and used[0] is not None  # staged in bulk
    assert run.status == "succeeded", run.error
    assert (run.lines_total, run.matched, run.healed, run.missing_here, run.duplicate, run.missing_at_provider) == (
        4, 1, 1, 1, 1, 1
    )
    assert (run.trades_total, run.fees_total, run.net_total) == (Decimal("26.00"), Decimal("0.24"), Decimal("25.76"))
    waiting.refresh_from_db()
    assert waiting.status == Payment.Status.PAID


def test_a_run_on_a_malformed_sandbox_bill_fails_naming_the_line_and_applies_nothing(books):
    waiting = books.payment(status="created", amount="5.00")
    data = sandbox_bill(books, [entry(1, out_trade_no=waiting.out_trade_no, amount="5.00"),
                                entry(2, amount="ten")])  # fmt: skip

    run = reconciliation_run(merchant=books.merchant, provider="sandbox", statement_date=DAY,
                             stream=io.BytesIO(data), source="command")  # fmt: skip

    assert (run.status, run.error_line_no) == ("failed", 3)
    assert "'ten' is not an amount" in run.error
    assert not Discrepancy.objects.filter(run=run).exists()
    waiting.refresh_from_db()
    assert waiting.status == "created"
    with connection.cursor() as cursor:  # nothing staged is left behind
        cursor.execute("SELECT count(*) FROM pg_class WHERE relname LIKE 'reconciliation_%%' AND relpersistence = 't'")
        assert cursor.fetchone()[0] == 0
