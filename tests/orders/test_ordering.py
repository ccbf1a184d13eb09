"""Ordering from the landing page a wall QR opens: what the customer sees for good and bad input,
and that a refused order writes nothing (no order, items, events, member or reserved stock)."""

import re
from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from members.models import Member
from orders.errors import FulfilmentNotAllowed, OverMemberLimit, PromotionNotOnSale, SoldOut
from orders.models import Order, OrderEvent, OrderItem, Promotion, Scan
from orders.services import order_place
from tests.factories import MerchantFactory, ProductFactory, StoreFactory, promotion

PHONE = "138 1234 5678"


@pytest.fixture
def merchant(db):
    return MerchantFactory(slug="tea-house")


@pytest.fixture
def store(merchant):
    return StoreFactory(merchant=merchant, code="jingan")


@pytest.fixture
def offer(merchant, store):
    """Live, 99.00 each, 10 in stock, at most 2 per customer, pickup at `store` or express for 12.00."""
    return promotion(
        merchant, stores=[store], stock_cap=10, per_member_limit=2, allow_express=True,
        shipping_fee=Decimal("12.00"),
    )


def landing_url(promo: Promotion, store=None) -> str:
    return f"/p/{promo.wall_code}" + (f"?s={store.code}" if store else "")


def form_keys(client, promo: Promotion, store=None) -> dict:
    """Open the landing page as a scan would and read the form's hidden fields."""
    response = client.get(landing_url(promo, store))
    assert response.status_code == 200, response.content
    html = response.content.decode()
    return {
        "submit_key": re.search(r'name="submit_key" value="([^"]+)"', html).group(1),
        "scan": re.search(r'name="scan" value="([^"]*)"', html).group(1),
    }


def order_post(client, promo: Promotion, store=None, *, keys: dict | None = None, **fields):
    """Fill in the form the way a customer would (1 for pickup at `store`), overridden by `fields`."""
    data = {
        **(keys or form_keys(client, promo, store)),
        "quantity": 1,
        "phone": PHONE,
        "fulfilment": "pickup",
        "pickup_store": store.code if store else "",
        **fields,
    }
    return client.post(landing_url(promo, store), data)


def written(promo: Promotion) -> dict:
    """Everything an order writes, to compare before and after a refusal."""
    return {
        "orders": Order.objects.count(),
        "items": OrderItem.objects.count(),
        "events": OrderEvent.objects.count(),
        "members": Member.objects.count(),
        "sold": Promotion.objects.get(pk=promo.pk).sold_count,
    }


def errors_shown(response) -> str:
    """The text of the error lists on the page."""
    return " ".join(re.findall(r'<ul class="errorlist[^"]*"[^>]*>(.*?)</ul>', response.content.decode(), re.S))


# --------------------------------------------------------------------------- the good path


def test_pickup_order_is_priced_by_the_server_whatever_the_client_posts(client, offer, store):
    # Given a customer who tampers with every money field a client could send
    response = order_post(
        client, offer, store, quantity=2,
        total="0.01", unit_price="0.01", subtotal="0.01", shipping_fee="0", promo_price="0.01", currency="USD",
    )
    # Then they are sent to pay an order priced from the promotion
    assert response.status_code == 302
    order = Order.objects.get()
    assert response["Location"].endswith(order.token)
    assert (order.unit_price, order.subtotal, order.shipping_fee, order.total) == (
        Decimal("99.00"), Decimal("198.00"), Decimal("0.00"), Decimal("198.00"),
    )
    assert order.currency == "CNY" and order.status == Order.Status.PENDING_PAYMENT
    assert order.pickup_store == store and order.member.phone == "+8613812345678"
    assert Promotion.objects.get(pk=offer.pk).sold_count == 2


def test_express_order_adds_the_promotions_shipping_fee_not_the_posted_one(client, offer, store):
    response = order_post(
        client, offer, store, fulfilment="express", recipient_name="Li Lei", shipping_address="1 Nanjing Road",
        shipping_fee="0.00", total="99.00",
    )
    assert response.status_code == 302
    order = Order.objects.get()
    assert (order.subtotal, order.shipping_fee, order.total) == (Decimal("99.00"), Decimal("12.00"), Decimal("111.00"))
    # No recipient phone typed: the buyer's own number is used for the courier.
    assert order.recipient_phone == "+8613812345678" and order.pickup_store is None


def test_bundle_order_items_are_units_per_purchase_times_quantity(client, merchant, store):
    tea, cup = ProductFactory(merchant=merchant), ProductFactory(merchant=merchant)
    bundle = promotion(merchant, products=[(tea, 2), (cup, 1)], stores=[store])
    assert order_post(client, bundle, store, quantity=3).status_code == 302
    assert dict(OrderItem.objects.values_list("product_id", "quantity")) == {tea.pk: 6, cup.pk: 3}


def test_double_submit_of_one_form_buys_once(client, offer, store):
    # Given one rendered form
    keys = form_keys(client, offer, store)
    # When it is submitted twice (a double tap, a resend after a slow network)
    first = order_post(client, offer, store, keys=keys, quantity=2)
    second = order_post(client, offer, store, keys=keys, quantity=2)
    # Then both answers lead to the same one order, and the stock is reserved once
    assert first.status_code == second.status_code == 302
    assert first["Location"] == second["Location"]
    assert Order.objects.count() == 1 and OrderEvent.objects.count() == 1
    assert Promotion.objects.get(pk=offer.pk).sold_count == 2


def test_a_new_form_is_a_new_purchase(client, offer, store):
    order_post(client, offer, store)
    order_post(client, offer, store, phone="139 0000 0000")
    assert Order.objects.count() == 2


def test_a_tampered_scan_field_loses_the_attribution_not_the_order(client, offer, store):
    keys = {**form_keys(client, offer, store), "scan": "forged:123"}
    assert order_post(client, offer, store, keys=keys).status_code == 302
    assert Order.objects.get().scan_key is None


# --------------------------------------------------------------------------- quantity


@pytest.mark.parametrize(
    ("quantity", "message"),
    [
        ("3", "At most 2 per customer."),
        ("0", "Ensure this value is greater than or equal to 1."),
        ("-1", "Ensure this value is greater than or equal to 1."),
        ("two", "Enter a whole number."),
        ("1.5", "Enter a whole number."),
        ("", "This field is required."),
    ],
)
def test_quantity_out_of_bounds_is_refused_with_a_reason_and_writes_nothing(client, offer, store, quantity, message):
    keys = form_keys(client, offer, store)
    before = written(offer)
    response = order_post(client, offer, store, keys=keys, quantity=quantity)
    assert response.status_code == 400
    assert message in errors_shown(response)
    assert written(offer) == before


def test_quantity_over_the_stock_left_says_how_many_are_left(client, merchant, store):
    promo = promotion(merchant, stores=[store], stock_cap=10, per_member_limit=5)
    order_post(client, promo, store, quantity=5, phone="139 0000 0001")
    order_post(client, promo, store, quantity=3, phone="139 0000 0002")
    keys = form_keys(client, promo, store)
    before = written(promo)
    response = order_post(client, promo, store, keys=keys, quantity=3)
    assert response.status_code == 400
    assert "Only 2 left." in errors_shown(response)
    assert written(promo) == before


def test_the_per_customer_limit_counts_earlier_orders_whatever_the_phone_spelling(client, offer, store):
    # Given a customer who already holds the limit (2) of this offer
    order_post(client, offer, store, quantity=2, phone="138 1234 5678")
    keys = form_keys(client, offer, store)
    before = written(offer)
    # When they order again, typing their number another way
    response = order_post(client, offer, store, keys=keys, phone="+86 138-1234-5678")
    # Then they are told what they hold and nothing more is reserved
    assert response.status_code == 400
    assert "You already have 2 of this offer; at most 2 per customer (0 more)." in errors_shown(response)
    assert written(offer) == before


def test_cancelled_orders_do_not_count_against_the_limit(client, offer, store):
    order_post(client, offer, store, quantity=2)
    Order.objects.update(status=Order.Status.CANCELLED)
    Promotion.objects.filter(pk=offer.pk).update(sold_count=0)
    assert order_post(client, offer, store, quantity=2).status_code == 302


# --------------------------------------------------------------------------- phone


@pytest.mark.parametrize(
    "phone",
    ["12345", "138 1234 567", "138 1234 56789", "abc12345678", "2381234567", "+86 123 4567 8901", "10086"],
)
def test_malformed_phone_is_refused_naming_what_was_typed(client, offer, store, phone):
    keys = form_keys(client, offer, store)
    before = written(offer)
    response = order_post(client, offer, store, keys=keys, phone=phone)
    assert response.status_code == 400
    assert f"“{phone}”" in errors_shown(response)
    assert written(offer) == before


def test_missing_phone_is_refused(client, offer, store):
    keys = form_keys(client, offer, store)
    before = written(offer)
    response = order_post(client, offer, store, keys=keys, phone="")
    assert "This field is required." in errors_shown(response)
    assert written(offer) == before


def test_malformed_recipient_phone_is_refused(client, offer, store):
    keys = form_keys(client, offer, store)
    before = written(offer)
    response = order_post(
        client, offer, store, keys=keys, fulfilment="express", recipient_name="Li Lei",
        shipping_address="1 Nanjing Road", recipient_phone="555",
    )
    assert response.status_code == 400 and "“555”" in errors_shown(response)
    assert written(offer) == before


# --------------------------------------------------------------------------- fulfilment


def test_pickup_at_a_store_not_offering_the_promotion_is_refused(client, merchant, offer, store):
    elsewhere = StoreFactory(merchant=merchant, code="pudong")
    keys = form_keys(client, offer, store)
    before = written(offer)
    response = order_post(client, offer, store, keys=keys, pickup_store=elsewhere.code)
    assert response.status_code == 400
    # One message for one mistake (not also "choose a store": they did choose one)
    assert errors_shown(response) == "<li>Select a valid choice. That choice is not one of the available choices.</li>"
    assert written(offer) == before


def test_pickup_at_another_merchants_store_is_refused(client, offer, store):
    rival_store = StoreFactory(merchant=MerchantFactory(slug="rival"), code="rival-store")
    keys = form_keys(client, offer, store)
    before = written(offer)
    response = order_post(client, offer, store, keys=keys, pickup_store=rival_store.code)
    assert response.status_code == 400
    assert "Select a valid choice." in errors_shown(response)
    assert written(offer) == before


def test_a_closed_pickup_store_of_the_promotion_is_refused(client, merchant, offer, store):
    # Given a store that offered pickup and has since been closed
    closed = StoreFactory(merchant=merchant, code="closed")
    offer.pickup_stores.add(closed)
    keys = form_keys(client, offer, store)
    closed.is_active = False
    closed.save()
    before = written(offer)
    response = order_post(client, offer, store, keys=keys, pickup_store=closed.code)
    assert response.status_code == 400
    assert errors_shown(response) == "<li>Select a valid choice. That choice is not one of the available choices.</li>"
    assert written(offer) == before


def test_pickup_without_a_store_is_refused(client, offer, store):
    keys = form_keys(client, offer, store)
    before = written(offer)
    response = order_post(client, offer, store, keys=keys, pickup_store="")
    assert "Choose the store where you will pick it up." in errors_shown(response)
    assert written(offer) == before


def test_another_merchants_store_code_in_the_link_is_not_credited_with_the_scan(client, offer):
    StoreFactory(merchant=MerchantFactory(slug="rival"), code="rival-store")
    response = client.get(f"/p/{offer.wall_code}?s=rival-store")
    assert response.status_code == 200
    assert Scan.objects.get().store is None


@pytest.mark.parametrize("missing", ["recipient_name", "shipping_address"])
def test_express_without_recipient_or_address_is_refused(client, offer, store, missing):
    keys = form_keys(client, offer, store)
    before = written(offer)
    fields = {"recipient_name": "Li Lei", "shipping_address": "1 Nanjing Road", missing: "  "}
    response = order_post(client, offer, store, keys=keys, fulfilment="express", **fields)
    assert response.status_code == 400
    assert "Needed for delivery." in errors_shown(response)
    assert written(offer) == before


def test_express_is_refused_when_the_promotion_is_pickup_only(client, merchant, store):
    pickup_only = promotion(merchant, stores=[store], allow_express=False)
    keys = form_keys(client, pickup_only, store)
    before = written(pickup_only)
    response = order_post(
        client, pickup_only, store, keys=keys, fulfilment="express", recipient_name="Li Lei",
        shipping_address="1 Nanjing Road",
    )
    assert response.status_code == 400
    assert "Select a valid choice. express is not one of the available choices." in errors_shown(response)
    assert written(pickup_only) == before


def test_pickup_is_refused_when_the_promotion_is_delivery_only(client, merchant, store):
    delivery_only = promotion(merchant, allow_pickup=False, allow_express=True)
    keys = form_keys(client, delivery_only)
    before = written(delivery_only)
    response = order_post(client, delivery_only, keys=keys, fulfilment="pickup", pickup_store=store.code)
    assert response.status_code == 400
    assert "Select a valid choice. pickup is not one of the available choices." in errors_shown(response)
    assert written(delivery_only) == before


# --------------------------------------------------------------------------- which promotions can be ordered


def test_unknown_wall_code_shows_the_not_found_page(client, db):
    response = client.get("/p/ZZZZZZZZZZ")
    assert response.status_code == 404
    assert "We could not find this offer." in response.content.decode()
    assert client.post("/p/ZZZZZZZZZZ", {"quantity": 1}).status_code == 404
    assert not Scan.objects.exists() and not Order.objects.exists()


def test_wall_code_typed_in_lower_case_still_opens_the_offer(client, offer):
    assert client.get(f"/p/{offer.wall_code.lower()}").status_code == 200


def test_a_draft_is_not_found_and_cannot_be_ordered(client, merchant, store):
    draft = promotion(merchant, stores=[store], status="draft")
    response = client.get(landing_url(draft, store))
    assert response.status_code == 404
    assert "We could not find this offer." in response.content.decode()
    response = order_post(client, draft, store, keys={"submit_key": "k" * 32, "scan": ""})
    assert response.status_code == 404
    assert not Scan.objects.exists() and not Order.objects.exists() and not Member.objects.exists()


@pytest.mark.parametrize("how", ["ended by the manager", "past its end, sweep not yet run"])
def test_an_ended_offer_is_gone_with_no_form(client, merchant, store, how):
    if how == "ended by the manager":
        ended = promotion(merchant, stores=[store], status="ended")
    else:
        now = timezone.now()
        ended = promotion(
            merchant, stores=[store], starts_at=now - timedelta(days=2),
            ends_at=now - timedelta(minutes=1),
        )
    response = client.get(landing_url(ended, store))
    assert response.status_code == 410
    html = response.content.decode()
    assert "This offer has ended." in html and 'id="order-form"' not in html
    before = written(ended)
    response = order_post(client, ended, store, keys={"submit_key": "k" * 32, "scan": ""})
    assert response.status_code >= 400
    assert written(ended) == before


def test_a_sold_out_offer_says_so_and_takes_no_order(client, merchant, store):
    promo = promotion(merchant, stores=[store], stock_cap=2, per_member_limit=2)
    order_post(client, promo, store, quantity=2, phone="139 0000 0001")
    response = client.get(landing_url(promo, store))
    html = response.content.decode()
    assert response.status_code == 200
    assert "Sold out." in html and 'id="order-form"' not in html
    before = written(promo)
    response = order_post(client, promo, store, keys={"submit_key": "k" * 32, "scan": ""})
    assert response.status_code == 400 and "Sold out." in response.content.decode()
    assert written(promo) == before


def test_the_last_unit_sold_between_opening_and_submitting_the_form_is_refused(client, merchant, store):
    # Given a customer looking at the form for the last unit
    promo = promotion(merchant, stores=[store], stock_cap=1, per_member_limit=1)
    keys = form_keys(client, promo, store)
    # When someone else buys it first
    order_place(
        promotion=Promotion.objects.get(pk=promo.pk), quantity=1, phone="139 0000 0001",
        fulfilment="pickup", pickup_store=store, submit_key="other-form",
    )
    before = written(promo)
    response = order_post(client, promo, store, keys=keys)
    # Then they are told it is sold out and nothing of theirs is written
    assert response.status_code == 400 and "Sold out." in response.content.decode()
    assert written(promo) == before


def test_a_scheduled_offer_shows_when_it_starts_and_takes_no_order(client, merchant, store):
    now = timezone.now()
    scheduled = promotion(
        merchant, stores=[store], status="scheduled", starts_at=now + timedelta(hours=2),
        ends_at=now + timedelta(days=2),
    )
    response = client.get(landing_url(scheduled, store))
    html = response.content.decode()
    assert response.status_code == 200
    assert "On sale from" in html and 'id="order-form"' not in html
    before = written(scheduled)
    response = order_post(client, scheduled, store, keys={"submit_key": "k" * 32, "scan": ""})
    assert response.status_code == 400
    assert written(scheduled) == before


# --------------------------------------------------------------------------- the service refuses without half-writes


def place(promo: Promotion, store, **fields) -> Order:
    return order_place(
        promotion=Promotion.objects.get(pk=promo.pk),
        **{"quantity": 1, "phone": PHONE, "fulfilment": "pickup", "pickup_store": store, "submit_key": "form-1",
           **fields},
    )


def test_the_service_refuses_a_closed_or_foreign_pickup_store(merchant, offer, store):
    closed = StoreFactory(merchant=merchant, is_active=False)
    offer.pickup_stores.add(closed)
    foreign = StoreFactory(merchant=MerchantFactory(slug="rival"))
    for wrong in (closed, foreign, None):
        with pytest.raises(FulfilmentNotAllowed, match="Choose one of the pickup stores listed for this offer."):
            place(offer, wrong)
    assert written(offer) == {"orders": 0, "items": 0, "events": 0, "members": 0, "sold": 0}


def test_a_refused_first_order_leaves_no_member_behind(merchant, store):
    # Given a sold-out offer (stored live; the stock says otherwise) and a customer never seen before
    promo = promotion(merchant, stores=[store], stock_cap=1)
    place(promo, store, phone="139 0000 0001", submit_key="first")
    before = written(promo)
    # When they try to order
    with pytest.raises(SoldOut):
        place(promo, store, phone="137 0000 0002")
    # Then no member was created for an order that never existed
    assert written(promo) == before


@pytest.mark.parametrize("status", ["scheduled", "ended"])
def test_an_offer_not_on_sale_refuses_without_creating_a_member(merchant, store, status):
    now = timezone.now()
    promo = promotion(
        merchant, stores=[store], status=status, starts_at=now + timedelta(hours=1),
        ends_at=now + timedelta(days=1),
    )
    with pytest.raises(PromotionNotOnSale):
        place(promo, store)
    assert written(promo) == {"orders": 0, "items": 0, "events": 0, "members": 0, "sold": 0}


def test_the_service_refuses_quantities_below_one_and_over_the_limit(merchant, store):
    promo = promotion(merchant, stores=[store], per_member_limit=2)
    for quantity in (0, -3, 3):
        with pytest.raises(OverMemberLimit):
            place(promo, store, quantity=quantity)
    assert written(promo) == {"orders": 0, "items": 0, "events": 0, "members": 0, "sold": 0}


def test_resubmitting_a_form_returns_its_order_even_when_the_limit_is_now_reached(merchant, store):
    # Given a first order that took the customer's whole limit and the last unit
    promo = promotion(merchant, stores=[store], stock_cap=1, per_member_limit=1)
    first = place(promo, store, submit_key="form-1")
    # When the same form comes in again
    again = place(promo, store, submit_key="form-1")
    # Then it is the same order, not "sold out" or "over the limit"
    assert again.pk == first.pk
    assert Order.objects.count() == 1 and Promotion.objects.get(pk=promo.pk).sold_count == 1


def test_an_express_order_without_a_recipient_phone_gives_the_courier_the_buyers(offer):
    order = place(
        offer, None, fulfilment="express", phone="139 0000 0009", recipient_name="Li Lei",
        shipping_address="1 Nanjing Road",
    )
    assert order.recipient_phone == "+8613900000009"
    assert order.total == Decimal("111.00")
