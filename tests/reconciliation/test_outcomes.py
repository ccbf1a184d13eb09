"""Every outcome of matching a settlement statement against our books, one behaviour per test."""

from datetime import datetime, timedelta
from decimal import Decimal

import pytest

from orders.models import Order, OrderEvent, Payment, PaymentNotification
from orders.reconciliation.models import Discrepancy, ReconciliationRun

from .books import NOON, SHANGHAI, Line, reconcile, trade

K, RS = Discrepancy.Kind, ReconciliationRun.Status
pytestmark = pytest.mark.django_db


def only(run, **filters) -> Discrepancy:
    [discrepancy] = run.discrepancies.filter(**filters)
    return discrepancy


def test_a_payment_billed_as_we_booked_it_is_matched_and_leaves_no_discrepancy(books):
    payment = books.payment(paid_at=NOON, amount="99.00")

    run = reconcile(books, [trade(payment)])

    assert run.status == RS.SUCCEEDED
    assert (run.lines_total, run.matched, run.discrepancy_count, run.healed) == (1, 1, 0, 0)
    assert not run.discrepancies.exists()


def test_a_different_amount_is_an_amount_mismatch_with_both_amounts(books):
    payment = books.payment(paid_at=NOON, amount="99.00")

    run = reconcile(books, [trade(payment, amount="98.99")])

    assert (run.matched, run.amount_mismatch) == (0, 1)
    mismatch = only(run)
    assert mismatch.kind == K.AMOUNT_MISMATCH and mismatch.status == Discrepancy.Status.OPEN
    assert (mismatch.our_amount, mismatch.their_amount) == (Decimal("99.00"), Decimal("98.99"))
    assert (mismatch.out_trade_no, mismatch.payment_id, mismatch.line_no) == (payment.out_trade_no, payment.pk, 2)


def test_a_different_currency_is_an_amount_mismatch(books):
    payment = books.payment(paid_at=NOON, amount="99.00")

    run = reconcile(books, [trade(payment, currency="HKD")])

    assert only(run).kind == K.AMOUNT_MISMATCH


def test_a_trade_we_have_no_payment_for_is_missing_here(books):
    run = reconcile(books, [Line(kind="trade", out_trade_no="NOT-OURS-1", provider_trade_no="42", amount="5.00")])

    missing = only(run)
    assert (missing.kind, missing.detail, missing.payment_id) == (K.MISSING_HERE, "no such payment here", None)
    assert (missing.our_amount, missing.their_amount) == (None, Decimal("5.00"))


def test_missing_here_with_the_same_amount_heals_the_payment_through_the_notification_path(books):
    # given a payment whose notification never came: still waiting, its order pending
    payment = books.payment(status="created", amount="25.50")
    paid_at = datetime(2026, 11, 3, 9, 30, tzinfo=SHANGHAI)

    # when the provider's statement says it was paid
    run = reconcile(books, [trade(payment, provider_trade_no="4200001", occurred_at=paid_at.isoformat())])

    # then it is paid, as of the provider's time, with its order, and the heal is on record
    payment.refresh_from_db()
    assert (payment.status, payment.paid_at, payment.provider_trade_no) == ("paid", paid_at, "4200001")
    assert Order.objects.get(pk=payment.order_id).status == Order.Status.PAID
    assert (run.healed, run.missing_here, run.matched) == (1, 0, 0)
    healed = only(run)
    assert (healed.kind, healed.status, healed.resolved_by) == (K.HEALED, Discrepancy.Status.RESOLVED, None)
    assert healed.resolution_note.startswith("Healed automatically")
    note = PaymentNotification.objects.get(payment=payment)
    assert (note.source, note.status) == ("statement", "applied")
    event = OrderEvent.objects.get(order_id=payment.order_id, to_status=Order.Status.PAID)
    assert event.channel == OrderEvent.Channel.WORKER


def test_missing_here_with_another_amount_is_not_healed(books):
    payment = books.payment(status="created", amount="25.50")

    run = reconcile(books, [trade(payment, amount="2.55")])

    payment.refresh_from_db()
    assert payment.status == "created"
    missing = only(run)
    assert missing.kind == K.MISSING_HERE and missing.status == Discrepancy.Status.OPEN
    assert missing.detail == "our payment is created; amounts differ"


def test_a_heal_the_order_refuses_stays_open_for_staff(books):
    # given money the provider took for an order we cancelled meanwhile (unpaid too long)
    payment = books.payment(status="created", amount="25.50", order_status=Order.Status.CANCELLED)

    run = reconcile(books, [trade(payment)])

    # then nothing is paid: the payment goes to review and the discrepancy is open, saying why
    payment.refresh_from_db()
    assert payment.status == Payment.Status.NEEDS_REVIEW
    assert Order.objects.get(pk=payment.order_id).status == Order.Status.CANCELLED
    missing = only(run)
    assert (missing.kind, missing.status) == (K.MISSING_HERE, Discrepancy.Status.OPEN)
    assert "refund" in missing.detail
    assert (run.healed, run.missing_here) == (0, 1)


def test_a_paid_payment_of_the_day_the_statement_lacks_is_missing_at_provider(books):
    billed = books.payment(paid_at=NOON)
    unbilled = books.payment(paid_at=NOON + timedelta(hours=1), amount="12.00")

    run = reconcile(books, [trade(billed)])

    missing = only(run)
    assert (missing.kind, missing.out_trade_no, missing.line_no) == (K.MISSING_AT_PROVIDER, unbilled.out_trade_no, None)
    assert (missing.our_amount, missing.their_amount) == (Decimal("12.00"), None)
    assert (run.matched, run.missing_at_provider) == (1, 1)


def test_payments_of_other_days_providers_and_states_are_not_expected_in_the_statement(books):
    books.payment(paid_at=NOON - timedelta(days=1))
    books.payment(paid_at=NOON, provider="alipay")
    books.payment(status="created")
    books.payment(status="failed")

    run = reconcile(books, [])

    assert (run.lines_total, run.discrepancy_count) == (0, 0)


def test_a_trade_paid_on_another_day_is_still_matched_by_its_number(books):
    payment = books.payment(paid_at=NOON - timedelta(days=1))

    run = reconcile(books, [trade(payment)])

    assert (run.matched, run.discrepancy_count) == (1, 0)


def test_a_trade_line_repeated_is_reconciled_once_and_the_repeat_is_a_duplicate(books):
    payment = books.payment(paid_at=NOON)

    run = reconcile(books, [trade(payment), trade(payment)])

    assert (run.lines_total, run.matched, run.duplicate) == (2, 1, 1)
    duplicate = only(run)
    assert (duplicate.kind, duplicate.line_no, duplicate.detail) == (K.DUPLICATE, 3, "repeats line 2")


def test_lines_without_our_trade_number_are_not_duplicates_of_each_other(books):
    lines = [Line(kind="trade", out_trade_no="", provider_trade_no="", amount="1.00") for _ in range(2)]

    run = reconcile(books, lines)

    assert (run.missing_here, run.duplicate) == (2, 0)


def test_a_refund_as_we_booked_it_is_matched(books):
    payment = books.payment(paid_at=NOON - timedelta(days=2), amount="30.00")
    books.refund(payment, "RF-1", amount="10.00", completed_at=NOON)

    run = reconcile(books, [Line(kind="refund", out_trade_no=payment.out_trade_no, out_refund_no="RF-1",
                                 amount="10.00", fee="0.06")])  # fmt: skip

    assert (run.matched, run.discrepancy_count) == (1, 0)


def test_refund_differences_are_refund_mismatches(books):
    payment = books.payment(paid_at=NOON - timedelta(days=2), amount="30.00")
    books.refund(payment, "RF-AMOUNT", amount="10.00", completed_at=NOON)
    books.refund(payment, "RF-PENDING", amount="5.00", completed_at=NOON, status="pending")
    books.refund(payment, "RF-UNBILLED", amount="1.00", completed_at=NOON)
    refund = {"kind": "refund", "out_trade_no": payment.out_trade_no}

    run = reconcile(books, [
        Line(**refund, out_refund_no="RF-AMOUNT", amount="9.00"),
        Line(**refund, out_refund_no="RF-PENDING", amount="5.00"),
        Line(**refund, out_refund_no="RF-UNKNOWN", amount="2.00"),
    ])  # fmt: skip

    details = dict(run.discrepancies.values_list("out_refund_no", "detail"))
    assert details == {
        "RF-AMOUNT": "amount or currency differs",
        "RF-PENDING": "our refund is pending",
        "RF-UNKNOWN": "no such refund here",
        "RF-UNBILLED": "refunded here, not in the statement",
    }
    assert set(run.discrepancies.values_list("kind", flat=True)) == {K.REFUND_MISMATCH}
    assert (run.lines_total, run.matched, run.refund_mismatch) == (3, 0, 4)


def test_the_run_keeps_the_days_totals_as_billed(books):
    first, second = books.payment(paid_at=NOON, amount="100.00"), books.payment(paid_at=NOON, amount="50.00")
    books.refund(first, "RF-9", amount="20.00", completed_at=NOON)

    run = reconcile(books, [
        trade(first, fee="0.60"), trade(second, fee="0.30"), trade(second, fee="0.30"),
        # a refund's fee is handed back: given positive, the kind says the direction
        Line(kind="refund", out_trade_no=first.out_trade_no, out_refund_no="RF-9", amount="20.00", fee="0.12"),
    ])  # fmt: skip

    # every line counts, the duplicate too: it is what the provider settles
    assert (run.trade_count, run.refund_count) == (3, 1)
    assert run.trades_total == Decimal("200.00")
    assert run.refunds_total == Decimal("20.00")
    assert run.fees_total == Decimal("1.08")
    assert run.net_total == Decimal("178.92")
    assert run.currency == "CNY"


def test_a_payment_at_2359_shanghai_belongs_to_that_day(books):
    # 23:59:59 in Shanghai is 15:59:59 UTC the same date; 00:00:00 the next day is 16:00 UTC
    late = books.payment(paid_at=datetime(2026, 11, 3, 23, 59, 59, tzinfo=SHANGHAI))
    next_day = books.payment(paid_at=datetime(2026, 11, 4, 0, 0, 0, tzinfo=SHANGHAI))
    early = books.payment(paid_at=datetime(2026, 11, 3, 0, 0, 0, tzinfo=SHANGHAI))

    run = reconcile(books, [])

    expected = set(run.discrepancies.values_list("out_trade_no", flat=True))
    assert expected == {late.out_trade_no, early.out_trade_no}
    assert next_day.out_trade_no not in expected


def test_the_day_is_the_merchants_own_time_zone(books):
    books.merchant.timezone = "Europe/London"
    books.merchant.save()
    # 02:00 in Shanghai on the 4th is 18:00 the 3rd in London
    payment = books.payment(paid_at=datetime(2026, 11, 4, 2, 0, tzinfo=SHANGHAI))

    run = reconcile(books, [])

    assert only(run).out_trade_no == payment.out_trade_no


def test_a_trade_number_of_another_merchant_is_missing_here_and_never_heals_their_payment(books, rival_books):
    theirs = rival_books.payment(status="created", amount="10.00")

    run = reconcile(books, [trade(theirs)])

    theirs.refresh_from_db()
    assert theirs.status == "created"
    assert only(run).kind == K.MISSING_HERE
    assert only(run).payment_id is None


def test_a_trade_of_another_provider_is_not_matched(books):
    payment = books.payment(paid_at=NOON, provider="alipay")

    run = reconcile(books, [trade(payment)])

    assert only(run).kind == K.MISSING_HERE
