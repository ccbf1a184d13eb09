"""Tenant isolation, seen from the rival merchant's side.

`demo.rival`'s manager (and its analyst, where that role reads) must find `demo.ours`'s rows
exactly as invisible as rows that do not exist, on every surface they can reach: admin
changelists, object URLs, add and change forms (choices shown *and* accepted), list filters,
search, autocomplete, raw-id popups, bulk actions, the index, and the REST API. The platform
superuser, who sees every merchant, is the positive control that each probe can find a row.
"""

import json
import re
import warnings
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from html.parser import HTMLParser

import pytest
from django.contrib.auth import get_user_model
from django.contrib.contenttypes.models import ContentType
from django.core.paginator import UnorderedObjectListWarning
from django.db.models import F
from django.urls import reverse

from merchants.models import Merchant, Product, StaffRole, Store, StoreStock

User = get_user_model()

# An id no row has: whatever another merchant's id gets as an answer, this must get the same.
MISSING_PK = 987654
PASSWORD = "Counter-staff-2026!"


@dataclass(frozen=True)
class Owned:
    """One merchant-owned model, and how to find a side's row of it."""

    model: type
    row: Callable  # Side -> that side's row
    search: Callable  # Side -> a search term that finds that row (not its `name`: the search box echoes it)
    name: Callable  # Side -> text that shows the row on a page


OWNED = {
    "merchant": Owned(Merchant, lambda s: s.merchant, lambda s: s.merchant.slug, lambda s: s.merchant.name),
    "store": Owned(Store, lambda s: s.store, lambda s: s.store.code, lambda s: s.store.name),
    "staffrole": Owned(
        StaffRole, lambda s: s.manager.staff_role, lambda s: s.manager.username[:-2], lambda s: s.manager.username
    ),
    "product": Owned(Product, lambda s: s.product, lambda s: s.product.sku, lambda s: s.product.name),
    "storestock": Owned(StoreStock, lambda s: s.stock, lambda s: s.product.sku, lambda s: s.product.name),
}
# Analysts read everything of their merchant except its staff.
READERS = {name: ("manager",) if name == "staffrole" else ("manager", "analyst") for name in OWNED}
VIEWERS = [(name, role) for name in OWNED for role in READERS[name]]
API = {"stores": "store", "products": "product", "stock": "storestock"}



def admin_url(model_name: str, view: str, *args) -> str:
    return reverse(f"admin:merchants_{model_name}_{view}", args=args)


def api_url(endpoint: str, pk=None) -> str:
    return f"/api/v1/{endpoint}/" if pk is None else f"/api/v1/{endpoint}/{pk}/"


def shows(html: str, text: str) -> bool:
    # Word boundaries: "ours" must not match inside "opening hours".
    return re.search(rf"\b{re.escape(text)}\b", html) is not None


def owner_id(row) -> int:
    return row.pk if isinstance(row, Merchant) else row.merchant_id


def snapshot(model: type, pk) -> dict:
    return model.objects.filter(pk=pk).values().get()


def listed(response) -> list:
    return list(response.context["cl"].result_list)


class _Options(HTMLParser):
    """The option values of every <select> on a page, by the select's name."""

    def __init__(self):
        super().__init__()
        self.by_select: dict[str, list[str]] = defaultdict(list)
        self._select: str | None = None

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "select":
            self._select = attrs.get("name")
            self.by_select[self._select]  # a select with no options is still a select
        elif tag == "option" and self._select is not None and attrs.get("value"):
            self.by_select[self._select].append(attrs["value"])

    def handle_endtag(self, tag):
        if tag == "select":
            self._select = None


def select_options(response, name: str) -> set[str]:
    parser = _Options()
    parser.feed(response.content.decode())
    assert name in parser.by_select, f"no <select name={name!r}> on the page"
    return set(parser.by_select[name])


def without(text, *pks) -> str:
    """An error message with ids blanked, so "id X is not a choice" compares across ids."""
    text = str(text)
    for pk in pks:
        text = re.sub(rf"\b{pk}\b", "<id>", text)
    return text


# ============================================================================ admin: rows


@pytest.mark.parametrize("model_name,role", VIEWERS)
def test_changelist_lists_own_rows_and_none_of_another_merchant(client, demo, model_name, role):
    owned = OWNED[model_name]
    client.force_login(getattr(demo.rival, role))

    response = client.get(admin_url(model_name, "changelist"))

    assert response.status_code == 200
    rows = listed(response)
    assert owned.row(demo.rival).pk in {r.pk for r in rows}
    assert {owner_id(r) for r in rows} == {demo.rival.merchant.pk}
    assert not shows(response.content.decode(), owned.name(demo.ours))


@pytest.mark.parametrize("model_name", OWNED)
def test_superuser_changelist_lists_every_merchants_rows(client, demo, model_name):
    owned = OWNED[model_name]
    client.force_login(demo.superuser)

    response = client.get(admin_url(model_name, "changelist"))

    assert {owner_id(r) for r in listed(response)} == {demo.ours.merchant.pk, demo.rival.merchant.pk}
    assert shows(response.content.decode(), owned.name(demo.ours))


@pytest.mark.parametrize("role", ["manager", "analyst"])
@pytest.mark.parametrize("view", ["change", "history", "delete"])
@pytest.mark.parametrize("model_name", OWNED)
def test_another_merchants_object_url_is_404_like_a_missing_id(client, demo, model_name, view, role):
    foreign = OWNED[model_name].row(demo.ours)
    client.force_login(getattr(demo.rival, role))

    response = client.get(admin_url(model_name, view, foreign.pk))

    # 404, not 403 ("it exists, but not for you") and not the admin's "doesn't exist" redirect.
    assert response.status_code == 404
    missing = client.get(admin_url(model_name, view, MISSING_PK))
    assert missing.status_code == 404
    assert without(response.content.decode(), foreign.pk) == without(missing.content.decode(), MISSING_PK)


@pytest.mark.parametrize("model_name", OWNED)
def test_view_on_site_shortcut_answers_another_merchants_id_like_a_missing_one(client, demo, model_name):
    # /admin/r/<content type>/<id>/ looks rows up unscoped. Today no model has get_absolute_url(), so
    # every id is a 404; the day one gets it, this redirect must not work for another merchant's rows.
    content_type = ContentType.objects.get_for_model(OWNED[model_name].model)
    foreign_pk = OWNED[model_name].row(demo.ours).pk
    client.force_login(demo.rival.manager)

    foreign = client.get(reverse("admin:view_on_site", args=[content_type.pk, foreign_pk]))
    missing = client.get(reverse("admin:view_on_site", args=[content_type.pk, MISSING_PK]))

    assert foreign.status_code == missing.status_code == 404
    assert without(foreign.content.decode(), foreign_pk) == without(missing.content.decode(), MISSING_PK)


@pytest.mark.parametrize("view", ["change", "history", "delete"])
@pytest.mark.parametrize("model_name", OWNED)
def test_superuser_opens_any_merchants_object_url(client, demo, model_name, view):
    foreign = OWNED[model_name].row(demo.ours)
    client.force_login(demo.superuser)

    assert client.get(admin_url(model_name, view, foreign.pk)).status_code == 200


@pytest.mark.parametrize("view", ["change", "delete"])
@pytest.mark.parametrize("model_name", OWNED)
def test_posting_to_another_merchants_object_url_is_404_and_changes_nothing(client, demo, model_name, view):
    owned = OWNED[model_name]
    foreign = owned.row(demo.ours)
    before = snapshot(owned.model, foreign.pk)
    client.force_login(demo.rival.manager)

    response = client.post(admin_url(model_name, view, foreign.pk), {"post": "yes", "name": "Taken over"})

    assert response.status_code == 404
    assert snapshot(owned.model, foreign.pk) == before


@pytest.mark.parametrize("model_name", ["store", "staffrole", "product", "storestock"])
def test_bulk_delete_of_another_merchants_rows_deletes_nothing(client, demo, model_name):
    owned = OWNED[model_name]
    foreign = owned.row(demo.ours)
    client.force_login(demo.rival.manager)

    response = client.post(
        admin_url(model_name, "changelist"),
        {"action": "delete_selected", "_selected_action": [foreign.pk], "post": "yes"},
    )

    assert response.status_code in (200, 302)
    assert owned.model.objects.filter(pk=foreign.pk).exists()


def _quantity_edit(line_pk, quantity) -> dict:
    return {
        "form-TOTAL_FORMS": "1",
        "form-INITIAL_FORMS": "1",
        "form-0-id": line_pk,
        "form-0-quantity": str(quantity),
        "_save": "Save",
    }


def test_list_editable_stock_refuses_another_merchants_stock_line_like_a_missing_one(client, demo):
    client.force_login(demo.rival.manager)
    foreign = demo.ours.stock

    response = client.post(admin_url("storestock", "changelist"), _quantity_edit(foreign.pk, 0))
    missing = client.post(admin_url("storestock", "changelist"), _quantity_edit(MISSING_PK, 0))

    # The changelist again with the formset's error, word for word as for an id that does not exist.
    assert response.status_code == missing.status_code == 200
    errors = response.context["cl"].formset.errors
    assert errors and errors == missing.context["cl"].formset.errors
    foreign.refresh_from_db()
    assert foreign.quantity == 10
    # The control: the viewer's own line is saved through the same form.
    own_edit = client.post(admin_url("storestock", "changelist"), _quantity_edit(demo.rival.stock.pk, 77))
    assert own_edit.status_code == 302
    demo.rival.stock.refresh_from_db()
    assert demo.rival.stock.quantity == 77


# ============================================================================ admin: forms

# (admin, <select> name): selects whose options must all be the viewer's merchant's.
CHOICE_FIELDS = [
    ("store", "merchant"),
    ("product", "merchant"),
    ("product", "stock-__prefix__-store"),  # the stock inline's empty row
    ("storestock", "merchant"),
    ("storestock", "store"),
    ("staffrole", "merchant"),
    ("staffrole", "stores"),
]
TARGET = {"merchant": "merchant", "store": "store", "stores": "store", "product": "product"}


def choice_rows(side, field: str):
    target = TARGET[field.rsplit("-", 1)[-1]]
    return OWNED[target].row(side)


@pytest.mark.parametrize("form", ["add", "change"])
@pytest.mark.parametrize("model_name,field", CHOICE_FIELDS)
def test_form_selects_offer_only_own_merchants_rows(client, demo, model_name, field, form):
    client.force_login(demo.rival.manager)
    url = (
        admin_url(model_name, "add")
        if form == "add"
        else admin_url(model_name, "change", OWNED[model_name].row(demo.rival).pk)
    )

    response = client.get(url)

    assert response.status_code == 200
    options = select_options(response, field)
    assert str(choice_rows(demo.rival, field).pk) in options
    assert str(choice_rows(demo.ours, field).pk) not in options


@pytest.mark.parametrize("model_name,field", CHOICE_FIELDS)
def test_superuser_form_selects_offer_every_merchants_rows(client, demo, model_name, field):
    client.force_login(demo.superuser)

    options = select_options(client.get(admin_url(model_name, "add")), field)

    assert {str(choice_rows(demo.ours, field).pk), str(choice_rows(demo.rival, field).pk)} <= options


@pytest.mark.parametrize("form", ["add", "change"])
def test_stock_product_autocomplete_field_is_scoped_to_own_products(client, demo, form):
    # The autocomplete widget renders no options; its choices (what a POST may name) are the field's queryset.
    client.force_login(demo.rival.manager)
    url = admin_url("storestock", "add") if form == "add" else admin_url("storestock", "change", demo.rival.stock.pk)

    response = client.get(url)

    choices = set(response.context["adminform"].form.fields["product"].queryset.values_list("pk", flat=True))
    assert choices == {demo.rival.product.pk}


@pytest.mark.parametrize(
    "model_name,query",
    [
        ("storestock", lambda s: f"?product={s.product.pk}&store={s.store.pk}"),
        ("staffrole", lambda s: f"?stores={s.store.pk}&merchant={s.merchant.pk}"),
        ("product", lambda s: f"?merchant={s.merchant.pk}"),
        ("store", lambda s: f"?merchant={s.merchant.pk}"),
    ],
    ids=["storestock", "staffrole", "product", "store"],
)
def test_add_form_prefilled_with_another_merchants_ids_shows_nothing_of_them(client, demo, model_name, query):
    # The admin prefills add forms from the query string; a selected option is rendered with its name.
    client.force_login(demo.rival.manager)

    response = client.get(admin_url(model_name, "add") + query(demo.ours))

    assert response.status_code == 200
    html = response.content.decode()
    for text in (demo.ours.merchant.name, demo.ours.store.name, demo.ours.product.name):
        assert not shows(html, text)


def _stock_post(product, store, quantity=5) -> dict:
    return {"product": product.pk, "store": store.pk, "quantity": quantity}


def _staff_post(stores, username="new_cashier") -> dict:
    return {
        "username": username,
        "password1": PASSWORD,
        "password2": PASSWORD,
        "role": "cashier",
        "stores": [s.pk for s in stores],
    }


def _product_post(side, stock_store, *, change: bool) -> dict:
    data = {"name": "Oolong", "sku": "OOLONG-1", "price": "12.00", "is_active": "on"}
    if change:
        data.update(name=side.product.name, sku=side.product.sku, price=str(side.product.price))
    existing = [side.stock] if change else []
    data.update(
        {
            "stock-TOTAL_FORMS": str(len(existing) + 1),
            "stock-INITIAL_FORMS": str(len(existing)),
            "stock-MIN_NUM_FORMS": "0",
            "stock-MAX_NUM_FORMS": "1000",
        }
    )
    for i, line in enumerate(existing):
        data.update({f"stock-{i}-id": line.pk, f"stock-{i}-store": line.store_id, f"stock-{i}-quantity": "10"})
    new = len(existing)
    data.update({f"stock-{new}-store": stock_store.pk if stock_store else MISSING_PK, f"stock-{new}-quantity": "3"})
    return data


def _form_errors(response, field: str) -> list[str]:
    if field.startswith("stock-"):
        formset = response.context["inline_admin_formsets"][0].formset
        return [str(e) for errors in formset.errors for e in errors.get("store", [])]
    return [str(e) for e in response.context["adminform"].form.errors.get(field, [])]


def _rows_written():
    return (
        StoreStock.objects.count(),
        Product.objects.count(),
        StaffRole.objects.count(),
        User.objects.count(),
        sorted(StoreStock.objects.values_list("pk", "product_id", "store_id", "quantity")),
        sorted(StaffRole.objects.values_list("pk", "stores")),
    )


# case -> (URL, POST data naming a given row as the choice, the field that must refuse another merchant's)
FOREIGN_CHOICES = {
    "stock-add-product": (
        lambda d: admin_url("storestock", "add"),
        lambda d, product: _stock_post(product, d.rival.store),
        "product",
    ),
    "stock-add-store": (
        lambda d: admin_url("storestock", "add"),
        lambda d, store: _stock_post(d.rival.product, store),
        "store",
    ),
    "stock-change-product": (
        lambda d: admin_url("storestock", "change", d.rival.stock.pk),
        lambda d, product: _stock_post(product, d.rival.store),
        "product",
    ),
    "stock-change-store": (
        lambda d: admin_url("storestock", "change", d.rival.stock.pk),
        lambda d, store: _stock_post(d.rival.product, store),
        "store",
    ),
    "staff-add-stores": (
        lambda d: admin_url("staffrole", "add"),
        lambda d, store: _staff_post([store]),
        "stores",
    ),
    "staff-change-stores": (
        lambda d: admin_url("staffrole", "change", d.rival.cashier.staff_role.pk),
        lambda d, store: {"role": "cashier", "stores": [store.pk], "new_password": ""},
        "stores",
    ),
    "product-add-stock-store": (
        lambda d: admin_url("product", "add"),
        lambda d, store: _product_post(d.rival, store, change=False),
        "stock-store",
    ),
    "product-change-stock-store": (
        lambda d: admin_url("product", "change", d.rival.product.pk),
        lambda d, store: _product_post(d.rival, store, change=True),
        "stock-store",
    ),
}


def _foreign_and_missing(demo, field: str):
    if field == "product":
        return demo.ours.product, Product(pk=MISSING_PK)
    return demo.ours.store, Store(pk=MISSING_PK)


@pytest.mark.parametrize("case", FOREIGN_CHOICES)
def test_posting_another_merchants_choice_is_refused_like_a_missing_id_and_saves_nothing(client, demo, case):
    url, data, field = FOREIGN_CHOICES[case]
    foreign, missing = _foreign_and_missing(demo, field)
    client.force_login(demo.rival.manager)
    before = _rows_written()

    refused = client.post(url(demo), data(demo, foreign))

    assert refused.status_code == 200  # the form again, with its errors
    errors = _form_errors(refused, field)
    assert errors, f"{field} accepted another merchant's id"
    assert _rows_written() == before
    # Same words as for an id that does not exist: no existence oracle.
    missing_errors = _form_errors(client.post(url(demo), data(demo, missing)), field)
    assert [without(e, foreign.pk) for e in errors] == [without(e, MISSING_PK) for e in missing_errors]


@pytest.mark.parametrize("case", FOREIGN_CHOICES)
def test_posting_own_merchants_choice_is_accepted(client, demo, case):
    # The control for the refusal above: the same post with the viewer's own row goes through.
    url, data, field = FOREIGN_CHOICES[case]
    own = demo.rival.product if field == "product" else demo.rival.store
    if case.startswith("stock-add"):
        # One stock line per product and store: add a second store so the line is new.
        own = Store.objects.create(merchant=demo.rival.merchant, name="Second", code="second", address="2 Rd")
        payload = _stock_post(demo.rival.product, own)
    elif case == "product-change-stock-store":
        own = Store.objects.create(merchant=demo.rival.merchant, name="Second", code="second", address="2 Rd")
        payload = data(demo, own)
    else:
        payload = data(demo, own)
    client.force_login(demo.rival.manager)

    response = client.post(url(demo), payload)

    assert response.status_code == 302, _form_errors(response, field) if response.context else response
    assert not _rows_joining_two_merchants()


def _rows_joining_two_merchants() -> list:
    """Stock lines and staff roles whose related rows are not all of one merchant."""
    stock = StoreStock.objects.exclude(merchant=F("product__merchant")) | StoreStock.objects.exclude(
        merchant=F("store__merchant")
    )
    staff = StaffRole.objects.filter(stores__isnull=False).exclude(merchant=F("stores__merchant"))
    return list(stock) + list(staff)


@pytest.mark.parametrize("form", ["stock-add", "product-add-inline", "product-change-inline"])
def test_superuser_cannot_join_two_merchants_in_one_stock_line(client, demo, form):
    # The superuser's choices are unscoped; the model's clean() is the backstop that keeps a stock
    # line to one merchant (for an inline row, once the form has told it its parent's merchant).
    client.force_login(demo.superuser)
    ours, rival_store = demo.ours, demo.rival.store
    if form == "stock-add":
        url = admin_url("storestock", "add")
        data = _stock_post(ours.product, rival_store) | {"merchant": ours.merchant.pk}
    else:
        change = form == "product-change-inline"
        url = admin_url("product", "change", ours.product.pk) if change else admin_url("product", "add")
        data = _product_post(ours, rival_store, change=change) | {"merchant": ours.merchant.pk}
    before = _rows_written()

    response = client.post(url, data)

    assert response.status_code == 200
    assert "This store belongs to another merchant." in response.content.decode()
    assert _rows_written() == before


@pytest.mark.parametrize(
    "model_name,data",
    [
        ("store", lambda s: {"name": "Annex", "code": "annex", "address": "9 Rd", "is_active": "on"}),
        ("product", lambda s: _product_post(s, None, change=False) | {"stock-TOTAL_FORMS": "0"}),
        ("storestock", lambda s: _stock_post(s.product, s.store)),
    ],
    ids=["store", "product", "storestock"],
)
def test_posted_merchant_is_ignored_new_rows_belong_to_own_merchant(client, demo, model_name, data):
    model = OWNED[model_name].model
    if model_name == "storestock":
        demo.rival.stock.delete()  # make room for the (product, store) line
    client.force_login(demo.rival.manager)

    response = client.post(admin_url(model_name, "add"), data(demo.rival) | {"merchant": demo.ours.merchant.pk})

    assert response.status_code == 302
    newest = model.objects.latest("pk")
    assert newest.merchant_id == demo.rival.merchant.pk
    assert not _rows_joining_two_merchants()


# ============================================================================ admin: filters, search


RELATED_FILTERS = [
    ("store", "merchant"),
    ("product", "merchant"),
    ("staffrole", "merchant"),
    ("staffrole", "stores"),
    ("storestock", "merchant"),
    ("storestock", "store"),
]


def _filter_choices(response, field_path: str) -> set[str]:
    """The ids the changelist sidebar offers for `field_path` (none if the filter is not shown)."""
    offered = set()
    for spec in response.context["cl"].filter_specs:
        if getattr(spec, "field_path", None) == field_path:
            offered |= {str(pk) for pk, _label in spec.lookup_choices}
    return offered


@pytest.fixture
def rival_annex(demo):
    """A second store of the rival: the admin hides a related filter that has only one choice."""
    annex = Store.objects.create(merchant=demo.rival.merchant, name="rival annex", code="rival-annex", address="2 Rd")
    demo.rival.cashier.staff_role.stores.add(annex)
    StoreStock.objects.create(merchant=demo.rival.merchant, product=demo.rival.product, store=annex, quantity=1)
    return annex


@pytest.mark.parametrize("facets", ["", "?_facets=True"], ids=["plain", "facets"])
@pytest.mark.parametrize("model_name,field", RELATED_FILTERS)
def test_changelist_filters_offer_none_of_another_merchants_rows(client, demo, rival_annex, model_name, field, facets):
    client.force_login(demo.rival.manager)

    response = client.get(admin_url(model_name, "changelist") + facets)

    assert response.status_code == 200
    assert str(choice_rows(demo.ours, field).pk) not in _filter_choices(response, field)
    html = response.content.decode()
    assert not shows(html, choice_rows(demo.ours, field).__str__())
    if field != "merchant":  # the merchant filter is simply not shown to merchant staff
        assert str(choice_rows(demo.rival, field).pk) in _filter_choices(response, field)


@pytest.mark.parametrize("model_name,field", RELATED_FILTERS)
def test_superuser_changelist_filters_offer_every_merchants_rows(client, demo, model_name, field):
    client.force_login(demo.superuser)

    response = client.get(admin_url(model_name, "changelist"))

    offered = _filter_choices(response, field)
    assert {str(choice_rows(demo.ours, field).pk), str(choice_rows(demo.rival, field).pk)} <= offered


@pytest.mark.parametrize(
    "model_name,lookup,foreign_pk",
    [
        ("store", "merchant__id__exact", lambda d: d.ours.merchant.pk),
        ("product", "merchant__id__exact", lambda d: d.ours.merchant.pk),
        ("staffrole", "stores__id__exact", lambda d: d.ours.store.pk),
        ("storestock", "store__id__exact", lambda d: d.ours.store.pk),
        ("storestock", "product__id__exact", lambda d: d.ours.product.pk),
    ],
    ids=["store-merchant", "product-merchant", "staffrole-stores", "storestock-store", "storestock-product"],
)
def test_changelist_filtered_by_another_merchants_id_answers_like_a_missing_id(
    client, demo, rival_annex, model_name, lookup, foreign_pk
):
    client.force_login(demo.rival.manager)
    url = admin_url(model_name, "changelist")

    foreign = client.get(f"{url}?{lookup}={foreign_pk(demo)}")
    missing = client.get(f"{url}?{lookup}={MISSING_PK}")

    assert foreign.status_code == missing.status_code
    assert foreign.status_code == 200
    assert listed(foreign) == listed(missing) == []


@pytest.mark.parametrize("model_name,role", VIEWERS)
def test_search_finds_nothing_of_another_merchant(client, demo, model_name, role):
    owned = OWNED[model_name]
    client.force_login(getattr(demo.rival, role))
    url = admin_url(model_name, "changelist")

    response = client.get(url, {"q": owned.search(demo.ours)})

    assert listed(response) == []
    assert not shows(response.content.decode(), owned.name(demo.ours))
    assert listed(client.get(url, {"q": owned.search(demo.rival)}))  # the search itself works


@pytest.mark.parametrize("model_name", OWNED)
def test_superuser_search_finds_any_merchants_rows(client, demo, model_name):
    owned = OWNED[model_name]
    client.force_login(demo.superuser)

    response = client.get(admin_url(model_name, "changelist"), {"q": owned.search(demo.ours)})

    assert owned.row(demo.ours).pk in {r.pk for r in listed(response)}


# ============================================================================ admin: autocomplete, popups, index

# Every relation the autocomplete endpoint can be asked about, not only the configured one: the view
# accepts any foreign key whose target admin has search fields. (model, field, role, search term of a
# side's row, what the viewer is offered with an empty term: their own row's text, or None for 403.)
AUTOCOMPLETE = [
    ("storestock", "product", "manager", lambda s: s.product.name, lambda s: str(s.product)),
    ("storestock", "product", "analyst", lambda s: s.product.name, lambda s: str(s.product)),
    ("storestock", "store", "manager", lambda s: s.store.name, lambda s: str(s.store)),
    ("store", "merchant", "manager", lambda s: s.merchant.slug, lambda s: str(s.merchant)),
    ("product", "merchant", "analyst", lambda s: s.merchant.slug, lambda s: str(s.merchant)),
    ("staffrole", "merchant", "manager", lambda s: s.merchant.slug, lambda s: str(s.merchant)),
    ("staffrole", "stores", "manager", lambda s: s.store.name, lambda s: str(s.store)),
    # The platform's user list is nobody's business but the platform's.
    ("staffrole", "user", "manager", lambda s: s.manager.username, lambda s: None),
]
AUTOCOMPLETE_IDS = [f"{m}-{f}-{r}" for m, f, r, _t, _o in AUTOCOMPLETE]


def _autocomplete(client, model_name: str, field: str, term: str):
    return client.get(
        "/admin/autocomplete/",
        {"app_label": "merchants", "model_name": model_name, "field_name": field, "term": term},
    )


def _suggested(response) -> set[str]:
    return {result["text"] for result in json.loads(response.content)["results"]}


@pytest.mark.parametrize("model_name,field,role,term,offered", AUTOCOMPLETE, ids=AUTOCOMPLETE_IDS)
def test_autocomplete_suggests_nothing_of_another_merchant(client, demo, model_name, field, role, term, offered):
    client.force_login(getattr(demo.rival, role))

    by_name = _autocomplete(client, model_name, field, term(demo.ours))
    everything = _autocomplete(client, model_name, field, "")

    assert term(demo.ours) not in by_name.content.decode() + everything.content.decode()
    if offered(demo.rival) is None:
        assert by_name.status_code == everything.status_code == 403
    else:
        assert by_name.status_code == everything.status_code == 200
        assert _suggested(by_name) == set()
        assert _suggested(everything) == {offered(demo.rival)}


@pytest.mark.parametrize("role", ["manager", "analyst"])
def test_autocomplete_suggests_own_products(client, demo, role):
    client.force_login(getattr(demo.rival, role))

    response = _autocomplete(client, "storestock", "product", "tea")

    assert response.status_code == 200
    assert _suggested(response) == {str(demo.rival.product)}


def test_autocomplete_pages_through_own_products_each_once(client, demo):
    # Given more of the rival's products than one autocomplete page (20) holds
    for n in range(44):
        Product.objects.create(merchant=demo.rival.merchant, name=f"rival tea {n:02}", sku=f"RT-{n}", price="1.00")
    client.force_login(demo.rival.manager)

    # When the widget pages through them
    seen = []
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        for page in (1, 2, 3):
            response = client.get(
                "/admin/autocomplete/",
                {"app_label": "merchants", "model_name": "storestock", "field_name": "product", "page": page},
            )
            seen += [row["id"] for row in response.json()["results"]]

    # Then every product shows up exactly once, in a stated order (not the database's whim)
    assert sorted(seen) == sorted(
        str(pk) for pk in Product.objects.filter(merchant=demo.rival.merchant).values_list("pk", flat=True)
    )
    assert not [w for w in caught if issubclass(w.category, UnorderedObjectListWarning)]


def test_superuser_autocomplete_suggests_every_merchants_products(client, demo):
    client.force_login(demo.superuser)

    assert _suggested(_autocomplete(client, "storestock", "product", "tea")) == {
        str(demo.ours.product),
        str(demo.rival.product),
    }


@pytest.mark.parametrize("role", ["manager", "analyst"])
@pytest.mark.parametrize("model_name", ["merchant", "store", "product"])
def test_raw_id_popup_lists_only_own_rows(client, demo, model_name, role):
    client.force_login(getattr(demo.rival, role))

    response = client.get(admin_url(model_name, "changelist"), {"_popup": "1", "_to_field": "id"})

    assert response.status_code == 200
    assert {owner_id(r) for r in listed(response)} == {demo.rival.merchant.pk}
    assert not shows(response.content.decode(), OWNED[model_name].name(demo.ours))


@pytest.mark.parametrize("page", ["/admin/", "/admin/merchants/"], ids=["index", "app-index"])
@pytest.mark.parametrize("role", ["manager", "analyst"])
def test_admin_index_reveals_nothing_of_another_merchant(client, demo, page, role):
    # Given our manager renamed a store in the admin (a "recent action" on their index)
    client.force_login(demo.ours.manager)
    store = demo.ours.store
    client.post(
        admin_url("store", "change", store.pk),
        {"name": "Flagship Xintiandi", "code": store.code, "address": store.address, "is_active": "on"},
    )
    assert "Flagship Xintiandi" in client.get(page).content.decode()

    # When the rival's staff open their index
    client.force_login(getattr(demo.rival, role))
    response = client.get(page)

    # Then nothing names our merchant, its rows or its staff's actions
    assert response.status_code == 200
    html = response.content.decode()
    for text in ("Flagship Xintiandi", demo.ours.merchant.name, demo.ours.product.name, demo.ours.manager.username):
        assert not shows(html, text)


# ============================================================================ REST API


def _api_ids(response) -> set[int]:
    return {row["id"] for row in response.json()["results"]}


@pytest.mark.parametrize("role", ["manager", "analyst", "cashier"])
@pytest.mark.parametrize("endpoint", API)
def test_api_list_shows_own_rows_and_none_of_another_merchant(client, demo, endpoint, role):
    client.force_login(getattr(demo.rival, role))

    response = client.get(api_url(endpoint))

    assert response.status_code == 200
    assert _api_ids(response) == {OWNED[API[endpoint]].row(demo.rival).pk}
    assert response.json()["count"] == 1


@pytest.mark.parametrize("endpoint", API)
def test_superuser_api_list_shows_every_merchants_rows(client, demo, endpoint):
    client.force_login(demo.superuser)

    response = client.get(api_url(endpoint))

    owned = OWNED[API[endpoint]]
    assert _api_ids(response) == {owned.row(demo.ours).pk, owned.row(demo.rival).pk}


@pytest.mark.parametrize("role", ["manager", "analyst", "cashier"])
@pytest.mark.parametrize("endpoint", API)
def test_api_detail_of_another_merchants_row_is_404_like_a_missing_id(client, demo, endpoint, role):
    owned = OWNED[API[endpoint]]
    client.force_login(getattr(demo.rival, role))

    foreign = client.get(api_url(endpoint, owned.row(demo.ours).pk))
    missing = client.get(api_url(endpoint, MISSING_PK))

    assert foreign.status_code == missing.status_code == 404
    assert foreign.json() == missing.json()
    assert client.get(api_url(endpoint, owned.row(demo.rival).pk)).status_code == 200


API_WRITES = {
    "stores": {"name": "Taken over", "code": "taken", "address": "1 Rd"},
    "products": {"name": "Taken over", "sku": "TAKEN", "price": "1.00"},
    "stock": {"quantity": 0},
}


@pytest.mark.parametrize("method", ["put", "patch", "delete"])
@pytest.mark.parametrize("endpoint", API)
def test_api_write_to_another_merchants_row_is_404_and_changes_nothing(client, demo, endpoint, method):
    owned = OWNED[API[endpoint]]
    foreign = owned.row(demo.ours)
    before = snapshot(owned.model, foreign.pk)
    client.force_login(demo.rival.manager)
    data = API_WRITES[endpoint]
    if endpoint == "stock":
        data = data | {"product": demo.rival.product.pk, "store": demo.rival.store.pk}

    response = getattr(client, method)(api_url(endpoint, foreign.pk), data, content_type="application/json")
    missing = getattr(client, method)(api_url(endpoint, MISSING_PK), data, content_type="application/json")

    assert response.status_code == missing.status_code == 404
    assert snapshot(owned.model, foreign.pk) == before


def _stock_payload(product, store) -> dict:
    return {"product": product, "store": store, "quantity": 4}


@pytest.mark.parametrize("field", ["product", "store"])
@pytest.mark.parametrize("write", ["create", "update"])
def test_api_stock_pointing_at_another_merchants_row_is_400_like_a_missing_id(client, demo, write, field):
    client.force_login(demo.rival.manager)
    own = {"product": demo.rival.product.pk, "store": demo.rival.store.pk}
    foreign_pk = {"product": demo.ours.product.pk, "store": demo.ours.store.pk}[field]
    if write == "create":
        demo.rival.stock.delete()  # so only the foreign key can be wrong

    def send(pk):
        payload = _stock_payload(**(own | {field: pk}))
        if write == "create":
            return client.post(api_url("stock"), payload, content_type="application/json")
        return client.put(api_url("stock", demo.rival.stock.pk), payload, content_type="application/json")

    before = sorted(StoreStock.objects.values_list("pk", "product_id", "store_id", "quantity"))
    foreign = send(foreign_pk)
    missing = send(MISSING_PK)

    assert foreign.status_code == missing.status_code == 400
    assert set(foreign.json()) == {field}
    assert without(foreign.json(), foreign_pk) == without(missing.json(), MISSING_PK)
    assert sorted(StoreStock.objects.values_list("pk", "product_id", "store_id", "quantity")) == before
    # The control: the viewer's own row is accepted.
    assert send(own[field]).status_code in (200, 201)


@pytest.mark.parametrize("write", ["create", "update"])
def test_api_new_and_changed_rows_stay_with_own_merchant(client, demo, write):
    # Given a payload that names another merchant (the serializer shows it read-only)
    client.force_login(demo.rival.manager)
    payload = {"name": "Annex", "code": "annex", "address": "9 Rd", "merchant": demo.ours.merchant.slug}

    if write == "create":
        response = client.post(api_url("stores"), payload, content_type="application/json")
    else:
        response = client.put(api_url("stores", demo.rival.store.pk), payload, content_type="application/json")

    assert response.status_code in (200, 201)
    assert Store.objects.get(pk=response.json()["id"]).merchant == demo.rival.merchant
    assert list(Store.objects.filter(merchant=demo.ours.merchant)) == [demo.ours.store]


UNIQUE_PER_MERCHANT = {
    # field -> (endpoint, admin, a new row's data, the side's value of that field)
    "store-code": ("stores", "store", {"name": "Kiosk", "code": "kiosk", "address": "4 Rd"}, lambda s: s.store.code),
    "store-name": ("stores", "store", {"name": "Kiosk", "code": "kiosk", "address": "4 Rd"}, lambda s: s.store.name),
    "product-sku": ("products", "product", {"name": "Puer", "sku": "PUER-1", "price": "8"}, lambda s: s.product.sku),
}


def _create(client, surface: str, case: str, value):
    endpoint, model_name, data, _value = UNIQUE_PER_MERCHANT[case]
    data = data | {case.split("-")[1]: value}
    if surface == "api":
        return client.post(api_url(endpoint), data, content_type="application/json")
    if model_name == "product":
        data |= {"stock-TOTAL_FORMS": "0", "stock-INITIAL_FORMS": "0"}
    return client.post(admin_url(model_name, "add"), data | {"is_active": "on"})


@pytest.mark.parametrize("surface", ["api", "admin"])
@pytest.mark.parametrize("case", UNIQUE_PER_MERCHANT)
def test_code_taken_by_another_merchant_is_free_and_an_own_duplicate_is_refused(client, demo, case, surface):
    # Uniqueness is per merchant: "that code is taken" about another merchant's row would be an oracle.
    field = case.split("-")[1]
    value = UNIQUE_PER_MERCHANT[case][3]
    client.force_login(demo.rival.manager)

    own_duplicate = _create(client, surface, case, value(demo.rival))
    others_value = _create(client, surface, case, value(demo.ours))

    if surface == "api":
        assert own_duplicate.status_code == 400  # not an IntegrityError (500)
        assert list(own_duplicate.json()) == [field]
        assert others_value.status_code == 201, others_value.content
    else:
        assert own_duplicate.status_code == 200
        assert own_duplicate.context["adminform"].form.errors
        assert others_value.status_code == 302
    model = OWNED[UNIQUE_PER_MERCHANT[case][1]].model
    assert model.objects.filter(merchant=demo.rival.merchant, **{field: value(demo.rival)}).count() == 1


API_FILTERS = [
    ("products", "store", lambda d: d.ours.store.pk, MISSING_PK),
    ("products", "sku", lambda d: d.ours.product.sku, "NO-SUCH-SKU"),
    ("stock", "store", lambda d: d.ours.store.pk, MISSING_PK),
    ("stock", "product", lambda d: d.ours.product.pk, MISSING_PK),
    ("stores", "code", lambda d: d.ours.store.code, "no-such-code"),
    ("stores", "search", lambda d: d.ours.store.name, "no such store"),
    ("products", "search", lambda d: d.ours.product.name, "no such product"),
]


@pytest.mark.parametrize(
    "endpoint,param,foreign,missing", API_FILTERS, ids=[f"{e}-{p}" for e, p, _f, _m in API_FILTERS]
)
def test_api_filter_by_another_merchants_value_answers_like_a_missing_one(
    client, demo, endpoint, param, foreign, missing
):
    client.force_login(demo.rival.manager)

    by_foreign = client.get(api_url(endpoint), {param: foreign(demo)})
    by_missing = client.get(api_url(endpoint), {param: missing})

    # No existence oracle: the status and the body differ only by the value that was sent.
    assert by_foreign.status_code == by_missing.status_code
    assert without(by_foreign.json(), foreign(demo)) == without(by_missing.json(), missing)
    if by_foreign.status_code == 200:
        assert by_foreign.json()["results"] == []


@pytest.mark.parametrize(
    "endpoint,param,value",
    [("products", "store", lambda d: d.rival.store.pk), ("stock", "product", lambda d: d.rival.product.pk)],
    ids=["products-store", "stock-product"],
)
def test_api_filter_by_own_id_finds_own_rows(client, demo, endpoint, param, value):
    client.force_login(demo.rival.manager)

    response = client.get(api_url(endpoint), {param: value(demo)})

    assert response.status_code == 200
    assert len(response.json()["results"]) == 1


@pytest.mark.parametrize("endpoint", API)
def test_api_options_describe_no_other_merchants_rows(client, demo, endpoint):
    client.force_login(demo.rival.manager)

    response = client.options(api_url(endpoint))

    assert response.status_code == 200
    body = response.content.decode()
    for text in (demo.ours.store.name, demo.ours.product.name, demo.ours.merchant.slug):
        assert not shows(body, text)


@pytest.mark.parametrize("endpoint", ["stock"])
def test_browsable_api_form_offers_only_own_choices(client, demo, endpoint):
    client.force_login(demo.rival.manager)

    response = client.get(api_url(endpoint), HTTP_ACCEPT="text/html")

    assert response.status_code == 200
    assert select_options(response, "product") == {str(demo.rival.product.pk)}
    assert select_options(response, "store") == {str(demo.rival.store.pk)}
