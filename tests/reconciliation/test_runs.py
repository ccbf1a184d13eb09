"""A reconciliation run is idempotent, and a malformed statement is refused whole, naming its line."""

import io
import tracemalloc
from datetime import timedelta

import pytest

from orders.models import OrderEvent, Payment, PaymentNotification
from orders.payments.providers.base import StatementLine
from orders.reconciliation.models import Discrepancy, ReconciliationRun
from orders.reconciliation.services import reconciliation_run

from .books import DAY, NOON, Line, reconcile, statement, trade

RS = ReconciliationRun.Status
pytestmark = pytest.mark.django_db


def _world(books):
    """A statement with something of every kind: a match, a mismatch, a heal, a duplicate, an unknown."""
    matched = books.payment(paid_at=NOON)
    mismatched = books.payment(paid_at=NOON, amount="20.00")
    waiting = books.payment(status="created", amount="7.00")
    books.payment(paid_at=NOON + timedelta(minutes=5))  # missing at the provider
    lines = [
        trade(matched), trade(mismatched, amount="19.00"), trade(waiting), trade(matched),
        Line(kind="trade", out_trade_no="UNKNOWN", provider_trade_no="9", amount="1.00"),
    ]  # fmt: skip
    return statement(lines), waiting


def _snapshot():
    return (
        Discrepancy.objects.count(), PaymentNotification.objects.count(), OrderEvent.objects.count(),
        list(Payment.objects.order_by("pk").values_list("status", "paid_at")),
    )  # fmt: skip


def test_the_same_statement_again_returns_the_same_run_and_changes_nothing(books):
    data, waiting = _world(books)
    first = reconcile(books, data=data)
    assert (first.matched, first.amount_mismatch, first.healed, first.duplicate, first.missing_here) == (1, 1, 1, 1, 1)
    assert first.missing_at_provider == 1
    before = _snapshot()

    again = reconcile(books, data=data, source="upload")

    assert again.pk == first.pk
    assert again.finished_at == first.finished_at and again.source == "command"
    assert _snapshot() == before
    assert ReconciliationRun.objects.count() == 1
    waiting.refresh_from_db()
    assert waiting.status == "paid"


def test_a_corrected_statement_for_the_same_day_is_a_new_run_that_sees_the_heal_as_a_match(books):
    data, waiting = _world(books)
    first = reconcile(books, data=data)

    corrected = reconcile(books, data=data + b"trade,UNKNOWN-2,10,1.00,0.00,,,CNY\n")

    assert corrected.pk != first.pk
    # the payment healed by the first run is paid now: a plain match, not a second heal
    assert (corrected.healed, corrected.matched, corrected.missing_here) == (0, 2, 2)
    assert PaymentNotification.objects.filter(payment=waiting).count() == 1


def test_a_malformed_statement_fails_with_its_line_number_and_applies_nothing(books):
    # given a statement whose good lines would heal, mismatch and match, and whose 5th line is broken
    healable = books.payment(status="created", amount="7.00")
    paid = books.payment(paid_at=NOON)
    good = statement([trade(healable), trade(paid, amount="1.00"), trade(paid)])
    data = good + b"trade,OT-X,P-X,twelve,0.00,,,CNY\n" + b"trade,OT-Y,P-Y,1.00,0.00,,,CNY\n"

    run = reconcile(books, data=data)

    # then the run failed, saying where, and nothing of the statement was applied
    assert run.status == RS.FAILED
    assert run.error_line_no == 5
    assert run.error.startswith("line 5: ")
    assert run.finished_at is not None
    assert not run.discrepancies.exists()
    assert (run.lines_total, run.matched, run.healed) == (0, 0, 0)
    healable.refresh_from_db()
    assert healable.status == "created"
    assert not PaymentNotification.objects.exists()

    # and the same file again finds the same failed run
    assert reconcile(books, data=data).pk == run.pk


def test_a_line_the_matching_cannot_use_is_refused_with_its_line_number(books):
    run = reconcile(books, [trade(books.payment(paid_at=NOON)), Line(kind="trade", out_trade_no="X" * 65, amount="1")])

    assert run.status == RS.FAILED
    assert (run.error_line_no, run.error) == (3, "line 3: a trade or refund number is longer than 64 characters")


def test_an_unknown_line_kind_is_refused_with_its_line_number(books):
    run = reconcile(books, [Line(kind="chargeback", out_trade_no="X", amount="1.00")])

    assert (run.status, run.error) == (RS.FAILED, "line 2: unknown kind 'chargeback'")


def test_statement_lines_are_staged_as_a_stream(books):
    """Memory while staging does not grow with the statement: ten times the lines, about the same peak."""

    def lines(count):
        def parse(_stream):
            for n in range(count):
                yield StatementLine(
                    line_no=n + 2, kind="trade", out_trade_no=f"OT{n:012d}", provider_trade_no=f"42{n:018d}",
                    amount_minor=1000 + n % 997, fee_minor=6, occurred_at=NOON,
                )  # fmt: skip

        return parse

    peaks = []
    for count in (6_000, 36_000):
        tracemalloc.start()
        run = reconciliation_run(
            merchant=books.merchant, provider=books.provider, statement_date=DAY + timedelta(days=len(peaks)),
            stream=io.BytesIO(str(count).encode()), source="command", parse=lines(count),
        )  # fmt: skip
        peaks.append(tracemalloc.get_traced_memory()[1])
        tracemalloc.stop()
        assert (run.status, run.lines_total, run.missing_here) == (RS.SUCCEEDED, count, count)
    assert peaks[1] < peaks[0] * 2, peaks
