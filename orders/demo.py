"""Demo promotions, scans, members and orders in every state, for `seed_demo`.

Idempotent: a promotion is found by (merchant, title) and only a new one gets scans and
orders; orders go through `order_place` with fixed submit keys, which returns the existing
order when it is asked again.
"""

from datetime import timedelta
from decimal import Decimal

from django.db import transaction
from django.utils import timezone

from merchants.models import Merchant, Product, Store

from .models import Order, OrderEvent, Promotion, PromotionItem, Scan
from .services import order_place, orders_cancel_unpaid, promotion_wall_code_assign

OS = Order.Status
PHONES = ["13800138001", "13800138002", "13911112222", "13687654321", "15012345678", "18600001111", "17722223333"]


def _promotion(
    merchant: Merchant, title: str, items: list[tuple[str, int]], stores: list[Store], **fields
) -> tuple[Promotion, bool]:
    existing = Promotion.objects.filter(merchant=merchant, title=title).first()
    if existing:
        return existing, False
    promotion = Promotion(merchant=merchant, title=title, **fields)
    promotion_wall_code_assign(promotion=promotion)
    promotion.save()
    for sku, quantity in items:
        PromotionItem.objects.create(
            merchant=merchant,
            promotion=promotion,
            product=Product.objects.get(merchant=merchant, sku=sku),
            quantity=quantity,
        )
    if promotion.allow_pickup:
        promotion.pickup_stores.set(stores)
    return promotion, True


def _scans(promotion: Promotion, stores: list[Store], per_store: int) -> None:
    Scan.objects.bulk_create(
        Scan(merchant_id=promotion.merchant_id, promotion=promotion, store=store)
        for store in stores
        for _ in range(per_store)
    )


def _order(
    promotion: Promotion,
    key: str,
    phone: str,
    *,
    store: Store | None = None,
    quantity: int = 1,
    paid: bool = True,
    then: str | None = None,
) -> Order:
    delivery = (
        {"fulfilment": Order.Fulfilment.PICKUP, "pickup_store": store}
        if store
        else {
            "fulfilment": Order.Fulfilment.EXPRESS,
            "recipient_name": "张三",
            "recipient_phone": phone,
            "shipping_address": "上海市静安区南京西路 1266 号 10 楼",
        }
    )
    order = order_place(promotion=promotion, quantity=quantity, phone=phone, submit_key=f"demo-{key}", **delivery)
    if paid and order.status == OS.PENDING_PAYMENT:
        order = _pay(order)
    if then and order.status == OS.PAID:
        _move(order, then)
    return order


def _move(order: Order, to: str) -> None:
    """Take a paid demo order where staff and cashiers would: through the same services, as the demo manager."""
    from django.contrib.auth.models import User

    from .fulfilment import order_deliver, order_ship, pickups_expire_overdue
    from .pickups.models import Redemption
    from .pickups.ready import order_mark_ready
    from .pickups.services import pickup_redeem

    manager = User.objects.get(username="manager")
    channel = OrderEvent.Channel.ADMIN
    if to == OS.READY_FOR_PICKUP:
        order_mark_ready(order=order, actor=manager, channel=channel)
    elif to == OS.PICKED_UP:
        pickup_redeem(
            code=order.pickup_code, cashier=manager, store=order.pickup_store, channel=Redemption.Channel.WEB,
            client="demo data",
        )
    elif to in (OS.SHIPPED, OS.DELIVERED):
        order_ship(order=order, carrier="SF", tracking_number=f"SF{order.pk:013d}", actor=manager, channel=channel)
        if to == OS.DELIVERED:
            order_deliver(order=order, actor=manager, channel=channel)
    elif to == OS.EXPIRED:
        # Not collected in time: the overdue sweep expires it and gives the money back.
        Order.objects.filter(pk=order.pk).update(pickup_deadline=timezone.now() - timedelta(minutes=1))
        pickups_expire_overdue()
    else:
        raise ValueError(f"no demo path to {to}")


def _pay(order: Order) -> Order:
    """Pay as a customer would in the sandbox, and let the shop learn it by asking the provider
    (no HTTP notification during seeding): a real Payment, sandbox trade and statement line."""
    from .payments.models import Payment, SandboxTrade
    from .payments.providers.sandbox import sandbox_trade_pay
    from .payments.services import payment_query, payment_start

    payment_start(order=order)
    payment = Payment.objects.filter(order=order).latest("id")
    sandbox_trade_pay(trade=SandboxTrade.objects.get(out_trade_no=payment.out_trade_no), deliveries=0)
    payment_query(payment=payment, channel=OrderEvent.Channel.WORKER)
    order.refresh_from_db()
    return order


def _refunded(order: Order) -> Order:
    """Refund a paid demo order in full as the admin's refund action does: through the sandbox provider, so
    the Refund, the sandbox's ledger (and its statement), the payment's refunded total, the order's state
    and the member's points all agree."""
    from .payments.services import refund_create

    if order.status == OS.PAID:
        refund_create(order=order, reason="demo data: the customer changed their mind", requested_by=None)
        order.refresh_from_db()
    return order


@transaction.atomic
def demo_orders_seed() -> None:
    now = timezone.now()
    demo = Merchant.objects.get(slug="demo")
    stores = list(Store.objects.filter(merchant=demo).order_by("id"))
    week = {"starts_at": now - timedelta(days=1), "ends_at": now + timedelta(days=14)}

    tea, new = _promotion(
        demo,
        "明前龙井 限时特惠 Longjing tea offer",
        [("TEA-LJ-250", 1)],
        stores,
        promo_price=Decimal("168.00"),
        original_price=Decimal("268.00"),
        stock_cap=200,
        per_member_limit=2,
        description="今年明前头采，限时 6.3 折。This year's first spring picking.",
        status=Promotion.Status.LIVE,
        **week,
    )
    if new:
        _scans(tea, stores, 12)
        _order(tea, "tea-pending", PHONES[0], store=stores[0], paid=False)
        _order(tea, "tea-paid", PHONES[1], store=stores[0], quantity=2)
        _order(tea, "tea-ready", PHONES[2], store=stores[1], then=OS.READY_FOR_PICKUP)
        _order(tea, "tea-picked", PHONES[3], store=stores[0], then=OS.PICKED_UP)
        _refunded(_order(tea, "tea-refunded", PHONES[4], store=stores[2]))
        _order(tea, "tea-expired", PHONES[5], store=stores[1], then=OS.EXPIRED)
        # Left unpaid an hour ago: the real sweep cancels it and puts its stock back.
        abandoned = _order(tea, "tea-abandoned", PHONES[6], store=stores[2], paid=False)
        Order.objects.filter(pk=abandoned.pk).update(created_at=now - timedelta(hours=1))
        orders_cancel_unpaid(now=now)

    gift, new = _promotion(
        demo,
        "中秋礼盒：月饼 + 保温杯 Mooncake gift set",
        [("MOON-6", 1), ("TUMBLER", 1)],
        stores[:2],
        promo_price=Decimal("299.00"),
        original_price=Decimal("347.00"),
        stock_cap=80,
        per_member_limit=3,
        allow_express=True,
        shipping_fee=Decimal("12.00"),
        status=Promotion.Status.LIVE,
        **week,
    )
    if new:
        _scans(gift, stores[:2], 8)
        _order(gift, "gift-paid", PHONES[0], store=stores[1])
        _order(gift, "gift-shipped", PHONES[6], then=OS.SHIPPED)
        _order(gift, "gift-delivered", PHONES[2], then=OS.DELIVERED)

    scarf, new = _promotion(
        demo,
        "真丝围巾 包邮到家 Silk scarf, delivered",
        [("SILK-SCARF", 1)],
        [],
        promo_price=Decimal("399.00"),
        original_price=Decimal("459.00"),
        stock_cap=50,
        per_member_limit=1,
        allow_pickup=False,
        allow_express=True,
        status=Promotion.Status.LIVE,
        **week,
    )
    if new:
        _scans(scarf, stores, 3)
        _order(scarf, "scarf-paid", PHONES[3])

    umbrella, new = _promotion(
        demo,
        "自动伞 秒杀 Umbrella flash sale",
        [("UMB-AUTO", 1)],
        stores,
        promo_price=Decimal("39.90"),
        original_price=Decimal("89.90"),
        stock_cap=3,
        per_member_limit=1,
        status=Promotion.Status.LIVE,
        **week,
    )
    if new:
        _scans(umbrella, stores, 5)
        for n in range(3):
            _order(umbrella, f"umbrella-{n}", PHONES[n + 1], store=stores[n])

    _promotion(
        demo,
        "云南咖啡豆 预售 Coffee beans pre-sale",
        [("COF-BEANS", 1)],
        stores,
        promo_price=Decimal("98.00"),
        original_price=Decimal("128.00"),
        stock_cap=100,
        per_member_limit=2,
        starts_at=now + timedelta(days=3),
        ends_at=now + timedelta(days=10),
        status=Promotion.Status.SCHEDULED,
    )
    past, new = _promotion(
        demo,
        "国庆保温杯特价 Tumbler holiday deal",
        [("TUMBLER", 1)],
        stores,
        promo_price=Decimal("99.00"),
        original_price=Decimal("149.00"),
        stock_cap=100,
        per_member_limit=2,
        status=Promotion.Status.LIVE,
        **week,
    )
    if new:
        _scans(past, stores, 4)
        _order(past, "tumbler-picked", PHONES[4], store=stores[0], then=OS.PICKED_UP)
        Promotion.objects.filter(pk=past.pk).update(
            status=Promotion.Status.ENDED,
            starts_at=now - timedelta(days=40),
            ends_at=now - timedelta(days=30),
            ended_at=now - timedelta(days=30),
        )
    _promotion(
        demo,
        "新品试吃（草稿） New snack tasting (draft)",
        [("MOON-6", 1)],
        stores[:1],
        promo_price=Decimal("9.90"),
        original_price=Decimal("19.90"),
        stock_cap=30,
        **week,
    )

    rival = Merchant.objects.get(slug="rival")
    rival_stores = list(Store.objects.filter(merchant=rival))
    rival_tea, new = _promotion(
        rival,
        "Rival tea sale",
        [("RIVAL-TEA", 1)],
        rival_stores,
        promo_price=Decimal("79.00"),
        original_price=Decimal("99.00"),
        stock_cap=20,
        per_member_limit=2,
        status=Promotion.Status.LIVE,
        **week,
    )
    if new:
        _scans(rival_tea, rival_stores, 2)
        _order(rival_tea, "rival-paid", PHONES[0], store=rival_stores[0])
