"""The same statement reconciled twice at the same moment (a redelivered task beside the first one, a double
upload): one run, nothing doubled. Real PostgreSQL, threads with their own connections and a barrier."""

import threading

import pytest
from django.db import connection

from orders.models import OrderEvent, PaymentNotification
from orders.reconciliation.models import Discrepancy, ReconciliationRun
from tests.factories import MerchantFactory

from .books import NOON, Line, books_for, reconcile, statement, trade

pytestmark = [pytest.mark.services, pytest.mark.django_db(transaction=True)]


def test_the_same_statement_reconciled_concurrently_is_one_run_and_heals_once():
    books = books_for(MerchantFactory(slug="racing", name="Racing", timezone="Asia/Shanghai"))
    paid = books.payment(paid_at=NOON)
    waiting = [books.payment(status="created", amount=f"{n}.00") for n in range(1, 6)]
    data = statement([trade(paid, amount="1.00"), *(trade(p) for p in waiting),
                      Line(kind="trade", out_trade_no="UNKNOWN", amount="2.00")])  # fmt: skip
    barrier, runs, errors = threading.Barrier(4), [], []

    def run():
        try:
            barrier.wait(timeout=10)
            runs.append(reconcile(books, data=data).pk)
        except Exception as error:  # noqa: BLE001 - reported below
            errors.append(error)
        finally:
            connection.close()

    threads = [threading.Thread(target=run) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)

    assert errors == []
    assert len(set(runs)) == 1 and ReconciliationRun.objects.count() == 1
    run = ReconciliationRun.objects.get()
    assert (run.status, run.healed, run.amount_mismatch, run.missing_here) == ("succeeded", 5, 1, 1)
    assert Discrepancy.objects.count() == 7
    assert PaymentNotification.objects.filter(source="statement").count() == 5
    assert OrderEvent.objects.filter(to_status="paid").count() == 5
