"""The landing page a wall QR opens costs a fixed number of queries, however busy the merchant is."""

import re
from datetime import timedelta
from decimal import Decimal
from unittest import mock

import pytest
from django.contrib.messages import constants
from django.contrib.messages.storage.base import Message
from django.contrib.messages.storage.cookie import CookieStorage
from django.db import connection
from django.db.models import F
from django.http import HttpRequest
from django.test import Client
from django.test.utils import CaptureQueriesContext

from orders.models import Order, Promotion, Scan
from orders.services import order_mark_paid, order_place
from tests.factories import MerchantFactory, ProductFactory, StoreFactory, promotion

# A visit: the promotion row (fresh, it keys the shared page) and the scan INSERT.
LANDING_QUERIES = 2
# The first visit of a promotion state also renders the page: promotion (+ merchant), its items
# (+ products), its pickup stores.
LANDING_QUERIES_FIRST = LANDING_QUERIES + 3


def busy_world(*, promotions: int, scans: int, orders: int, stores: int, products: int):
    """One promotion under test in a merchant with `promotions` others, and the traffic around it."""
    merchant = MerchantFactory()
    pickup_stores = [StoreFactory(merchant=merchant) for _ in range(stores)]
    bundle = [(ProductFactory(merchant=merchant), 1 + i % 2) for i in range(products)]
    promo = promotion(
        merchant, products=bundle, stores=pickup_stores, stock_cap=orders + 10, per_member_limit=1,
        allow_express=True,
    )
    express_store = StoreFactory(merchant=merchant, code="express-only-here")  # not a pickup store
    for _ in range(promotions):
        promotion(merchant, stores=pickup_stores[:1])
    Scan.objects.bulk_create(
        Scan(merchant=merchant, promotion=promo, store=pickup_stores[i % stores]) for i in range(scans)
    )
    for i in range(orders):
        order = order_place(
            promotion=promo, quantity=1, phone=f"1380000{i:04d}", fulfilment="pickup", submit_key=f"k{i}",
            pickup_store=pickup_stores[0],
        )
        if i % 2:
            order_mark_paid(order=order)
    return promo, pickup_stores[-1], express_store


def landing_queries(client, url: str) -> list[str]:
    with CaptureQueriesContext(connection) as captured:
        response = client.get(url)
    assert response.status_code == 200, response.content
    return [q["sql"] for q in captured.captured_queries]


SMALL = {"promotions": 0, "scans": 0, "orders": 0, "stores": 1, "products": 1}
LARGE = {"promotions": 40, "scans": 500, "orders": 30, "stores": 12, "products": 6}


@pytest.mark.django_db
@pytest.mark.parametrize("where", ["pickup store", "store that is not a pickup store", "no store"])
def test_landing_query_count_does_not_grow_with_promotions_scans_or_orders(client, where):
    counts = []
    for size in (SMALL, LARGE):
        promo, pickup_store, express_store = busy_world(**size)
        query = {"pickup store": f"?s={pickup_store.code}", "store that is not a pickup store":
                 f"?s={express_store.code}", "no store": ""}[where]
        url = f"/p/{promo.wall_code}{query}"
        counts.append((len(landing_queries(client, url)), len(landing_queries(client, url))))

    small, large = counts
    assert small == large, f"(first, next) visits: {small} queries for a quiet merchant, {large} for a busy one"
    first, following = large
    # Only a store that is not a pickup store costs a lookup of its own, and only for the first render.
    assert first <= LANDING_QUERIES_FIRST + (where == "store that is not a pickup store")
    assert following == LANDING_QUERIES


@pytest.mark.django_db
def test_landing_reads_no_scans_or_orders(client):
    promo, store, _ = busy_world(**LARGE)
    queries = landing_queries(client, f"/p/{promo.wall_code}?s={store.code}")
    queries += landing_queries(client, f"/p/{promo.wall_code}?s={store.code}")
    reads = [sql for sql in queries if sql.lstrip().upper().startswith("SELECT")]
    assert not [sql for sql in reads if re.search(r'"orders_(scan|order)"', sql)], reads
    writes = [sql for sql in queries if not sql.lstrip().upper().startswith("SELECT")]
    assert len(writes) == 2 and all("INSERT" in sql and "orders_scan" in sql for sql in writes)


@pytest.mark.django_db
def test_placing_an_order_costs_the_same_for_a_busy_promotion(client):
    """The POST that places an order does not read the scans, or the other orders one by one."""
    counts = []
    for size in (SMALL, LARGE):
        promo, store, _ = busy_world(**size)
        url = f"/p/{promo.wall_code}?s={store.code}"
        html = client.get(url).content.decode()
        key = re.search(r'name="submit_key" value="([^"]+)"', html).group(1)
        scan = re.search(r'name="scan" value="([^"]*)"', html).group(1)
        data = {"quantity": 1, "phone": "139 9999 0000", "fulfilment": "pickup", "pickup_store": store.code,
                "submit_key": key, "scan": scan}
        with CaptureQueriesContext(connection) as captured:
            response = client.post(url, data)
        assert response.status_code == 302, response.content.decode()
        counts.append(len(captured.captured_queries))
        assert Order.objects.filter(promotion=promo, submit_key=key).exists()
    assert counts[0] == counts[1]
    # ~20 to place it (savepoints included), 4 to start its payment, 2 more for the shop's first (sandbox) account.
    assert counts[1] <= 28, counts


# --------------------------------------------------------------------------- the shared page stays correct


def hidden(html: str, name: str) -> str:
    return re.search(rf'name="{name}" value="([^"]*)"', html).group(1)


@pytest.mark.django_db
def test_each_visitor_gets_their_own_form_key_scan_and_csrf_token():
    promo, store, _ = busy_world(**SMALL)
    url = f"/p/{promo.wall_code}?s={store.code}"
    first, second = Client(), Client()

    pages = [c.get(url).content.decode() for c in (first, second, first)]

    keys = {hidden(html, "submit_key") for html in pages}
    scans = {hidden(html, "scan") for html in pages}
    assert len(keys) == 3 and len(scans) == 3
    assert not any("o2oHole" in html for html in pages)
    assert Scan.objects.filter(promotion=promo, store=store).count() == 3
    assert hidden(pages[0], "csrfmiddlewaretoken") != hidden(pages[1], "csrfmiddlewaretoken")


@pytest.mark.django_db
def test_an_order_from_a_reused_page_passes_the_csrf_check():
    promo, store, _ = busy_world(**SMALL)
    url = f"/p/{promo.wall_code}?s={store.code}"
    Client().get(url)  # someone else's visit renders the shared page
    customer = Client(enforce_csrf_checks=True)
    html = customer.get(url).content.decode()

    response = customer.post(url, {
        "csrfmiddlewaretoken": hidden(html, "csrfmiddlewaretoken"), "submit_key": hidden(html, "submit_key"),
        "scan": hidden(html, "scan"), "quantity": 1, "phone": "13812345678", "fulfilment": "pickup",
        "pickup_store": store.code,
    })

    assert response.status_code == 302, response.content.decode()
    order = Order.objects.get(submit_key=hidden(html, "submit_key"))
    assert Scan.objects.get(key=order.scan_key).store == store


@pytest.mark.django_db
def test_price_stock_and_status_changes_show_on_the_next_visit(client):
    promo, store, _ = busy_world(**SMALL)
    url = f"/p/{promo.wall_code}?s={store.code}"
    assert "¥99.00" in client.get(url).content.decode()

    Promotion.objects.filter(pk=promo.pk).update(promo_price=Decimal("88.00"), sold_count=F("stock_cap") - 2)
    html = client.get(url).content.decode()
    assert "¥88.00" in html and "2 left" in html

    Promotion.objects.filter(pk=promo.pk).update(sold_count=F("stock_cap"))
    assert "Sold out" in client.get(url).content.decode()


@pytest.mark.django_db
def test_the_page_ends_when_the_promotion_does_even_if_nothing_was_written(client):
    promo, store, _ = busy_world(**SMALL)
    url = f"/p/{promo.wall_code}?s={store.code}"
    assert client.get(url).status_code == 200

    with mock.patch("orders.views.timezone.now", return_value=promo.ends_at + timedelta(seconds=1)):
        response = client.get(url)

    assert response.status_code == 410 and "This offer has ended." in response.content.decode()


@pytest.mark.django_db
def test_a_visitors_flash_message_is_never_shared(client):
    promo, store, _ = busy_world(**SMALL)
    url = f"/p/{promo.wall_code}?s={store.code}"
    storage = CookieStorage(HttpRequest())
    client.cookies[storage.cookie_name] = storage._encode([Message(constants.WARNING, "Only for you")])

    assert "Only for you" in client.get(url).content.decode()
    assert "Only for you" not in Client().get(url).content.decode()


@pytest.mark.django_db
def test_customer_pages_are_never_cached_by_the_browser(client):
    promo, store, _ = busy_world(**SMALL)
    response = client.get(f"/p/{promo.wall_code}?s={store.code}")
    assert "no-store" in response["Cache-Control"]


@pytest.mark.django_db
def test_an_unknown_or_draft_wall_code_is_not_found(client):
    draft = promotion(MerchantFactory(), status=Promotion.Status.DRAFT)
    assert client.get(f"/p/{draft.wall_code}").status_code == 404
    assert client.get("/p/NOSUCHCODE").status_code == 404
    assert not Scan.objects.exists()


@pytest.mark.django_db
def test_a_burst_of_scans_reads_the_promotion_once_per_second_and_records_every_scan(client, settings):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    settings.LANDING_ROW_CACHE_SECONDS = 1
    promo = promotion(MerchantFactory(slug="burst"))
    store = promo.pickup_stores.get()
    client.get(f"/p/{promo.wall_code}?s={store.code}")  # renders and caches
    with CaptureQueriesContext(connection) as queries:
        for _ in range(5):
            assert client.get(f"/p/{promo.wall_code}?s={store.code}").status_code == 200
    selects = [q for q in queries.captured_queries if "orders_promotion" in q["sql"] and "SELECT" in q["sql"]]
    assert selects == []
    assert Scan.objects.filter(promotion=promo, store=store).count() == 6


@pytest.mark.django_db
def test_an_unknown_code_is_remembered_for_a_second(client, settings):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    settings.LANDING_ROW_CACHE_SECONDS = 1
    client.get("/p/NOSUCHCODE")
    with CaptureQueriesContext(connection) as queries:
        assert client.get("/p/NOSUCHCODE").status_code == 404
    assert len(queries.captured_queries) == 0
