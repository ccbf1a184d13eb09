"""The POS API: GET /api/v1/pickups/{code}/ and POST .../redeem/, every status a terminal acts on, the
Idempotency-Key, and the OpenAPI schema that documents them."""

from datetime import timedelta

import pytest
import yaml
from django.test import Client
from django.utils import timezone

from orders.models import Order
from orders.pickups.models import PickupIdempotencyKey, Redemption
from tests.factories import UserFactory

from .conftest import signed_in

OS = Order.Status
PASSWORD = "correct-horse-battery"


def terminal(shop, user=None) -> tuple[Client, dict]:
    """A POS terminal holding only a token (no session, no CSRF)."""
    user = user or shop.cashier
    token = Client().post("/api/v1/auth/token/", {"username": user.username, "password": PASSWORD}).json()["token"]
    return Client(), {"HTTP_AUTHORIZATION": f"Token {token}", "HTTP_X_CLIENT_NAME": "POS-3 Xintiandi"}


def lookup(client, auth, code, **params):
    return client.get(f"/api/v1/pickups/{code}/", params, **auth)


def redeem(client, auth, code, *, key=None, **body):
    headers = {**auth, **({"HTTP_IDEMPOTENCY_KEY": key} if key else {})}
    return client.post(f"/api/v1/pickups/{code}/redeem/", body, content_type="application/json", **headers)


def test_lookup_answers_200_with_the_order(shop):
    order = shop.order(quantity=2, phone="13812345678")
    client, auth = terminal(shop)
    response = lookup(client, auth, order.pickup_code.lower())
    assert response.status_code == 200
    body = response.json()
    assert body["code"] == order.pickup_code and body["order"] == order.pk and body["status"] == "paid"
    assert [(i["name"], i["sku"], i["quantity"]) for i in body["items"]] == [
        ("West Lake Longjing tea 250g", "LJ-250", 2), ("Celadon tea cup", "CUP-1", 4),
    ]
    assert body["member_phone"] == "+86138****5678"
    assert body["pickup_store"] == {"code": "xtd", "name": "Lotus Xintiandi"}
    assert body["paid_at"] and body["pickup_deadline"] and body["total"] == "198.00"


def test_redeem_answers_200_and_records_the_api_client(shop):
    order = shop.order()
    client, auth = terminal(shop)
    response = redeem(client, auth, order.pickup_code)
    assert response.status_code == 200, response.json()
    body = response.json()
    assert body["order"] == order.pk and body["status"] == "picked_up" and body["cashier"] == "wang.fang"
    assert body["store"] == {"code": "xtd", "name": "Lotus Xintiandi"} and body["channel"] == "api"
    assert [line["quantity"] for line in body["lines"]] == [1, 2]
    redemption = Redemption.objects.get()
    assert (redemption.channel, redemption.client, redemption.client_ip) == ("api", "POS-3 Xintiandi", "127.0.0.1")
    assert "sessionid" not in client.cookies


def test_second_redeem_is_409_with_who_when_where(shop):
    order = shop.order()
    client, auth = terminal(shop)
    first = redeem(client, auth, order.pickup_code).json()
    response = redeem(client, auth, order.pickup_code)
    assert response.status_code == 409
    body = response.json()
    assert body["code"] == "already_redeemed" and body["by"] == "wang.fang"
    assert body["store"] == "Lotus Xintiandi" and body["store_code"] == "xtd"
    assert body["redeemed_at"] == first["redeemed_at"]
    assert lookup(client, auth, order.pickup_code).status_code == 409


def test_unknown_and_other_merchants_codes_are_the_same_404(shop):
    client, auth = terminal(shop)
    answers = [lookup(client, auth, code) for code in (shop.rival_order.pickup_code, "ABCDEFGHJK")]
    assert [a.status_code for a in answers] == [404, 404]
    assert answers[0].json() == answers[1].json() == {
        "code": "unknown_code", "detail": "No voucher has this code. Check it and try again.",
    }
    assert redeem(client, auth, shop.rival_order.pickup_code).status_code == 404
    assert Order.objects.get(pk=shop.rival_order.pk).status == OS.PAID


def test_expired_is_410(shop):
    order = shop.order()
    Order.objects.filter(pk=order.pk).update(pickup_deadline=timezone.now() - timedelta(hours=1))
    client, auth = terminal(shop)
    response = redeem(client, auth, order.pickup_code)
    assert response.status_code == 410 and response.json()["code"] == "expired" and response.json()["deadline"]


@pytest.mark.parametrize(("status", "code"), [("refunded", "refunded"), ("cancelled", "cancelled")])
def test_closed_orders_are_409_with_their_reason(shop, status, code):
    order = shop.order()
    Order.objects.filter(pk=order.pk).update(status=status)
    client, auth = terminal(shop)
    for response in (lookup(client, auth, order.pickup_code), redeem(client, auth, order.pickup_code)):
        assert (response.status_code, response.json()["code"]) == (409, code)


def test_not_paid_is_409(shop):
    order = shop.order()
    Order.objects.filter(pk=order.pk).update(status=OS.PENDING_PAYMENT)
    client, auth = terminal(shop)
    assert (lookup(client, auth, order.pickup_code).json()["code"]) == "not_paid"


def test_wrong_store_is_403_naming_the_right_one(shop):
    order = shop.order(store=shop.jingan)
    client, auth = terminal(shop, shop.floater)
    response = redeem(client, auth, order.pickup_code, store="xtd")
    assert response.status_code == 403
    assert response.json() | {"detail": ""} == {
        "code": "wrong_store", "detail": "", "belongs_to": "Lotus Jing'an", "belongs_to_code": "jingan",
    }
    assert lookup(client, auth, order.pickup_code, store="xtd").status_code == 403
    # Without a store, a cashier of two stores looks up anything of theirs, but must say where to redeem.
    assert lookup(client, auth, order.pickup_code).status_code == 200
    assert redeem(client, auth, order.pickup_code).json()["code"] == "store_required"
    assert redeem(client, auth, order.pickup_code, store="jingan").status_code == 200


def test_a_store_that_is_not_yours_is_403(shop):
    order = shop.order()
    client, auth = terminal(shop)  # Xintiandi only
    for store in ("jingan", "no-such-store"):
        response = redeem(client, auth, order.pickup_code, store=store)
        assert (response.status_code, response.json()["code"]) == (403, "store_not_allowed")
    assert Order.objects.get(pk=order.pk).status == OS.PAID


def test_analysts_and_strangers_are_refused(shop):
    order = shop.order()
    client, auth = terminal(shop, shop.analyst)
    assert lookup(client, auth, order.pickup_code).status_code == 403
    assert Client().get(f"/api/v1/pickups/{order.pickup_code}/").status_code in (401, 403)
    nobody = UserFactory()
    assert signed_in(nobody).get(f"/api/v1/pickups/{order.pickup_code}/").status_code == 403


def test_the_refusal_speaks_each_requests_language(shop):
    """The message is looked up per request, not once when the module was imported."""
    order = shop.order()
    client, auth = terminal(shop, shop.analyst)
    answers = {"en": "Only cashiers and managers verify pickups.", "zh-hans": "只有收银员和经理可以核销提货。"}
    for language, words in answers.items():
        response = lookup(client, {**auth, "HTTP_ACCEPT_LANGUAGE": language}, order.pickup_code)
        assert (response.status_code, response.json()["detail"]) == (403, words)


def test_manager_session_needs_csrf_on_redeem(shop):
    order = shop.order()
    client = Client(enforce_csrf_checks=True)
    client.force_login(shop.manager)
    assert client.post(f"/api/v1/pickups/{order.pickup_code}/redeem/", {"store": "xtd"}).status_code == 403
    assert Order.objects.get(pk=order.pk).status == OS.PAID
    assert client.get(f"/api/v1/pickups/{order.pickup_code}/").status_code == 200


# --------------------------------------------------------------------------- Idempotency-Key


def test_same_key_returns_the_same_answer_and_never_redeems_twice(shop):
    order = shop.order()
    client, auth = terminal(shop)
    first = redeem(client, auth, order.pickup_code, key="pos3-0001")
    again = redeem(client, auth, order.pickup_code, key="pos3-0001")
    assert (first.status_code, again.status_code) == (200, 200)
    assert again.content == first.content
    assert Redemption.objects.count() == 1
    # A new key for the same voucher is a second hand-over: refused.
    assert redeem(client, auth, order.pickup_code, key="pos3-0002").status_code == 409


def test_same_key_replays_an_error_too(shop):
    order = shop.order(store=shop.jingan)
    client, auth = terminal(shop, shop.floater)
    first = redeem(client, auth, order.pickup_code, key="k1", store="xtd")
    assert first.status_code == 403
    # Even once the voucher is handed over elsewhere, the retry of that request gets its own first answer.
    assert redeem(client, auth, order.pickup_code, store="jingan").status_code == 200
    again = redeem(client, auth, order.pickup_code, key="k1", store="xtd")
    assert (again.status_code, again.content) == (403, first.content)


def test_same_key_for_another_code_is_422(shop):
    first, second = shop.order(), shop.order()
    client, auth = terminal(shop)
    assert redeem(client, auth, first.pickup_code, key="k").status_code == 200
    response = redeem(client, auth, second.pickup_code, key="k")
    assert (response.status_code, response.json()["code"]) == (422, "idempotency_key_reused")
    assert Order.objects.get(pk=second.pk).status == OS.PAID
    # The code in another spelling is the same code.
    assert redeem(client, auth, first.pickup_code.lower(), key="k").status_code == 200


def test_keys_belong_to_their_user(shop):
    first, second = shop.order(), shop.order()
    one, one_auth = terminal(shop)
    other, other_auth = terminal(shop, shop.floater)
    assert redeem(one, one_auth, first.pickup_code, key="shared").status_code == 200
    assert redeem(other, other_auth, second.pickup_code, key="shared", store="xtd").status_code == 200
    assert PickupIdempotencyKey.objects.count() == 2


def test_overlong_key_is_400(shop):
    order = shop.order()
    client, auth = terminal(shop)
    response = redeem(client, auth, order.pickup_code, key="k" * 65)
    assert (response.status_code, response.json()["code"]) == (400, "invalid_idempotency_key")


# --------------------------------------------------------------------------- schema


def test_schema_documents_every_status_a_pos_acts_on():
    schema = yaml.safe_load(Client().get("/api/schema/").content)
    lookup_op = schema["paths"]["/api/v1/pickups/{code}/"]["get"]
    redeem_op = schema["paths"]["/api/v1/pickups/{code}/redeem/"]["post"]
    assert set(lookup_op["responses"]) >= {"200", "403", "404", "409", "410", "429"}
    assert set(redeem_op["responses"]) >= {"200", "400", "403", "404", "409", "410", "422", "429"}
    assert {p["name"] for p in redeem_op["parameters"]} >= {"code", "Idempotency-Key", "X-Client-Name"}
    assert {p["name"] for p in lookup_op["parameters"]} >= {"code", "store"}
    conflict = redeem_op["responses"]["409"]["content"]["application/json"]
    ref = conflict["schema"]["$ref"].rsplit("/", 1)[-1]
    assert {"redeemed_at", "by", "store"} <= set(schema["components"]["schemas"][ref]["properties"])
