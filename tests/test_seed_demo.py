"""`manage.py seed_demo --password X`: the demo PRODUCT.md promises, and a second run changes nothing."""

from io import StringIO

import pytest
from django.apps import apps
from django.contrib.auth import get_user_model
from django.core.management import CommandError, call_command
from django.test import Client

from merchants.models import Merchant, Product, StaffRole, Store, StoreStock
from merchants.services import stock_set

PASSWORD = "demo-horse-battery"
User = get_user_model()

pytestmark = pytest.mark.django_db



def seed(password: str = PASSWORD) -> str:
    out = StringIO()
    call_command("seed_demo", password=password, stdout=out)
    return out.getvalue()


def snapshot() -> dict[str, list[dict]]:
    """Every row of every model, many-to-many tables included, in primary-key order.

    Taken over all installed models, so rows that seed_demo learns to create later (promotions,
    members, orders) are covered without touching this test.
    """
    return {
        model._meta.label: list(model._default_manager.order_by("pk").values())
        for model in apps.get_models(include_auto_created=True)
    }


def assert_same_rows(before: dict, after: dict) -> None:
    changed = [label for label in before if before[label] != after[label]]
    assert not changed, f"seed_demo changed rows of: {', '.join(changed)}"


def admin_sign_in(username: str, password: str = PASSWORD):
    return Client(REMOTE_ADDR="192.0.2.10").post(
        "/admin/login/", {"username": username, "password": password, "next": "/admin/"}
    )


def test_demo_has_the_merchants_stores_and_logins_product_md_promises():
    output = seed()

    demo = Merchant.objects.get(slug="demo")
    rival = Merchant.objects.get(slug="rival")
    assert Store.objects.filter(merchant=demo).count() == 3
    assert Store.objects.filter(merchant=rival).exists()
    assert Product.objects.filter(merchant=demo).exists()
    assert Product.objects.filter(merchant=rival).exists()
    # Every demo product is stocked at every demo store, so pickups can be tried anywhere.
    assert StoreStock.objects.filter(merchant=demo).count() == 3 * Product.objects.filter(merchant=demo).count()

    roles = {r.user.username: r for r in StaffRole.objects.select_related("user", "merchant")}
    assert {name: (r.merchant.slug, r.role) for name, r in roles.items()} == {
        "manager": ("demo", "manager"),
        "cashier": ("demo", "cashier"),
        "analyst": ("demo", "analyst"),
        "rival_manager": ("rival", "manager"),
    }
    cashier_stores = set(roles["cashier"].stores.all())
    assert cashier_stores and cashier_stores <= set(Store.objects.filter(merchant=demo))

    admin = User.objects.get(username="admin")
    assert admin.is_superuser and admin.is_staff
    assert not StaffRole.objects.filter(user=admin).exists()
    assert {u.username: u.is_staff for u in User.objects.filter(staff_role__isnull=False)} == {
        "manager": True,
        "analyst": True,
        "cashier": False,
        "rival_manager": True,
    }
    for username in ["admin", "manager", "cashier", "analyst", "rival_manager"]:
        assert username in output


@pytest.mark.parametrize("username", ["admin", "manager", "analyst", "rival_manager"])
def test_demo_admin_logins_work_with_the_given_password(username):
    seed()

    response = admin_sign_in(username)

    assert response.status_code == 302
    assert response["Location"] == "/admin/"


def test_demo_cashier_signs_in_through_the_api_not_the_admin():
    seed()

    token = Client(REMOTE_ADDR="192.0.2.10").post(
        "/api/v1/auth/token/", {"username": "cashier", "password": PASSWORD}, content_type="application/json"
    )

    assert token.status_code == 200
    assert token.json()["token"]
    # The admin is for managers and analysts; the cashier's right password still does not get in.
    assert admin_sign_in("cashier").status_code == 200


def test_second_run_changes_no_row_of_any_model():
    # given: a seeded database
    seed()
    before = snapshot()

    # when: it is seeded again with the same password
    seed()

    # then: not one row differs, password hashes (salted anew on every set_password) included
    assert_same_rows(before, snapshot())


def test_second_run_keeps_the_managers_edits():
    # given: a seeded demo that the manager then edited
    seed()
    demo = Merchant.objects.get(slug="demo")
    flagship = Store.objects.get(merchant=demo, code="nanjing-road")
    flagship.name = "Nanjing Road (renovated)"
    flagship.opening_hours = "09:00–23:00"
    flagship.save()
    tea = Product.objects.get(merchant=demo, sku="TEA-LJ-250")
    tea.price, tea.is_active = "288.00", False
    tea.save()
    stock_set(product=tea, store=flagship, quantity=3)
    StoreStock.objects.filter(product__sku="MOON-6", store=flagship).delete()
    cashier_role = StaffRole.objects.get(user__username="cashier")
    cashier_role.stores.set([flagship])
    User.objects.filter(username="analyst").update(first_name="Chen Jing", email="chen@example.com")
    edited = snapshot()

    # when: seed_demo runs again
    seed()

    # then: every edit is still there and nothing else moved
    assert_same_rows(edited, snapshot())
    flagship.refresh_from_db()
    assert flagship.name == "Nanjing Road (renovated)"
    assert StoreStock.objects.get(product=tea, store=flagship).quantity == 3


def test_second_run_after_the_manager_changed_a_store_code_neither_fails_nor_adds_the_store_back():
    # given: the manager gave the flagship a new code for its QR links, keeping its name
    seed()
    Store.objects.filter(merchant__slug="demo", code="nanjing-road").update(code="flagship")
    edited = snapshot()

    # when: seed_demo runs again
    seed()

    # then: still the same three stores, the new code kept
    assert_same_rows(edited, snapshot())
    assert Store.objects.filter(merchant__slug="demo", code="flagship").exists()


def test_second_run_after_the_manager_changed_a_sku_does_not_add_the_product_back():
    # given: the manager renumbered a demo product
    seed()
    Product.objects.filter(merchant__slug="demo", sku="UMB-AUTO").update(sku="UMB-AUTO-2024")
    edited = snapshot()

    # when: seed_demo runs again
    seed()

    # then: no second umbrella appears next to the renumbered one
    assert_same_rows(edited, snapshot())


def test_second_run_with_another_password_changes_only_the_demo_passwords():
    # The demo logins printed by `make run` must work whatever the database held before.
    seed()
    before = snapshot()

    seed(password="another-horse-battery")

    after = snapshot()
    changed = {label for label in before if before[label] != after[label]}
    assert changed == {"auth.User"}
    for old, new in zip(before["auth.User"], after["auth.User"], strict=True):
        assert {k: v for k, v in old.items() if k != "password"} == {k: v for k, v in new.items() if k != "password"}
    assert admin_sign_in("manager", "another-horse-battery").status_code == 302


def test_without_password_the_command_refuses_and_creates_nothing():
    with pytest.raises(CommandError, match="--password"):
        call_command("seed_demo")

    assert not Merchant.objects.exists()
    assert not User.objects.exists()


def test_empty_password_is_refused_rather_than_creating_logins_nobody_can_use():
    # The sign-in form and the token endpoint both require a password: "" could never be typed in.
    with pytest.raises(CommandError, match="password"):
        call_command("seed_demo", password="")

    assert not User.objects.exists()


def test_demo_orders_in_later_states_carry_what_the_services_leave():
    """Each later state got there the way staff get it there, so every page that shows its traces has some."""
    from members.models import Notification
    from orders.models import Order
    from orders.payments.models import Refund
    from orders.pickups.models import Redemption

    seed()
    demo = Merchant.objects.get(slug="demo")
    orders = Order.objects.filter(merchant=demo)
    ready = orders.get(status=Order.Status.READY_FOR_PICKUP)
    assert ready.ready_at is not None
    assert Notification.objects.filter(order=ready).exists()  # the customer was told
    for picked in orders.filter(status=Order.Status.PICKED_UP):
        redemption = Redemption.objects.get(order=picked)
        assert redemption.voided_at is None and redemption.units == sum(i.quantity for i in picked.items.all())
        assert all(item.handed_over == item.quantity for item in picked.items.all())
    shipped = orders.get(status=Order.Status.SHIPPED)
    delivered = orders.get(status=Order.Status.DELIVERED)
    for parcel in (shipped, delivered):
        assert parcel.carrier == "SF" and parcel.tracking_number and parcel.shipped_at
    assert delivered.delivered_at and delivered.closed_at and shipped.delivered_at is None
    expired = orders.get(status=Order.Status.EXPIRED)
    assert expired.pickup_deadline < expired.closed_at
    assert Refund.objects.filter(payment__order=expired).exists()  # its money went back
    # Nothing was moved behind the services' backs.
    assert not orders.filter(events__note="demo data").exists()
