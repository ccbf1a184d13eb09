"""Tenant isolation of promotions, orders, scans and members, seen from the rival merchant's side.

The same matrix as tests/merchants/test_isolation.py, for the orders and members admins: the
rival's manager (and analyst, who reads) must find our promotions, their items, orders with
their items and events, scans and members exactly as invisible as rows that do not exist, on
every surface they reach: changelists, object URLs, add and change forms (choices shown *and*
accepted), list filters, search, autocomplete, actions, QR downloads and goods walls, the index.
The platform superuser, who sees every merchant, is the positive control that each probe can
find a row.
"""

import json
import re
from collections.abc import Callable
from dataclasses import dataclass

import pytest
from django.contrib import admin
from django.contrib.auth import get_user_model
from django.contrib.contenttypes.models import ContentType
from django.urls import reverse

from members.models import Member
from merchants.models import Merchant, Product, Store
from o2o.tenancy import TenantAdmin, TenantTabularInline, tenant_filter
from orders.models import Order, OrderEvent, OrderItem, Promotion, PromotionItem, Scan
from orders.services import order_mark_paid, order_place
from tests.factories import ProductFactory, Side, StoreFactory, promotion
from tests.merchants.test_isolation import MISSING_PK, listed, select_options, without
from tests.orders.test_promotion_admin import form_data

User = get_user_model()
P = Promotion.Status
# As the customers typed them; stored as "+86…". Neither number contains the other.
PHONES = {"ours": "13811112222", "rival": "13933334444"}


@dataclass
class Sales:
    """One merchant's promotions and what customers did with them."""

    side: Side
    promotion: Promotion  # live, pickup at side.store, one side.product per purchase
    draft: Promotion
    item: PromotionItem
    order: Order  # paid, for pickup at side.store: it has a pickup code
    order_item: OrderItem
    scan: Scan
    member: Member
    phone: str


def sales_of(side: Side) -> Sales:
    slug = side.merchant.slug
    live = promotion(side.merchant, products=[(side.product, 1)], stores=[side.store], title=f"{slug} Longjing offer")
    draft = promotion(
        side.merchant, products=[(side.product, 1)], stores=[side.store], title=f"{slug} draft offer", status=P.DRAFT
    )
    scan = Scan.objects.create(merchant=side.merchant, promotion=live, store=side.store)
    order = order_place(
        promotion=live, quantity=1, phone=PHONES[slug], fulfilment="pickup", submit_key=f"{slug}-1",
        pickup_store=side.store, scan_key=scan.key,
    )
    order = order_mark_paid(order=order)
    return Sales(
        side=side, promotion=live, draft=draft, item=live.items.get(), order=order, order_item=order.items.get(),
        scan=scan, member=order.member, phone=PHONES[slug],
    )


@dataclass
class Shop:
    ours: Sales
    rival: Sales
    superuser: User


@pytest.fixture
def shop(demo) -> Shop:
    """The demo's two merchants, each with a live and a draft promotion, a scan, a paid order, a member."""
    return Shop(ours=sales_of(demo.ours), rival=sales_of(demo.rival), superuser=demo.superuser)


def sign_in(client, shop: Shop, role: str) -> None:
    client.force_login(shop.superuser if role == "superuser" else getattr(shop.rival.side, role))


@dataclass(frozen=True)
class Owned:
    """One merchant-owned model with an admin, and how to find a merchant's row of it."""

    model: type
    row: Callable  # Sales -> that merchant's row
    name: Callable  # Sales -> text that shows the row on a page


OWNED = {
    "promotion": Owned(Promotion, lambda s: s.promotion, lambda s: s.promotion.title),
    # Order and scan lists show the promotion; the member list the full phone number.
    "order": Owned(Order, lambda s: s.order, lambda s: s.promotion.title),
    "scan": Owned(Scan, lambda s: s.scan, lambda s: s.promotion.title),
    "member": Owned(Member, lambda s: s.member, lambda s: s.member.phone),
}
VIEWERS = [(model, role) for model in OWNED for role in ("manager", "analyst")]


def admin_url(model_name: str, view: str, *args) -> str:
    app = "members" if model_name == "member" else "orders"
    return reverse(f"admin:{app}_{model_name}_{view}", args=args)


def shows(html: str, text: str) -> bool:
    # Not \b: "+8613811112222" starts with a non-word character.
    return re.search(rf"(?<!\w){re.escape(text)}(?!\w)", html) is not None


def snapshot(model: type, pk) -> dict:
    return model.objects.filter(pk=pk).values().get()


def everything() -> tuple:
    """Every row these admins could write, to show a refused request wrote nothing."""
    return tuple(
        list(model.objects.order_by("pk").values())
        for model in (Promotion, Promotion.pickup_stores.through, PromotionItem, Order, OrderItem, OrderEvent,
                      Scan, Member)
    )


# ============================================================================ admin: rows


@pytest.mark.parametrize("model_name,role", VIEWERS)
def test_changelist_lists_own_rows_and_none_of_another_merchant(client, shop, model_name, role):
    owned = OWNED[model_name]
    sign_in(client, shop, role)

    response = client.get(admin_url(model_name, "changelist"))

    assert response.status_code == 200
    rows = listed(response)
    assert owned.row(shop.rival).pk in {r.pk for r in rows}
    assert {r.merchant_id for r in rows} == {shop.rival.side.merchant.pk}
    html = response.content.decode()
    assert shows(html, owned.name(shop.rival))
    assert not shows(html, owned.name(shop.ours))


@pytest.mark.parametrize("model_name", OWNED)
def test_superuser_changelist_lists_every_merchants_rows(client, shop, model_name):
    owned = OWNED[model_name]
    sign_in(client, shop, "superuser")

    response = client.get(admin_url(model_name, "changelist"))

    assert {r.merchant_id for r in listed(response)} == {shop.ours.side.merchant.pk, shop.rival.side.merchant.pk}
    assert shows(response.content.decode(), owned.name(shop.ours))


@pytest.mark.parametrize("role", ["manager", "analyst"])
@pytest.mark.parametrize("view", ["change", "history", "delete"])
@pytest.mark.parametrize("model_name", OWNED)
def test_another_merchants_object_url_is_404_like_a_missing_id(client, shop, model_name, view, role):
    foreign = OWNED[model_name].row(shop.ours)
    sign_in(client, shop, role)

    response = client.get(admin_url(model_name, view, foreign.pk))
    missing = client.get(admin_url(model_name, view, MISSING_PK))

    # 404, not 403 ("it exists, but not for you") and not the admin's "doesn't exist" redirect.
    assert response.status_code == missing.status_code == 404
    assert without(response.content.decode(), foreign.pk) == without(missing.content.decode(), MISSING_PK)


@pytest.mark.parametrize("view", ["change", "history", "delete"])
@pytest.mark.parametrize("model_name", OWNED)
def test_superuser_opens_any_merchants_object_url(client, shop, model_name, view):
    sign_in(client, shop, "superuser")

    assert client.get(admin_url(model_name, view, OWNED[model_name].row(shop.ours).pk)).status_code == 200


@pytest.mark.parametrize("view", ["change", "delete"])
@pytest.mark.parametrize("model_name", OWNED)
def test_posting_to_another_merchants_object_url_is_404_and_changes_nothing(client, shop, model_name, view):
    owned = OWNED[model_name]
    foreign = owned.row(shop.ours)
    before = everything()
    sign_in(client, shop, "manager")

    response = client.post(
        admin_url(model_name, view, foreign.pk),
        {"post": "yes", "title": "Taken over", "name": "Taken over", "marketing_consent": "on"},
    )

    assert response.status_code == 404
    assert everything() == before


@pytest.mark.parametrize("model_name", OWNED)
def test_view_on_site_shortcut_answers_another_merchants_id_like_a_missing_one(client, shop, model_name):
    # /admin/r/<content type>/<id>/ looks rows up unscoped; were an order ever given get_absolute_url()
    # (its page is at an unguessable token), this redirect must not hand out another merchant's link.
    content_type = ContentType.objects.get_for_model(OWNED[model_name].model)
    foreign_pk = OWNED[model_name].row(shop.ours).pk
    sign_in(client, shop, "manager")

    foreign = client.get(reverse("admin:view_on_site", args=[content_type.pk, foreign_pk]))
    missing = client.get(reverse("admin:view_on_site", args=[content_type.pk, MISSING_PK]))

    assert foreign.status_code == missing.status_code == 404
    assert without(foreign.content.decode(), foreign_pk) == without(missing.content.decode(), MISSING_PK)


# Inline-only models: their one surface is the parent's page. (parent admin, Sales -> parent, Sales -> rows)
INLINES = {
    "promotionitem": ("promotion", lambda s: s.promotion, lambda s: [s.item]),
    "orderitem": ("order", lambda s: s.order, lambda s: [s.order_item]),
    "orderevent": ("order", lambda s: s.order, lambda s: list(s.order.events.all())),  # placed, paid
}


def _inline_rows(response, model: type) -> set[int]:
    return {
        form.instance.pk
        for formset in response.context["inline_admin_formsets"]
        if formset.formset.model is model
        for form in formset.formset.initial_forms
    }


@pytest.mark.parametrize("role", ["manager", "analyst", "superuser"])
@pytest.mark.parametrize("inline", INLINES)
def test_inline_rows_are_those_of_the_page_and_another_merchants_parent_is_404(client, shop, inline, role):
    parent_admin, parent, rows = INLINES[inline]
    model = type(rows(shop.ours)[0])
    sign_in(client, shop, role)
    own, others = (shop.ours, shop.rival) if role == "superuser" else (shop.rival, shop.ours)

    response = client.get(admin_url(parent_admin, "change", parent(own).pk))

    assert response.status_code == 200
    assert _inline_rows(response, model) == {row.pk for row in rows(own)}
    if role != "superuser":
        assert client.get(admin_url(parent_admin, "change", parent(others).pk)).status_code == 404


def test_every_admin_of_a_merchant_owned_model_and_its_inlines_are_tenant_scoped():
    # A model admin or inline added without the tenancy base classes would list every merchant's rows.
    for model, model_admin in admin.site._registry.items():
        fields = {f.name for f in model._meta.get_fields()}
        if model is not Merchant and "merchant" not in fields and not getattr(model, "tenant_path", None):
            continue  # the platform's own: users, groups, API tokens
        assert isinstance(model_admin, TenantAdmin), f"{model.__name__}'s admin is not a TenantAdmin"
        for inline in model_admin.inlines:
            assert issubclass(inline, TenantTabularInline), f"{inline.__name__} is not a TenantTabularInline"


# ============================================================================ admin: forms

# (admin, <select> name, target model, form): selects whose options must all be the viewer's merchant's.
CHOICE_FIELDS = [
    ("promotion", "merchant", Merchant, "add"),
    ("promotion", "merchant", Merchant, "change"),
    ("promotion", "pickup_stores", Store, "add"),
    ("promotion", "pickup_stores", Store, "change"),
    ("promotion", "items-0-product", Product, "add"),  # the one row a new promotion starts with (min_num)
    ("promotion", "items-0-product", Product, "change"),
    ("promotion", "items-__prefix__-product", Product, "add"),  # the row "Add another" copies
    ("promotion", "items-__prefix__-product", Product, "change"),
    ("member", "merchant", Merchant, "change"),
]
CHOICE_IDS = [f"{m}-{f}-{form}" for m, f, _t, form in CHOICE_FIELDS]


def choice_row(sales: Sales, target: type):
    return {Merchant: sales.side.merchant, Store: sales.side.store, Product: sales.side.product}[target]


def _form_url(shop: Shop, model_name: str, form: str, sales: Sales | None = None) -> str:
    if form == "add":
        return admin_url(model_name, "add")
    return admin_url(model_name, "change", OWNED[model_name].row(sales or shop.rival).pk)


@pytest.mark.parametrize("model_name,field,target,form", CHOICE_FIELDS, ids=CHOICE_IDS)
def test_form_selects_offer_only_own_merchants_rows(client, shop, model_name, field, target, form):
    sign_in(client, shop, "manager")

    response = client.get(_form_url(shop, model_name, form))

    assert response.status_code == 200
    own = target.objects.filter(tenant_filter(target, shop.rival.side.merchant))
    assert select_options(response, field) == {str(pk) for pk in own.values_list("pk", flat=True)}
    assert str(choice_row(shop.ours, target).pk) not in select_options(response, field)


@pytest.mark.parametrize("model_name,field,target,form", CHOICE_FIELDS, ids=CHOICE_IDS)
def test_superuser_form_selects_offer_every_merchants_rows(client, shop, model_name, field, target, form):
    sign_in(client, shop, "superuser")

    response = client.get(_form_url(shop, model_name, form, shop.ours))

    options = select_options(response, field)
    assert {str(choice_row(shop.ours, target).pk), str(choice_row(shop.rival, target).pk)} <= options


def test_promotion_add_form_prefilled_with_another_merchants_ids_shows_nothing_of_them(client, shop):
    # The admin prefills add forms from the query string; a selected option is rendered with its name.
    ours = shop.ours.side
    sign_in(client, shop, "manager")

    response = client.get(admin_url("promotion", "add") + f"?merchant={ours.merchant.pk}&pickup_stores={ours.store.pk}")

    assert response.status_code == 200
    html = response.content.decode()
    for text in (ours.merchant.name, ours.store.name, ours.product.name):
        assert not shows(html, text)


def _add_data(sales: Sales) -> dict:
    """A new promotion of `sales`'s merchant: pickup at its store, one of its product."""
    return form_data(stores=[sales.side.store], product=sales.side.product)


def _change_data(sales: Sales, **overrides) -> dict:
    """What the change form of `sales.promotion` posts back, unchanged but for `overrides`."""
    promo = sales.promotion
    return form_data(
        stores=[sales.side.store], product=sales.side.product, starts_at=promo.starts_at, ends_at=promo.ends_at,
        **{"title": promo.title, "items-INITIAL_FORMS": "1", "items-0-id": str(sales.item.pk),
           "items-0-promotion": str(promo.pk), **overrides},
    )


def _new_row(sales: Sales, product_pk) -> dict:
    return {
        "items-TOTAL_FORMS": "2", "items-1-product": str(product_pk), "items-1-quantity": "2",
        "items-1-promotion": str(sales.promotion.pk),
    }


# case -> (add or change, POST data naming a given row (Sales, pk) as the choice, the target, whose errors)
FOREIGN_CHOICES = {
    "add-pickup_stores": (
        "add", lambda s, pk: _add_data(s) | {"pickup_stores": [s.side.store.pk, pk]}, Store, "pickup_stores",
    ),
    "change-pickup_stores": (
        "change", lambda s, pk: _change_data(s) | {"pickup_stores": [s.side.store.pk, pk]}, Store, "pickup_stores",
    ),
    "add-item-product": ("add", lambda s, pk: _add_data(s) | {"items-0-product": str(pk)}, Product, "item product"),
    "change-item-product": (
        "change", lambda s, pk: _change_data(s) | {"items-0-product": str(pk)}, Product, "item product",
    ),
    "change-new-item-product": ("change", lambda s, pk: _change_data(s) | _new_row(s, pk), Product, "item product"),
}


def _errors(response, field: str) -> list[str]:
    if field == "item product":
        formset = response.context["inline_admin_formsets"][0].formset
        return [str(e) for form in formset.forms for e in form.errors.get("product", [])]
    return [str(e) for e in response.context["adminform"].form.errors.get(field, [])]


@pytest.mark.parametrize("case", FOREIGN_CHOICES)
def test_posting_another_merchants_choice_is_refused_like_a_missing_id_and_saves_nothing(client, shop, case):
    form, data, target, field = FOREIGN_CHOICES[case]
    url = _form_url(shop, "promotion", form)
    foreign_pk = choice_row(shop.ours, target).pk
    sign_in(client, shop, "manager")
    before = everything()

    refused = client.post(url, data(shop.rival, foreign_pk))

    assert refused.status_code == 200  # the form again, with its errors
    errors = _errors(refused, field)
    assert errors, f"{field} accepted another merchant's id"
    assert everything() == before
    assert not shows(refused.content.decode(), str(choice_row(shop.ours, target)))
    # Same words as for an id that does not exist: no existence oracle.
    missing = client.post(url, data(shop.rival, MISSING_PK))
    assert [without(e, foreign_pk) for e in errors] == [without(e, MISSING_PK) for e in _errors(missing, field)]


@pytest.mark.parametrize("case", FOREIGN_CHOICES)
def test_posting_own_merchants_choice_is_accepted(client, shop, case):
    # The control for the refusal above: the same post naming a second row of the viewer's own goes through.
    form, data, target, _field = FOREIGN_CHOICES[case]
    rival = shop.rival.side.merchant
    own = StoreFactory(merchant=rival) if target is Store else ProductFactory(merchant=rival)
    sign_in(client, shop, "manager")

    response = client.post(_form_url(shop, "promotion", form), data(shop.rival, own.pk))

    assert response.status_code == 302, response.context and response.context["errors"]
    saved = Promotion.objects.latest("pk") if form == "add" else shop.rival.promotion
    if target is Store:
        assert own in saved.pickup_stores.all()
    else:
        assert saved.items.filter(product=own).exists()
    # Every item of the rival's promotions is the rival's, and so is its product.
    assert not PromotionItem.objects.filter(promotion__merchant=rival).exclude(merchant=rival, product__merchant=rival)


def _row_of_another_promotion(sales: Sales, item_pk, *, delete: bool) -> dict:
    """The change form with a second, existing row whose id is `item_pk` (set to another product, 9 units)."""
    other = ProductFactory(merchant=sales.side.merchant)
    data = _change_data(sales) | _new_row(sales, other.pk) | {
        "items-INITIAL_FORMS": "2", "items-1-id": str(item_pk), "items-1-quantity": "9",
    }
    return data | ({"items-1-DELETE": "on"} if delete else {})


def _inline_answer(response) -> tuple:
    if response.status_code != 200:
        return response.status_code, response.url
    formset = response.context["inline_admin_formsets"][0].formset
    return 200, [{name: [str(e) for e in errors] for name, errors in form.errors.items()} for form in formset.forms]


@pytest.mark.parametrize("delete", [False, True], ids=["edit", "delete"])
def test_another_merchants_promotion_item_id_in_the_inline_answers_like_a_missing_id(client, shop, delete):
    # The inline's hidden row id names which item a row edits or deletes. Another merchant's item id
    # must neither touch that item nor be told apart from an id that does not exist.
    foreign = shop.ours.item
    before, foreign_before = everything(), snapshot(PromotionItem, foreign.pk)
    sign_in(client, shop, "manager")
    url = admin_url("promotion", "change", shop.rival.promotion.pk)

    response = client.post(url, _row_of_another_promotion(shop.rival, foreign.pk, delete=delete))

    assert snapshot(PromotionItem, foreign.pk) == foreign_before
    missing = client.post(url, _row_of_another_promotion(shop.rival, MISSING_PK, delete=delete))
    assert _inline_answer(response) == _inline_answer(missing)
    if not delete:
        assert response.status_code == 200  # refused, not "saved" with the row silently dropped
        assert everything()[:3] == before[:3]


@pytest.mark.parametrize("field", ["pickup_stores", "product"])
def test_superuser_cannot_join_two_merchants_in_one_promotion(client, shop, field):
    # The superuser's choices are unscoped; the form's and the item's clean() keep a promotion to one merchant.
    ours, rival = shop.ours, shop.rival.side
    sign_in(client, shop, "superuser")
    data = _change_data(ours) | {"merchant": ours.side.merchant.pk}
    if field == "pickup_stores":
        data["pickup_stores"] = [ours.side.store.pk, rival.store.pk]
        expected = f"Not stores of this merchant: {rival.store.name}"
    else:
        data |= _new_row(ours, rival.product.pk)
        expected = "This product belongs to another merchant."
    before = everything()

    response = client.post(admin_url("promotion", "change", ours.promotion.pk), data)

    assert response.status_code == 200
    assert expected in response.content.decode()
    assert everything() == before


def test_superuser_saves_a_promotion_of_one_merchant(client, shop):
    # The control for the refusals above: the superuser's unchanged post of our promotion saves.
    sign_in(client, shop, "superuser")
    data = _change_data(shop.ours, title="Renamed by the platform") | {"merchant": shop.ours.side.merchant.pk}

    response = client.post(admin_url("promotion", "change", shop.ours.promotion.pk), data)

    assert response.status_code == 302
    assert Promotion.objects.get(pk=shop.ours.promotion.pk).title == "Renamed by the platform"


@pytest.mark.parametrize("model_name", ["promotion", "member"])
def test_posted_merchant_is_ignored_rows_stay_with_own_merchant(client, shop, model_name):
    rival, ours = shop.rival, shop.ours.side.merchant
    sign_in(client, shop, "manager")
    if model_name == "promotion":
        url, data = admin_url("promotion", "add"), form_data(stores=[rival.side.store], product=rival.side.product)
    else:
        url, data = admin_url("member", "change", rival.member.pk), {"name": "Ms Chen", "phone": PHONES["ours"]}

    response = client.post(url, data | {"merchant": ours.pk})

    assert response.status_code == 302
    row = Promotion.objects.latest("pk") if model_name == "promotion" else Member.objects.get(pk=rival.member.pk)
    assert row.merchant_id == rival.side.merchant.pk
    if model_name == "member":
        assert (row.name, row.phone) == ("Ms Chen", rival.member.phone)  # the phone is read-only
    else:
        assert set(row.items.values_list("merchant", flat=True)) == {rival.side.merchant.pk}


# ============================================================================ admin: filters, search


# (admin, field, target): every related-field filter of these changelists.
RELATED_FILTERS = [
    ("order", "pickup_store", Store),
    ("order", "promotion", Promotion),
    ("order", "merchant", Merchant),
    ("scan", "store", Store),
    ("scan", "promotion", Promotion),
    ("scan", "merchant", Merchant),
    ("promotion", "merchant", Merchant),
    ("member", "merchant", Merchant),
]
FILTER_IDS = [f"{m}-{f}" for m, f, _t in RELATED_FILTERS]


def filter_rows(sales: Sales, target: type) -> list:
    return {
        Store: [sales.side.store],
        Promotion: [sales.promotion, sales.draft],
        Merchant: [sales.side.merchant],
    }[target]


def _filter_choices(response, field_path: str) -> set[str] | None:
    """The ids the changelist sidebar offers for `field_path`, None if the filter is not shown."""
    specs = [s for s in response.context["cl"].filter_specs if getattr(s, "field_path", None) == field_path]
    return {str(pk) for spec in specs for pk, _label in spec.lookup_choices} if specs else None


@pytest.mark.parametrize("facets", ["", "?_facets=True"], ids=["plain", "facets"])
@pytest.mark.parametrize("model_name,field,target", RELATED_FILTERS, ids=FILTER_IDS)
def test_changelist_filters_offer_none_of_another_merchants_rows(client, shop, model_name, field, target, facets):
    sign_in(client, shop, "manager")

    response = client.get(admin_url(model_name, "changelist") + facets)

    assert response.status_code == 200
    offered = _filter_choices(response, field)
    html = response.content.decode()
    for row in filter_rows(shop.ours, target):
        assert not shows(html, str(row))
    if target is Merchant:
        assert offered is None  # merchant staff are not shown a merchant filter at all
    else:
        assert offered == {str(row.pk) for row in filter_rows(shop.rival, target)}


@pytest.mark.parametrize("model_name,field,target", RELATED_FILTERS, ids=FILTER_IDS)
def test_superuser_changelist_filters_offer_every_merchants_rows(client, shop, model_name, field, target):
    sign_in(client, shop, "superuser")

    offered = _filter_choices(client.get(admin_url(model_name, "changelist")), field)

    assert {str(row.pk) for row in filter_rows(shop.ours, target) + filter_rows(shop.rival, target)} <= offered


@pytest.mark.parametrize("model_name,field,target", RELATED_FILTERS, ids=FILTER_IDS)
def test_changelist_filtered_by_another_merchants_id_answers_like_a_missing_id(client, shop, model_name, field, target):
    sign_in(client, shop, "manager")
    url = admin_url(model_name, "changelist")
    foreign_pk = filter_rows(shop.ours, target)[0].pk

    foreign = client.get(url, {f"{field}__id__exact": foreign_pk})
    missing = client.get(url, {f"{field}__id__exact": MISSING_PK})

    assert foreign.status_code == missing.status_code == 200
    assert listed(foreign) == listed(missing) == []
    # The control: the viewer's own id filters to their own rows.
    own = client.get(url, {f"{field}__id__exact": filter_rows(shop.rival, target)[0].pk})
    assert listed(own) and {r.merchant_id for r in listed(own)} == {shop.rival.side.merchant.pk}


# case -> (admin, Sales -> search term that finds that merchant's row)
SEARCHES = {
    "promotion-wall_code": ("promotion", lambda s: s.promotion.wall_code),
    "order-pickup_code": ("order", lambda s: s.order.pickup_code),
    "order-member_phone": ("order", lambda s: s.phone),
    "order-id": ("order", lambda s: str(s.order.pk)),
    "member-phone": ("member", lambda s: s.phone),
}


@pytest.mark.parametrize("role", ["manager", "analyst"])
@pytest.mark.parametrize("case", SEARCHES)
def test_search_finds_nothing_of_another_merchant(client, shop, case, role):
    model_name, term = SEARCHES[case]
    owned = OWNED[model_name]
    sign_in(client, shop, role)
    url = admin_url(model_name, "changelist")

    response = client.get(url, {"q": term(shop.ours)})

    assert response.status_code == 200
    found = listed(response)
    assert owned.row(shop.ours).pk not in {r.pk for r in found}
    assert {r.merchant_id for r in found} <= {shop.rival.side.merchant.pk}
    assert not shows(response.content.decode(), owned.name(shop.ours))
    # The search itself works: the same search for the viewer's own row finds it.
    assert owned.row(shop.rival).pk in {r.pk for r in listed(client.get(url, {"q": term(shop.rival)}))}


@pytest.mark.parametrize("case", SEARCHES)
def test_superuser_search_finds_any_merchants_rows(client, shop, case):
    model_name, term = SEARCHES[case]
    sign_in(client, shop, "superuser")

    response = client.get(admin_url(model_name, "changelist"), {"q": term(shop.ours)})

    assert OWNED[model_name].row(shop.ours).pk in {r.pk for r in listed(response)}


# ============================================================================ admin: autocomplete

# The endpoint answers for *any* relation of any model (registered or inline-only) whose target admin
# has search fields, configured as an autocomplete or not: so every relation of these models is probed.
SOURCES = [Promotion, PromotionItem, Order, OrderItem, OrderEvent, Scan, Member]
RELATIONS = [
    (model, field.name)
    for model in SOURCES
    for field in model._meta.get_fields()
    if field.is_relation and field.concrete
]
RELATION_IDS = [f"{model._meta.model_name}-{field}" for model, field in RELATIONS]
# target model -> a search term that finds a merchant's row of it
TERMS = {
    Merchant: lambda s: s.side.merchant.slug,
    Store: lambda s: s.side.store.name,
    Product: lambda s: s.side.product.name,
    Promotion: lambda s: s.promotion.wall_code,
    Order: lambda s: s.order.pickup_code,
    Member: lambda s: s.phone,
    User: lambda s: s.side.manager.username,
}


def _autocomplete(client, model: type, field: str, term: str):
    return client.get(
        "/admin/autocomplete/",
        {"app_label": model._meta.app_label, "model_name": model._meta.model_name, "field_name": field, "term": term},
    )


def _suggested(response) -> set[str]:
    return {result["text"] for result in json.loads(response.content)["results"]}


def _target(model: type, field: str) -> type:
    return model._meta.get_field(field).related_model


@pytest.mark.parametrize("role", ["manager", "analyst"])
@pytest.mark.parametrize("model,field", RELATIONS, ids=RELATION_IDS)
def test_autocomplete_suggests_nothing_of_another_merchant(client, shop, model, field, role):
    target = _target(model, field)
    registered = target in admin.site._registry
    assert target in TERMS or not registered, f"say how to search {target.__name__} (TERMS)"
    term = TERMS[target](shop.ours) if target in TERMS else "no admin, no term"
    sign_in(client, shop, role)

    by_term = _autocomplete(client, model, field, term)
    everything_offered = _autocomplete(client, model, field, "")

    assert term not in by_term.content.decode() + everything_offered.content.decode()
    if target is User or not registered:
        # The platform's user list is nobody's business but the platform's; a target without an
        # admin has nothing to suggest to anyone.
        assert by_term.status_code == everything_offered.status_code == 403
        return
    assert by_term.status_code == everything_offered.status_code == 200
    assert _suggested(by_term) == set()
    own = target.objects.filter(tenant_filter(target, shop.rival.side.merchant))
    assert _suggested(everything_offered) == {str(row) for row in own}
    assert own.exists()


@pytest.mark.parametrize("model,field", RELATIONS, ids=RELATION_IDS)
def test_superuser_autocomplete_finds_any_merchants_rows(client, shop, model, field):
    target = _target(model, field)
    rows = {
        Merchant: shop.ours.side.merchant, Store: shop.ours.side.store, Product: shop.ours.side.product,
        Promotion: shop.ours.promotion, Order: shop.ours.order, Member: shop.ours.member, User: shop.ours.side.manager,
    }
    sign_in(client, shop, "superuser")

    response = _autocomplete(client, model, field, TERMS[target](shop.ours) if target in TERMS else "")

    if target not in admin.site._registry:
        assert response.status_code == 403
        return
    assert response.status_code == 200
    assert str(rows[target]) in _suggested(response)


# ============================================================================ admin: actions


def _act(client, action: str, *pks):
    return client.post(
        admin_url("promotion", "changelist"),
        {"action": action, "_selected_action": [str(pk) for pk in pks], "post": "yes"},
        follow=True,
    )


def _answer(response) -> tuple:
    context = response.context or {}
    messages = [str(m) for m in context["messages"]] if "messages" in context else []
    return response.status_code, messages


# action -> the promotion of a merchant it would change
ACTIONS = {"publish": lambda s: s.draft, "end": lambda s: s.promotion, "delete_selected": lambda s: s.draft}


@pytest.mark.parametrize("role", ["manager", "analyst"])
@pytest.mark.parametrize("action", ACTIONS)
def test_actions_on_another_merchants_promotion_change_nothing_and_answer_like_a_missing_id(
    client, shop, action, role
):
    foreign = ACTIONS[action](shop.ours)
    before = everything()
    sign_in(client, shop, role)

    response = _act(client, action, foreign.pk)
    missing = _act(client, action, MISSING_PK)

    assert everything() == before
    assert _answer(response) == _answer(missing)


@pytest.mark.parametrize("action", ACTIONS)
def test_actions_on_own_and_another_merchants_promotions_change_only_own(client, shop, action):
    foreign, own = ACTIONS[action](shop.ours), ACTIONS[action](shop.rival)
    foreign_before = snapshot(Promotion, foreign.pk)
    sign_in(client, shop, "manager")

    response = _act(client, action, foreign.pk, own.pk)

    assert response.status_code == 200
    assert snapshot(Promotion, foreign.pk) == foreign_before
    if action == "delete_selected":
        assert not Promotion.objects.filter(pk=own.pk).exists()
    else:
        assert Promotion.objects.get(pk=own.pk).status == {"publish": P.LIVE, "end": P.ENDED}[action]


@pytest.mark.parametrize("action", ["publish", "end"])
def test_superuser_actions_reach_any_merchants_promotion(client, shop, action):
    foreign = ACTIONS[action](shop.ours)
    sign_in(client, shop, "superuser")

    _act(client, action, foreign.pk)

    assert Promotion.objects.get(pk=foreign.pk).status == {"publish": P.LIVE, "end": P.ENDED}[action]


# ============================================================================ QR downloads and goods walls
# (tests/orders/test_qr.py covers a manager's 404s; these add the analyst, 404 parity and the superuser.)


def _qr(client, promotion_pk, store_pk, fmt="png"):
    return client.get(reverse("admin:orders_promotion_qr", args=[promotion_pk, store_pk, fmt]))


# case -> (the foreign (promotion, store) pair, the same pair with the foreign ids made up)
QR_PAIRS = {
    "their-promotion-their-store": (
        lambda sh: (sh.ours.promotion.pk, sh.ours.side.store.pk), lambda sh: (MISSING_PK, MISSING_PK + 1),
    ),
    "their-promotion-own-store": (
        lambda sh: (sh.ours.promotion.pk, sh.rival.side.store.pk), lambda sh: (MISSING_PK, sh.rival.side.store.pk),
    ),
    "own-promotion-their-store": (
        lambda sh: (sh.rival.promotion.pk, sh.ours.side.store.pk), lambda sh: (sh.rival.promotion.pk, MISSING_PK),
    ),
}


@pytest.mark.parametrize("fmt", ["png", "svg"])
@pytest.mark.parametrize("role", ["manager", "analyst"])
@pytest.mark.parametrize("case", QR_PAIRS)
def test_qr_download_naming_another_merchants_row_is_404_like_a_missing_id(client, shop, case, role, fmt):
    foreign_pair, missing_pair = (pair(shop) for pair in QR_PAIRS[case])
    sign_in(client, shop, role)

    foreign = _qr(client, *foreign_pair, fmt)
    missing = _qr(client, *missing_pair, fmt)

    assert foreign.status_code == missing.status_code == 404
    assert without(foreign.content.decode(), *foreign_pair) == without(missing.content.decode(), *missing_pair)
    # The control: the viewer's own promotion at their own store downloads.
    assert _qr(client, shop.rival.promotion.pk, shop.rival.side.store.pk, fmt).status_code == 200


@pytest.mark.parametrize("role", ["manager", "analyst"])
def test_goods_wall_of_another_merchants_store_is_404_like_a_missing_id(client, shop, role):
    sign_in(client, shop, role)
    wall = "admin:orders_promotion_wall"

    foreign = client.get(reverse(wall, args=[shop.ours.side.store.pk]))
    missing = client.get(reverse(wall, args=[MISSING_PK]))
    own = client.get(reverse(wall, args=[shop.rival.side.store.pk]))

    assert foreign.status_code == missing.status_code == 404
    assert without(foreign.content.decode(), shop.ours.side.store.pk) == without(missing.content.decode(), MISSING_PK)
    assert own.status_code == 200
    assert [card["promotion"] for card in own.context["cards"]] == [shop.rival.promotion]
    assert not shows(own.content.decode(), shop.ours.promotion.title)


@pytest.mark.parametrize("role", ["manager", "analyst", "superuser"])
def test_goods_walls_list_own_stores_and_the_superuser_every_merchants(client, shop, role):
    sign_in(client, shop, role)

    response = client.get(reverse("admin:orders_promotion_walls"))

    assert response.status_code == 200
    stores = set(response.context["stores"])
    html = response.content.decode()
    if role == "superuser":
        assert stores == {shop.ours.side.store, shop.rival.side.store}
        assert shows(html, shop.ours.side.store.name)
    else:
        assert stores == {shop.rival.side.store}
        assert not shows(html, shop.ours.side.store.name)


def test_superuser_downloads_any_merchants_qr_but_never_for_another_merchants_store(client, shop):
    ours, rival = shop.ours, shop.rival.side
    sign_in(client, shop, "superuser")

    assert _qr(client, ours.promotion.pk, ours.side.store.pk).status_code == 200
    # A QR that sends our customers to the rival's counter does not exist, whoever asks.
    assert _qr(client, ours.promotion.pk, rival.store.pk).status_code == 404
    wall = client.get(reverse("admin:orders_promotion_wall", args=[ours.side.store.pk]))
    assert [card["promotion"] for card in wall.context["cards"]] == [ours.promotion]


# ============================================================================ admin: the index


@pytest.mark.parametrize(
    "index_page", ["/admin/", "/admin/orders/", "/admin/members/"], ids=["index", "orders", "members"]
)
@pytest.mark.parametrize("role", ["manager", "analyst"])
def test_admin_index_reveals_nothing_of_another_merchant(client, shop, index_page, role):
    # Given our manager renamed a promotion and a member in the admin ("recent actions" on their index)
    ours = shop.ours
    client.force_login(ours.side.manager)
    renamed = client.post(
        admin_url("promotion", "change", ours.promotion.pk), _change_data(ours, title="Spring Festival Longjing")
    )
    named = client.post(admin_url("member", "change", ours.member.pk), {"name": "Zhang Wei"})
    assert renamed.status_code == named.status_code == 302
    assert "Spring Festival Longjing" in client.get("/admin/").content.decode()

    # When the rival's staff open their index pages
    sign_in(client, shop, role)
    response = client.get(index_page)

    # Then nothing names our merchant, its rows or its staff's actions
    assert response.status_code == 200
    html = response.content.decode()
    for text in ("Spring Festival Longjing", "Zhang Wei", ours.side.merchant.name, ours.side.manager.username,
                 ours.side.store.name, ours.promotion.wall_code, ours.member.phone):
        assert not shows(html, text)
