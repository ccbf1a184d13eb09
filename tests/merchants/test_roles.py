"""Who may do what: manager, analyst, cashier, a staff user without a role, and anonymous visitors.

Managers run everything of their own merchant (its profile: view and change only); analysts read;
cashiers work at the counter and through the API, never in the admin; everyone else gets the login
page (admin) or 401/403 (API). All rows here are `demo.ours`'s, seen by `demo.ours`'s staff.
"""

import pytest
from django.contrib.auth import get_user_model
from django.urls import reverse

from merchants.models import Merchant, Product, StaffRole, Store, StoreStock
from tests.factories import UserFactory

User = get_user_model()

PASSWORD = "Counter-staff-2026!"
ROLES = ["manager", "analyst", "cashier", "no_role", "anonymous"]
KEPT_OUT_OF_ADMIN = ["cashier", "no_role", "anonymous"]



@pytest.fixture
def annex(demo):
    """A second store of ours, so a new (product, store) stock line has somewhere to go."""
    return Store.objects.create(merchant=demo.ours.merchant, name="ours annex", code="ours-annex", address="2 Rd")


def sign_in(client, demo, role: str) -> None:
    if role == "anonymous":
        return
    if role == "no_role":
        # A staff flag but no membership in any merchant: e.g. a removed employee.
        client.force_login(UserFactory(username="drifter", is_staff=True))
        return
    client.force_login(getattr(demo.ours, role))


def admin_url(model_name: str, view: str, *args) -> str:
    return reverse(f"admin:merchants_{model_name}_{view}", args=args)


def is_login_redirect(response) -> bool:
    return response.status_code == 302 and response.url.startswith(reverse("admin:login"))


# ============================================================================ admin


@pytest.mark.parametrize(
    "role,allowed", [("manager", True), ("analyst", True)] + [(r, False) for r in KEPT_OUT_OF_ADMIN]
)
def test_admin_index_admits_managers_and_analysts_only(client, demo, role, allowed):
    sign_in(client, demo, role)

    response = client.get(reverse("admin:index"))

    if allowed:
        assert response.status_code == 200
    else:
        assert is_login_redirect(response)


# The row of ours each admin's change and delete pages are tried on (never the viewer's own staff role).
ROW = {
    "merchant": lambda side: side.merchant,
    "store": lambda side: side.store,
    "staffrole": lambda side: side.cashier.staff_role,
    "product": lambda side: side.product,
    "storestock": lambda side: side.stock,
}
# What each role gets on each admin page (GET), by model: 200 shown, 403 refused.
READ_ONLY = {"changelist": 200, "add": 403, "change": 200, "delete": 403}
EVERYTHING = {"changelist": 200, "add": 200, "change": 200, "delete": 200}
NOTHING = {"changelist": 403, "add": 403, "change": 403, "delete": 403}
ADMIN_PAGES = {
    "merchant": {"manager": READ_ONLY, "analyst": READ_ONLY},  # "change" for managers: see below
    "store": {"manager": EVERYTHING, "analyst": READ_ONLY},
    "staffrole": {"manager": EVERYTHING, "analyst": NOTHING},
    "product": {"manager": EVERYTHING, "analyst": READ_ONLY},
    "storestock": {"manager": EVERYTHING, "analyst": READ_ONLY},
}
ADMIN_CASES = [
    (model, role, page, expected)
    for model, by_role in ADMIN_PAGES.items()
    for role, pages in by_role.items()
    for page, expected in pages.items()
]


def _page_url(demo, model: str, page: str) -> str:
    if page in ("changelist", "add"):
        return admin_url(model, page)
    return admin_url(model, page, ROW[model](demo.ours).pk)


@pytest.mark.parametrize("model,role,page,expected", ADMIN_CASES)
def test_admin_pages_by_role(client, demo, model, role, page, expected):
    sign_in(client, demo, role)

    response = client.get(_page_url(demo, model, page))

    assert response.status_code == expected
    if page == "change" and expected == 200:
        # Managers may change (their merchant's profile too); analysts only look.
        may_change = role == "manager"
        assert response.context["has_change_permission"] is may_change
        assert ('name="_save"' in response.content.decode()) is may_change


@pytest.mark.parametrize("page", ["changelist", "add", "change", "delete", "history"])
@pytest.mark.parametrize("model", ROW)
@pytest.mark.parametrize("role", KEPT_OUT_OF_ADMIN)
def test_admin_model_pages_send_cashiers_and_strangers_to_the_login(client, demo, role, model, page):
    sign_in(client, demo, role)
    url = _page_url(demo, model, page) if page != "history" else admin_url(model, page, ROW[model](demo.ours).pk)

    assert is_login_redirect(client.get(url))
    assert is_login_redirect(client.post(url, {"post": "yes", "name": "Taken over"}))


def test_admin_login_page_tells_a_signed_in_cashier_they_are_not_authorised(client, demo):
    client.force_login(demo.ours.cashier)

    response = client.get(reverse("admin:login"))

    assert "not authorized to access this page" in response.content.decode()


def test_cashier_is_kept_out_of_the_admin_even_with_the_staff_flag(client, demo):
    # Given a cashier whose user carries is_staff (set by hand, or left from an earlier role)
    User.objects.filter(pk=demo.ours.cashier.pk).update(is_staff=True)
    client.force_login(User.objects.get(pk=demo.ours.cashier.pk))

    # Then the role decides, not the flag
    assert is_login_redirect(client.get(reverse("admin:index")))
    assert is_login_redirect(client.get(admin_url("store", "changelist")))


def test_manager_of_a_deactivated_merchant_is_kept_out(client, demo):
    Merchant.objects.filter(pk=demo.ours.merchant.pk).update(is_active=False)
    client.force_login(demo.ours.manager)

    assert is_login_redirect(client.get(reverse("admin:index")))
    assert client.get("/api/v1/stores/").status_code == 403


# -- writes through the admin: managers write, analysts are refused and nothing changes


def _product_post(**fields) -> dict:
    return {
        "name": "Oolong",
        "sku": "OOLONG-1",
        "price": "12.00",
        "is_active": "on",
        "stock-TOTAL_FORMS": "0",
        "stock-INITIAL_FORMS": "0",
        "stock-MIN_NUM_FORMS": "0",
        "stock-MAX_NUM_FORMS": "1000",
    } | fields


def _change_post(demo, model: str, annex: Store) -> dict:
    side = demo.ours
    return {
        "merchant": {
            "name": "Ours Renamed", "timezone": "Asia/Shanghai", "unpaid_order_minutes": "15",
            "redemption_void_minutes": "30",
        },
        "store": {"name": "Ours Renamed", "code": side.store.code, "address": side.store.address, "is_active": "on"},
        # The cashier serves one more store.
        "staffrole": {"role": "cashier", "stores": [side.store.pk, annex.pk], "new_password": ""},
        "product": _product_post(name="Ours Renamed", sku=side.product.sku),
        "storestock": {"product": side.product.pk, "store": side.store.pk, "quantity": "42"},
    }[model]


def _snapshot(row) -> tuple:
    values = type(row).objects.filter(pk=row.pk).values().get()
    stores = sorted(row.stores.values_list("pk", flat=True)) if isinstance(row, StaffRole) else []
    return values, stores


def _add_post(demo, model: str, annex: Store) -> dict:
    return {
        "merchant": {"name": "Shadow", "slug": "shadow", "currency": "CNY", "timezone": "Asia/Shanghai"},
        "store": {"name": "Annex two", "code": "annex-two", "address": "3 Rd", "is_active": "on"},
        "staffrole": {
            "username": "newbie",
            "password1": PASSWORD,
            "password2": PASSWORD,
            "role": "analyst",
        },
        "product": _product_post(),
        "storestock": {"product": demo.ours.product.pk, "store": annex.pk, "quantity": "3"},
    }[model]


def _all_rows() -> tuple:
    return tuple(m.objects.count() for m in (Merchant, Store, StaffRole, Product, StoreStock, User))


WRITERS = [(model, "manager") for model in ROW] + [(model, "analyst") for model in ROW]


@pytest.mark.parametrize("model,role", WRITERS)
def test_admin_change_saves_for_managers_only(client, demo, annex, model, role):
    row = ROW[model](demo.ours)
    before = _snapshot(row)
    sign_in(client, demo, role)

    response = client.post(admin_url(model, "change", row.pk), _change_post(demo, model, annex))

    if role == "manager":
        assert response.status_code == 302, response.context["adminform"].form.errors if response.context else ""
        assert _snapshot(row) != before
    else:
        assert response.status_code == 403
        assert _snapshot(row) == before


@pytest.mark.parametrize("model,role", WRITERS)
def test_admin_add_creates_for_managers_only_and_never_merchants(client, demo, annex, model, role):
    before = _all_rows()
    sign_in(client, demo, role)

    response = client.post(admin_url(model, "add"), _add_post(demo, model, annex))

    if role == "manager" and model != "merchant":
        assert response.status_code == 302, response.context["adminform"].form.errors if response.context else ""
        assert _all_rows() != before
    else:
        assert response.status_code == 403
        assert _all_rows() == before


@pytest.mark.parametrize("model,role", WRITERS)
def test_admin_delete_removes_for_managers_only_and_never_merchants(client, demo, model, role):
    row = ROW[model](demo.ours)
    sign_in(client, demo, role)

    response = client.post(admin_url(model, "delete", row.pk), {"post": "yes"})

    gone = not type(row).objects.filter(pk=row.pk).exists()
    if role == "manager" and model != "merchant":
        assert response.status_code == 302
        assert gone
    else:
        assert response.status_code == 403
        assert not gone


# -- what managers may not do


def test_manager_cannot_edit_another_merchant(client, demo):
    client.force_login(demo.ours.manager)
    rival = demo.rival.merchant

    response = client.post(admin_url("merchant", "change", rival.pk), {"name": "Hijacked", "timezone": "UTC"})

    assert response.status_code == 404
    rival.refresh_from_db()
    assert rival.name == "Rival"


def test_manager_cannot_create_merchants_and_is_not_offered_to(client, demo):
    client.force_login(demo.ours.manager)

    index = client.get(reverse("admin:index"))
    refused = client.post(admin_url("merchant", "add"), {"name": "Shadow", "slug": "shadow", "timezone": "UTC"})

    merchants = next(
        model for app in index.context["app_list"] for model in app["models"] if model["object_name"] == "Merchant"
    )
    assert merchants["add_url"] is None
    assert refused.status_code == 403
    assert not Merchant.objects.filter(slug="shadow").exists()


def test_manager_edits_own_merchant_profile_but_not_its_slug_currency_or_status(client, demo):
    client.force_login(demo.ours.manager)
    merchant = demo.ours.merchant

    response = client.post(
        admin_url("merchant", "change", merchant.pk),
        {
            "name": "Ours Tea House",
            "slug": "hijacked",
            "currency": "USD",
            "is_active": "",
            "timezone": "Asia/Shanghai",
            "contact_name": "Ms Li",
            "unpaid_order_minutes": "15",
            "redemption_void_minutes": "30",
        },
    )

    assert response.status_code == 302
    merchant.refresh_from_db()
    assert (merchant.name, merchant.contact_name) == ("Ours Tea House", "Ms Li")
    assert (merchant.slug, merchant.currency, merchant.is_active) == ("ours", "CNY", True)


def test_manager_cannot_delete_own_staff_role(client, demo):
    client.force_login(demo.ours.manager)
    own = demo.ours.manager.staff_role

    page = client.get(admin_url("staffrole", "delete", own.pk))
    post = client.post(admin_url("staffrole", "delete", own.pk), {"post": "yes"})

    assert page.status_code == post.status_code == 403
    assert StaffRole.objects.filter(pk=own.pk).exists()


def test_manager_cannot_delete_own_staff_role_in_a_bulk_delete(client, demo):
    client.force_login(demo.ours.manager)
    own, cashier = demo.ours.manager.staff_role, demo.ours.cashier.staff_role

    response = client.post(
        admin_url("staffrole", "changelist"),
        {"action": "delete_selected", "_selected_action": [own.pk, cashier.pk], "post": "yes"},
    )

    # The admin refuses the whole action (a row the user may not delete is among them).
    assert response.status_code == 403
    assert StaffRole.objects.filter(pk__in=[own.pk, cashier.pk]).count() == 2


def test_manager_cannot_demote_themselves(client, demo):
    client.force_login(demo.ours.manager)
    own = demo.ours.manager.staff_role

    response = client.post(
        admin_url("staffrole", "change", own.pk), {"role": "cashier", "stores": [demo.ours.store.pk]}
    )

    assert response.status_code == 302
    own.refresh_from_db()
    assert own.role == "manager"
    assert User.objects.get(pk=demo.ours.manager.pk).is_staff
    assert client.get(reverse("admin:index")).status_code == 200


def test_manager_promotes_a_cashier_who_then_enters_the_admin(client, demo):
    client.force_login(demo.ours.manager)
    cashier = demo.ours.cashier

    response = client.post(admin_url("staffrole", "change", cashier.staff_role.pk), {"role": "analyst"})

    assert response.status_code == 302
    cashier.refresh_from_db()
    assert cashier.is_staff
    client.force_login(cashier)
    assert client.get(reverse("admin:index")).status_code == 200


# -- staff a manager creates in the admin


def _new_staff(client, demo, role: str, stores=()) -> object:
    client.force_login(demo.ours.manager)
    return client.post(
        admin_url("staffrole", "add"),
        {
            "username": f"new_{role}",
            "password1": PASSWORD,
            "password2": PASSWORD,
            "first_name": "Xiao",
            "last_name": "Wang",
            "role": role,
            "stores": [s.pk for s in stores],
        },
    )


def _api_token(client, username: str) -> str:
    response = client.post("/api/v1/auth/token/", {"username": username, "password": PASSWORD})
    assert response.status_code == 200, response.content
    return response.json()["token"]


@pytest.mark.parametrize("role,is_staff", [("manager", True), ("analyst", True), ("cashier", False)])
def test_staff_created_by_a_manager_signs_in_with_their_roles_access(client, demo, role, is_staff):
    # Given a manager adds a staff member with a login, a role and (for a cashier) a store
    created = _new_staff(client, demo, role, stores=[demo.ours.store] if role == "cashier" else ())
    assert created.status_code == 302
    user = User.objects.get(username=f"new_{role}")
    assert user.staff_role.merchant == demo.ours.merchant
    assert user.is_staff is is_staff
    assert list(user.staff_role.stores.all()) == ([demo.ours.store] if role == "cashier" else [])
    client.logout()

    # When they sign in to the admin with their password
    login = client.post(reverse("admin:login"), {"username": f"new_{role}", "password": PASSWORD, "next": "/admin/"})

    # Then managers and analysts are in, cashiers are told this is not for them
    if is_staff:
        assert login.status_code == 302 and login.url == "/admin/"
        assert client.get(reverse("admin:index")).status_code == 200
    else:
        assert login.status_code == 200
        assert "correct username and password for a staff account" in login.content.decode()
        assert is_login_redirect(client.get(reverse("admin:index")))

    # And through the API (token auth) every role reads and only managers write
    client.logout()
    auth = {"HTTP_AUTHORIZATION": f"Token {_api_token(client, f'new_{role}')}"}
    assert client.get("/api/v1/stores/", **auth).status_code == 200
    write = client.post(
        "/api/v1/stores/",
        {"name": "Kiosk", "code": "kiosk", "address": "4 Rd"},
        content_type="application/json",
        **auth,
    )
    assert write.status_code == (201 if role == "manager" else 403)


def test_cashier_without_stores_is_refused_with_a_clear_error(client, demo):
    before = User.objects.count()

    response = _new_staff(client, demo, "cashier", stores=())

    assert response.status_code == 200
    assert response.context["adminform"].form.errors["stores"] == ["A cashier needs at least one store to serve."]
    assert "A cashier needs at least one store to serve." in response.content.decode()
    assert User.objects.count() == before


def test_new_staff_username_must_be_free(client, demo):
    response = _new_staff(client, demo, "analyst")
    assert response.status_code == 302

    again = _new_staff(client, demo, "analyst")

    assert again.status_code == 200
    assert again.context["adminform"].form.errors["username"] == ["This username is taken; choose another."]


# ============================================================================ API

ENDPOINTS = ["stores", "products", "stock"]
# What each role gets, by action: managers do everything, other staff read, the rest are refused.
API_STATUS = {
    "manager": {"list": 200, "retrieve": 200, "create": 201, "update": 200, "delete": 204},
    "analyst": {"list": 200, "retrieve": 200, "create": 403, "update": 403, "delete": 403},
    "cashier": {"list": 200, "retrieve": 200, "create": 403, "update": 403, "delete": 403},
    "no_role": {"list": 403, "retrieve": 403, "create": 403, "update": 403, "delete": 403},
    "anonymous": {"list": 401, "retrieve": 401, "create": 401, "update": 401, "delete": 401},
}
API_CASES = [(endpoint, role, action) for endpoint in ENDPOINTS for role in API_STATUS for action in API_STATUS[role]]


def _api_row(demo, endpoint: str):
    return {"stores": demo.ours.store, "products": demo.ours.product, "stock": demo.ours.stock}[endpoint]


def _api_payload(demo, endpoint: str, annex: Store, action: str) -> dict:
    if endpoint == "stores":
        return {"name": "Kiosk", "code": "kiosk", "address": "4 Rd"}
    if endpoint == "products":
        return {"name": "Pu'er", "sku": "PUER-1", "price": "88.00"}
    store = annex if action == "create" else demo.ours.store
    return {"product": demo.ours.product.pk, "store": store.pk, "quantity": 7}


def _api_call(client, demo, endpoint: str, action: str, annex: Store):
    base = f"/api/v1/{endpoint}/"
    detail = f"{base}{_api_row(demo, endpoint).pk}/"
    payload = _api_payload(demo, endpoint, annex, action)
    return {
        "list": lambda: client.get(base),
        "retrieve": lambda: client.get(detail),
        "create": lambda: client.post(base, payload, content_type="application/json"),
        "update": lambda: client.put(detail, payload, content_type="application/json"),
        "delete": lambda: client.delete(detail),
    }[action]()


def _api_rows(endpoint: str) -> list:
    model = {"stores": Store, "products": Product, "stock": StoreStock}[endpoint]
    return list(model.objects.order_by("pk").values())


@pytest.mark.parametrize("endpoint,role,action", API_CASES)
def test_api_by_role(client, demo, annex, endpoint, role, action):
    sign_in(client, demo, role)
    before = _api_rows(endpoint)

    response = _api_call(client, demo, endpoint, action, annex)

    assert response.status_code == API_STATUS[role][action], response.content
    if action in ("create", "update", "delete"):
        wrote = _api_rows(endpoint) != before
        assert wrote is (response.status_code < 300)


def test_api_refusal_for_a_user_without_merchant_says_why(client, demo):
    sign_in(client, demo, "no_role")

    response = client.get("/api/v1/stores/")

    assert response.status_code == 403
    assert response.json()["detail"] == "Your account does not belong to a merchant."


def test_api_new_rows_belong_to_the_managers_merchant(client, demo):
    client.force_login(demo.ours.manager)

    response = client.post(
        "/api/v1/products/", {"name": "Pu'er", "sku": "PUER-1", "price": "88.00"}, content_type="application/json"
    )

    assert response.status_code == 201
    assert response.json()["merchant"] == "ours"
    assert Product.objects.get(pk=response.json()["id"]).merchant == demo.ours.merchant
