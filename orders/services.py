"""Writes for promotions and orders: each function is one promise, with its side effects.

Concurrency: stock is reserved by one conditional UPDATE (sold_count + n <= stock_cap), so
no two buyers can take the last unit; the per-member limit is checked with the member's row
locked, so one customer's parallel orders are counted one after the other. Locks are taken
in a fixed order: member, then promotion.
"""

import uuid
from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo

from django.contrib.auth.models import AbstractBaseUser
from django.db import IntegrityError, transaction
from django.db.models import F, Sum
from django.utils import timezone
from django.utils.translation import gettext as _

from members.models import Member
from members.phones import phone_normalize
from members.services import member_for_phone
from merchants.models import Merchant, Store

from .codes import VOUCHER_CODE_LENGTH, WALL_CODE_LENGTH, order_token, random_code
from .errors import (
    FulfilmentNotAllowed,
    OrderError,
    OrderNotPayable,
    OverMemberLimit,
    PromotionNotOnSale,
    PromotionNotReady,
    SoldOut,
)
from .lifecycle import HOLDS_STOCK, PROMOTION_TRANSITIONS, REFUNDABLE, order_totals
from .models import Order, OrderEvent, OrderItem, Promotion

P, O = Promotion.Status, Order.Status  # noqa: E741 - the status tables read best as P.LIVE, O.PAID
Channel = OrderEvent.Channel


# --------------------------------------------------------------------------- promotions


def promotion_wall_code_assign(*, promotion: Promotion) -> None:
    """Give a new promotion its unique wall code (~49 random bits; a clash is retried)."""
    while not promotion.wall_code:
        candidate = random_code(WALL_CODE_LENGTH)
        if not Promotion.objects.filter(wall_code=candidate).exists():
            promotion.wall_code = candidate


def promotion_readiness_problems(*, promotion: Promotion, now: datetime) -> list[str]:
    """What stops a saved promotion from going on the wall, in words a manager acts on."""
    problems = []
    if not promotion.items.exists():
        problems.append(_("Add at least one product."))
    if not (promotion.allow_pickup or promotion.allow_express):
        problems.append(_("Allow pickup, express delivery, or both."))
    if promotion.allow_pickup and not promotion.pickup_stores.filter(is_active=True).exists():
        problems.append(_("Pickup is allowed but no active pickup store is chosen."))
    if promotion.ends_at <= now:
        problems.append(_("The end time has already passed."))
    return problems


def promotion_publish(*, promotion: Promotion, now: datetime | None = None) -> Promotion:
    """Put a draft on the wall: scheduled until it starts, live from then on."""
    now = now or timezone.now()
    problems = promotion_readiness_problems(promotion=promotion, now=now)
    if problems:
        raise PromotionNotReady(" ".join(problems))
    target = P.LIVE if promotion.starts_at <= now else P.SCHEDULED
    assert target in PROMOTION_TRANSITIONS[P.DRAFT]
    updated = Promotion.objects.filter(pk=promotion.pk, status=P.DRAFT).update(status=target, published_at=now)
    if not updated:
        raise PromotionNotReady(_("Only drafts can be published."))
    promotion.refresh_from_db()
    return promotion


def promotion_end(*, promotion: Promotion, now: datetime | None = None) -> Promotion:
    """Take a promotion off sale now. Orders already placed stay as they are."""
    now = now or timezone.now()
    ending = [s for s, targets in PROMOTION_TRANSITIONS.items() if P.ENDED in targets]
    updated = Promotion.objects.filter(pk=promotion.pk, status__in=ending).update(status=P.ENDED, ended_at=now)
    if not updated:
        raise PromotionNotReady(_("Only published promotions can be ended."))
    promotion.refresh_from_db()
    return promotion


def promotions_advance(*, now: datetime | None = None) -> dict[str, int]:
    """Store what time and stock say each published promotion is. Set-based; any run heals the last."""
    now = now or timezone.now()
    return {
        "ended": Promotion.objects.filter(status__in=[P.SCHEDULED, P.LIVE, P.SOLD_OUT], ends_at__lte=now).update(
            status=P.ENDED, ended_at=now
        ),
        "started": Promotion.objects.filter(status=P.SCHEDULED, starts_at__lte=now, ends_at__gt=now).update(
            status=P.LIVE
        ),
        "sold_out": Promotion.objects.filter(status=P.LIVE, sold_count__gte=F("stock_cap")).update(status=P.SOLD_OUT),
        "back_on_sale": Promotion.objects.filter(
            status=P.SOLD_OUT, sold_count__lt=F("stock_cap"), ends_at__gt=now
        ).update(status=P.LIVE),
    }


# --------------------------------------------------------------------------- orders


def order_place(
    *,
    promotion: Promotion,
    quantity: int,
    phone: str,
    fulfilment: str,
    submit_key: str,
    pickup_store: Store | None = None,
    recipient_name: str = "",
    recipient_phone: str = "",
    shipping_address: str = "",
    scan_key: uuid.UUID | None = None,
    now: datetime | None = None,
) -> Order:
    """Place an order pending payment with its stock reserved, or raise an OrderError saying why not.

    All money is computed here from the promotion; nothing the client sends is trusted. The same
    `submit_key` (one per rendered form) returns the first order: a double submit buys once.
    """
    now = now or timezone.now()
    existing = Order.objects.filter(promotion=promotion, submit_key=submit_key).first()
    if existing:
        return existing
    if quantity < 1:
        raise OverMemberLimit(_("Choose at least one."))
    if quantity > promotion.per_member_limit:
        raise OverMemberLimit(
            _("At most %(limit)d per customer.") % {"limit": promotion.per_member_limit},
            limit=promotion.per_member_limit,
        )
    delivery = _fulfilment_check(
        promotion=promotion, fulfilment=fulfilment, pickup_store=pickup_store, recipient_name=recipient_name,
        # No recipient phone: the courier calls the buyer, as the form promises ("leave empty to use your
        # mobile phone"); normalising "" would refuse the order with a message quoting an empty string.
        recipient_phone=recipient_phone or phone, shipping_address=shipping_address,
    )
    try:
        with transaction.atomic():
            # Inside the transaction: an order refused below (sold out, over the limit, not on sale)
            # must not leave a new member behind for a customer who never bought anything.
            member = member_for_phone(merchant=promotion.merchant, phone=phone)
            return _order_create(
                promotion=promotion, member=member, quantity=quantity, fulfilment=fulfilment,
                submit_key=submit_key, scan_key=scan_key, now=now, **delivery,
            )
    except (IntegrityError, OrderError):
        # The same form submitted twice at once: the first one won, and the others, serialised behind
        # it on the member or promotion row, see its insert, or the limit or the last unit it just took.
        # Show the customer that order, not a refusal.
        existing = Order.objects.filter(promotion=promotion, submit_key=submit_key).first()
        if existing:
            return existing
        raise


def _fulfilment_check(
    *, promotion: Promotion, fulfilment: str, pickup_store: Store | None,
    recipient_name: str, recipient_phone: str, shipping_address: str,
) -> dict:
    if fulfilment == Order.Fulfilment.PICKUP:
        if not promotion.allow_pickup:
            raise FulfilmentNotAllowed(_("This offer is delivered only; pickup is not possible."))
        allowed = (
            pickup_store is not None
            and promotion.pickup_stores.filter(pk=pickup_store.pk, is_active=True).exists()
        )
        if not allowed:
            raise FulfilmentNotAllowed(
                _("Choose one of the pickup stores listed for this offer."), field="pickup_store"
            )
        return {"pickup_store": pickup_store}
    if fulfilment == Order.Fulfilment.EXPRESS:
        if not promotion.allow_express:
            raise FulfilmentNotAllowed(_("This offer is for pickup in store only."))
        if not (recipient_name.strip() and shipping_address.strip()):
            raise FulfilmentNotAllowed(
                _("Enter the recipient's name and the delivery address."), field="shipping_address"
            )
        return {
            "recipient_name": recipient_name.strip(),
            "recipient_phone": phone_normalize(recipient_phone),
            "shipping_address": shipping_address.strip(),
        }
    raise FulfilmentNotAllowed(_("Choose pickup or delivery."), field="fulfilment")


def _order_create(
    *, promotion: Promotion, member: Member, quantity: int, fulfilment: str, submit_key: str,
    scan_key: uuid.UUID | None, now: datetime, **delivery,
) -> Order:
    # Lock order: member first, then the promotion row (through the UPDATE below).
    Member.objects.select_for_update().filter(pk=member.pk).first()
    held = (
        Order.objects.filter(member=member, promotion=promotion, status__in=HOLDS_STOCK).aggregate(n=Sum("quantity"))[
            "n"
        ]
        or 0
    )
    if held + quantity > promotion.per_member_limit:
        left = max(promotion.per_member_limit - held, 0)
        raise OverMemberLimit(
            _("You already have %(held)d of this offer; at most %(limit)d per customer (%(left)d more).")
            % {"held": held, "limit": promotion.per_member_limit, "left": left},
            limit=promotion.per_member_limit,
        )
    # SOLD_OUT too: stock released by cancelled orders is on sale at once (effective_status says LIVE and
    # the page shows the form) even before the sweep stores LIVE again; sold_count alone decides.
    reserved = Promotion.objects.filter(
        pk=promotion.pk, status__in=[P.SCHEDULED, P.LIVE, P.SOLD_OUT], starts_at__lte=now, ends_at__gt=now,
        sold_count__lte=F("stock_cap") - quantity,
    ).update(sold_count=F("sold_count") + quantity)
    if not reserved:
        promotion.refresh_from_db()
        if promotion.effective_status(now) in (P.LIVE, P.SOLD_OUT):
            raise SoldOut(
                _("Only %(left)d left.") % {"left": promotion.stock_left} if promotion.stock_left else None,
                stock_left=promotion.stock_left,
            )
        raise PromotionNotOnSale()
    # The last unit sold: say so on the admin's list right away (the sweep would, later).
    Promotion.objects.filter(pk=promotion.pk, status=P.LIVE, sold_count__gte=F("stock_cap")).update(status=P.SOLD_OUT)

    currency = promotion.merchant.currency
    totals = order_totals(
        unit_price=promotion.promo_price, quantity=quantity,
        shipping_fee=promotion.shipping_fee if fulfilment == Order.Fulfilment.EXPRESS else 0, currency=currency,
    )
    order = Order.objects.create(
        merchant_id=promotion.merchant_id, promotion=promotion, member=member, scan_key=scan_key,
        token=order_token(), submit_key=submit_key, quantity=quantity, unit_price=promotion.promo_price,
        currency=currency, fulfilment=fulfilment, **totals, **delivery,
    )
    OrderItem.objects.bulk_create(
        OrderItem(merchant_id=promotion.merchant_id, order=order, product_id=item.product_id,
                  quantity=item.quantity * quantity)
        for item in promotion.items.all()
    )
    OrderEvent.objects.create(
        merchant_id=order.merchant_id, order=order, to_status=O.PENDING_PAYMENT, channel=Channel.WEB
    )
    return order


def pickup_deadline_for(*, paid_at: datetime, days: int, merchant: Merchant) -> datetime:
    """The end of the merchant's local day, `days` days after payment."""
    local = paid_at.astimezone(ZoneInfo(merchant.timezone))
    last_day = (local + timedelta(days=days)).date()
    return datetime.combine(last_day, time(23, 59, 59), tzinfo=local.tzinfo)


def order_mark_paid(
    *, order: Order, channel: str = Channel.WEB, actor: AbstractBaseUser | None = None, now: datetime | None = None
) -> Order:
    """Pending payment -> paid, exactly once. A paid pickup order gets its voucher code and deadline."""
    now = now or timezone.now()
    with transaction.atomic():
        fields: dict = {"status": O.PAID, "paid_at": now}
        if order.fulfilment == Order.Fulfilment.PICKUP:
            fields["pickup_deadline"] = pickup_deadline_for(
                paid_at=now, days=order.promotion.pickup_days, merchant=order.merchant
            )
            fields["pickup_code"] = _unused_voucher_code()
        updated = Order.objects.filter(pk=order.pk, status=O.PENDING_PAYMENT).update(**fields)
        if not updated:
            order.refresh_from_db()
            if order.status == O.PAID or order.paid_at:
                return order  # paid already: a second "paid" changes nothing
            raise OrderNotPayable()
        OrderEvent.objects.create(
            merchant_id=order.merchant_id, order=order, from_status=O.PENDING_PAYMENT, to_status=O.PAID,
            actor=actor, channel=channel,
        )
    order.refresh_from_db()
    return order


def order_mark_refunded(
    *, order: Order, channel: str = Channel.ADMIN, actor: AbstractBaseUser | None = None, note: str = "",
    now: datetime | None = None,
) -> bool:
    """Paid (or later) -> refunded, once all its money is back with the customer; whether it moved.

    Expired and cancelled orders keep their status (the refund is recorded with the payment). A
    refunded order's voucher is no longer shown or valid.
    """
    now = now or timezone.now()
    with transaction.atomic():
        current = Order.objects.select_for_update().filter(pk=order.pk).values_list("status", flat=True).first()
        if current not in REFUNDABLE:
            return False
        Order.objects.filter(pk=order.pk, status=current).update(status=O.REFUNDED, closed_at=now)
        OrderEvent.objects.create(
            merchant_id=order.merchant_id, order=order, from_status=current, to_status=O.REFUNDED, actor=actor,
            channel=channel, note=note,
        )
    order.refresh_from_db()
    return True


def _unused_voucher_code() -> str:
    while True:
        code = random_code(VOUCHER_CODE_LENGTH)
        if not Order.objects.filter(pickup_code=code).exists():
            return code


def orders_cancel_unpaid(*, now: datetime | None = None, batch_size: int = 1000) -> int:
    """Cancel orders left unpaid past their merchant's limit and put their stock back on sale.

    Set-based in batches; rows another worker holds are skipped and picked up by the next run.
    """
    now = now or timezone.now()
    cancelled = 0
    limits = Merchant.objects.filter(orders__status=O.PENDING_PAYMENT).values_list("unpaid_order_minutes", flat=True)
    for minutes in sorted(set(limits)):
        due = Order.objects.filter(
            status=O.PENDING_PAYMENT, merchant__unpaid_order_minutes=minutes,
            created_at__lt=now - timedelta(minutes=minutes),
        )
        while True:
            with transaction.atomic():
                rows = list(
                    due.select_for_update(skip_locked=True, of=("self",)).values_list(
                        "pk", "merchant_id", "promotion_id", "quantity"
                    )[:batch_size]
                )
                if not rows:
                    break
                ids = [pk for pk, *_ in rows]
                Order.objects.filter(pk__in=ids, status=O.PENDING_PAYMENT).update(status=O.CANCELLED, closed_at=now)
                released: dict[int, int] = {}
                for _pk, _merchant, promotion_id, quantity in rows:
                    released[promotion_id] = released.get(promotion_id, 0) + quantity
                for promotion_id in sorted(released):  # a fixed order: two sweeps never deadlock
                    Promotion.objects.filter(pk=promotion_id).update(
                        sold_count=F("sold_count") - released[promotion_id]
                    )
                OrderEvent.objects.bulk_create(
                    OrderEvent(
                        merchant_id=merchant_id, order_id=pk, from_status=O.PENDING_PAYMENT, to_status=O.CANCELLED,
                        channel=Channel.WORKER, note="unpaid too long",
                    )
                    for pk, merchant_id, _promotion, _quantity in rows
                )
                cancelled += len(rows)
    if cancelled:
        promotions_advance(now=now)
    return cancelled
