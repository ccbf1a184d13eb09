"""A manager adds and changes their staff in the admin: the login comes with the role."""

import pytest
from django.contrib.auth import get_user_model
from django.test import Client

from merchants.models import StaffRole

User = get_user_model()
ADD_URL = "/admin/merchants/staffrole/add/"
CHANGELIST_URL = "/admin/merchants/staffrole/"
STRONG = "lantern-quiet-harbour-42"

pytestmark = pytest.mark.django_db



@pytest.fixture
def manager_client(demo) -> Client:
    client = Client()
    client.force_login(demo.ours.manager)
    return client


def add_staff(client: Client, **fields):
    data = {"username": "xiao_li", "password1": STRONG, "password2": STRONG, "role": "cashier", **fields}
    return client.post(ADD_URL, data)


def form_errors(response) -> dict[str, list[str]]:
    assert response.status_code == 200, "expected the form back with errors"
    return response.context["adminform"].form.errors


def change_url(staff_role: StaffRole) -> str:
    return f"/admin/merchants/staffrole/{staff_role.pk}/change/"


def change_staff(client: Client, user, **fields):
    role = user.staff_role
    data = {"role": role.role, "stores": [s.pk for s in role.stores.all()], "new_password": "", **fields}
    return client.post(change_url(role), data)


# --------------------------------------------------------------------------- adding


def test_manager_adds_a_cashier_with_a_login_for_their_stores(demo, manager_client):
    response = add_staff(manager_client, role="cashier", stores=[demo.ours.store.pk], first_name="Li")

    assert response.status_code == 302
    assert response["Location"] == CHANGELIST_URL
    user = User.objects.get(username="xiao_li")
    role = user.staff_role
    assert (role.merchant, role.role, list(role.stores.all())) == (demo.ours.merchant, "cashier", [demo.ours.store])
    assert user.first_name == "Li"
    assert user.check_password(STRONG)
    # Cashiers work at the counter page and through the API, not in the admin.
    assert user.is_staff is False
    assert user.is_superuser is False


@pytest.mark.parametrize("role", ["analyst", "manager"])
def test_manager_adds_an_analyst_or_manager_who_can_enter_the_admin(demo, manager_client, role):
    response = add_staff(manager_client, role=role)

    assert response.status_code == 302
    user = User.objects.get(username="xiao_li")
    assert (user.staff_role.merchant, user.staff_role.role) == (demo.ours.merchant, role)
    assert user.is_staff is True
    assert user.check_password(STRONG)
    signed_in = Client(REMOTE_ADDR="192.0.2.44").post(
        "/admin/login/", {"username": "xiao_li", "password": STRONG, "next": "/admin/"}
    )
    assert signed_in.status_code == 302
    assert signed_in["Location"] == "/admin/"


def test_new_staff_always_join_the_managers_merchant(demo, manager_client):
    # The merchant field is shown disabled; a forged value in the post changes nothing.
    response = add_staff(manager_client, role="analyst", merchant=demo.rival.merchant.pk)

    assert response.status_code == 302
    assert StaffRole.objects.get(user__username="xiao_li").merchant == demo.ours.merchant


def assert_nothing_created(before_users: int, before_roles: int) -> None:
    assert User.objects.count() == before_users
    assert StaffRole.objects.count() == before_roles
    assert not User.objects.filter(username__iexact="xiao_li").exists()


@pytest.mark.parametrize(
    ("fields", "field", "message"),
    [
        ({"password2": STRONG + "x"}, "password2", "The two passwords differ."),
        ({"password1": "password", "password2": "password"}, "password1", "This password is too common."),
        ({"password1": "83920174", "password2": "83920174"}, "password1", "This password is entirely numeric."),
        ({"password1": "xiao_li1", "password2": "xiao_li1"}, "password1", "too similar to the username"),
        ({"password1": "k9#x", "password2": "k9#x"}, "password1", "too short"),
        ({"role": "cashier", "stores": []}, "stores", "A cashier needs at least one store to serve."),
        ({"username": "bad name!"}, "username", "Enter a valid username"),
    ],
    ids=["passwords-differ", "common", "numeric", "like-username", "short", "cashier-without-stores", "bad-username"],
)
def test_invalid_staff_form_explains_itself_and_creates_nothing(demo, manager_client, fields, field, message):
    before = User.objects.count(), StaffRole.objects.count()

    response = add_staff(manager_client, **{"stores": [demo.ours.store.pk], **fields})

    errors = form_errors(response)
    assert any(message in text for text in errors.get(field, [])), errors
    assert_nothing_created(*before)


@pytest.mark.parametrize("taken", ["ours_cashier", "OURS_CASHIER", "rival_manager", "platform"])
def test_taken_username_is_refused_whoever_holds_it(demo, manager_client, taken):
    # Usernames are global: one taken at another merchant (or by the platform) is taken here too.
    before = User.objects.count(), StaffRole.objects.count()

    response = add_staff(manager_client, username=taken, stores=[demo.ours.store.pk])

    assert form_errors(response)["username"] == ["This username is taken; choose another."]
    assert User.objects.count() == before[0]
    assert StaffRole.objects.count() == before[1]


def test_rival_store_cannot_be_assigned_to_a_new_cashier(demo, manager_client):
    before = User.objects.count(), StaffRole.objects.count()

    response = add_staff(manager_client, stores=[demo.rival.store.pk])

    assert "stores" in form_errors(response)
    assert_nothing_created(*before)


# --------------------------------------------------------------------------- changing


def test_changing_a_cashier_to_analyst_opens_the_admin_to_them(demo, manager_client):
    cashier = demo.ours.cashier
    assert cashier.is_staff is False

    response = change_staff(manager_client, cashier, role="analyst")

    assert response.status_code == 302
    cashier.refresh_from_db()
    assert cashier.staff_role.role == "analyst"
    assert cashier.is_staff is True


def test_changing_an_analyst_to_cashier_closes_the_admin_to_them(demo, manager_client):
    analyst = demo.ours.analyst

    response = change_staff(manager_client, analyst, role="cashier", stores=[demo.ours.store.pk])

    assert response.status_code == 302
    analyst.refresh_from_db()
    assert analyst.staff_role.role == "cashier"
    assert analyst.is_staff is False


def test_changing_to_cashier_without_stores_is_refused(demo, manager_client):
    analyst = demo.ours.analyst

    response = change_staff(manager_client, analyst, role="cashier", stores=[])

    assert "A cashier needs at least one store to serve." in form_errors(response)["stores"]
    analyst.refresh_from_db()
    assert analyst.staff_role.role == "analyst"
    assert analyst.is_staff is True


def test_new_password_on_the_change_form_sets_the_password(demo, manager_client):
    cashier = demo.ours.cashier

    response = change_staff(manager_client, cashier, new_password=STRONG)

    assert response.status_code == 302
    cashier.refresh_from_db()
    assert cashier.check_password(STRONG)
    assert not cashier.check_password("correct-horse-battery")


def test_empty_new_password_keeps_the_current_one(demo, manager_client):
    cashier = demo.ours.cashier
    before = User.objects.get(pk=cashier.pk).password

    response = change_staff(manager_client, cashier, role="cashier")

    assert response.status_code == 302
    cashier.refresh_from_db()
    assert cashier.password == before


def test_weak_new_password_is_refused_and_the_old_one_kept(demo, manager_client):
    cashier = demo.ours.cashier

    response = change_staff(manager_client, cashier, new_password="12345678")

    assert form_errors(response)["new_password"]
    cashier.refresh_from_db()
    assert cashier.check_password("correct-horse-battery")
