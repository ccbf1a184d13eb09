"""Rate limits on unknown voucher codes, per user and per IP, shared by the cashier page and the POS API.

A voucher code has ~49 random bits; at 10 misses a minute per user (30 per address) guessing one
would take longer than the universe is old. Only misses count: a busy counter looking up real codes
all day is never slowed down. Counters live in the default cache: Redis when REDIS_URL is set (shared
by every web process), the process's own memory otherwise (one process: `make run`).

Windows are fixed minutes: one counter key per user (or address) per minute, created with a TTL,
incremented atomically (Redis INCR). While either counter is at its limit, every lookup and redeem is
refused, hits included, so a guesser learns nothing more until the minute is over.
"""

import time
from collections.abc import Iterator
from contextlib import contextmanager

from django.core.cache import caches

from .errors import RateLimited, UnknownCode

MISSES_PER_USER = 10
MISSES_PER_IP = 30
WINDOW_SECONDS = 60
# Tests give each test its own prefix, so counters of one test never leak into the next.
KEY_PREFIX = "pickup-miss"


def _now() -> float:
    return time.time()


def _keys(*, user_id: int | None, ip: str | None, window: int) -> list[tuple[str, int]]:
    keys = []
    if user_id is not None:
        keys.append((f"{KEY_PREFIX}:u:{user_id}:{window}", MISSES_PER_USER))
    if ip:
        keys.append((f"{KEY_PREFIX}:ip:{ip}:{window}", MISSES_PER_IP))
    return keys


def pickup_misses_check(*, user_id: int | None, ip: str | None) -> None:
    """Raise RateLimited (with the seconds until the window ends) if this user or address is at a limit."""
    now = _now()
    window = int(now // WINDOW_SECONDS)
    keys = _keys(user_id=user_id, ip=ip, window=window)
    counts = caches["default"].get_many([key for key, _limit in keys])
    if any(counts.get(key, 0) >= limit for key, limit in keys):
        retry_after = max(1, int((window + 1) * WINDOW_SECONDS - now + 0.999))
        raise RateLimited(retry_after=retry_after)


def pickup_miss_record(*, user_id: int | None, ip: str | None) -> None:
    """Count one unknown code against this user and this address."""
    cache = caches["default"]
    window = int(_now() // WINDOW_SECONDS)
    for key, _limit in _keys(user_id=user_id, ip=ip, window=window):
        # add() is a no-op when the key exists, so two processes never reset each other's count.
        cache.add(key, 0, timeout=WINDOW_SECONDS * 2)
        try:
            cache.incr(key)
        except ValueError:  # expired between add() and incr(): this miss starts the count again
            cache.add(key, 1, timeout=WINDOW_SECONDS * 2)


@contextmanager
def unknown_codes_limited(*, user_id: int | None, ip: str | None) -> Iterator[None]:
    """Refuse while over a limit; count the block's UnknownCode, if it raises one."""
    pickup_misses_check(user_id=user_id, ip=ip)
    try:
        yield
    except UnknownCode:
        pickup_miss_record(user_id=user_id, ip=ip)
        raise
