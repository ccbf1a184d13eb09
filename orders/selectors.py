"""Reads for the customer pages and the goods wall: a fixed number of queries, whatever the data."""

from datetime import datetime

from django.db import connection
from django.db.models import F, Prefetch, Q, QuerySet

from merchants.models import Store

from .models import Order, Promotion, PromotionItem


def promotion_for_landing(*, wall_code: str) -> Promotion | None:
    """A published (or ended) promotion by its wall code, with what the landing page shows."""
    return (
        Promotion.objects.exclude(status=Promotion.Status.DRAFT)
        .select_related("merchant")
        .prefetch_related(
            Prefetch("items", queryset=PromotionItem.objects.select_related("product").order_by("id")),
            Prefetch("pickup_stores", queryset=Store.objects.filter(is_active=True).order_by("name")),
        )
        .filter(wall_code=wall_code)
        .first()
    )


# The promotion's own columns, as the landing page shows them: read fresh on every visit to key the
# rendered page, so a change of price, stock, times or status is never served from the cache.
LANDING_ROW_FIELDS = (
    "id", "merchant_id", "status", "title", "description", "image", "promo_price", "original_price", "starts_at",
    "ends_at", "stock_cap", "sold_count", "per_member_limit", "allow_pickup", "pickup_days", "allow_express",
    "shipping_fee",
)


def promotion_row_for_landing(*, wall_code: str) -> dict | None:
    """The published (or ended) promotion's row by wall code, without related rows: one indexed read.

    Plain SQL: every scan runs this, and building the same ORM query each time costs more than
    running it (~0.4 ms against ~0.05 ms)."""
    table = Promotion._meta.db_table
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT {', '.join(LANDING_ROW_FIELDS)} FROM {table} WHERE wall_code = %s AND status <> %s",  # noqa: S608
            [wall_code, Promotion.Status.DRAFT],
        )
        row = cursor.fetchone()
    if row is None:
        return None
    values = dict(zip(LANDING_ROW_FIELDS, row, strict=True))
    for name in ("starts_at", "ends_at"):  # the two the status is computed from; SQLite returns text
        values[name] = _datetime_from_db(values[name])
    return values


def _datetime_from_db(value):
    field = Promotion._meta.get_field("starts_at")
    column = field.get_col(Promotion._meta.db_table)
    for converter in connection.ops.get_db_converters(column):
        value = converter(value, column, connection)
    return value


def store_by_code(*, merchant_id: int, code: str | None) -> Store | None:
    if not code:
        return None
    return Store.objects.filter(merchant_id=merchant_id, code=code, is_active=True).first()


def store_for_scan(*, promotion: Promotion, code: str | None) -> Store | None:
    """The active store of the promotion's merchant where its QR was scanned. Usually one of the
    pickup stores `promotion_for_landing` prefetched, so the landing page spends no query on it."""
    if not code:
        return None
    for store in promotion.pickup_stores.all():
        if store.code == code:
            return store
    return store_by_code(merchant_id=promotion.merchant_id, code=code)


def wall_promotions(*, store: Store, now: datetime) -> QuerySet[Promotion]:
    """What hangs on a store's goods wall: promotions on sale now that can be had from this store
    (picked up here, or delivered). Sold-out ones stay off the printout even before the sweep marks them."""
    return (
        Promotion.objects.filter(
            merchant_id=store.merchant_id, status__in=[Promotion.Status.SCHEDULED, Promotion.Status.LIVE],
            starts_at__lte=now, ends_at__gt=now, sold_count__lt=F("stock_cap"),
        )
        .filter(Q(allow_pickup=True, pickup_stores=store) | Q(allow_express=True))
        .distinct()
        .prefetch_related(Prefetch("items", queryset=PromotionItem.objects.select_related("product")))
        .order_by("ends_at", "id")
    )


def order_for_customer(*, token: str) -> Order | None:
    return (
        Order.objects.select_related("promotion", "merchant", "pickup_store", "member")
        .prefetch_related("items__product")
        .filter(token=token)
        .first()
    )
