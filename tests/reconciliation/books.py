"""Our side of a reconciliation, written directly: orders and payments in any state, refunds, at any time.

Statements are written in a small CSV of our own (one StatementLine per row) and read back by
`statement_parse`, so these tests do not depend on any provider's bill format; the sandbox's real bill
is covered in test_commands.py.
"""

from __future__ import annotations

import csv
import io
import itertools
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from typing import BinaryIO
from zoneinfo import ZoneInfo

from members.models import Member
from merchants.models import Merchant
from o2o.money import MoneyError, money_to_minor
from orders.models import Order, Payment, Promotion, Refund
from orders.payments.providers.base import StatementError, StatementLine
from orders.reconciliation.models import ReconciliationRun
from orders.reconciliation.services import reconciliation_run
from tests.factories import promotion as make_promotion

SHANGHAI = ZoneInfo("Asia/Shanghai")
DAY = date(2026, 11, 3)
NOON = datetime(2026, 11, 3, 12, 0, tzinfo=SHANGHAI)
_numbers = itertools.count(1)
HEADER = ["kind", "out_trade_no", "provider_trade_no", "amount", "fee", "occurred_at", "out_refund_no", "currency"]


@dataclass
class Books:
    merchant: Merchant
    promotion: Promotion
    member: Member
    provider: str = "sandbox"
    payments: list[Payment] = field(default_factory=list)

    def payment(
        self,
        out_trade_no: str | None = None,
        *,
        amount: str = "10.00",
        status: str = "paid",
        paid_at: datetime | None = None,
        order_status: str | None = None,
        provider: str | None = None,
        currency: str | None = None,
    ) -> Payment:
        """A payment of one order of ours; paid ones have a provider trade number and `paid_at`."""
        n = next(_numbers)
        amount_ = Decimal(amount)
        currency = currency or self.merchant.currency
        paid = status in ("paid", "needs_review")
        order = Order.objects.create(
            merchant=self.merchant, promotion=self.promotion, member=self.member, token=f"tok{n:08d}",
            submit_key=f"key{n}", status=order_status or ("paid" if paid else "pending_payment"), quantity=1,
            unit_price=amount_, subtotal=amount_, total=amount_, currency=currency, fulfilment="express",
            paid_at=paid_at if paid else None,
        )  # fmt: skip
        payment = Payment.objects.create(
            merchant=self.merchant, order=order, provider=provider or self.provider,
            out_trade_no=out_trade_no or f"OT{n:010d}", provider_trade_no=f"PT{n:010d}" if paid else "",
            amount=amount_, currency=currency, status=status, paid_at=paid_at if paid else None,
        )  # fmt: skip
        self.payments.append(payment)
        return payment

    def refund(
        self, payment: Payment, out_refund_no: str, *, amount: str, completed_at: datetime, status: str = "succeeded"
    ) -> Refund:
        refund = Refund.objects.create(
            merchant=self.merchant, payment=payment, order=payment.order, out_refund_no=out_refund_no,
            amount=Decimal(amount), reason="customer asked", status=status,
            completed_at=completed_at if status == "succeeded" else None,
        )  # fmt: skip
        Payment.objects.filter(pk=payment.pk).update(refunded_amount=Decimal(amount))
        return refund


def books_for(merchant: Merchant, *, provider: str = "sandbox") -> Books:
    promo = make_promotion(merchant, stock_cap=100000, per_member_limit=100000)
    member = Member.objects.create(merchant=merchant, phone=f"+86138{next(_numbers):08d}")
    return Books(merchant=merchant, promotion=promo, member=member, provider=provider)


# --------------------------------------------------------------------------- statements


@dataclass(frozen=True)
class Line:
    """One row of a test statement, amounts as a bill prints them (yuan)."""

    kind: str
    out_trade_no: str
    amount: str
    provider_trade_no: str = ""
    fee: str = "0.00"
    occurred_at: str = "2026-11-03T12:00:00+08:00"
    out_refund_no: str = ""
    currency: str = "CNY"


def trade(payment: Payment, amount: str | None = None, **fields) -> Line:
    """The provider's line for one of our payments (as it is, or with another amount)."""
    fields.setdefault("provider_trade_no", payment.provider_trade_no or f"PX{payment.pk:010d}")
    return Line(kind="trade", out_trade_no=payment.out_trade_no, amount=amount or str(payment.amount), **fields)


def statement(lines: list[Line]) -> bytes:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(HEADER)
    for line in lines:
        writer.writerow([getattr(line, name) for name in HEADER])
    return out.getvalue().encode()


def statement_parse(stream: BinaryIO) -> Iterator[StatementLine]:
    """Read `statement()`'s format one line at a time, naming the line of anything malformed."""
    text = io.TextIOWrapper(stream, encoding="utf-8", newline="")
    reader = csv.reader(text)
    if next(reader, None) != HEADER:
        raise StatementError("the header is not " + ",".join(HEADER), line_no=1)
    for row in reader:
        line_no = reader.line_num
        if len(row) != len(HEADER):
            raise StatementError(f"expected {len(HEADER)} fields, found {len(row)}", line_no=line_no)
        kind, out_trade_no, provider_trade_no, amount, fee, occurred_at, out_refund_no, currency = row
        try:
            amount_minor, fee_minor = money_to_minor(Decimal(amount), currency), money_to_minor(Decimal(fee), currency)
            when = datetime.fromisoformat(occurred_at) if occurred_at else None
        except (ArithmeticError, ValueError, MoneyError) as error:
            raise StatementError(f"unreadable amount or time ({error})", line_no=line_no) from None
        yield StatementLine(
            line_no=line_no, kind=kind, out_trade_no=out_trade_no, provider_trade_no=provider_trade_no,
            amount_minor=amount_minor, fee_minor=fee_minor, occurred_at=when, out_refund_no=out_refund_no,
            currency=currency,
        )  # fmt: skip


def reconcile(
    books: Books, lines=(), *, day: date = DAY, data: bytes | None = None, source: str = "command"
) -> ReconciliationRun:
    """Run the statement made of `lines` (or the raw `data`) for `books`' merchant, in this process."""
    return reconciliation_run(
        merchant=books.merchant, provider=books.provider, statement_date=day,
        stream=io.BytesIO(data if data is not None else statement(list(lines))), source=source,
        parse=statement_parse,
    )  # fmt: skip
