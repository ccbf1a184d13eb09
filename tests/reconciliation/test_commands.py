"""`manage.py reconcile` and the daily Celery task, end to end through the sandbox's own statement and parser."""

from datetime import timedelta
from decimal import Decimal
from io import StringIO

import pytest
from django.core.management import CommandError, call_command

from o2o.money import money_to_minor
from orders.models import Payment, PaymentConfig
from orders.payments.models import SandboxRefund, SandboxTrade
from orders.reconciliation import services, tasks
from orders.reconciliation.models import ReconciliationRun

from .books import DAY, NOON, Line, statement, statement_parse, trade

pytestmark = pytest.mark.django_db


def sandbox_trade(payment: Payment, *, paid_at=NOON, amount_minor: int | None = None) -> SandboxTrade:
    """What the sandbox provider books on its side when the customer pays."""
    return SandboxTrade.objects.create(
        merchant=payment.merchant, out_trade_no=payment.out_trade_no,
        provider_trade_no=payment.provider_trade_no or f"SBX{payment.pk}",
        amount_minor=amount_minor or money_to_minor(payment.amount, payment.currency), currency=payment.currency,
        notify_url="http://testserver/notify", paid_at=paid_at, description="Order",
    )  # fmt: skip


def reconcile_command(*args: str) -> str:
    out = StringIO()
    call_command("reconcile", *args, stdout=out)
    return out.getvalue()


def test_reconcile_downloads_the_sandbox_statement_and_prints_the_counts(books):
    # given the sandbox's ledger of the day: two of our payments, one we never heard of, and a refund
    matched = books.payment(paid_at=NOON, amount="100.00")
    sandbox_trade(matched)
    waiting = books.payment(status="created", amount="12.34")
    sandbox_trade(waiting, paid_at=NOON + timedelta(hours=2))
    billed_differently = books.payment(paid_at=NOON, amount="50.00")
    sandbox_trade(billed_differently, amount_minor=4990)
    books.payment(paid_at=NOON + timedelta(hours=3), amount="3.00")  # we think paid; the sandbox never saw it
    books.refund(matched, "RF-1", amount="10.00", completed_at=NOON + timedelta(hours=4))
    SandboxRefund.objects.create(
        trade=SandboxTrade.objects.get(out_trade_no=matched.out_trade_no), out_refund_no="RF-1",
        provider_refund_no="SBXR-1", amount_minor=1000, created_at=NOON + timedelta(hours=4),
    )  # fmt: skip

    output = reconcile_command("--merchant", "ours", "--provider", "sandbox", "--date", DAY.isoformat())

    run = ReconciliationRun.objects.get()
    assert (run.status, run.source) == ("succeeded", "command")
    assert (run.lines_total, run.matched, run.healed, run.amount_mismatch, run.missing_at_provider) == (4, 2, 1, 1, 1)
    # 0.6% a line, rounded per line; the refund gives its fee back
    assert (run.trades_total, run.refunds_total) == (Decimal("162.24"), Decimal("10.00"))
    assert run.fees_total == Decimal("0.91")
    assert run.net_total == Decimal("151.33")
    assert f"run {run.pk}: ours sandbox 2026-11-03 succeeded" in output
    assert "  matched              2" in output and "  healed               1" in output
    waiting.refresh_from_db()
    assert waiting.status == "paid"

    # the same day again: the same statement, the same run, nothing changes
    again = reconcile_command("--merchant", "ours", "--provider", "sandbox", "--date", DAY.isoformat())
    assert f"run {run.pk}:" in again
    assert ReconciliationRun.objects.count() == 1


def test_reconcile_reads_a_file(books, tmp_path, monkeypatch):
    monkeypatch.setattr(services, "statement_parser", lambda **kwargs: statement_parse)
    path = tmp_path / "bill.csv"
    path.write_bytes(statement([trade(books.payment(paid_at=NOON))]))

    output = reconcile_command("--merchant", "ours", "--provider", "wechatpay", "--date", "2026-11-03", "--file",
                               str(path))  # fmt: skip

    assert "succeeded" in output and "  matched              0" in output  # a sandbox payment, a WeChat bill
    assert ReconciliationRun.objects.get().provider == "wechatpay"


def test_reconcile_exits_non_zero_naming_the_line_of_a_malformed_file(books, tmp_path, monkeypatch):
    monkeypatch.setattr(services, "statement_parser", lambda **kwargs: statement_parse)
    path = tmp_path / "bill.csv"
    path.write_bytes(statement([Line(kind="trade", out_trade_no="A", amount="1.00")]) + b"trade,B,,1.00\n")

    with pytest.raises(CommandError, match=r"statement rejected: line 3: expected 8 fields, found 4"):
        reconcile_command("--merchant", "ours", "--provider", "sandbox", "--date", "2026-11-03", "--file", str(path))

    assert ReconciliationRun.objects.get().status == "failed"


def test_reconcile_refuses_unknown_merchants_missing_files_and_providers_without_downloads(books, monkeypatch):
    with pytest.raises(CommandError, match="no merchant with slug 'nobody'"):
        reconcile_command("--merchant", "nobody", "--provider", "sandbox", "--date", "2026-11-03")
    with pytest.raises(CommandError, match="cannot read /no/such/file"):
        reconcile_command("--merchant", "ours", "--provider", "sandbox", "--date", "2026-11-03", "--file",
                          "/no/such/file")  # fmt: skip
    with pytest.raises(CommandError, match="not a date"):
        reconcile_command("--merchant", "ours", "--provider", "sandbox", "--date", "03/11/2026")

    from orders.payments.providers.alipay import AlipayProvider
    from orders.payments.providers.base import PaymentProvider

    # a provider offering no download answers as the base class does
    monkeypatch.setattr(AlipayProvider, "download_statement", PaymentProvider.download_statement)
    with pytest.raises(CommandError, match="alipay statements cannot be downloaded; pass the file"):
        reconcile_command("--merchant", "ours", "--provider", "alipay", "--date", "2026-11-03")
    assert not ReconciliationRun.objects.exists()


def test_the_daily_task_reconciles_yesterday_once(books):
    sandbox_trade(books.payment(paid_at=NOON))

    first = tasks.reconciliation_daily.delay(books.merchant.pk, "sandbox", DAY.isoformat()).get()
    second = tasks.reconciliation_daily.delay(books.merchant.pk, "sandbox", DAY.isoformat()).get()

    assert first == second == "succeeded"
    run = ReconciliationRun.objects.get()
    assert (run.source, run.matched) == ("download", 1)


def test_the_daily_task_defaults_to_yesterday_in_the_merchants_time_zone(books, monkeypatch):
    from django.utils import timezone

    from .books import SHANGHAI

    # 01:00 on the 4th in Shanghai is still the 3rd in UTC; yesterday for the merchant is the 3rd
    monkeypatch.setattr(timezone, "now", lambda: NOON.replace(day=4, hour=1).astimezone(SHANGHAI))

    tasks.reconciliation_daily.delay(books.merchant.pk, "sandbox").get()

    assert ReconciliationRun.objects.get().statement_date == DAY


def test_the_daily_fan_out_queues_one_task_per_active_account(books, rival_books, monkeypatch):
    PaymentConfig.objects.create(merchant=books.merchant, provider="sandbox")
    PaymentConfig.objects.create(merchant=books.merchant, provider="alipay", is_active=False)
    PaymentConfig.objects.create(merchant=rival_books.merchant, provider="wechatpay")
    queued = []
    monkeypatch.setattr(tasks.reconciliation_daily, "delay", lambda *args: queued.append(args))

    assert tasks.reconciliation_daily_all.delay().get() == 2

    assert sorted(queued) == sorted([(books.merchant.pk, "sandbox"), (rival_books.merchant.pk, "wechatpay")])


def test_reconciliation_tasks_are_acked_late_and_redelivered_when_their_worker_dies():
    for task in (tasks.reconciliation_daily, tasks.reconciliation_run_statement):
        assert task.acks_late is True
        assert task.reject_on_worker_lost is True


def test_the_sandbox_offers_its_ledgers_bill_for_download(books):
    from orders.reconciliation.services import statement_download

    bill = statement_download(merchant=books.merchant, provider="sandbox", statement_date=DAY).read()
    assert bill.startswith("交易时间".encode()) and "总交易单数".encode() in bill
