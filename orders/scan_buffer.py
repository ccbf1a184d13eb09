"""Recording scans without slowing the landing page.

With Redis configured, a scan is one RPUSH (~0.1 ms) and a beat task moves the buffer into
the Scan table in batches. Without Redis (the embedded default, one host), the landing page
inserts the row itself.

The flush is safe to repeat and to crash: it reads a batch, inserts it ignoring keys already
present, and only then trims what it read; a lock keeps two flushes from trimming each
other's batches.
"""

import uuid
from datetime import UTC, datetime
from functools import cache

from django.conf import settings

from .models import Scan

BUFFER_KEY = "o2o:scan-buffer"
LOCK_KEY = "o2o:scan-buffer-lock"


def buffer_key() -> str:
    # One buffer per database: a bench or test database's scans never land in another one.
    return f"{BUFFER_KEY}:{settings.DATABASES['default']['NAME']}"


def lock_key() -> str:
    return f"{LOCK_KEY}:{settings.DATABASES['default']['NAME']}"


@cache
def _redis():
    import redis

    return redis.Redis.from_url(settings.REDIS_URL)


def buffering() -> bool:
    return bool(settings.SCAN_BUFFER and settings.REDIS_URL)


def scan_record(*, merchant_id: int, promotion_id: int, store_id: int | None) -> uuid.UUID:
    """Record one visit of a wall code; returns the scan's key for the order form to carry."""
    key = uuid.uuid4()
    if buffering():
        stamp = datetime.now(UTC).timestamp()
        _redis().rpush(buffer_key(), f"{key.hex}|{merchant_id}|{promotion_id}|{store_id or ''}|{stamp:.6f}")
    else:
        Scan.objects.create(key=key, merchant_id=merchant_id, promotion_id=promotion_id, store_id=store_id)
    return key


def _parse(entry: bytes) -> Scan:
    key, merchant_id, promotion_id, store_id, stamp = entry.decode().split("|")
    return Scan(
        key=uuid.UUID(key),
        merchant_id=int(merchant_id),
        promotion_id=int(promotion_id),
        store_id=int(store_id) if store_id else None,
        created_at=datetime.fromtimestamp(float(stamp), UTC),
    )


def scans_flush(*, batch_size: int = 5000, max_batches: int = 100) -> int:
    """Move buffered scans into the Scan table; returns how many entries were moved."""
    if not buffering():
        return 0
    client = _redis()
    # The lock outlives a crashed flush by a minute at most; the next run takes over.
    if not client.set(lock_key(), "1", nx=True, ex=60):
        return 0
    moved = 0
    try:
        for _ in range(max_batches):
            entries = client.lrange(buffer_key(), 0, batch_size - 1)
            if not entries:
                break
            # A promotion or store deleted since the visit drops its scans rather than the batch.
            scans = [_parse(entry) for entry in entries]
            Scan.objects.bulk_create(_existing_targets(scans), ignore_conflicts=True)
            client.ltrim(buffer_key(), len(entries), -1)
            moved += len(entries)
    finally:
        client.delete(lock_key())
    return moved


def _existing_targets(scans: list[Scan]) -> list[Scan]:
    from merchants.models import Store

    from .models import Promotion

    promotions = set(Promotion.objects.filter(pk__in={s.promotion_id for s in scans}).values_list("pk", flat=True))
    stores = set(Store.objects.filter(pk__in={s.store_id for s in scans if s.store_id}).values_list("pk", flat=True))
    kept = []
    for scan in scans:
        if scan.promotion_id in promotions:
            if scan.store_id not in stores:
                scan.store_id = None
            kept.append(scan)
    return kept
