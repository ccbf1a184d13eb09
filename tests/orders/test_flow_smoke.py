import re

import pytest

from orders.models import Order, Scan
from tests.factories import MerchantFactory, promotion


@pytest.mark.django_db
def test_smoke(client):
    m = MerchantFactory(slug="m1")
    p = promotion(m)
    store = p.pickup_stores.first()
    r = client.get(f"/p/{p.wall_code}?s={store.code}")
    assert r.status_code == 200, r.content
    assert Scan.objects.count() == 1
    html = r.content.decode()
    key = re.search(r'name="submit_key" value="([^"]+)"', html).group(1)
    scan = re.search(r'name="scan" value="([^"]*)"', html).group(1)
    r = client.post(f"/p/{p.wall_code}?s={store.code}", {"quantity": 2, "phone": "138 1234 5678", "fulfilment": "pickup", "pickup_store": store.code, "submit_key": key, "scan": scan, "total": "0.01"})
    assert r.status_code == 302, r.content.decode()
    order = Order.objects.get()
    assert order.total == 198 and order.scan_id is not None
    r = client.get(r["Location"])
    assert r.status_code == 200
    r = client.post(f"/pay/sandbox/{order.token}", {"outcome": "pay"})
    assert r.status_code == 302
    r = client.get(r["Location"])
    assert r.status_code == 200
    order.refresh_from_db()
    assert order.status == "paid" and order.pickup_code
    assert order.pickup_code[:4] in r.content.decode()
