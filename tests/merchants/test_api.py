"""The REST API for POS terminals and integrations: auth, lists, filters, writes, schema and docs."""

import re
from decimal import Decimal

import pytest
import yaml
from django.contrib.staticfiles import finders
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext

from merchants.models import Product, Store, StoreStock
from tests.factories import ProductFactory, StoreFactory, StoreStockFactory

PASSWORD = "correct-horse-battery"

pytestmark = pytest.mark.django_db



def signed_in(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def post_json(client: Client, url: str, data: dict, **extra):
    return client.post(url, data, content_type="application/json", **extra)


def patch_json(client: Client, url: str, data: dict):
    return client.patch(url, data, content_type="application/json")


def codes(response) -> list[str]:
    return [row["code"] for row in response.json()["results"]]


def skus(response) -> list[str]:
    return [row["sku"] for row in response.json()["results"]]


# --------------------------------------------------------------------------- authentication


def test_token_from_the_token_endpoint_authenticates_reads_and_writes(demo):
    # given: a terminal that holds only a token, no session cookie
    issued = post_json(Client(), "/api/v1/auth/token/", {"username": demo.ours.manager.username, "password": PASSWORD})
    auth = {"HTTP_AUTHORIZATION": f"Token {issued.json()['token']}"}
    terminal = Client()

    # when / then: it reads its stores and writes a product (no CSRF token needed for tokens)
    assert codes(terminal.get("/api/v1/stores/", **auth)) == [demo.ours.store.code]
    created = post_json(terminal, "/api/v1/products/", {"name": "Green tea", "sku": "GT-1", "price": "9.90"}, **auth)
    assert created.status_code == 201
    assert "sessionid" not in terminal.cookies


def test_bad_or_missing_token_is_refused(demo):
    assert Client().get("/api/v1/stores/").status_code == 401
    bad = Client().get("/api/v1/stores/", HTTP_AUTHORIZATION="Token not-a-real-token")
    assert bad.status_code == 401


def test_session_of_a_signed_in_manager_reads_the_api(demo):
    assert codes(signed_in(demo.ours.manager).get("/api/v1/stores/")) == [demo.ours.store.code]


def test_session_write_needs_the_csrf_token(demo):
    # A page in the manager's browser must not be able to write through the API on another site's behalf.
    browser = Client(enforce_csrf_checks=True)
    browser.force_login(demo.ours.manager)
    data = {"name": "Green tea", "sku": "GT-1", "price": "9.90"}

    refused = post_json(browser, "/api/v1/products/", data)
    browser.get("/admin/")  # any page with a form (here: sign out) hands out the CSRF cookie
    accepted = post_json(browser, "/api/v1/products/", data, HTTP_X_CSRFTOKEN=browser.cookies["csrftoken"].value)

    assert refused.status_code == 403
    assert "CSRF" in refused.json()["detail"]
    assert accepted.status_code == 201


# --------------------------------------------------------------------------- lists


def test_product_list_is_paginated_with_count_and_next(demo):
    # given: more products than one page holds (PAGE_SIZE 50), plus the demo's one
    Product.objects.bulk_create(
        Product(merchant=demo.ours.merchant, name=f"Bulk {n:03}", sku=f"BULK-{n:03}", price=Decimal("1.00"))
        for n in range(54)
    )
    client = signed_in(demo.ours.manager)

    # when
    first = client.get("/api/v1/products/").json()
    second = client.get(first["next"]).json()

    # then: the count is all of ours (none of the rival's) and page two holds the rest
    assert first["count"] == 55
    assert len(first["results"]) == 50
    assert first["previous"] is None
    assert "page=2" in first["next"]
    assert len(second["results"]) == 5
    assert second["next"] is None
    seen = {row["sku"] for row in first["results"] + second["results"]}
    assert len(seen) == 55 and demo.rival.product.sku not in seen


def test_store_list_filters_on_active(demo):
    closed = StoreFactory(merchant=demo.ours.merchant, name="Closed for works", is_active=False)
    StoreFactory(merchant=demo.rival.merchant, is_active=False)
    client = signed_in(demo.ours.manager)

    assert codes(client.get("/api/v1/stores/?is_active=false")) == [closed.code]
    assert codes(client.get("/api/v1/stores/?is_active=true")) == [demo.ours.store.code]


def test_product_list_filters_on_active(demo):
    retired = ProductFactory(merchant=demo.ours.merchant, sku="OLD-1", is_active=False)
    client = signed_in(demo.ours.manager)

    assert skus(client.get("/api/v1/products/?is_active=false")) == [retired.sku]
    assert skus(client.get("/api/v1/products/?is_active=true")) == [demo.ours.product.sku]


def test_product_list_filters_on_the_store_that_stocks_it(demo):
    # given: a second store that stocks only a scarf
    mall = StoreFactory(merchant=demo.ours.merchant, name="Mall")
    scarf = ProductFactory(merchant=demo.ours.merchant, name="Scarf", sku="SCARF")
    StoreStockFactory(product=scarf, store=mall)
    client = signed_in(demo.ours.manager)

    # when / then: each store lists what it stocks
    assert skus(client.get(f"/api/v1/products/?store={mall.pk}")) == ["SCARF"]
    assert skus(client.get(f"/api/v1/products/?store={demo.ours.store.pk}")) == [demo.ours.product.sku]


def test_product_store_filter_answers_a_rival_store_like_one_that_does_not_exist(demo):
    client = signed_in(demo.ours.manager)
    missing_pk = Store.objects.order_by("-pk").first().pk + 1000

    rival = client.get(f"/api/v1/products/?store={demo.rival.store.pk}")
    missing = client.get(f"/api/v1/products/?store={missing_pk}")

    assert rival.status_code == missing.status_code == 400
    assert rival.json() == missing.json()
    assert "store" in rival.json()


def test_search_finds_stores_and_products_by_name_code_or_sku(demo):
    StoreFactory(merchant=demo.ours.merchant, name="Xujiahui Mall", code="xjh", address="1 Hongqiao Road")
    ProductFactory(merchant=demo.ours.merchant, name="Longjing tea 250g", sku="TEA-LJ-250")
    ProductFactory(merchant=demo.ours.merchant, name="Silk scarf", sku="SILK-1")
    ProductFactory(merchant=demo.rival.merchant, name="Silk tie", sku="SILK-2")
    client = signed_in(demo.ours.manager)

    assert codes(client.get("/api/v1/stores/?search=xujiahui")) == ["xjh"]
    assert codes(client.get("/api/v1/stores/?search=Hongqiao")) == ["xjh"]
    assert skus(client.get("/api/v1/products/?search=lj-250")) == ["TEA-LJ-250"]
    # The rival's silk tie matches the word but is not ours to find.
    assert skus(client.get("/api/v1/products/?search=silk")) == ["SILK-1"]


def test_products_are_ordered_by_name_by_default_and_on_request_by_price(demo):
    ProductFactory(merchant=demo.ours.merchant, name="a cheap pen", sku="PEN", price=Decimal("2.50"))
    ProductFactory(merchant=demo.ours.merchant, name="z dear watch", sku="WATCH", price=Decimal("999.00"))
    client = signed_in(demo.ours.manager)
    tea = demo.ours.product.sku  # 19.90, named "ours tea"

    assert skus(client.get("/api/v1/products/")) == ["PEN", tea, "WATCH"]
    assert skus(client.get("/api/v1/products/?ordering=-price")) == ["WATCH", tea, "PEN"]
    assert skus(client.get("/api/v1/products/?ordering=-name")) == ["WATCH", tea, "PEN"]
    assert skus(client.get("/api/v1/products/?ordering=sku")) == [tea, "PEN", "WATCH"]


def test_product_list_queries_do_not_grow_with_products_and_stock(demo):
    client = signed_in(demo.ours.manager)
    client.get("/api/v1/products/")  # warm the session and the content types

    def queries_for_list() -> int:
        with CaptureQueriesContext(connection) as ctx:
            assert client.get("/api/v1/products/").status_code == 200
        return len(ctx.captured_queries)

    few = queries_for_list()
    for _ in range(10):
        StoreStockFactory(product=ProductFactory(merchant=demo.ours.merchant), store=demo.ours.store)
    assert queries_for_list() == few


# --------------------------------------------------------------------------- product writes


def test_manager_creates_a_product_for_their_own_merchant_whatever_the_body_says(demo):
    client = signed_in(demo.ours.manager)

    response = post_json(
        client,
        "/api/v1/products/",
        {"name": "Green tea", "sku": "GT-1", "price": "9.90", "merchant": demo.rival.merchant.slug},
    )

    assert response.status_code == 201, response.content
    body = response.json()
    assert body["merchant"] == demo.ours.merchant.slug
    assert body["price"] == "9.90"
    assert Product.objects.get(pk=body["id"]).merchant == demo.ours.merchant


def test_manager_updates_a_product_and_cannot_move_it_to_another_merchant(demo):
    client = signed_in(demo.ours.manager)
    url = f"/api/v1/products/{demo.ours.product.pk}/"

    response = patch_json(client, url, {"price": "21.50", "is_active": False, "merchant": demo.rival.merchant.slug})

    assert response.status_code == 200, response.content
    demo.ours.product.refresh_from_db()
    assert demo.ours.product.price == Decimal("21.50")
    assert demo.ours.product.is_active is False
    assert demo.ours.product.merchant == demo.ours.merchant


def test_duplicate_sku_within_the_merchant_is_a_400_naming_sku(demo):
    client = signed_in(demo.ours.manager)

    response = post_json(client, "/api/v1/products/", {"name": "Tea again", "sku": demo.ours.product.sku, "price": "1"})

    assert response.status_code == 400
    assert list(response.json()) == ["sku"]
    assert "already exists" in response.json()["sku"][0]
    assert Product.objects.filter(merchant=demo.ours.merchant).count() == 1


def test_renaming_a_sku_onto_another_product_is_a_400_naming_sku(demo):
    other = ProductFactory(merchant=demo.ours.merchant, sku="OTHER")
    client = signed_in(demo.ours.manager)

    clash = patch_json(client, f"/api/v1/products/{other.pk}/", {"sku": demo.ours.product.sku})
    unchanged = patch_json(client, f"/api/v1/products/{other.pk}/", {"sku": "OTHER", "name": "Renamed"})

    assert clash.status_code == 400
    assert list(clash.json()) == ["sku"]
    # Saving a product with its own SKU is not a clash with itself.
    assert unchanged.status_code == 200


def test_same_sku_at_another_merchant_is_fine(demo):
    client = signed_in(demo.ours.manager)

    response = post_json(client, "/api/v1/products/", {"name": "Our tea", "sku": demo.rival.product.sku, "price": "5"})

    assert response.status_code == 201, response.content
    assert Product.objects.filter(sku=demo.rival.product.sku).count() == 2


@pytest.mark.parametrize("role", ["analyst", "cashier"])
def test_staff_other_than_managers_read_products_but_cannot_write(demo, role):
    client = signed_in(getattr(demo.ours, role))

    assert client.get("/api/v1/products/").status_code == 200
    response = post_json(client, "/api/v1/products/", {"name": "Green tea", "sku": "GT-1", "price": "9.90"})
    assert response.status_code == 403
    assert not Product.objects.filter(sku="GT-1").exists()


# --------------------------------------------------------------------------- stock writes


def test_manager_creates_a_stock_line_for_a_product_and_store_of_theirs(demo):
    mall = StoreFactory(merchant=demo.ours.merchant, name="Mall")
    client = signed_in(demo.ours.manager)

    response = post_json(client, "/api/v1/stock/", {"product": demo.ours.product.pk, "store": mall.pk, "quantity": 12})

    assert response.status_code == 201, response.content
    line = StoreStock.objects.get(pk=response.json()["id"])
    assert (line.product, line.store, line.quantity, line.merchant) == (
        demo.ours.product,
        mall,
        12,
        demo.ours.merchant,
    )


def test_second_stock_line_for_the_same_product_and_store_is_a_clear_400(demo):
    client = signed_in(demo.ours.manager)

    response = post_json(
        client, "/api/v1/stock/", {"product": demo.ours.product.pk, "store": demo.ours.store.pk, "quantity": 3}
    )

    assert response.status_code == 400
    message = " ".join(response.json()["non_field_errors"])
    assert "product" in message and "store" in message
    assert StoreStock.objects.get(product=demo.ours.product, store=demo.ours.store).quantity == demo.ours.stock.quantity


@pytest.mark.parametrize("foreign", ["product", "store"])
def test_stock_pointing_at_a_rival_row_is_answered_like_a_missing_one(demo, foreign):
    mall = StoreFactory(merchant=demo.ours.merchant, name="Mall")
    client = signed_in(demo.ours.manager)
    ours = {"product": demo.ours.product.pk, "store": mall.pk, "quantity": 1}
    rival_pk = getattr(demo.rival, foreign).pk
    missing_pk = max(Product.objects.order_by("-pk").first().pk, Store.objects.order_by("-pk").first().pk) + 1000

    rival = post_json(client, "/api/v1/stock/", {**ours, foreign: rival_pk})
    missing = post_json(client, "/api/v1/stock/", {**ours, foreign: missing_pk})

    assert rival.status_code == missing.status_code == 400
    assert rival.json() == {foreign: [f'Invalid pk "{rival_pk}" - object does not exist.']}
    assert missing.json() == {foreign: [f'Invalid pk "{missing_pk}" - object does not exist.']}
    assert not StoreStock.objects.filter(store=mall).exists()


def test_negative_stock_is_refused(demo):
    client = signed_in(demo.ours.manager)

    response = patch_json(client, f"/api/v1/stock/{demo.ours.stock.pk}/", {"quantity": -1})

    assert response.status_code == 400
    assert "quantity" in response.json()


# --------------------------------------------------------------------------- schema and docs


def test_schema_is_an_openapi_document_listing_the_public_endpoints(demo):
    response = Client().get("/api/schema/")

    assert response.status_code == 200
    document = yaml.safe_load(response.content)
    assert document["openapi"].startswith("3.")
    for path in ["/api/v1/stores/", "/api/v1/products/", "/api/v1/auth/token/"]:
        assert path in document["paths"], path
    assert "post" in document["paths"]["/api/v1/auth/token/"]
    schemes = document["components"]["securitySchemes"]
    assert {"tokenAuth", "cookieAuth"} <= set(schemes)


def test_docs_page_loads_swagger_ui_from_our_own_static_files(demo):
    response = Client().get("/api/docs/")

    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/html")
    page = response.content.decode()
    # No CDN: nothing in the page points off-site, so the docs work behind a firewall.
    assert not re.search(r"https?://|(?:src|href)=\"//", page), "the docs page loads something off-site"
    assets = re.findall(r'(?:src|href)="/static/([^"]+)"', page)
    assert any(a.endswith("swagger-ui-bundle.js") for a in assets)
    assert any(a.endswith("swagger-ui.css") for a in assets)
    for asset in assets:
        assert finders.find(asset), f"{asset} is not among our static files"
    assert '"/api/schema/"' in page
