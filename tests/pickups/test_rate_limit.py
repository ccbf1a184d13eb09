"""Unknown voucher codes are rate-limited per user (10 a minute) and per address (30 a minute); known
codes never count. While limited, every lookup is refused, so a guesser learns nothing more."""

import pytest
from django.test import Client

from orders.models import Order
from orders.pickups import throttling
from orders.pickups.models import PickupIdempotencyKey
from tests.factories import staff

from .conftest import signed_in

OS = Order.Status


@pytest.fixture
def clock(monkeypatch):
    """The limiter's clock, at the start of a minute, moved by hand."""
    now = [1_800_000_000.0 - 1_800_000_000.0 % throttling.WINDOW_SECONDS]
    monkeypatch.setattr(throttling, "_now", lambda: now[0])
    return now


def api_lookup(client: Client, code: str, **extra):
    return client.get(f"/api/v1/pickups/{code}/", **extra)


def misses(client: Client, n: int, **extra) -> list[int]:
    return [api_lookup(client, f"MISS{i:06d}".replace("0", "2").replace("1", "3"), **extra).status_code
            for i in range(n)]


def test_the_eleventh_unknown_code_in_a_minute_is_429_even_for_a_real_code(shop, clock):
    order = shop.order()
    client = signed_in(shop.cashier)
    assert misses(client, 10) == [404] * 10
    response = api_lookup(client, order.pickup_code)
    assert response.status_code == 429
    assert response.json() == {
        "code": "rate_limited", "detail": "Too many unknown codes. Wait a moment, then try again.", "retry_after": 60,
    }
    assert response["Retry-After"] == "60"
    clock[0] += 45
    assert api_lookup(client, order.pickup_code)["Retry-After"] == "15"
    # The next minute starts afresh.
    clock[0] += 15
    assert api_lookup(client, order.pickup_code).status_code == 200


def test_known_codes_never_count(shop, clock):
    order = shop.order()
    client = signed_in(shop.cashier)
    assert {api_lookup(client, order.pickup_code).status_code for _ in range(40)} == {200}
    assert misses(client, 9) == [404] * 9
    assert api_lookup(client, order.pickup_code).status_code == 200


def test_other_merchants_codes_count_as_unknown(shop, clock):
    client = signed_in(shop.cashier)
    statuses = [api_lookup(client, shop.rival_order.pickup_code).status_code for _ in range(11)]
    assert statuses == [404] * 10 + [429]


def test_one_users_limit_does_not_stop_a_colleague_behind_another_address(shop, clock):
    order = shop.order()
    misses(signed_in(shop.cashier), 10)
    assert api_lookup(signed_in(shop.floater), order.pickup_code, REMOTE_ADDR="10.0.0.8").status_code == 200


def test_thirty_misses_from_one_address_stop_every_user_there(shop, clock):
    order = shop.order()
    guessers = [signed_in(staff(shop.merchant, "cashier", [shop.xtd])) for _ in range(3)]
    for guesser in guessers:
        assert misses(guesser, 10, REMOTE_ADDR="10.0.0.7") == [404] * 10
    fresh = signed_in(shop.floater)
    assert api_lookup(fresh, order.pickup_code, REMOTE_ADDR="10.0.0.7").status_code == 429
    assert api_lookup(fresh, order.pickup_code, REMOTE_ADDR="10.0.0.8").status_code == 200


def test_unknown_codes_on_redeem_count_and_a_429_is_not_kept_under_the_idempotency_key(shop, clock, monkeypatch):
    monkeypatch.setattr(throttling, "MISSES_PER_USER", 3)
    order = shop.order()
    client = signed_in(shop.manager)

    def redeem(code, key=None):
        headers = {"HTTP_IDEMPOTENCY_KEY": key} if key else {}
        return client.post(
            f"/api/v1/pickups/{code}/redeem/", {"store": "xtd"}, content_type="application/json", **headers
        )

    assert [redeem("ZZZZZZZZZZ").status_code for _ in range(3)] == [404, 404, 404]
    assert redeem(order.pickup_code, key="after-wait").status_code == 429
    assert not PickupIdempotencyKey.objects.exists()
    clock[0] += 60
    assert redeem(order.pickup_code, key="after-wait").status_code == 200
    assert Order.objects.get(pk=order.pk).status == OS.PICKED_UP


def test_the_cashier_page_and_the_api_share_one_count(shop, clock):
    client = signed_in(shop.cashier)
    for _ in range(5):
        client.get("/cashier/", {"code": "QQQQQQQQQQ"})
    assert misses(client, 5) == [404] * 5
    assert client.get("/cashier/", {"code": shop.order().pickup_code}).status_code == 429


def test_counters_expire_by_themselves(shop, clock):
    # Keys carry a TTL of two windows: nothing is left behind to sweep, in Redis or in memory.
    import time

    from django.core.cache import caches
    from django.core.cache.backends.redis import RedisCache

    misses(signed_in(shop.cashier), 1)
    cache = caches["default"]
    key = f"{throttling.KEY_PREFIX}:u:{shop.cashier.pk}:{int(clock[0] // throttling.WINDOW_SECONDS)}"
    assert cache.get(key) == 1
    if isinstance(cache, RedisCache):
        ttl = cache._cache.get_client(key).ttl(cache.make_and_validate_key(key))
    else:
        ttl = cache._expire_info[cache.make_and_validate_key(key)] - time.time()
    assert 0 < ttl <= 2 * throttling.WINDOW_SECONDS
