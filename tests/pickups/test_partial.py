"""Partial pickup: a cashier hands over some lines or units now and the rest later. Each part is its own
redemption; the voucher stays valid for what is left; the part that leaves nothing completes the order
(and only it); asking too much or for a line the order does not have names the line and changes
nothing; a void gives its units back."""


import pytest
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from orders.models import Order, OrderEvent, OrderItem
from orders.pickups.errors import AlreadyRedeemed, NothingToHandOver, TooManyUnits, UnknownLine
from orders.pickups.models import Redemption
from orders.pickups.selectors import pickup_lookup
from orders.pickups.services import pickup_redeem, redemption_void
from orders.pickups.signals import order_completed, order_completion_voided

from .test_api import redeem as api_redeem
from .test_api import terminal
from .test_queries import statements

OS = Order.Status


def lines_of(order) -> dict[str, OrderItem]:
    """{"tea": item, "cup": item} for the gift set (1 tea + 2 cups per set)."""
    items = {item.product.sku: item for item in order.items.select_related("product")}
    return {"tea": items["LJ-250"], "cup": items["CUP-1"]}


def counts(order) -> dict[str, tuple[int, int]]:
    return {name: (item.handed_over, item.quantity) for name, item in lines_of(order).items()}


def redeem(shop, order, lines=None, **kwargs) -> Redemption:
    return pickup_redeem(
        code=order.pickup_code, cashier=kwargs.pop("cashier", shop.cashier), store=shop.xtd, channel="web",
        lines=lines, **kwargs,
    )


@pytest.fixture
def completions():
    heard = []

    def receiver(sender, order, **kwargs):
        heard.append(order.pk)

    order_completed.connect(receiver)
    yield heard
    order_completed.disconnect(receiver)


def test_a_part_now_and_the_rest_later_each_its_own_redemption(shop, completions):
    order = shop.order(quantity=2)  # 2 teas, 4 cups
    tea, cup = lines_of(order).values()

    first = redeem(shop, order, [{"item": tea.pk, "quantity": 2}, {"item": cup.pk, "quantity": 1}])
    assert [(line["name"], line["quantity"]) for line in first.lines] == [
        ("West Lake Longjing tea 250g", 2), ("Celadon tea cup", 1),
    ]
    assert counts(order) == {"tea": (2, 2), "cup": (1, 4)}
    assert Order.objects.get(pk=order.pk).status == OS.PAID  # the voucher stays valid for the rest
    assert completions == []

    # the rest: no lines given means everything that is left
    second = redeem(shop, order)
    assert [(line["name"], line["quantity"]) for line in second.lines] == [("Celadon tea cup", 3)]
    assert counts(order) == {"tea": (2, 2), "cup": (4, 4)}
    done = Order.objects.get(pk=order.pk)
    assert done.status == OS.PICKED_UP and done.closed_at == second.created_at
    assert completions == [order.pk]
    assert Redemption.objects.filter(order=order).count() == 2
    assert OrderEvent.objects.filter(order=order, to_status=OS.PICKED_UP).count() == 1

    with pytest.raises(AlreadyRedeemed):
        redeem(shop, order, [{"item": cup.pk, "quantity": 1}])


def test_a_ready_order_collected_in_parts_stays_ready_until_the_last_part(shop):
    order = shop.order()
    Order.objects.filter(pk=order.pk).update(status=OS.READY_FOR_PICKUP)
    tea, cup = lines_of(order).values()
    redeem(shop, order, [{"item": cup.pk, "quantity": 2}])
    assert Order.objects.get(pk=order.pk).status == OS.READY_FOR_PICKUP
    last = redeem(shop, order, [{"item": tea.pk, "quantity": 1}])
    assert last.order_status_before == OS.READY_FOR_PICKUP
    assert Order.objects.get(pk=order.pk).status == OS.PICKED_UP


@pytest.mark.parametrize(
    ("ask", "error", "says"),
    [
        (lambda tea, cup: [{"item": cup.pk, "quantity": 5}], TooManyUnits,
         "Celadon tea cup: 5 asked for, only 4 left to hand over."),
        (lambda tea, cup: [{"item": 999_999, "quantity": 1}], UnknownLine, "Line 999999 is not a line of this order."),
        (lambda tea, cup: [{"item": tea.pk, "quantity": 0}], NothingToHandOver, "Choose at least one unit"),
        (lambda tea, cup: [{"item": tea.pk, "quantity": -1}], UnknownLine, "West Lake Longjing tea 250g: say how many"),
        (lambda tea, cup: [{"item": tea.pk, "quantity": 1}, {"item": tea.pk, "quantity": 1}], UnknownLine,
         "West Lake Longjing tea 250g: say how many, once"),
        (lambda tea, cup: [], NothingToHandOver, "Choose at least one unit"),
    ],
)
def test_asking_too_much_or_for_a_line_it_does_not_have_names_the_line_and_changes_nothing(shop, ask, error, says):
    order = shop.order(quantity=2)
    with pytest.raises(error) as refused:
        redeem(shop, order, ask(*lines_of(order).values()))
    assert says in refused.value.message
    assert counts(order) == {"tea": (0, 2), "cup": (0, 4)}
    assert not Redemption.objects.exists() and Order.objects.get(pk=order.pk).status == OS.PAID


def test_another_orders_line_is_unknown_here(shop):
    order, other = shop.order(), shop.order()
    with pytest.raises(UnknownLine):
        redeem(shop, order, [{"item": lines_of(other)["tea"].pk, "quantity": 1}])
    assert counts(other)["tea"] == (0, 1)


def test_too_many_counts_what_earlier_parts_took(shop):
    order = shop.order()
    cup = lines_of(order)["cup"]
    redeem(shop, order, [{"item": cup.pk, "quantity": 1}])
    with pytest.raises(TooManyUnits) as refused:
        redeem(shop, order, [{"item": cup.pk, "quantity": 2}])
    assert refused.value.details == {"item": cup.pk, "name": "Celadon tea cup", "asked": 2, "left": 1}


def test_a_double_tap_on_a_part_hands_it_over_once(shop):
    order = shop.order(quantity=2)
    cup = lines_of(order)["cup"]
    first = redeem(shop, order, [{"item": cup.pk, "quantity": 1}], idempotency_key="form-1")
    again = redeem(shop, order, [{"item": cup.pk, "quantity": 1}], idempotency_key="form-1")
    assert again.pk == first.pk and counts(order)["cup"] == (1, 4)
    # a new form (new key) is a new part
    redeem(shop, order, [{"item": cup.pk, "quantity": 1}], idempotency_key="form-2")
    assert counts(order)["cup"] == (2, 4)


def test_lookup_shows_what_is_left_and_the_parts_collected_when_and_where(shop):
    order = shop.order(quantity=2)
    cup = lines_of(order)["cup"]
    assert pickup_lookup(code=order.pickup_code, cashier=shop.cashier, store=shop.xtd).collected == []
    part = redeem(shop, order, [{"item": cup.pk, "quantity": 3}])
    pickup = pickup_lookup(code=order.pickup_code, cashier=shop.cashier, store=shop.xtd)
    assert [(item.product.sku, item.handed_over, item.left) for item in pickup.items] == [
        ("LJ-250", 0, 2), ("CUP-1", 3, 1),
    ]
    assert pickup.collected == [part] and pickup.collected[0].store == shop.xtd
    assert pickup.units_left == 3


# --------------------------------------------------------------------------- void


def test_voiding_a_part_gives_its_units_back_and_leaves_the_order_waiting(shop):
    order = shop.order(quantity=2)
    cup = lines_of(order)["cup"]
    part = redeem(shop, order, [{"item": cup.pk, "quantity": 3}])
    heard = []
    order_completion_voided.connect(lambda **kw: heard.append(kw["order"].pk), weak=False, dispatch_uid="t1")
    try:
        redemption_void(redemption=part, manager=shop.manager, reason="Wrong cups")
    finally:
        order_completion_voided.disconnect(dispatch_uid="t1")
    assert counts(order) == {"tea": (0, 2), "cup": (0, 4)}
    assert Order.objects.get(pk=order.pk).status == OS.PAID
    assert heard == []  # nothing had been completed
    assert Redemption.objects.get(pk=part.pk).voided_by == shop.manager


def test_voiding_an_earlier_part_of_a_completed_order_reopens_it(shop):
    order = shop.order()
    Order.objects.filter(pk=order.pk).update(status=OS.READY_FOR_PICKUP)
    tea, cup = lines_of(order).values()
    early = redeem(shop, order, [{"item": cup.pk, "quantity": 2}])
    redeem(shop, order)  # the tea: completes it
    assert Order.objects.get(pk=order.pk).status == OS.PICKED_UP
    redemption_void(redemption=early, manager=shop.manager, reason="Cups came back chipped")
    reopened = Order.objects.get(pk=order.pk)
    assert reopened.status == OS.READY_FOR_PICKUP and reopened.closed_at is None
    assert counts(order) == {"tea": (1, 1), "cup": (0, 2)}
    # and the cups can be handed over again, completing it once more
    again = redeem(shop, order)
    assert [line["quantity"] for line in again.lines] == [2]
    assert Order.objects.get(pk=order.pk).status == OS.PICKED_UP


def test_voiding_the_completing_part_puts_back_only_its_units(shop):
    order = shop.order(quantity=2)
    cup = lines_of(order)["cup"]
    redeem(shop, order, [{"item": cup.pk, "quantity": 1}])
    last = redeem(shop, order)
    redemption_void(redemption=last, manager=shop.manager, reason="Mistake")
    assert counts(order) == {"tea": (0, 2), "cup": (1, 4)}
    assert Order.objects.get(pk=order.pk).status == OS.PAID


# --------------------------------------------------------------------------- property


@given(asks=st.lists(st.tuples(st.integers(0, 1), st.integers(-1, 5)), min_size=1, max_size=10),
       sets=st.integers(1, 3))
@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
def test_whatever_is_asked_in_whatever_order_never_more_than_bought_and_complete_exactly_when_all_is(
    shop, asks, sets
):
    with transaction.atomic():
        order = shop.order(quantity=sets)
        items = list(lines_of(order).values())
        handed = {item.pk: 0 for item in items}
        for which, quantity in asks:
            item = items[which]
            try:
                redemption = redeem(shop, order, [{"item": item.pk, "quantity": quantity}])
            except (TooManyUnits, UnknownLine, NothingToHandOver, AlreadyRedeemed):
                left = item.quantity - handed[item.pk]
                assert quantity <= 0 or quantity > left
                continue
            handed[item.pk] += quantity
            assert [line["quantity"] for line in redemption.lines] == [quantity]
        stored = {item.pk: item.handed_over for item in OrderItem.objects.filter(order=order)}
        assert stored == handed
        assert all(handed[item.pk] <= item.quantity for item in items)
        recorded = sum(r.units for r in Redemption.objects.filter(order=order))
        assert recorded == sum(handed.values())
        complete = all(handed[item.pk] == item.quantity for item in items)
        assert (Order.objects.get(pk=order.pk).status == OS.PICKED_UP) == complete
        transaction.set_rollback(True)


# --------------------------------------------------------------------------- API


def test_api_redeems_the_lines_asked_for_and_says_what_is_left(shop):
    order = shop.order(quantity=2)
    tea, cup = lines_of(order).values()
    client, auth = terminal(shop)
    response = api_redeem(client, auth, order.pickup_code, lines=[{"item": cup.pk, "quantity": 3}])
    assert response.status_code == 200, response.json()
    body = response.json()
    assert body["status"] == "paid" and body["complete"] is False
    assert [(line["name"], line["quantity"]) for line in body["lines"]] == [("Celadon tea cup", 3)]
    assert [(line["item"], line["handed_over"], line["left"]) for line in body["order_lines"]] == [
        (tea.pk, 0, 2), (cup.pk, 3, 1),
    ]
    looked = client.get(f"/api/v1/pickups/{order.pickup_code}/", **auth).json()
    assert [(i["item"], i["handed_over"], i["left"]) for i in looked["items"]] == [(tea.pk, 0, 2), (cup.pk, 3, 1)]
    assert [(part["store"]["code"], part["cashier"], part["lines"][0]["quantity"]) for part in looked["collected"]] == [
        ("xtd", "wang.fang", 3)
    ]
    rest = api_redeem(client, auth, order.pickup_code).json()
    assert rest["complete"] is True and rest["status"] == "picked_up"
    assert [(line["name"], line["quantity"]) for line in rest["lines"]] == [
        ("West Lake Longjing tea 250g", 2), ("Celadon tea cup", 1),
    ]


def test_api_errors_name_the_line_and_hand_nothing_over(shop):
    order = shop.order()
    cup = lines_of(order)["cup"]
    client, auth = terminal(shop)
    too_many = api_redeem(client, auth, order.pickup_code, lines=[{"item": cup.pk, "quantity": 3}])
    assert too_many.status_code == 409
    assert too_many.json() == {
        "code": "too_many_units", "detail": "Celadon tea cup: 3 asked for, only 2 left to hand over.",
        "item": cup.pk, "name": "Celadon tea cup", "asked": 3, "left": 2,
    }
    unknown = api_redeem(client, auth, order.pickup_code, lines=[{"item": 424242, "quantity": 1}])
    assert unknown.status_code == 400 and unknown.json()["code"] == "unknown_line" and unknown.json()["item"] == 424242
    malformed = api_redeem(client, auth, order.pickup_code, lines=[{"item": cup.pk, "quantity": -2}])
    assert malformed.status_code == 400 and "lines" in malformed.json()
    assert counts(order) == {"tea": (0, 1), "cup": (0, 2)} and not Redemption.objects.exists()


def test_api_same_key_for_a_part_returns_the_first_answer(shop):
    order = shop.order(quantity=2)
    cup = lines_of(order)["cup"]
    client, auth = terminal(shop)
    first = api_redeem(client, auth, order.pickup_code, key="pos-1", lines=[{"item": cup.pk, "quantity": 1}])
    again = api_redeem(client, auth, order.pickup_code, key="pos-1", lines=[{"item": cup.pk, "quantity": 1}])
    assert first.status_code == again.status_code == 200 and first.content == again.content
    assert counts(order)["cup"] == (1, 4) and Redemption.objects.count() == 1


def test_api_full_redeem_request_queries(shop, monkeypatch):
    """The figure the benchmark reports: statements of one POS redeem request (token auth), everything."""
    # The general path's figure; the fast path's (PostgreSQL) is counted in test_fast.py.
    monkeypatch.setattr("orders.pickups.api.pickup_redeem_fast_answer", lambda request, code: None)
    order = shop.order(quantity=2)
    client, auth = terminal(shop)
    client.get(f"/api/v1/pickups/{shop.order().pickup_code}/", **auth)  # warm: nothing cached that matters
    with CaptureQueriesContext(connection) as context:
        response = api_redeem(client, auth, order.pickup_code)
    assert response.status_code == 200
    work = statements(context)
    # token + user + staff role (o2o/auth.py), store; then the hand-over's five: the lines with their order
    # (locked), the lines' counts, the order's status, the redemption, the order event
    assert len(work) == 7, work
    assert [sql.split()[0] + " " + sql.split('"')[1] for sql in work[2:]] == [
        "SELECT orders_orderitem", "UPDATE orders_orderitem", "UPDATE orders_order", "INSERT orders_redemption",
        "INSERT orders_orderevent",
    ]
    # With an Idempotency-Key (what the benchmark's POS sends): the key's claim and its stored answer
    keyed = shop.order(quantity=2)
    with CaptureQueriesContext(connection) as context:
        assert api_redeem(client, auth, keyed.pickup_code, key="pos-7-000001").status_code == 200
    work = statements(context)
    assert len(work) == 9, work
    assert [sql.split()[0] for sql in work if "orders_pickupidempotencykey" in sql] == ["INSERT", "UPDATE"]


def test_a_part_that_completes_nothing_is_three_statements(shop):
    order = shop.order(quantity=2)
    cup = lines_of(order)["cup"]
    cashier = type(shop.cashier).objects.get(pk=shop.cashier.pk)
    redeem(shop, shop.order(), cashier=cashier)  # the staff role is read once per user
    with CaptureQueriesContext(connection) as context:
        redeem(shop, order, [{"item": cup.pk, "quantity": 1}], cashier=cashier)
    assert len(statements(context)) == 3, statements(context)


# --------------------------------------------------------------------------- a read older than the lock


def stale_once(monkeypatch, handed_over_seen: dict[int, int]):
    """The first read of the lines says what they held before a hand-over or void that committed while we
    waited for the lock (PostgreSQL's snapshot of the locking SELECT); later reads are current."""
    from orders.pickups import services

    real = services.order_for_handover
    calls = []

    def read(**kwargs):
        held = real(**kwargs)
        if not calls:
            for item in held.items:
                item.handed_over = handed_over_seen.get(item.pk, item.handed_over)
        calls.append(1)
        return held

    monkeypatch.setattr(services, "order_for_handover", read)
    return calls


def test_a_stale_read_that_shows_more_left_is_read_again_and_refused(shop, monkeypatch):
    order = shop.order()
    cup = lines_of(order)["cup"]
    redeem(shop, order, [{"item": cup.pk, "quantity": 2}])  # a colleague took both cups
    calls = stale_once(monkeypatch, {cup.pk: 0})  # ... after our read began
    with pytest.raises(TooManyUnits) as refused:
        redeem(shop, order, [{"item": cup.pk, "quantity": 1}])
    assert len(calls) == 2 and refused.value.details["left"] == 0
    assert counts(order)["cup"] == (2, 2)


def test_a_stale_read_that_shows_fewer_left_is_read_again_not_refused(shop, monkeypatch):
    order = shop.order()
    cup = lines_of(order)["cup"]
    part = redeem(shop, order, [{"item": cup.pk, "quantity": 2}])
    redemption_void(redemption=part, manager=shop.manager, reason="Chipped")  # the cups are back
    calls = stale_once(monkeypatch, {cup.pk: 2})  # ... but our read predates the void
    again = redeem(shop, order, [{"item": cup.pk, "quantity": 2}])
    assert len(calls) == 2 and [line["quantity"] for line in again.lines] == [2]
    assert counts(order)["cup"] == (2, 2)


def test_lookup_of_a_partly_collected_voucher_costs_one_more_query_however_many_parts(shop):
    order = shop.order(quantity=5)
    cup = lines_of(order)["cup"]
    found = []
    for parts in (1, 6):
        while Redemption.objects.filter(order=order).count() < parts:
            redeem(shop, order, [{"item": cup.pk, "quantity": 1}])
        shop.cashier.__dict__.pop("_o2o_staff_role", None)
        with CaptureQueriesContext(connection) as context:
            pickup = pickup_lookup(code=order.pickup_code, cashier=shop.cashier, store=shop.xtd)
            [(part.store.name, part.cashier.username) for part in pickup.collected]
        assert len(pickup.collected) == parts
        found.append(len(statements(context)))
    assert found[0] == found[1] <= 4, found


def test_the_order_page_in_the_admin_lists_each_part_and_what_it_gave(shop):
    from django.urls import reverse

    from .conftest import signed_in

    order = shop.order(quantity=2)
    cup = lines_of(order)["cup"]
    redeem(shop, order, [{"item": cup.pk, "quantity": 3}])
    redeem(shop, order)
    html = signed_in(shop.manager).get(reverse("admin:orders_order_change", args=[order.pk])).content.decode()
    assert "<li>3 × Celadon tea cup</li>" in html
    assert "<li>2 × West Lake Longjing tea 250g</li><li>1 × Celadon tea cup</li>" in html
