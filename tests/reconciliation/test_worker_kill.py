"""A real Celery worker SIGKILLed in the middle of a reconciliation: the task is delivered again and the rerun
ends exactly as an uninterrupted run does, nothing doubled (PostgreSQL and Redis; tests/test_celery_worker.py
has the worker helper).

The run waits between staging and matching while a hold file exists (O2O_RECONCILIATION_HOLD_FILE, read
only by this test), so the kill lands mid-way: staged, transaction open, nothing committed but the run's
*running* row.
"""

import json
import os
import re
import signal
from datetime import timedelta
from decimal import Decimal

import pytest
from django.db import transaction

from o2o.celery import app
from o2o.money import money_to_minor
from orders.models import Order, OrderEvent, Payment, PaymentNotification
from orders.payments.models import SandboxTrade
from orders.reconciliation import services, tasks
from orders.reconciliation.models import ReconciliationRun
from tests.factories import MerchantFactory
from tests.test_celery_worker import CeleryWorker, wait_until

from .books import DAY, NOON, books_for

pytestmark = [pytest.mark.services, pytest.mark.django_db(transaction=True)]
LINES = 3000


class Rollback(Exception):
    pass


@pytest.fixture
def ledger(db):
    """A merchant's day: mostly matches, and some of every discrepancy, billed by the sandbox."""
    books = books_for(MerchantFactory(slug="killed", name="Killed", timezone="Asia/Shanghai"))
    orders, payments, trades = [], [], []
    for n in range(LINES):
        status = "created" if n % 100 == 7 else "paid"  # notifications lost: to heal
        amount = Decimal(1000 + n % 500) / 100
        orders.append(Order(
            merchant=books.merchant, promotion=books.promotion, member=books.member, token=f"kill{n:08d}",
            submit_key=f"kill{n}", status="pending_payment" if status == "created" else "paid", quantity=1,
            unit_price=amount, subtotal=amount, total=amount, currency="CNY", fulfilment="express",
        ))  # fmt: skip
    Order.objects.bulk_create(orders, batch_size=1000)
    for n, order in enumerate(orders):
        paid_at = NOON + timedelta(seconds=n)
        payments.append(Payment(
            merchant=books.merchant, order=order, provider="sandbox", out_trade_no=f"KILL{n:08d}",
            provider_trade_no=f"SBX{n:08d}" if order.status == "paid" else "", amount=order.total, currency="CNY",
            status="paid" if order.status == "paid" else "created", paid_at=paid_at if order.status == "paid" else None,
        ))  # fmt: skip
        if n % 100 == 11:
            continue  # paid here, never billed: missing at the provider
        billed = money_to_minor(order.total, "CNY") + (1 if n % 100 == 13 else 0)  # amount mismatch
        trades.append(SandboxTrade(
            merchant=books.merchant, out_trade_no=f"KILL{n:08d}", provider_trade_no=f"SBX{n:08d}",
            amount_minor=billed, currency="CNY", notify_url="http://testserver/", paid_at=paid_at,
        ))  # fmt: skip
    trades.append(SandboxTrade(
        merchant=books.merchant, out_trade_no="NEVER-HEARD", provider_trade_no="SBX-X", amount_minor=500,
        currency="CNY", notify_url="http://testserver/", paid_at=NOON,
    ))  # fmt: skip
    Payment.objects.bulk_create(payments, batch_size=1000)
    SandboxTrade.objects.bulk_create(trades, batch_size=1000)
    return books.merchant


def outcome(merchant) -> dict:
    """Everything a reconciliation run leaves behind, comparable across runs (no ids, no clocks)."""
    run = ReconciliationRun.objects.get(merchant=merchant)
    fields = [
        "status", "lines_total", "matched", "amount_mismatch", "missing_here", "healed", "missing_at_provider",
        "refund_mismatch", "duplicate", "trades_total", "refunds_total", "fees_total", "net_total", "file_sha256",
    ]  # fmt: skip
    return {
        "run": {name: getattr(run, name) for name in fields},
        "runs": ReconciliationRun.objects.filter(merchant=merchant).count(),
        "discrepancies": sorted(run.discrepancies.values_list(
            "kind", "status", "line_no", "out_trade_no", "our_amount", "their_amount", "detail",
        )),  # fmt: skip
        "payments": sorted(Payment.objects.filter(merchant=merchant).values_list("out_trade_no", "status", "paid_at")),
        "orders_paid": Order.objects.filter(merchant=merchant, status="paid").count(),
        "paid_events": OrderEvent.objects.filter(merchant=merchant, to_status="paid").count(),
        "statement_notifications": PaymentNotification.objects.filter(merchant=merchant, source="statement").count(),
    }


def uninterrupted(merchant) -> dict:
    """The same run in this process, rolled back: what the worker must end with."""
    try:
        with transaction.atomic():
            tasks.reconciliation_daily.run(merchant.pk, "sandbox", DAY.isoformat())
            result = outcome(merchant)
            raise Rollback
    except Rollback:
        pass
    assert not ReconciliationRun.objects.exists()
    return result


@pytest.fixture
def broker(_eager_celery):
    """Tasks through Redis for this test (conftest runs them inline by default)."""
    app.conf.task_always_eager = False
    yield
    app.conf.task_always_eager = True


@pytest.fixture
def hold(tmp_path, monkeypatch):
    """Call to make runs started from now on (workers inherit the environment) wait at the hold point."""

    def start():
        path = tmp_path / "hold"
        path.touch()
        monkeypatch.setenv(services.HOLD_FILE_ENV, str(path))
        return path

    return start


@pytest.fixture
def workers(tmp_path):
    started = []

    def start(queue=None):
        worker = CeleryWorker(log_dir=tmp_path, queue=queue).start()
        started.append(worker)
        return worker

    yield start
    for worker in started:
        worker.stop()
    if started:
        started[0].delete_queue()


def staged_by(worker, timeout=60) -> int:
    """Wait until the worker's run has staged the statement and holds; the pid of the pool process doing it."""
    pattern = re.compile(r"statement lines staged \(pid (\d+)\)")
    assert wait_until(lambda: pattern.search(worker.log()), timeout=timeout), worker.log()
    return int(pattern.search(worker.log()).group(1))


def finished(merchant, timeout=120) -> bool:
    return wait_until(
        lambda: ReconciliationRun.objects.filter(merchant=merchant, status="succeeded").exists(), timeout=timeout
    )


def assert_mid_way(merchant):
    # killed mid-way: the run's row says running, and nothing of the statement is applied
    run = ReconciliationRun.objects.get(merchant=merchant)
    assert run.status == "running"
    assert not run.discrepancies.exists()
    assert not PaymentNotification.objects.filter(merchant=merchant).exists()


def test_a_killed_pool_process_is_redelivered_by_its_worker_and_ends_as_an_uninterrupted_run(
    ledger, broker, hold, workers
):
    expected = uninterrupted(ledger)
    assert expected["run"]["healed"] == LINES // 100 and expected["run"]["missing_here"] == 1
    held = hold()
    worker = workers()

    tasks.reconciliation_daily.apply_async(args=[ledger.pk, "sandbox", DAY.isoformat()], queue=worker.queue)
    pid = staged_by(worker)
    os.kill(pid, signal.SIGKILL)  # the pool process dies; the worker lives and sees it lost
    assert_mid_way(ledger)  # (a rerun holds at the same point until the file goes)
    held.unlink()

    # acks_late + reject_on_worker_lost: the worker puts the message back and a new pool process runs it
    assert finished(ledger), worker.log()
    assert "WorkerLostError" in worker.log() or "SIGKILL" in worker.log()
    assert outcome(ledger) == expected


def test_a_killed_worker_is_redelivered_to_a_new_worker_and_ends_as_an_uninterrupted_run(
    ledger, broker, hold, workers
):
    expected = uninterrupted(ledger)
    held = hold()
    first = workers()

    sent = tasks.reconciliation_daily.apply_async(args=[ledger.pk, "sandbox", DAY.isoformat()], queue=first.queue)
    staged_by(first)
    first.kill()  # the whole worker, as a lost host: nothing acks or rejects the message
    assert_mid_way(ledger)
    held.unlink()

    second = workers(queue=first.queue)
    # The message waits in Redis's unacked set until its visibility timeout (an hour in settings) has passed,
    # when any consumer puts it back on its queue. Do now what that timeout would do, for this message only:
    # other processes on the same Redis have unacked messages of their own.
    restore_unacked(task_id=sent.id)

    assert finished(ledger), second.log()
    assert outcome(ledger) == expected


def restore_unacked(*, task_id: str) -> None:
    with app.connection_for_write() as connection:
        channel = connection.default_channel
        client, qos = channel.client, channel.qos

        def restored() -> bool:
            mine = [
                tag for tag, payload in client.hgetall(qos.unacked_key).items()
                if json.loads(payload)[0]["headers"].get("id") == task_id
            ]  # fmt: skip
            for tag in mine:
                qos.restore_by_tag(tag, client)
            return bool(mine)

        assert wait_until(restored, timeout=10), "the killed worker's message is not in Redis's unacked set"
