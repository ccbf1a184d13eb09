"""API token authentication (o2o/auth.py): token, user and staff role in one query, and the same refusals
as DRF's own (its words), on SQLite and PostgreSQL alike."""

from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from rest_framework.authtoken.models import Token

from orders.models import Order
from orders.pickups.models import Redemption
from tests.factories import UserFactory

from .test_api import redeem, terminal

OS = Order.Status


def test_one_query_reads_token_user_and_staff_role(shop):
    client, auth = terminal(shop)
    order = shop.order()
    assert client.get(f"/api/v1/pickups/{order.pickup_code}/", **auth).status_code == 200  # prepared now
    with CaptureQueriesContext(connection) as context:
        assert client.get(f"/api/v1/pickups/{order.pickup_code}/", **auth).status_code == 200
    statements = [q["sql"] for q in context.captured_queries]
    token_reads = [sql for sql in statements if "o2o_api_token" in sql or "authtoken_token" in sql]
    role_reads = [sql for sql in statements if 'FROM "merchants_staffrole"' in sql]
    assert len(token_reads) == 1 and not role_reads, statements


def test_bad_tokens_inactive_users_and_inactive_merchants_are_refused(shop):
    order = shop.order()
    client, auth = terminal(shop)
    bad = client.post(f"/api/v1/pickups/{order.pickup_code}/redeem/", {}, content_type="application/json",
                      HTTP_AUTHORIZATION="Token not-a-token")
    assert bad.status_code == 401 and bad.json()["detail"] == "Invalid token."
    shop.cashier.is_active = False
    shop.cashier.save(update_fields=["is_active"])
    inactive = redeem(client, auth, order.pickup_code)
    assert inactive.status_code == 401 and inactive.json()["detail"] == "User inactive or deleted."
    shop.cashier.is_active = True
    shop.cashier.save(update_fields=["is_active"])
    shop.merchant.is_active = False
    shop.merchant.save(update_fields=["is_active"])
    assert redeem(client, auth, order.pickup_code).status_code == 403
    order.refresh_from_db()
    assert order.status == OS.PAID and not Redemption.objects.exists()


def test_a_token_of_a_user_without_a_staff_role_is_refused(shop):
    stranger = UserFactory()
    token = Token.objects.create(user=stranger)
    response = Client().post(f"/api/v1/pickups/{shop.order().pickup_code}/redeem/", {},
                             content_type="application/json", HTTP_AUTHORIZATION=f"Token {token.key}")
    assert response.status_code == 403 and not Redemption.objects.exists()
