"""A manager builds promotions in the admin: exact validation messages, tenancy, publish/end, safe edits."""

from datetime import timedelta
from decimal import Decimal

import pytest
from django.urls import reverse
from django.utils import timezone

from orders.codes import ALPHABET, WALL_CODE_LENGTH
from orders.models import Promotion, PromotionItem
from orders.services import order_place
from tests.factories import MerchantFactory, ProductFactory, StoreFactory, promotion, staff

P = Promotion.Status
ADD_URL = reverse("admin:orders_promotion_add")
CHANGELIST_URL = reverse("admin:orders_promotion_changelist")


@pytest.fixture
def shop(client):
    merchant = MerchantFactory(slug="lotus")
    store = StoreFactory(merchant=merchant, name="Xintiandi", code="xtd")
    second = StoreFactory(merchant=merchant, name="Jing'an", code="jingan")
    tea = ProductFactory(merchant=merchant, name="Longjing tea", sku="LJ")
    manager = staff(merchant, "manager", username="lotus_manager")
    client.force_login(manager)
    return merchant, store, second, tea


def split(moment):
    local = timezone.localtime(moment)
    return local.strftime("%Y-%m-%d"), local.strftime("%H:%M:%S")


def form_data(*, stores, product, starts_at=None, ends_at=None, **overrides):
    """What the admin add form posts for a valid pickup promotion of one product."""
    now = timezone.now()
    starts_at = starts_at or now - timedelta(minutes=5)
    ends_at = ends_at or now + timedelta(days=7)
    (start_date, start_time), (end_date, end_time) = split(starts_at), split(ends_at)
    data = {
        "title": "Spring tea",
        "description": "",
        "promo_price": "99.00",
        "original_price": "268.00",
        "starts_at_0": start_date, "starts_at_1": start_time,
        "ends_at_0": end_date, "ends_at_1": end_time,
        "stock_cap": "50",
        "per_member_limit": "2",
        "allow_pickup": "on",
        "pickup_stores": [s.pk for s in stores],
        "pickup_days": "7",
        "shipping_fee": "0.00",
        "items-TOTAL_FORMS": "1", "items-INITIAL_FORMS": "0", "items-MIN_NUM_FORMS": "1", "items-MAX_NUM_FORMS": "1000",
        "items-0-product": product.pk, "items-0-quantity": "1",
        "_save": "Save",
    }
    for name, value in overrides.items():
        if value is None:
            data.pop(name, None)
        else:
            data[name] = value
    return data


def errors_of(response) -> dict[str, list[str]]:
    """The form's and the inline's field errors, as the manager reads them."""
    assert response.status_code == 200, "the form should be shown again with its errors"
    errors = {name: list(messages) for name, messages in response.context["adminform"].form.errors.items()}
    for formset in response.context["inline_admin_formsets"]:
        for form in formset.formset.forms:
            errors.update({f"item {name}": list(messages) for name, messages in form.errors.items()})
        errors.update({"items": list(formset.formset.non_form_errors())} if formset.formset.non_form_errors() else {})
    return errors


# --------------------------------------------------------------------------- validation says exactly what is wrong


@pytest.mark.django_db
def test_end_before_start_is_refused(client, shop):
    _merchant, store, _second, tea = shop
    now = timezone.now()
    data = form_data(stores=[store], product=tea, starts_at=now + timedelta(days=2), ends_at=now + timedelta(days=1))

    response = client.post(ADD_URL, data)

    assert errors_of(response) == {"ends_at": ["The end must be after the start."]}
    assert not Promotion.objects.exists()


@pytest.mark.django_db
@pytest.mark.parametrize("price", ["0", "0.00", "-5"])
def test_a_promo_price_that_is_not_positive_is_refused(client, shop, price):
    _merchant, store, _second, tea = shop

    response = client.post(ADD_URL, form_data(stores=[store], product=tea, promo_price=price))

    assert errors_of(response) == {"promo_price": ["The promo price must be more than zero."]}
    assert not Promotion.objects.exists()


@pytest.mark.django_db
def test_an_original_price_below_the_promo_price_is_refused(client, shop):
    _merchant, store, _second, tea = shop

    response = client.post(ADD_URL, form_data(stores=[store], product=tea, promo_price="99", original_price="80"))

    assert errors_of(response) == {"original_price": ["The original price cannot be lower than the promo price."]}


@pytest.mark.django_db
def test_pickup_without_a_store_is_refused(client, shop):
    _merchant, _store, _second, tea = shop

    response = client.post(ADD_URL, form_data(stores=[], product=tea))

    assert errors_of(response) == {"pickup_stores": ["Pickup is allowed: choose at least one pickup store."]}
    assert not Promotion.objects.exists()


@pytest.mark.django_db
def test_a_promotion_with_no_way_to_get_the_goods_is_refused(client, shop):
    _merchant, _store, _second, tea = shop

    response = client.post(ADD_URL, form_data(stores=[], product=tea, allow_pickup=None, allow_express=None))

    assert errors_of(response) == {"allow_pickup": ["Allow pickup in store, express delivery, or both."]}


@pytest.mark.django_db
def test_express_only_needs_no_store(client, shop):
    _merchant, _store, _second, tea = shop

    response = client.post(
        ADD_URL, form_data(stores=[], product=tea, allow_pickup=None, allow_express="on", shipping_fee="12.00")
    )

    assert response.status_code == 302
    promo = Promotion.objects.get()
    assert promo.allow_express and not promo.allow_pickup and promo.shipping_fee == Decimal("12.00")


@pytest.mark.django_db
def test_another_merchants_store_is_refused_and_nothing_is_saved(client, shop):
    _merchant, store, _second, tea = shop
    rival_store = StoreFactory(merchant=MerchantFactory(slug="rival"), name="Rival mall")

    response = client.post(ADD_URL, form_data(stores=[store, rival_store], product=tea))

    assert errors_of(response) == {
        "pickup_stores": [f"Select a valid choice. {rival_store.pk} is not one of the available choices."]
    }
    assert "Rival mall" not in response.content.decode()
    assert not Promotion.objects.exists() and not PromotionItem.objects.exists()


@pytest.mark.django_db
def test_another_merchants_product_is_refused_and_nothing_is_saved(client, shop):
    _merchant, store, _second, _tea = shop
    rival_tea = ProductFactory(merchant=MerchantFactory(slug="rival"), name="Rival tea")

    response = client.post(ADD_URL, form_data(stores=[store], product=rival_tea))

    assert errors_of(response) == {
        "item product": ["Select a valid choice. That choice is not one of the available choices."]
    }
    assert "Rival tea" not in response.content.decode()
    assert not Promotion.objects.exists() and not PromotionItem.objects.exists()


@pytest.mark.django_db
def test_a_promotion_needs_a_product(client, shop):
    _merchant, store, _second, tea = shop
    empty_row = form_data(stores=[store], product=tea, **{"items-0-product": "", "items-0-quantity": ""})
    no_rows = form_data(stores=[store], product=tea, **{"items-TOTAL_FORMS": "0"})

    assert errors_of(client.post(ADD_URL, empty_row)) == {
        "item product": ["This field is required."], "item quantity": ["This field is required."]
    }
    assert errors_of(client.post(ADD_URL, no_rows)) == {"items": ["Please submit at least 1 form."]}
    assert not Promotion.objects.exists()


@pytest.mark.django_db
def test_the_only_product_of_a_promotion_cannot_be_deleted(client, shop):
    merchant, store, _second, _tea = shop
    promo = promotion(merchant, stores=[store])
    url, data = change_data(client, promo)
    data["items-0-DELETE"] = "on"

    response = client.post(url, data)

    assert errors_of(response) == {"items": ["Please submit at least 1 form."]}
    assert promo.items.count() == 1


# --------------------------------------------------------------------------- a valid one, its lifecycle


@pytest.mark.django_db
def test_a_valid_promotion_is_saved_as_a_draft_with_a_wall_code(client, shop):
    merchant, store, second, tea = shop

    response = client.post(ADD_URL, form_data(stores=[store, second], product=tea, merchant=999))

    assert response.status_code == 302, errors_of(response)
    promo = Promotion.objects.get()
    assert promo.status == P.DRAFT and promo.sold_count == 0
    assert promo.merchant == merchant  # whatever merchant id was posted
    assert len(promo.wall_code) == WALL_CODE_LENGTH == 10 and set(promo.wall_code) <= set(ALPHABET)
    assert set(promo.pickup_stores.all()) == {store, second}
    item = promo.items.get()
    assert (item.product, item.quantity, item.merchant) == (tea, 1, merchant)
    assert (promo.promo_price, promo.original_price) == (Decimal("99.00"), Decimal("268.00"))


def publish(client, *promotions, action="publish"):
    return client.post(
        CHANGELIST_URL, {"action": action, "_selected_action": [p.pk for p in promotions]}, follow=True
    )


def messages_of(response) -> list[str]:
    return [str(m) for m in response.context["messages"]]


@pytest.mark.django_db
def test_publish_puts_a_draft_live_and_end_ends_it(client, shop):
    merchant, store, _second, _tea = shop
    draft = promotion(merchant, stores=[store], status=P.DRAFT)

    response = publish(client, draft)

    draft.refresh_from_db()
    assert draft.status == P.LIVE and draft.published_at is not None
    assert messages_of(response) == ["1 promotion published."]

    response = publish(client, draft, action="end")

    draft.refresh_from_db()
    assert draft.status == P.ENDED and draft.ended_at is not None
    assert messages_of(response) == ["1 promotion ended."]


@pytest.mark.django_db
def test_publishing_a_promotion_that_starts_later_schedules_it(client, shop):
    merchant, store, _second, _tea = shop
    now = timezone.now()
    draft = promotion(merchant, stores=[store], status=P.DRAFT, starts_at=now + timedelta(days=1),
                      ends_at=now + timedelta(days=3))

    publish(client, draft)

    draft.refresh_from_db()
    assert draft.status == P.SCHEDULED


@pytest.mark.django_db
def test_publish_says_why_a_promotion_cannot_go_on_the_wall(client, shop):
    merchant, store, _second, _tea = shop
    no_store = promotion(merchant, stores=[], status=P.DRAFT, title="No store")
    live = promotion(merchant, stores=[store], title="Already live")

    response = publish(client, no_store, live)

    assert sorted(messages_of(response)) == [
        "Already live: Only drafts can be published.",
        "No store: Pickup is allowed but no active pickup store is chosen.",
    ]
    assert Promotion.objects.get(pk=no_store.pk).status == P.DRAFT


@pytest.mark.django_db
def test_actions_never_touch_another_merchants_promotions(client, shop):
    _merchant, _store, _second, _tea = shop
    rival_promo = promotion(MerchantFactory(slug="rival"))

    publish(client, rival_promo, action="end")

    assert Promotion.objects.get(pk=rival_promo.pk).status == P.LIVE


# --------------------------------------------------------------------------- edits do not undo sales


def change_data(client, promo) -> tuple[str, dict]:
    """Load the change form (as the manager's browser would) and return what it would post back."""
    url = reverse("admin:orders_promotion_change", args=[promo.pk])
    response = client.get(url)
    assert response.status_code == 200
    item = promo.items.get()
    data = form_data(
        stores=list(promo.pickup_stores.all()), product=item.product, starts_at=promo.starts_at, ends_at=promo.ends_at,
        title="Spring tea (renamed)", stock_cap=str(promo.stock_cap),
        **{"items-INITIAL_FORMS": "1", "items-0-id": str(item.pk), "items-0-promotion": str(promo.pk)},
    )
    return url, data


@pytest.mark.django_db
def test_editing_a_live_promotion_keeps_the_units_sold_meanwhile(client, shop):
    merchant, store, _second, _tea = shop
    promo = promotion(merchant, stores=[store], stock_cap=10, per_member_limit=3)
    url, data = change_data(client, promo)

    # A customer buys while the manager's form is open.
    order_place(promotion=promo, quantity=3, phone="13812345678", fulfilment="pickup", submit_key="k",
                pickup_store=store)
    response = client.post(url, data)

    assert response.status_code == 302, errors_of(response)
    promo.refresh_from_db()
    assert promo.title == "Spring tea (renamed)"
    assert promo.sold_count == 3 and promo.stock_left == 7
    assert promo.status == P.LIVE


@pytest.mark.django_db
def test_an_order_placed_while_the_admin_saves_is_not_lost(client, shop, monkeypatch):
    """The tighter race: the order lands after the admin read the row for this very save."""
    merchant, store, _second, _tea = shop
    promo = promotion(merchant, stores=[store], stock_cap=2, per_member_limit=2)
    url, data = change_data(client, promo)
    from orders import admin as promotion_admin

    clean = promotion_admin.PromotionForm.clean

    def clean_then_a_customer_buys(form):
        cleaned = clean(form)
        order_place(promotion=promo, quantity=2, phone="13812345678", fulfilment="pickup", submit_key="race",
                    pickup_store=store)
        return cleaned

    monkeypatch.setattr(promotion_admin.PromotionForm, "clean", clean_then_a_customer_buys)
    response = client.post(url, data)

    assert response.status_code == 302, errors_of(response)
    promo.refresh_from_db()
    # The form's copy said 0 sold and live; the order took the last units and marked it sold out.
    assert promo.sold_count == 2 and promo.status == P.SOLD_OUT
    assert promo.title == "Spring tea (renamed)"


@pytest.mark.django_db
def test_the_stock_cap_cannot_go_below_what_is_sold(client, shop):
    merchant, store, _second, _tea = shop
    promo = promotion(merchant, stores=[store], stock_cap=10, per_member_limit=5)
    order_place(promotion=promo, quantity=4, phone="13812345678", fulfilment="pickup", submit_key="k",
                pickup_store=store)
    url, data = change_data(client, promo)
    data["stock_cap"] = "3"

    response = client.post(url, data)

    assert errors_of(response) == {"stock_cap": ["4 are already sold; the cap cannot be lower."]}
    promo.refresh_from_db()
    assert promo.stock_cap == 10 and promo.sold_count == 4
