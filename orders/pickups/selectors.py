"""Reads for the counter: where a user may verify pickups, and what a voucher code says right now."""

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from django.db.models import Exists, OuterRef, Prefetch, QuerySet, Subquery
from django.utils import timezone

from members.models import phone_mask
from merchants.models import StaffRole, Store
from o2o.tenancy import CASHIER, MANAGER, staff_role_of

from ..codes import voucher_code_display
from ..lifecycle import AWAITING_PICKUP
from ..models import Order, OrderItem
from .codes import voucher_code_is_wellformed, voucher_code_parse
from .errors import (
    AlreadyRedeemed,
    Cancelled,
    Expired,
    NothingToHandOver,
    NotPaid,
    NotRedeemable,
    PickupError,
    Refunded,
    StoreNotAllowed,
    TooManyUnits,
    UnknownCode,
    UnknownLine,
    WrongStore,
)
from .models import Redemption

O = Order.Status  # noqa: E741 - reads as O.PAID, as in orders/lifecycle.py
_REFUSALS: dict[str, type[PickupError]] = {
    O.PENDING_PAYMENT: NotPaid,
    O.CANCELLED: Cancelled,
    O.REFUNDED: Refunded,
    O.SHIPPED: NotRedeemable,
    O.DELIVERED: NotRedeemable,
}


def pickup_stores_for(user: Any) -> QuerySet[Store]:
    """The active stores where `user` may verify pickups: a cashier's own stores, every store of a
    manager's merchant, every store for a platform superuser, none for anyone else."""
    stores = Store.objects.filter(is_active=True).select_related("merchant").order_by("name", "id")
    if getattr(user, "is_superuser", False):
        return stores
    role = staff_role_of(user)
    if role is None:
        return stores.none()
    if role.role == MANAGER:
        return stores.filter(merchant_id=role.merchant_id)
    if role.role == CASHIER:
        return stores.filter(merchant_id=role.merchant_id, cashiers=role)
    return stores.none()


def may_verify_pickups(user: Any) -> bool:
    role = staff_role_of(user)
    return bool(getattr(user, "is_superuser", False) or (role and role.role in (MANAGER, CASHIER)))


@dataclass(frozen=True)
class Pickup:
    """What the counter needs to decide in one glance."""

    order: Order
    items: list[OrderItem]
    # The parts already handed over (not voided), oldest first; empty for a voucher not yet touched.
    collected: list[Redemption] = field(default_factory=list)

    @property
    def code(self) -> str:
        return self.order.pickup_code or ""

    @property
    def code_display(self) -> str:
        return voucher_code_display(self.code)

    @property
    def masked_phone(self) -> str:
        return phone_mask(self.order.member.phone)

    @property
    def pickup_store(self) -> Store:
        return self.order.pickup_store

    @property
    def paid_at(self) -> datetime | None:
        return self.order.paid_at

    @property
    def deadline(self) -> datetime | None:
        return self.order.pickup_deadline

    @property
    def status(self) -> str:
        return self.order.status

    @property
    def is_partly_collected(self) -> bool:
        return any(item.handed_over for item in self.items)

    @property
    def units_left(self) -> int:
        return sum(item.quantity - item.handed_over for item in self.items)


def _counted(items: list[OrderItem]) -> list[OrderItem]:
    """Lines with `left` (units still to hand over) for pages and the API."""
    for item in items:
        item.left = item.quantity - item.handed_over
    return items


def pickup_of(order: Order) -> Pickup:
    """The order with its (prefetched) lines, and its earlier parts if some were collected already:
    one more query, only then."""
    items = _counted(list(order.items.all()))
    collected = redemptions_standing(order_id=order.pk) if any(item.handed_over for item in items) else []
    return Pickup(order=order, items=items, collected=collected)


def _counter_orders() -> QuerySet[Order]:
    """Orders with what the counter shows: store, member, promotion, merchant, items with products."""
    return Order.objects.select_related("pickup_store", "member", "promotion", "merchant").prefetch_related(
        Prefetch("items", queryset=OrderItem.objects.select_related("product").order_by("id"))
    )


def order_for_counter(*, code: str, merchant_id: int | None, cashier_role_id: int | None = None,
                      store_id: int | None = None) -> Order | None:
    """The pickup order with this (clean) code, of this merchant (any merchant: None), with its items.

    Two queries whatever the order holds. With `cashier_role_id` the row also says whether that cashier
    serves `store_id` (`cashier_serves_store`): the check rides on the order's query instead of costing
    one of its own on every redeem.
    """
    if not voucher_code_is_wellformed(code):
        return None
    orders = _counter_orders().filter(pickup_code=code, fulfilment=Order.Fulfilment.PICKUP)
    if merchant_id is not None:
        orders = orders.filter(merchant_id=merchant_id)
    if cashier_role_id is not None:
        orders = orders.annotate(
            cashier_serves_store=Exists(
                StaffRole.stores.through.objects.filter(staffrole_id=cashier_role_id, store_id=store_id)
            )
        )
    return orders.first()


def redemption_standing(*, order_id: int) -> Redemption | None:
    """The order's latest redemption that was not voided (who handed it over, where, when)."""
    return (
        Redemption.objects.filter(order_id=order_id, voided_at__isnull=True)
        .select_related("cashier", "store")
        .order_by("-created_at", "-id")
        .first()
    )


def staff_name(user: Any) -> str:
    return user.get_full_name() or user.get_username()


def already_redeemed(*, order: Order, redemption: Redemption | None) -> AlreadyRedeemed:
    if redemption is None:  # picked up without a redemption row (data from before the counter existed)
        return AlreadyRedeemed(redeemed_at=order.closed_at, by="", store=order.pickup_store.name if
                               order.pickup_store else "")
    return AlreadyRedeemed(
        redeemed_at=redemption.created_at, by=staff_name(redemption.cashier), store=redemption.store.name,
        store_code=redemption.store.code,
    )


def pickup_refusal(*, order: Order, store: Store | None, now: datetime) -> PickupError | None:
    """Why this order cannot be handed over at `store` now (None: it can). Picked-up orders are the
    caller's to explain (AlreadyRedeemed needs the redemption)."""
    if order.status in _REFUSALS:
        return _REFUSALS[order.status]()
    if order.status == O.EXPIRED or (order.pickup_deadline is not None and order.pickup_deadline < now):
        # Past the deadline the sweep refunds it; until it runs, the counter must refuse it already.
        return Expired(deadline=order.pickup_deadline)
    if order.status not in AWAITING_PICKUP:
        return NotRedeemable()
    if store is not None and order.pickup_store_id != store.pk:
        return WrongStore(belongs_to=order.pickup_store.name, belongs_to_code=order.pickup_store.code)
    return None


def store_allowed_without_query(*, user: Any, store: Store) -> bool | None:
    """True/False when the user's role decides alone; None for a cashier (their stores must be read)."""
    if user.is_superuser:
        return True
    role = staff_role_of(user)
    if role is None or role.role not in (MANAGER, CASHIER) or role.merchant_id != store.merchant_id:
        return False
    return True if role.role == MANAGER else None


def order_for_cashier(*, code: str, cashier: Any, store: Store | None) -> Order:
    """The order behind `code` as `cashier` may see it at `store` (any of theirs: None), or
    StoreNotAllowed / UnknownCode. Another merchant's code is unknown, exactly like a made-up one."""
    role = staff_role_of(cashier)
    if store is None:
        if not may_verify_pickups(cashier):
            raise StoreNotAllowed()
        order = order_for_counter(code=code, merchant_id=None if cashier.is_superuser else role.merchant_id)
    else:
        allowed = store_allowed_without_query(user=cashier, store=store)
        if allowed is False:
            raise StoreNotAllowed()
        order = order_for_counter(
            code=code, merchant_id=store.merchant_id, cashier_role_id=role.pk if allowed is None else None,
            store_id=store.pk,
        )
        if allowed is None:
            # A cashier: their stores were read with the order; without an order, read them now.
            serves = order.cashier_serves_store if order is not None else role.stores.filter(pk=store.pk).exists()
            if not serves:
                raise StoreNotAllowed()
    if order is None:
        raise UnknownCode()
    return order


def pickup_lookup(*, code: str, cashier: Any, store: Store | None = None, now: datetime | None = None) -> Pickup:
    """What the counter needs (order, items with what is left of each, masked phone, paid time, pickup
    store, deadline, status, parts collected already) for a voucher `cashier` may verify, at `store` if
    given; or the PickupError that says why not.

    `code` may be typed or scanned in any form `voucher_code_parse` reads. Three queries at most on the
    way to an answer that the goods may be handed over, whatever the order holds (one more when parts
    were collected already: which, when and where).
    """
    now = now or timezone.now()
    order = order_for_cashier(code=voucher_code_parse(code), cashier=cashier, store=store)
    if order.status == O.PICKED_UP:
        raise already_redeemed(order=order, redemption=redemption_standing(order_id=order.pk))
    refusal = pickup_refusal(order=order, store=store, now=now)
    if refusal is not None:
        raise refusal
    return pickup_of(order)


def pickup_for_redemption(*, redemption: Redemption) -> Pickup:
    """The order a redemption handed over, as the counter shows it afterwards."""
    return pickup_of(_counter_orders().get(pk=redemption.order_id))


def redemption_for_staff(*, pk: int, user: Any) -> Redemption | None:
    """A redemption of a store where `user` verifies pickups (what the cashier page shows after a hand-over)."""
    return (
        Redemption.objects.filter(pk=pk, store__in=pickup_stores_for(user))
        .select_related("cashier", "store", "merchant")
        .first()
    )


@dataclass(frozen=True)
class HeldOrder:
    """An order read under its row lock for a hand-over, with its lines (their handed_over as of the read)."""

    order: Order
    items: list[OrderItem]
    # This (cashier, idempotency key)'s redemption of the order, if this is a retry.
    earlier_redemption_id: int | None


def order_for_handover(*, code: str, cashier: Any, store: Store, idempotency_key: str = "") -> HeldOrder:
    """The order behind `code` with its lines, its row locked for the rest of the caller's transaction,
    as `cashier` may see it at `store`; or StoreNotAllowed / UnknownCode.

    One query: the lines joined to their order (and its store, member, promotion, merchant), FOR UPDATE
    OF the order's row only. Lines are never added to an order, so "the order has no lines" cannot hide
    a real voucher. What the read returns may predate the lock (see pickup_redeem): the caller checks.
    """
    allowed = store_allowed_without_query(user=cashier, store=store)
    if allowed is False:
        raise StoreNotAllowed()
    role = staff_role_of(cashier)
    lines = (
        OrderItem.objects.select_related(
            "product", "order__pickup_store", "order__member", "order__promotion", "order__merchant"
        )
        .select_for_update(of=("order",))
        .filter(
            order__pickup_code=code, order__fulfilment=Order.Fulfilment.PICKUP, order__merchant_id=store.merchant_id
        )
        .order_by("id")
    )
    if allowed is None:  # a cashier: whether they serve this store rides on the same query
        lines = lines.annotate(
            cashier_serves_store=Exists(
                StaffRole.stores.through.objects.filter(staffrole_id=role.pk, store_id=store.pk)
            )
        )
    if idempotency_key:
        lines = lines.annotate(
            earlier_redemption_id=Subquery(
                Redemption.objects.filter(
                    order_id=OuterRef("order_id"), cashier_id=cashier.pk, idempotency_key=idempotency_key[:64],
                    voided_at__isnull=True,
                ).values("pk")[:1]
            )
        )
    items = list(lines) if voucher_code_is_wellformed(code) else []
    if allowed is None:
        serves = items[0].cashier_serves_store if items else role.stores.filter(pk=store.pk).exists()
        if not serves:
            raise StoreNotAllowed()
    if not items:
        raise UnknownCode()
    order = items[0].order
    for item in items:
        item.order = order  # one Order object for all lines, as a prefetch would give
    return HeldOrder(order=order, items=items, earlier_redemption_id=getattr(items[0], "earlier_redemption_id", None))


def handover_quantities(*, items: list[OrderItem], lines: list[dict] | None) -> dict[int, int]:
    """{item id: units to hand over now}: everything left when `lines` is None, else what `lines` asks
    for, each checked against what is left of its line (UnknownLine, TooManyUnits, NothingToHandOver
    name the line and change nothing)."""
    if lines is None:
        wanted = {item.pk: item.quantity - item.handed_over for item in items}
    else:
        by_pk = {item.pk: item for item in items}
        wanted = {}
        for line in lines:
            item = by_pk.get(line.get("item"))
            if item is None:
                raise UnknownLine(item=line.get("item"))
            asked = line.get("quantity")
            if not isinstance(asked, int) or isinstance(asked, bool) or asked < 0 or item.pk in wanted:
                raise UnknownLine(item=item.pk, name=item.product.name, reason="quantity")
            left = item.quantity - item.handed_over
            if asked > left:
                raise TooManyUnits(item=item.pk, name=item.product.name, asked=asked, left=left)
            wanted[item.pk] = asked
    wanted = {pk: units for pk, units in wanted.items() if units > 0}
    if not wanted:
        raise NothingToHandOver()
    return wanted


def redemption_lines_of(items: list[OrderItem], wanted: dict[int, int]) -> list[dict]:
    """What one hand-over gave: the lines with units in `wanted`, in the order's line order."""
    return [
        {"item": item.pk, "product": item.product_id, "name": item.product.name, "quantity": wanted[item.pk]}
        for item in items
        if wanted.get(item.pk)
    ]


def redemptions_standing(*, order_id: int) -> list[Redemption]:
    """The order's hand-overs that were not voided, oldest first (what was collected, when, where)."""
    return list(
        Redemption.objects.filter(order_id=order_id, voided_at__isnull=True)
        .select_related("cashier", "store")
        .order_by("created_at", "id")
    )
