"""Express orders: shipped once with a carrier and tracking number, delivered once (which completes the
order), and the customer's order page shows the parcel."""

from datetime import UTC, datetime

import pytest
from django.test import Client
from django.urls import reverse

from orders.fulfilment import AlreadyShipped, NotDeliverable, NotShippable, ShipmentInvalid, order_deliver, order_ship
from orders.lifecycle import ORDER_TRANSITIONS
from orders.models import Order, OrderEvent
from orders.pickups import signals
from tests.orders.fulfilment_world import fulfilment_shop

O = Order.Status  # noqa: E741
ADMIN = OrderEvent.Channel.ADMIN


@pytest.fixture
def lotus(db):
    return fulfilment_shop("lotus")


@pytest.fixture
def completions():
    seen = []

    def receiver(sender, order, channel, actor, at, **kwargs):
        seen.append((order.pk, order.status, channel, actor, at))

    signals.order_completed.connect(receiver, weak=False)
    yield seen
    signals.order_completed.disconnect(receiver)


def events(order):
    return list(OrderEvent.objects.filter(order=order).values_list("from_status", "to_status", "actor", "note"))


def test_a_paid_express_order_is_shipped_with_the_carrier_and_a_tidied_tracking_number(lotus):
    order = lotus.order()
    when = datetime(2026, 11, 25, 6, 30, tzinfo=UTC)

    order_ship(order=order, carrier="顺丰", tracking_number="  sf１２３４５６７８９０１２ ", actor=lotus.manager,
               channel=ADMIN, now=when)

    order.refresh_from_db()
    assert (order.status, order.carrier, order.tracking_number, order.shipped_at) == (
        O.SHIPPED, "SF", "SF123456789012", when,
    )
    assert events(order)[-1] == (O.PAID, O.SHIPPED, lotus.manager.pk, "SF SF123456789012")


def test_shipping_twice_with_the_same_parcel_changes_nothing_and_another_parcel_is_refused(lotus):
    order = lotus.order()
    order_ship(order=order, carrier="SF", tracking_number="SF123456789012", actor=lotus.manager, channel=ADMIN)
    before = events(order)

    again = order_ship(order=order, carrier="sf", tracking_number="sf123456789012", actor=lotus.manager,
                       channel=ADMIN)
    with pytest.raises(AlreadyShipped) as refused:
        order_ship(order=order, carrier="ZTO", tracking_number="773012345678901", actor=lotus.manager,
                   channel=ADMIN)

    assert again.status == O.SHIPPED and events(order) == before
    assert "already shipped with SF Express SF123456789012" in refused.value.message
    order.refresh_from_db()
    assert (order.carrier, order.tracking_number) == ("SF", "SF123456789012")


@pytest.mark.parametrize("how", ["pickup", "unpaid", "refunded", "delivered-with-another"])
def test_only_paid_express_orders_can_be_shipped(lotus, how):
    if how == "pickup":
        order = lotus.order(fulfilment="pickup")
    elif how == "unpaid":
        order = lotus.order(pay=False)
    else:
        order = lotus.order()
        if how == "refunded":
            Order.objects.filter(pk=order.pk).update(status=O.REFUNDED)
        else:
            order_ship(order=order, carrier="JD", tracking_number="JDVA01234567890", actor=None, channel=ADMIN)
            order_deliver(order=order, actor=None, channel=ADMIN)
    before = (Order.objects.filter(pk=order.pk).values().get(), events(order))

    with pytest.raises((NotShippable, AlreadyShipped)) as refused:
        order_ship(order=order, carrier="SF", tracking_number="SF123456789012", actor=lotus.manager, channel=ADMIN)

    assert f"#{order.pk}" in refused.value.message
    assert (Order.objects.filter(pk=order.pk).values().get(), events(order)) == before


@pytest.mark.parametrize(
    ("carrier", "number", "field", "says"),
    [
        ("DHL", "SF123456789012", "carrier", "Unknown carrier “DHL”"),
        ("", "SF123456789012", "carrier", "Enter the carrier"),
        ("SF", "", "tracking_number", "Enter the tracking number"),
        ("SF", "SF 1234 5678", "tracking_number", "only letters, digits"),
        ("SF", "12345", "tracking_number", "6 to 32 characters"),
        ("SF", "X" * 33, "tracking_number", "6 to 32 characters"),
        ("SF", "ABCDEFGHIJ", "tracking_number", "has digits"),
        ("SF", "-1234567890", "tracking_number", "inner hyphens"),
        ("SF", "1381234<script>", "tracking_number", "only letters"),
    ],
)
def test_a_bad_carrier_or_tracking_number_is_refused_naming_the_field(lotus, carrier, number, field, says):
    order = lotus.order()

    with pytest.raises(ShipmentInvalid) as refused:
        order_ship(order=order, carrier=carrier, tracking_number=number, actor=lotus.manager, channel=ADMIN)

    assert refused.value.field == field and says in refused.value.message
    order.refresh_from_db()
    assert order.status == O.PAID and order.tracking_number == ""


def test_delivery_completes_the_order_once_through_the_completion_hook(lotus, completions):
    order = lotus.order()
    order_ship(order=order, carrier="EMS", tracking_number="EA123456789CN", actor=lotus.manager, channel=ADMIN)
    when = datetime(2026, 11, 27, 2, 0, tzinfo=UTC)

    order_deliver(order=order, actor=lotus.manager, channel=ADMIN, now=when)
    order_deliver(order=order, actor=lotus.manager, channel=ADMIN)  # a second click

    order.refresh_from_db()
    assert (order.status, order.delivered_at, order.closed_at) == (O.DELIVERED, when, when)
    assert completions == [(order.pk, O.DELIVERED, ADMIN, lotus.manager, when)]
    assert [(a, b) for a, b, *_ in events(order)][-2:] == [(O.PAID, O.SHIPPED), (O.SHIPPED, O.DELIVERED)]


def test_a_failing_completion_receiver_leaves_the_order_shipped(lotus):
    order = lotus.order()
    order_ship(order=order, carrier="EMS", tracking_number="EA123456789CN", actor=None, channel=ADMIN)

    def broken(**kwargs):
        raise RuntimeError("points ledger down")

    signals.order_completed.connect(broken, weak=False)
    try:
        with pytest.raises(RuntimeError):
            order_deliver(order=order, actor=None, channel=ADMIN)
    finally:
        signals.order_completed.disconnect(broken)

    order.refresh_from_db()
    assert order.status == O.SHIPPED and order.delivered_at is None
    assert not OrderEvent.objects.filter(order=order, to_status=O.DELIVERED).exists()


def test_an_order_not_shipped_cannot_be_delivered(lotus, completions):
    order = lotus.order()

    with pytest.raises(NotDeliverable) as refused:
        order_deliver(order=order, actor=lotus.manager, channel=ADMIN)

    assert "is paid; only shipped orders" in refused.value.message
    assert Order.objects.get(pk=order.pk).status == O.PAID and completions == []


def test_every_move_the_services_make_is_an_allowed_transition(lotus):
    order = lotus.order()
    order_ship(order=order, carrier="YTO", tracking_number="YT1234567890123", actor=None, channel=ADMIN)
    order_deliver(order=order, actor=None, channel=ADMIN)

    for before, after, *_ in events(order)[1:]:
        assert after in ORDER_TRANSITIONS[before], (before, after)


def test_the_customer_sees_the_carrier_tracking_number_and_times_in_the_shops_time_zone(lotus):
    order = lotus.order()
    url = reverse("orders:order", args=[order.token])
    assert "tracking-number" not in Client().get(url).content.decode()  # nothing shipped yet

    order_ship(order=order, carrier="SF", tracking_number="SF123456789012", actor=None, channel=ADMIN,
               now=datetime(2026, 11, 25, 6, 30, tzinfo=UTC))
    shipped = Client().get(url).content.decode()
    order_deliver(order=order, actor=None, channel=ADMIN, now=datetime(2026, 11, 26, 23, 15, tzinfo=UTC))
    delivered = Client().get(url).content.decode()

    assert "On its way" in shipped and "SF Express" in shipped and "SF123456789012" in shipped
    assert "2026-11-25 14:30" in shipped  # Shanghai time
    assert "Delivered" not in shipped.split('id="shipping"')[1].split("</section>")[0]
    assert "Completed" in delivered and "2026-11-27 07:15" in delivered
