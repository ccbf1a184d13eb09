"""The promotion lifecycle and order money, as properties: the pure rules in orders/lifecycle.py, and
the real services driven through random sequences of operations against the database."""

from collections import deque
from datetime import datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal
from fractions import Fraction
from math import floor

import pytest
from django.db import transaction
from django.utils import timezone
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)

from o2o.money import CURRENCY_MINOR_UNITS, MoneyError
from orders.errors import (
    OrderError,
    OrderNotPayable,
    OverMemberLimit,
    PromotionNotOnSale,
    PromotionNotReady,
    SoldOut,
)
from orders.lifecycle import (
    HOLDS_STOCK,
    ORDER_TRANSITIONS,
    PROMOTION_TRANSITIONS,
    PUBLISHED,
    order_totals,
    promotion_status_at,
)
from orders.models import Order, OrderEvent, Promotion
from orders.services import (
    order_mark_paid,
    order_place,
    orders_cancel_unpaid,
    promotion_end,
    promotion_publish,
    promotions_advance,
)
from tests.factories import MerchantFactory, StoreFactory, promotion

P, OS = Promotion.Status, Order.Status

# --------------------------------------------------------------------------- order totals

# Prices as stored: 2 places, positive, within DecimalField(max_digits=12).
prices = st.decimals(min_value=Decimal("0.01"), max_value=Decimal("99999.99"), places=2)
fees = st.decimals(min_value=Decimal("0.00"), max_value=Decimal("999.99"), places=2)
quantities = st.integers(min_value=1, max_value=1000)


def fen(amount: Decimal) -> int:
    """An exact 2-place amount as whole fen, by integer arithmetic (the oracle; no Decimal rounding)."""
    cents = Fraction(amount) * 100
    assert cents.denominator == 1, amount
    return int(cents)


@given(unit_price=prices, quantity=quantities, shipping_fee=fees)
def test_total_is_subtotal_plus_shipping_to_the_fen(unit_price, quantity, shipping_fee):
    totals = order_totals(unit_price=unit_price, quantity=quantity, shipping_fee=shipping_fee, currency="CNY")
    # Decimals with exactly two places, never floats
    for amount in totals.values():
        assert type(amount) is Decimal
        assert amount.as_tuple().exponent == -2
    # and the arithmetic of a till: price × quantity, plus the fee
    assert fen(totals["subtotal"]) == fen(unit_price) * quantity
    assert fen(totals["shipping_fee"]) == fen(shipping_fee)
    assert totals["total"] == totals["subtotal"] + totals["shipping_fee"]


@given(unit_price=prices, quantity=quantities)
def test_subtotal_scales_with_quantity(unit_price, quantity):
    one = order_totals(unit_price=unit_price, quantity=1, shipping_fee=Decimal("0"), currency="CNY")
    many = order_totals(unit_price=unit_price, quantity=quantity, shipping_fee=Decimal("0"), currency="CNY")
    assert many["subtotal"] == one["subtotal"] * quantity
    assert many["total"] == many["subtotal"]


@given(
    unit_price=st.decimals(min_value=Decimal("0.0001"), max_value=Decimal("9999.9999"), places=4),
    quantity=quantities,
    currency=st.sampled_from(sorted(CURRENCY_MINOR_UNITS)),
)
def test_amounts_finer_than_the_currency_round_half_up(unit_price, quantity, currency):
    totals = order_totals(unit_price=unit_price, quantity=quantity, shipping_fee=Decimal("0"), currency=currency)
    places = CURRENCY_MINOR_UNITS[currency]
    exact = Fraction(unit_price) * quantity * 10**places
    assert totals["subtotal"].as_tuple().exponent == -places
    # Half-up for positive amounts: floor(x + 1/2), in exact rational arithmetic
    assert Fraction(totals["subtotal"]) * 10**places == floor(exact + Fraction(1, 2))
    assert totals["total"] == totals["subtotal"]


def test_half_a_fen_rounds_up():
    totals = order_totals(unit_price=Decimal("0.005"), quantity=1, shipping_fee=Decimal("0.125"), currency="CNY")
    assert (totals["subtotal"], totals["shipping_fee"], totals["total"]) == (
        Decimal("0.01"), Decimal("0.13"), Decimal("0.14"),
    )
    assert Decimal("0.005").quantize(Decimal("0.01"), ROUND_HALF_UP) == Decimal("0.01")  # the rule, spelled out


@pytest.mark.parametrize(
    "amounts", [{"unit_price": 9.9, "shipping_fee": Decimal("0")}, {"unit_price": Decimal("9.90"), "shipping_fee": 1.5}]
)
def test_float_money_is_refused(amounts):
    with pytest.raises(MoneyError):
        order_totals(quantity=1, currency="CNY", **amounts)


# --------------------------------------------------------------------------- the transition maps


def reachable(start: str, transitions: dict[str, frozenset[str]]) -> set[str]:
    seen, todo = {start}, deque([start])
    while todo:
        for target in transitions[todo.popleft()]:
            if target not in seen:
                seen.add(target)
                todo.append(target)
    return seen


def test_the_promotion_map_names_every_status_and_ended_is_terminal():
    assert set(PROMOTION_TRANSITIONS) == set(P.values)
    assert all(targets <= set(P.values) for targets in PROMOTION_TRANSITIONS.values())
    assert PROMOTION_TRANSITIONS[P.ENDED] == frozenset()
    # Nothing leads back to draft, and every status can still reach the end.
    assert not any(P.DRAFT in targets for targets in PROMOTION_TRANSITIONS.values())
    assert all(P.ENDED in reachable(s, PROMOTION_TRANSITIONS) for s in P.values)


def test_the_order_map_names_every_status_and_closed_orders_stay_closed():
    assert set(ORDER_TRANSITIONS) == set(OS.values)
    for closed in (OS.CANCELLED, OS.REFUNDED, OS.EXPIRED):
        assert ORDER_TRANSITIONS[closed] == frozenset()
    assert not any(OS.PENDING_PAYMENT in targets for targets in ORDER_TRANSITIONS.values())
    assert OS.CANCELLED not in HOLDS_STOCK and OS.PENDING_PAYMENT in HOLDS_STOCK


# --------------------------------------------------------------------------- promotion_status_at

minutes = st.integers(min_value=-10_000, max_value=10_000)


@st.composite
def promotion_states(draw):
    """A stored status the services can produce, a validity window, the stock left, and an instant."""
    origin = datetime(2026, 3, 1, 10, 0).astimezone()
    starts_at = origin + timedelta(minutes=draw(minutes))
    ends_at = starts_at + timedelta(minutes=draw(st.integers(min_value=1, max_value=20_000)))
    status = draw(st.sampled_from(P.values))
    now = origin + timedelta(minutes=draw(minutes))
    if status in (P.LIVE, P.SOLD_OUT):
        # Stored only once started (publish or the sweep), and time does not run backwards.
        now = max(now, starts_at)
    return {
        "status": status,
        "starts_at": starts_at,
        "ends_at": ends_at,
        "stock_left": draw(st.integers(min_value=0, max_value=5)),
        "now": now,
    }


@given(state=promotion_states())
def test_what_time_and_stock_say_is_reachable_from_what_is_stored(state):
    effective = promotion_status_at(**state)
    assert effective in reachable(state["status"], PROMOTION_TRANSITIONS)


@given(state=promotion_states())
def test_drafts_and_ended_promotions_stay_what_they_are(state):
    effective = promotion_status_at(**state)
    if state["status"] in (P.DRAFT, P.ENDED):
        assert effective == state["status"]
    # A draft is never on sale; nothing without stock is on sale; nothing is on sale outside its window.
    if effective == P.LIVE:
        assert state["status"] in PUBLISHED
        assert state["stock_left"] > 0
        assert state["starts_at"] <= state["now"] < state["ends_at"]


@given(state=promotion_states(), later=st.integers(min_value=0, max_value=20_000))
def test_time_only_moves_a_promotion_forward(state, later):
    order = {P.DRAFT: 0, P.SCHEDULED: 1, P.LIVE: 2, P.SOLD_OUT: 2, P.ENDED: 3}
    before = promotion_status_at(**state)
    after = promotion_status_at(**{**state, "now": state["now"] + timedelta(minutes=later)})
    assert order[after] >= order[before]
    if before == P.ENDED:
        assert after == P.ENDED


# --------------------------------------------------------------------------- publish and end


@pytest.fixture
def merchant(db):
    return MerchantFactory()


def test_publishing_before_the_start_schedules_and_after_the_start_goes_live(merchant):
    now = timezone.now()
    early = promotion(merchant, status="draft", starts_at=now + timedelta(hours=1))
    started = promotion(merchant, status="draft", starts_at=now - timedelta(minutes=1))
    assert promotion_publish(promotion=early, now=now).status == P.SCHEDULED
    assert promotion_publish(promotion=started, now=now).status == P.LIVE
    assert early.published_at == now


def test_only_a_draft_can_be_published(merchant):
    promo = promotion(merchant, status="draft")
    promotion_publish(promotion=promo)
    with pytest.raises(PromotionNotReady, match="Only drafts can be published."):
        promotion_publish(promotion=promo)


@pytest.mark.parametrize(
    ("fields", "problem"),
    [
        ({"ends_at": timezone.now() - timedelta(minutes=1), "starts_at": timezone.now() - timedelta(days=1)},
         "The end time has already passed."),
        ({"stores": []}, "Pickup is allowed but no active pickup store is chosen."),
    ],
)
def test_publishing_says_what_is_missing_and_leaves_a_draft(merchant, fields, problem):
    promo = promotion(merchant, status="draft", **fields)
    with pytest.raises(PromotionNotReady, match=problem):
        promotion_publish(promotion=promo)
    assert Promotion.objects.get(pk=promo.pk).status == P.DRAFT


@pytest.mark.parametrize("status", [P.SCHEDULED, P.LIVE, P.SOLD_OUT])
def test_ending_takes_a_published_promotion_off_sale(merchant, status):
    promo = promotion(merchant, status=status)
    assert promotion_end(promotion=promo).status == P.ENDED
    assert promo.ended_at is not None


@pytest.mark.parametrize("status", [P.DRAFT, P.ENDED])
def test_a_draft_or_ended_promotion_cannot_be_ended(merchant, status):
    promo = promotion(merchant, status=status)
    with pytest.raises(PromotionNotReady, match="Only published promotions can be ended."):
        promotion_end(promotion=promo)
    assert Promotion.objects.get(pk=promo.pk).status == status


def test_paying_twice_changes_nothing_and_a_cancelled_order_cannot_be_paid(merchant):
    promo = promotion(merchant, per_member_limit=5)
    store = promo.pickup_stores.get()

    def new_order(key: str) -> Order:
        return order_place(
            promotion=promo, quantity=1, phone="138 1234 5678", fulfilment="pickup", pickup_store=store,
            submit_key=key,
        )

    paid = order_mark_paid(order=new_order("a"))
    again = order_mark_paid(order=paid)
    assert (again.status, again.pickup_code, again.paid_at) == (OS.PAID, paid.pickup_code, paid.paid_at)
    assert list(paid.events.values_list("to_status", flat=True)) == [OS.PENDING_PAYMENT, OS.PAID]
    cancelled = new_order("b")
    Order.objects.filter(pk=cancelled.pk).update(status=OS.CANCELLED)
    with pytest.raises(OrderNotPayable):
        order_mark_paid(order=cancelled)


# --------------------------------------------------------------------------- the services, as a state machine


class PromotionLifecycle(RuleBasedStateMachine):
    """Random sequences of publish, end, time passing, sweeps, orders placed, paid and cancelled, on the
    real services and database, checked against a model of what the promotion and its orders should be.

    Every stored status change must follow PROMOTION_TRANSITIONS (several steps at once only along the
    map), ended is final, drafts never sell, and sold_count always equals the units held by orders.
    """

    def __init__(self):
        super().__init__()
        # Each example in a savepoint of its own, rolled back at teardown: the sweeps are global, and
        # one example's promotions must not be moved by the next one's clock.
        self._atomic = transaction.atomic()
        self._atomic.__enter__()
        self.now = timezone.now()
        self.merchant = MerchantFactory(unpaid_order_minutes=15)
        self.store = StoreFactory(merchant=self.merchant)
        self.promotion = None
        self.status = None
        self.orders: dict[int, tuple[str, int, str]] = {}  # pk -> (status, quantity, phone) as the model has it
        self.keys = 0

    def teardown(self):
        transaction.set_rollback(True)
        self._atomic.__exit__(None, None, None)

    @initialize(
        start=st.integers(min_value=-60, max_value=120),
        length=st.integers(min_value=2 * 60, max_value=3 * 24 * 60),
        cap=st.integers(min_value=1, max_value=8),
        limit=st.integers(min_value=1, max_value=3),
        publish=st.sampled_from([True, True, False]),
    )
    def create_draft(self, start, length, cap, limit, publish):
        starts_at = self.now + timedelta(minutes=start)
        self.promotion = promotion(
            self.merchant, stores=[self.store], status="draft", starts_at=starts_at,
            ends_at=starts_at + timedelta(minutes=length), stock_cap=cap, per_member_limit=limit,
        )
        self.status = P.DRAFT
        if publish:  # most interesting sequences start on the wall
            self.publish()

    # ---- helpers

    def stored(self) -> Promotion:
        return Promotion.objects.select_related("merchant").get(pk=self.promotion.pk)

    def held(self, phone: str | None = None) -> int:
        return sum(q for status, q, p in self.orders.values() if status in HOLDS_STOCK and phone in (None, p))

    def expect_move(self, before: str, after: str) -> None:
        """A change of stored status is a path along the map; ended never changes."""
        if before == P.ENDED:
            assert after == P.ENDED
        assert after in reachable(before, PROMOTION_TRANSITIONS), (before, after)

    def sweep_model(self) -> str:
        """What promotions_advance stores: what time and stock say (promotion_status_at)."""
        return promotion_status_at(
            status=self.status, starts_at=self.promotion.starts_at, ends_at=self.promotion.ends_at,
            stock_left=self.promotion.stock_cap - self.held(), now=self.now,
        )

    # ---- rules

    @rule(minutes=st.sampled_from([1, 5, 16, 45, 3 * 60, 25 * 60]))
    def time_passes(self, minutes):
        self.now += timedelta(minutes=minutes)

    @rule()
    def publish(self):
        before = self.status
        if before == P.DRAFT and self.promotion.ends_at > self.now:
            published = promotion_publish(promotion=self.stored(), now=self.now)
            self.status = P.LIVE if self.promotion.starts_at <= self.now else P.SCHEDULED
            assert published.status == self.status
        else:
            with pytest.raises(PromotionNotReady):
                promotion_publish(promotion=self.stored(), now=self.now)
        self.expect_move(before, self.stored().status)

    @rule(mind=st.integers(min_value=1, max_value=4))
    def end(self, mind):
        if mind != 1:
            return  # managers end early now and then, not at every turn: leave room for orders
        before = self.status
        if before in PUBLISHED:
            promotion_end(promotion=self.stored(), now=self.now)
            self.status = P.ENDED
        else:
            with pytest.raises(PromotionNotReady):
                promotion_end(promotion=self.stored(), now=self.now)
        self.expect_move(before, self.stored().status)

    @rule()
    def promotions_sweep(self):
        before = self.status
        promotions_advance(now=self.now)
        self.status = self.sweep_model()
        self.expect_move(before, self.stored().status)

    @rule(
        wanted=st.lists(
            st.tuples(
                st.just(1) | st.integers(min_value=-1, max_value=4),  # half of them the usual one
                st.sampled_from(["13800000001", "13800000002", "13800000003", "13800000004"]),
            ),
            min_size=1, max_size=4,
        )
    )
    def place_orders(self, wanted):
        for quantity, phone in wanted:
            self.place_order(quantity, phone)

    def place_order(self, quantity: int, phone: str) -> None:
        before = self.status
        promo = self.stored()
        on_sale = promo.effective_status(self.now) in (P.LIVE, P.SOLD_OUT)
        self.keys += 1
        try:
            order = order_place(
                promotion=promo, quantity=quantity, phone=phone, fulfilment="pickup", pickup_store=self.store,
                submit_key=f"key-{self.keys}", now=self.now,
            )
        except OrderError as refused:
            # Refused for the first reason that applies, in the order the customer can act on.
            if quantity < 1 or self.held(phone) + quantity > promo.per_member_limit:
                assert isinstance(refused, OverMemberLimit), refused
            elif not on_sale:
                assert isinstance(refused, PromotionNotOnSale), refused
            else:
                assert isinstance(refused, SoldOut), refused
                assert self.held() + quantity > promo.stock_cap
        else:
            assert on_sale and 1 <= quantity and self.held(phone) + quantity <= promo.per_member_limit
            assert self.held() + quantity <= promo.stock_cap
            # The order's clock is the machine's, so the unpaid sweep can judge its age.
            Order.objects.filter(pk=order.pk).update(created_at=self.now)
            self.orders[order.pk] = (OS.PENDING_PAYMENT, quantity, phone)
            if self.status == P.LIVE and self.held() == promo.stock_cap:
                self.status = P.SOLD_OUT  # the last unit marks the promotion at once
        self.expect_move(before, self.stored().status)

    @rule(data=st.data())
    @precondition(lambda self: any(s == OS.PENDING_PAYMENT for s, _q, _p in self.orders.values()))
    def pay(self, data):
        pending = sorted(pk for pk, (s, _q, _p) in self.orders.items() if s == OS.PENDING_PAYMENT)
        pk = data.draw(st.sampled_from(pending))
        order_mark_paid(order=Order.objects.get(pk=pk), now=self.now)
        _status, quantity, phone = self.orders[pk]
        self.orders[pk] = (OS.PAID, quantity, phone)

    @rule()
    def unpaid_sweep(self):
        before = self.status
        due = [
            pk for pk, (s, _q, _p) in self.orders.items()
            if s == OS.PENDING_PAYMENT
            and Order.objects.get(pk=pk).created_at < self.now - timedelta(minutes=self.merchant.unpaid_order_minutes)
        ]
        assert orders_cancel_unpaid(now=self.now) == len(due)
        for pk in due:
            _status, quantity, phone = self.orders[pk]
            self.orders[pk] = (OS.CANCELLED, quantity, phone)
        if due:
            self.status = self.sweep_model()  # the unpaid sweep ends with the promotion sweep
        self.expect_move(before, self.stored().status)

    # ---- invariants

    @invariant()
    def stored_status_is_the_models(self):
        assert self.stored().status == self.status

    @invariant()
    def stock_is_exactly_what_orders_hold(self):
        promo = self.stored()
        assert 0 <= promo.sold_count <= promo.stock_cap
        assert promo.sold_count == self.held()
        in_db = dict(Order.objects.filter(promotion=promo).values_list("pk", "status"))
        assert in_db == {pk: s for pk, (s, _q, _p) in self.orders.items()}

    @invariant()
    def every_order_status_change_is_in_the_order_map(self):
        for from_status, to_status in OrderEvent.objects.filter(merchant=self.merchant).values_list(
            "from_status", "to_status"
        ):
            assert from_status == "" or to_status in ORDER_TRANSITIONS[from_status]

    @invariant()
    def a_draft_never_sells(self):
        if self.status == P.DRAFT:
            assert not self.orders


@pytest.mark.django_db
def test_promotion_lifecycle_on_the_real_services():
    run_state_machine_as_test(
        PromotionLifecycle,
        settings=settings(
            max_examples=50, stateful_step_count=30, deadline=None,
            suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
        ),
    )


@given(cap=st.integers(min_value=1, max_value=5), wanted=st.lists(st.integers(min_value=1, max_value=3), max_size=8))
@settings(max_examples=30, deadline=None)
@pytest.mark.django_db
def test_sold_count_never_exceeds_the_cap_whatever_is_ordered(cap, wanted):
    with transaction.atomic():
        merchant = MerchantFactory()
        promo = promotion(merchant, stock_cap=cap, per_member_limit=3)
        store = promo.pickup_stores.get()
        taken = 0
        for i, quantity in enumerate(wanted):
            try:
                order_place(
                    promotion=Promotion.objects.get(pk=promo.pk), quantity=quantity, phone=f"1390000{i:04d}",
                    fulfilment="pickup", pickup_store=store, submit_key=str(i),
                )
                taken += quantity
            except SoldOut:
                assert taken + quantity > cap
        promo.refresh_from_db()
        assert promo.sold_count == taken <= cap
        assert promo.status == (P.SOLD_OUT if taken == cap else P.LIVE)
        transaction.set_rollback(True)
