"""Reads for the customer pages and the goods wall: a fixed number of queries, whatever the data."""

from datetime import datetime

from django.db.models import Prefetch, Q, QuerySet

from merchants.models import Store

from .lifecycle import PUBLISHED
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


def store_by_code(*, merchant_id: int, code: str | None) -> Store | None:
    if not code:
        return None
    return Store.objects.filter(merchant_id=merchant_id, code=code, is_active=True).first()


def wall_promotions(*, store: Store, now: datetime) -> QuerySet[Promotion]:
    """What hangs on a store's goods wall: promotions on sale now that can be had from this store
    (picked up here, or delivered)."""
    return (
        Promotion.objects.filter(
            merchant_id=store.merchant_id, status__in=PUBLISHED, starts_at__lte=now, ends_at__gt=now
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
