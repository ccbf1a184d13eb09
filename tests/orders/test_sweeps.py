"""The periodic sweeps: unpaid orders cancelled after their merchant's limit with their stock released,
and promotions stored as what time and stock say they are. Both are safe to run any number of times."""

from datetime import timedelta

import pytest
from django.utils import timezone

from orders import tasks
from orders.models import Order, OrderEvent, Promotion
from orders.services import order_mark_paid, order_place, orders_cancel_unpaid, promotions_advance
from tests.factories import MerchantFactory, StoreFactory, promotion

P, OS = Promotion.Status, Order.Status

pytestmark = pytest.mark.django_db

_phones = iter(range(10_000))


def placed(promo: Promotion, *, quantity: int = 1, age: timedelta, now) -> Order:
    """An order of `promo` placed `age` before `now` (and not paid)."""
    store = promo.pickup_stores.first()
    order = order_place(
        promotion=Promotion.objects.get(pk=promo.pk), quantity=quantity, phone=f"1390{next(_phones):07d}",
        fulfilment="pickup", pickup_store=store, submit_key=f"key-{Order.objects.count()}",
    )
    Order.objects.filter(pk=order.pk).update(created_at=now - age)
    return Order.objects.get(pk=order.pk)


def sold(promo: Promotion) -> int:
    return Promotion.objects.get(pk=promo.pk).sold_count


def statuses(*orders: Order) -> list[str]:
    return [Order.objects.get(pk=order.pk).status for order in orders]


# --------------------------------------------------------------------------- unpaid orders


def test_unpaid_orders_are_cancelled_after_their_own_merchants_limit():
    # Given a merchant that waits 5 minutes for payment and one that waits an hour
    now = timezone.now()
    quick = promotion(MerchantFactory(slug="quick", unpaid_order_minutes=5), per_member_limit=5)
    patient = promotion(MerchantFactory(slug="patient", unpaid_order_minutes=60), per_member_limit=5)
    quick_late = placed(quick, quantity=2, age=timedelta(minutes=6), now=now)
    quick_fresh = placed(quick, quantity=1, age=timedelta(minutes=4), now=now)
    patient_waiting = placed(patient, quantity=3, age=timedelta(minutes=30), now=now)  # late for `quick` only
    patient_late = placed(patient, quantity=4, age=timedelta(minutes=61), now=now)
    # When the sweep runs
    cancelled = orders_cancel_unpaid(now=now)
    # Then only the orders past their own merchant's limit are cancelled, closed at the sweep's time
    assert cancelled == 2
    assert statuses(quick_late, quick_fresh, patient_waiting, patient_late) == [
        OS.CANCELLED, OS.PENDING_PAYMENT, OS.PENDING_PAYMENT, OS.CANCELLED,
    ]
    assert Order.objects.get(pk=quick_late.pk).closed_at == now
    # and exactly their units go back on sale
    assert (sold(quick), sold(patient)) == (1, 3)


def test_an_order_exactly_at_the_limit_still_has_time_to_pay():
    now = timezone.now()
    promo = promotion(MerchantFactory(unpaid_order_minutes=15))
    order = placed(promo, age=timedelta(minutes=15), now=now)
    assert orders_cancel_unpaid(now=now) == 0
    assert statuses(order) == [OS.PENDING_PAYMENT]


def test_paid_orders_are_never_cancelled_however_old():
    now = timezone.now()
    promo = promotion(MerchantFactory(unpaid_order_minutes=15), per_member_limit=5)
    paid = order_mark_paid(order=placed(promo, quantity=2, age=timedelta(days=3), now=now))
    events = OrderEvent.objects.count()
    assert orders_cancel_unpaid(now=now) == 0
    paid_now = Order.objects.get(pk=paid.pk)
    assert (paid_now.status, paid_now.closed_at) == (OS.PAID, None)
    assert sold(promo) == 2 and OrderEvent.objects.count() == events


def test_each_cancelled_order_gets_one_worker_event():
    now = timezone.now()
    promo = promotion(MerchantFactory(unpaid_order_minutes=15))
    late = [placed(promo, age=timedelta(hours=1), now=now) for _ in range(3)]
    fresh = placed(promo, age=timedelta(minutes=1), now=now)
    orders_cancel_unpaid(now=now)
    cancel_events = OrderEvent.objects.filter(to_status=OS.CANCELLED)
    assert sorted(cancel_events.values_list("order_id", flat=True)) == sorted(o.pk for o in late)
    assert {(e.from_status, e.channel, e.merchant_id) for e in cancel_events} == {
        (OS.PENDING_PAYMENT, OrderEvent.Channel.WORKER, promo.merchant_id)
    }
    assert not fresh.events.filter(to_status=OS.CANCELLED).exists()


def test_a_sold_out_promotion_is_back_on_sale_when_unpaid_orders_release_its_stock():
    # Given a promotion sold out by orders that were never paid
    now = timezone.now()
    promo = promotion(MerchantFactory(unpaid_order_minutes=15), stock_cap=3, per_member_limit=3)
    placed(promo, quantity=3, age=timedelta(minutes=20), now=now)
    assert Promotion.objects.get(pk=promo.pk).status == P.SOLD_OUT
    # When the sweep cancels them
    orders_cancel_unpaid(now=now)
    # Then the promotion is live again with all its stock
    promo.refresh_from_db()
    assert (promo.status, promo.sold_count, promo.stock_left) == (P.LIVE, 0, 3)


def test_released_stock_can_be_bought_at_once():
    # Given a sold-out promotion whose unpaid order was cancelled
    now = timezone.now()
    promo = promotion(MerchantFactory(unpaid_order_minutes=15), stock_cap=1, per_member_limit=1)
    placed(promo, age=timedelta(minutes=20), now=now)
    orders_cancel_unpaid(now=now)
    # Then a new customer can order the unit
    store = promo.pickup_stores.get()
    again = order_place(
        promotion=Promotion.objects.get(pk=promo.pk), quantity=1, phone="137 0000 0000", fulfilment="pickup",
        pickup_store=store, submit_key="second-chance",
    )
    assert again.status == OS.PENDING_PAYMENT and sold(promo) == 1


def test_stock_released_before_the_promotion_sweep_runs_is_already_on_sale():
    # Given stock released (cancelled order) while the stored status still says sold out
    promo = promotion(MerchantFactory(), stock_cap=1, per_member_limit=1)
    store = promo.pickup_stores.get()
    first = order_place(
        promotion=Promotion.objects.get(pk=promo.pk), quantity=1, phone="139 0000 0001", fulfilment="pickup",
        pickup_store=store, submit_key="first",
    )
    Order.objects.filter(pk=first.pk).update(status=OS.CANCELLED)
    Promotion.objects.filter(pk=promo.pk).update(sold_count=0)
    promo.refresh_from_db()
    assert promo.status == P.SOLD_OUT and promo.effective_status(timezone.now()) == P.LIVE
    # When a customer orders it (the landing page shows the form: it is effectively live)
    order = order_place(
        promotion=promo, quantity=1, phone="139 0000 0002", fulfilment="pickup", pickup_store=store,
        submit_key="second",
    )
    # Then the order is taken, not refused as "sold out" with one left
    assert order.status == OS.PENDING_PAYMENT and sold(promo) == 1


def test_running_the_unpaid_sweep_again_changes_nothing():
    now = timezone.now()
    promo = promotion(MerchantFactory(unpaid_order_minutes=15), per_member_limit=5)
    placed(promo, quantity=2, age=timedelta(hours=1), now=now)
    placed(promo, quantity=1, age=timedelta(minutes=1), now=now)
    assert orders_cancel_unpaid(now=now) == 1
    snapshot = (
        list(Order.objects.order_by("pk").values_list("status", "closed_at")), OrderEvent.objects.count(), sold(promo)
    )
    assert orders_cancel_unpaid(now=now) == 0
    assert orders_cancel_unpaid(now=now + timedelta(seconds=30)) == 0
    assert snapshot == (
        list(Order.objects.order_by("pk").values_list("status", "closed_at")), OrderEvent.objects.count(), sold(promo)
    )


def test_the_unpaid_sweep_works_through_more_orders_than_one_batch():
    now = timezone.now()
    promo = promotion(MerchantFactory(unpaid_order_minutes=15), stock_cap=10, per_member_limit=1)
    for _ in range(7):
        placed(promo, age=timedelta(hours=1), now=now)
    assert orders_cancel_unpaid(now=now, batch_size=3) == 7
    assert sold(promo) == 0 and OrderEvent.objects.filter(to_status=OS.CANCELLED).count() == 7


# --------------------------------------------------------------------------- promotions


def test_a_scheduled_promotion_goes_live_at_its_start():
    now = timezone.now()
    merchant = MerchantFactory()
    starting = promotion(merchant, status="scheduled", starts_at=now, ends_at=now + timedelta(days=1))
    later = promotion(
        merchant, status="scheduled", starts_at=now + timedelta(seconds=1), ends_at=now + timedelta(days=1)
    )
    assert promotions_advance(now=now)["started"] == 1
    assert statuses_of(starting, later) == [P.LIVE, P.SCHEDULED]


def test_promotions_past_their_end_are_ended_whatever_their_stock_or_start():
    now = timezone.now()
    merchant = MerchantFactory()
    week_ago = {"starts_at": now - timedelta(days=7), "ends_at": now}
    live, sold_out, scheduled = (promotion(merchant, status=s, **week_ago) for s in ("live", "sold_out", "scheduled"))
    running = promotion(merchant, starts_at=now - timedelta(days=1), ends_at=now + timedelta(seconds=1))
    assert promotions_advance(now=now)["ended"] == 3
    assert statuses_of(live, sold_out, scheduled, running) == [P.ENDED, P.ENDED, P.ENDED, P.LIVE]
    assert Promotion.objects.get(pk=live.pk).ended_at == now


def test_a_live_promotion_with_nothing_left_is_marked_sold_out():
    merchant = MerchantFactory()
    gone = promotion(merchant, stock_cap=4)
    one_left = promotion(merchant, stock_cap=4)
    Promotion.objects.filter(pk=gone.pk).update(sold_count=4)
    Promotion.objects.filter(pk=one_left.pk).update(sold_count=3)
    assert promotions_advance()["sold_out"] == 1
    assert statuses_of(gone, one_left) == [P.SOLD_OUT, P.LIVE]


def test_drafts_and_ended_promotions_are_left_alone():
    now = timezone.now()
    merchant = MerchantFactory()
    past = {"starts_at": now - timedelta(days=7), "ends_at": now - timedelta(days=1)}
    draft = promotion(merchant, status="draft", **past)
    ended = promotion(merchant, status="ended", starts_at=now - timedelta(hours=1), ends_at=now + timedelta(days=1))
    assert promotions_advance(now=now) == {"ended": 0, "started": 0, "sold_out": 0, "back_on_sale": 0}
    assert statuses_of(draft, ended) == [P.DRAFT, P.ENDED]


def test_running_the_promotion_sweep_again_changes_nothing():
    now = timezone.now()
    merchant = MerchantFactory()
    promotion(merchant, status="scheduled", starts_at=now - timedelta(minutes=1))
    promotion(merchant, starts_at=now - timedelta(days=2), ends_at=now - timedelta(days=1))
    full = promotion(merchant, stock_cap=2)
    Promotion.objects.filter(pk=full.pk).update(sold_count=2)
    first = promotions_advance(now=now)
    assert first == {"ended": 1, "started": 1, "sold_out": 1, "back_on_sale": 0}
    snapshot = list(Promotion.objects.order_by("pk").values_list("status", "ended_at"))
    assert promotions_advance(now=now) == {"ended": 0, "started": 0, "sold_out": 0, "back_on_sale": 0}
    assert list(Promotion.objects.order_by("pk").values_list("status", "ended_at")) == snapshot


def statuses_of(*promos: Promotion) -> list[str]:
    return [Promotion.objects.get(pk=p.pk).status for p in promos]


# --------------------------------------------------------------------------- the Celery tasks


def test_the_unpaid_orders_task_cancels_through_the_service():
    promo = promotion(MerchantFactory(unpaid_order_minutes=15), per_member_limit=5)
    late = placed(promo, quantity=2, age=timedelta(minutes=16), now=timezone.now())
    fresh = placed(promo, quantity=1, age=timedelta(minutes=1), now=timezone.now())
    # Eager mode (conftest): the task runs here, as a worker would run it.
    assert tasks.orders_cancel_unpaid.delay().get() == 1
    assert statuses(late, fresh) == [OS.CANCELLED, OS.PENDING_PAYMENT]
    assert sold(promo) == 1
    assert tasks.orders_cancel_unpaid.delay().get() == 0


def test_the_promotions_task_advances_through_the_service():
    now = timezone.now()
    merchant = MerchantFactory()
    ended = promotion(merchant, starts_at=now - timedelta(days=2), ends_at=now - timedelta(minutes=1))
    started = promotion(merchant, status="scheduled", starts_at=now - timedelta(minutes=1))
    assert tasks.promotions_advance.delay().get() == {"ended": 1, "started": 1, "sold_out": 0, "back_on_sale": 0}
    assert statuses_of(ended, started) == [P.ENDED, P.LIVE]
    assert tasks.promotions_advance.delay().get() == {"ended": 0, "started": 0, "sold_out": 0, "back_on_sale": 0}


def test_sweeps_only_count_what_they_changed_across_merchants():
    now = timezone.now()
    merchants = [MerchantFactory(unpaid_order_minutes=m) for m in (5, 5, 30)]
    promos = [promotion(m, stores=[StoreFactory(merchant=m)], per_member_limit=5) for m in merchants]
    for promo in promos:
        placed(promo, age=timedelta(minutes=10), now=now)
    assert orders_cancel_unpaid(now=now) == 2
    assert [sold(p) for p in promos] == [0, 0, 1]
