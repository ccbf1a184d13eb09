"""Scans buffered in Redis: the landing page pushes, the flush writes rows, exactly once."""

import re
import uuid

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from orders import scan_buffer
from orders.models import Order, Scan
from tests.factories import MerchantFactory, promotion

pytestmark = [pytest.mark.services, pytest.mark.django_db]


@pytest.fixture
def buffer(settings, monkeypatch):
    """The Redis buffer on, under keys of this test's own."""
    settings.SCAN_BUFFER = True
    suffix = uuid.uuid4().hex
    monkeypatch.setattr(scan_buffer, "BUFFER_KEY", f"test:scan-buffer:{suffix}")
    monkeypatch.setattr(scan_buffer, "LOCK_KEY", f"test:scan-buffer-lock:{suffix}")
    yield scan_buffer._redis()
    scan_buffer._redis().delete(scan_buffer.buffer_key(), scan_buffer.lock_key())


@pytest.fixture
def offer():
    return promotion(MerchantFactory(slug="lotus"))


def visit(client, offer, store):
    response = client.get(f"/p/{offer.wall_code}?s={store.code}")
    assert response.status_code == 200
    return response.content.decode()


def test_a_visit_writes_no_row_until_the_flush_moves_it(client, buffer, offer):
    store = offer.pickup_stores.get()
    with CaptureQueriesContext(connection) as queries:
        visit(client, offer, store)
    assert not any(q["sql"].lstrip().upper().startswith("INSERT") for q in queries.captured_queries)
    assert buffer.llen(scan_buffer.buffer_key()) == 1 and not Scan.objects.exists()

    assert scan_buffer.scans_flush() == 1

    scan = Scan.objects.get()
    assert (scan.promotion, scan.store, scan.merchant_id) == (offer, store, offer.merchant_id)
    assert buffer.llen(scan_buffer.buffer_key()) == 0


def test_an_order_is_credited_to_the_scan_flushed_after_it(client, buffer, offer):
    store = offer.pickup_stores.get()
    html = visit(client, offer, store)
    fields = {name: re.search(rf'name="{name}" value="([^"]*)"', html).group(1) for name in ("submit_key", "scan")}
    client.post(
        f"/p/{offer.wall_code}?s={store.code}",
        {"quantity": 1, "phone": "13812345678", "fulfilment": "pickup", "pickup_store": store.code, **fields},
    )
    scan_buffer.scans_flush()
    assert Scan.objects.get(key=Order.objects.get().scan_key).store == store


def test_a_flush_that_dies_before_trimming_is_repeated_without_doubling(client, buffer, offer, monkeypatch):
    store = offer.pickup_stores.get()
    for _ in range(3):
        visit(client, offer, store)

    class Died(Exception):
        pass

    def die(*args, **kwargs):
        raise Died

    with monkeypatch.context() as patch:
        patch.setattr(type(buffer), "ltrim", die)
        with pytest.raises(Died):
            scan_buffer.scans_flush()
    assert Scan.objects.count() == 3 and buffer.llen(scan_buffer.buffer_key()) == 3

    assert scan_buffer.scans_flush() == 3
    assert Scan.objects.count() == 3 and buffer.llen(scan_buffer.buffer_key()) == 0


def test_a_second_flush_waits_for_the_first(buffer, offer):
    scan_buffer.scan_record(merchant_id=offer.merchant_id, promotion_id=offer.pk, store_id=None)
    buffer.set(scan_buffer.lock_key(), "1")
    assert scan_buffer.scans_flush() == 0 and not Scan.objects.exists()
    buffer.delete(scan_buffer.lock_key())
    assert scan_buffer.scans_flush() == 1


def test_a_scan_of_a_store_closed_since_keeps_its_promotion(buffer, offer):
    store = offer.pickup_stores.get()
    scan_buffer.scan_record(merchant_id=offer.merchant_id, promotion_id=offer.pk, store_id=store.pk)
    offer.pickup_stores.clear()
    store.delete()
    assert scan_buffer.scans_flush() == 1
    assert Scan.objects.get().store is None


def test_the_celery_task_flushes(buffer, offer):
    from orders.tasks import scans_flush

    scan_buffer.scan_record(merchant_id=offer.merchant_id, promotion_id=offer.pk, store_id=None)
    assert scans_flush.delay().get() == 1
    assert Scan.objects.filter(promotion=offer).count() == 1
