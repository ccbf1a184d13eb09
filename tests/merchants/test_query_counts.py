"""Pages and endpoints that list rows run a fixed number of queries, however many rows there are.

Each test measures the same page at 3 rows and at 30 rows of the merchant: an N+1 (a query per
row for a related object, a count, a permission check) shows up as a difference.
"""

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from merchants.models import Product, StaffRole, Store, StoreStock
from tests.factories import ProductFactory, StoreFactory, staff

FEW, MANY = 3, 30



def grow_to(side, rows: int) -> None:
    """Give `side`'s merchant `rows` stores, products and staff, and every product stock at two stores.

    Related rows vary per row on purpose (each product its own stock lines, each cashier their own
    stores), so a per-row lookup cannot be answered from one cached object.
    """
    merchant = side.merchant
    for i in range(Store.objects.filter(merchant=merchant).count(), rows):
        store = StoreFactory(merchant=merchant)
        product = ProductFactory(merchant=merchant)
        StoreStock.objects.create(merchant=merchant, product=product, store=store, quantity=i)
        StoreStock.objects.create(merchant=merchant, product=product, store=side.store, quantity=1)
    stores = list(Store.objects.filter(merchant=merchant).exclude(pk=side.store.pk))
    for i in range(StaffRole.objects.filter(merchant=merchant).count(), rows):
        staff(merchant, "cashier", [side.store, stores[i % len(stores)]])
    assert Store.objects.filter(merchant=merchant).count() == rows
    assert Product.objects.filter(merchant=merchant).count() == rows
    assert StaffRole.objects.filter(merchant=merchant).count() == rows


def count_queries(client, url: str) -> tuple[int, int]:
    """(queries, rows listed) for one GET of `url`, after a first GET has warmed per-process caches."""
    assert client.get(url).status_code == 200
    with CaptureQueriesContext(connection) as captured:
        response = client.get(url)
    assert response.status_code == 200
    if response.context and "cl" in response.context:
        listed = len(response.context["cl"].result_list)
    else:
        listed = len(response.json()["results"])
    return len(captured), listed


def _login(client, demo, viewer: str) -> None:
    client.force_login(demo.superuser if viewer == "superuser" else demo.ours.manager)


# Upper bounds, a little above what the pages run today (admin 5-9: session, user, staff role, count,
# rows, prefetch, filter choices, the user's Django permissions once; API 4-6). The equality above
# them is the real test; the bound catches a page that became expensive for every row count alike.
ADMIN_BOUND = 10
API_BOUND = 7


@pytest.mark.parametrize("viewer", ["manager", "superuser"])
@pytest.mark.parametrize("model", ["store", "product", "staffrole", "storestock"])
def test_admin_changelist_queries_do_not_grow_with_rows(client, demo, model, viewer):
    url = reverse(f"admin:merchants_{model}_changelist")
    _login(client, demo, viewer)
    grow_to(demo.ours, FEW)
    few, few_rows = count_queries(client, url)

    grow_to(demo.ours, MANY)
    many, many_rows = count_queries(client, url)

    assert many_rows > few_rows >= FEW  # the page did list the new rows
    assert many == few, f"{few} queries for {few_rows} rows, {many} for {many_rows}"
    assert few <= ADMIN_BOUND


@pytest.mark.parametrize("viewer", ["manager", "superuser"])
@pytest.mark.parametrize("endpoint", ["stores", "products", "stock"])
def test_api_list_queries_do_not_grow_with_rows(client, demo, endpoint, viewer):
    url = f"/api/v1/{endpoint}/"
    _login(client, demo, viewer)
    grow_to(demo.ours, FEW)
    few, few_rows = count_queries(client, url)

    grow_to(demo.ours, MANY)
    many, many_rows = count_queries(client, url)

    assert many_rows > few_rows >= FEW
    assert many == few, f"{few} queries for {few_rows} rows, {many} for {many_rows}"
    assert few <= API_BOUND
