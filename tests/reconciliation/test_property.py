"""Property: for any books and any statement, every statement line and every payment of the day with money
in lands in exactly one bucket, and the buckets are the ones a plain Python reading of the rules gives."""

from collections import Counter
from datetime import timedelta
from decimal import Decimal

import pytest
from django.db import transaction
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from orders.models import Order
from orders.reconciliation.models import Discrepancy

from .books import NOON, Line, reconcile

MONEY_IN, AWAITING = {"paid", "needs_review"}, {"created", "failed", "closed"}
pytestmark = pytest.mark.django_db

payments = st.lists(
    st.fixed_dictionaries({
        "status": st.sampled_from(["paid", "paid", "needs_review", "created", "failed", "closed"]),
        "cents": st.sampled_from([1000, 2550]),
        "day": st.sampled_from([-1, 0, 0, 0, 1]),  # paid the day before, that day, the day after
        "cancelled": st.booleans(),  # for payments still awaiting money: the order was cancelled meanwhile
        "refund": st.sampled_from([None, None, "succeeded", "pending"]),
        "refund_day": st.sampled_from([0, 0, 1]),
    }),
    max_size=8,
)  # fmt: skip
lines = st.lists(
    st.fixed_dictionaries({
        "kind": st.sampled_from(["trade", "trade", "trade", "refund"]),
        "target": st.integers(min_value=0, max_value=9),  # a payment (or its refund) by index; beyond: unknown
        "same_amount": st.booleans(),
    }),
    max_size=12,
)  # fmt: skip


class Rollback(Exception):
    pass


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(ours=payments, statement_lines=lines)
def test_every_line_and_every_payment_of_the_day_lands_in_exactly_one_bucket(books, ours, statement_lines):
    try:
        with transaction.atomic():
            _check(books, ours, statement_lines)
            raise Rollback
    except Rollback:
        pass


def _check(books, ours, statement_lines):
    # given our books
    made, refunds = [], {}
    for i, spec in enumerate(ours):
        amount = Decimal(spec["cents"]) / 100
        payment = books.payment(
            f"P{i}", amount=f"{amount:.2f}", status=spec["status"], paid_at=NOON + timedelta(days=spec["day"]),
            order_status="cancelled" if spec["status"] in AWAITING and spec["cancelled"] else None,
        )  # fmt: skip
        made.append(payment)
        if spec["refund"] and spec["status"] in MONEY_IN:
            refunds[i] = books.refund(
                payment, f"R{i}", amount="1.00", status=spec["refund"],
                completed_at=NOON + timedelta(days=spec["refund_day"]),
            )  # fmt: skip

    # and a statement
    rows = []
    for spec in statement_lines:
        i, same = spec["target"], spec["same_amount"]
        if spec["kind"] == "trade":
            cents = ours[i]["cents"] if i < len(ours) else 500
            cents = cents if same else cents + 1
            amount = f"{cents / 100:.2f}"
            rows.append(Line(kind="trade", out_trade_no=f"P{i}", provider_trade_no=f"T{i}", amount=amount))
        else:
            amount = "1.00" if same else "1.01"
            rows.append(Line(kind="refund", out_trade_no=f"P{i}", out_refund_no=f"R{i}", amount=amount))

    # when it is reconciled
    run = reconcile(books, rows)

    # then a plain reading of the rules gives the same buckets
    expected, line_bucket = _oracle(ours, refunds, rows)
    found = Counter(run.discrepancies.values_list("kind", flat=True))
    assert found == Counter({k: n for k, n in expected.items() if k != "matched"}), (found, expected)
    assert run.matched == expected["matched"]
    assert run.lines_total == len(rows)

    # every line in exactly one bucket
    line_nos = [n for n in run.discrepancies.values_list("line_no", flat=True) if n is not None]
    assert len(line_nos) == len(set(line_nos))
    assert run.matched + len(line_nos) == len(rows)
    assert {n: k for n, k in run.discrepancies.exclude(line_no=None).values_list("line_no", "kind")} == {
        n: k for n, k in line_bucket.items() if k != "matched"
    }

    # every payment of the day with money in: reconciled by its first line, or missing at the provider
    of_the_day = [f"P{i}" for i, spec in enumerate(ours) if spec["status"] in MONEY_IN and spec["day"] == 0]
    first_lines = {}
    for n, row in enumerate(rows, start=2):
        if row.kind == "trade":
            first_lines.setdefault(row.out_trade_no, n)
    for number in of_the_day:
        by_line = number in first_lines and line_bucket[first_lines[number]] in ("matched", "amount_mismatch")
        missing = run.discrepancies.filter(kind="missing_at_provider", out_trade_no=number).count()
        assert by_line + missing == 1, number

    # and heals happened exactly for the healed lines
    healed = {row.out_trade_no for n, row in enumerate(rows, start=2) if line_bucket[n] == "healed"}
    paid_now = set(Order.objects.filter(status="paid", payments__out_trade_no__in=[f"P{i}" for i in range(len(ours))]
                                        ).values_list("payments__out_trade_no", flat=True))  # fmt: skip
    was_paid = {f"P{i}" for i, spec in enumerate(ours) if spec["status"] in MONEY_IN}
    assert paid_now - was_paid == healed


def _oracle(ours, refunds, rows):
    counts, line_bucket, seen = Counter(), {}, set()
    for n, row in enumerate(rows, start=2):
        key = (row.kind, row.out_trade_no if row.kind == "trade" else row.out_refund_no)
        i = int(row.out_trade_no[1:])
        if key in seen:
            bucket = Discrepancy.Kind.DUPLICATE
        elif row.kind == "trade":
            bucket = _trade_bucket(ours[i] if i < len(ours) else None, row)
        else:
            refund = refunds.get(i)
            same = refund is not None and refund.status == "succeeded" and row.amount == "1.00"
            bucket = "matched" if same else Discrepancy.Kind.REFUND_MISMATCH
        seen.add(key)
        line_bucket[n] = bucket
        counts[bucket] += 1
    billed = {row.out_trade_no for row in rows if row.kind == "trade"}
    for i, spec in enumerate(ours):
        if spec["status"] in MONEY_IN and spec["day"] == 0 and f"P{i}" not in billed:
            counts[Discrepancy.Kind.MISSING_AT_PROVIDER] += 1
    billed_refunds = {row.out_refund_no for row in rows if row.kind == "refund"}
    for i, refund in refunds.items():
        if refund.status == "succeeded" and ours[i]["refund_day"] == 0 and f"R{i}" not in billed_refunds:
            counts[Discrepancy.Kind.REFUND_MISMATCH] += 1
    return counts, line_bucket


def _trade_bucket(spec, row) -> str:
    if spec is None:
        return Discrepancy.Kind.MISSING_HERE
    same = row.amount == f"{spec['cents'] / 100:.2f}"
    if spec["status"] in MONEY_IN:
        return "matched" if same else Discrepancy.Kind.AMOUNT_MISMATCH
    if spec["status"] in AWAITING and same and not spec["cancelled"]:
        return Discrepancy.Kind.HEALED
    return Discrepancy.Kind.MISSING_HERE
