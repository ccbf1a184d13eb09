"""Who may do what with promotions, orders, scans and members in the admin.

Managers build promotions (add, change, delete what has not sold, publish, end) and keep member
details up to date; orders and scans are records they read, never add or delete. Analysts read
everything and change nothing. Cashiers, staff without a merchant and anonymous visitors get the
login page. All rows are `demo.ours`'s, seen by `demo.ours`'s staff; the changelists run a number
of queries that does not grow with their rows.
"""

import pytest
from django.urls import reverse

from members.models import Member
from orders.models import Order, Promotion, Scan
from orders.services import order_mark_paid, order_place
from tests.factories import promotion
from tests.merchants.test_query_counts import FEW, MANY, count_queries
from tests.merchants.test_roles import KEPT_OUT_OF_ADMIN, is_login_redirect, sign_in
from tests.orders.test_isolation_orders import Sales, _add_data, _change_data, admin_url, everything, sales_of

P = Promotion.Status


@pytest.fixture
def ours(demo) -> Sales:
    """Our live and draft promotions, a scan, a paid order and its member."""
    return sales_of(demo.ours)


# The row of ours each admin's change, history and delete pages are tried on (the draft: it has not sold).
ROW = {
    "promotion": lambda s: s.draft,
    "order": lambda s: s.order,
    "scan": lambda s: s.scan,
    "member": lambda s: s.member,
}
# What each role gets on each admin page (GET): 200 shown, 403 refused.
EVERYTHING = {"changelist": 200, "add": 200, "change": 200, "history": 200, "delete": 200}
VIEW_CHANGE = {"changelist": 200, "add": 403, "change": 200, "history": 200, "delete": 403}
READ_ONLY = VIEW_CHANGE  # the same pages; the change page shows no save button (see below)
ADMIN_PAGES = {
    "promotion": {"manager": EVERYTHING, "analyst": READ_ONLY},
    "order": {"manager": READ_ONLY, "analyst": READ_ONLY},
    "scan": {"manager": READ_ONLY, "analyst": READ_ONLY},
    "member": {"manager": VIEW_CHANGE, "analyst": READ_ONLY},
}
MAY_CHANGE = {("promotion", "manager"), ("member", "manager")}
ADMIN_CASES = [
    (model, role, view, expected)
    for model, by_role in ADMIN_PAGES.items()
    for role, views in by_role.items()
    for view, expected in views.items()
]


def _page_url(sales: Sales, model: str, view: str) -> str:
    if view in ("changelist", "add"):
        return admin_url(model, view)
    return admin_url(model, view, ROW[model](sales).pk)


# Not "page": that name is pytest-playwright's browser page fixture.
@pytest.mark.parametrize("model,role,view,expected", ADMIN_CASES)
def test_admin_pages_by_role(client, demo, ours, model, role, view, expected):
    sign_in(client, demo, role)

    response = client.get(_page_url(ours, model, view))

    assert response.status_code == expected
    if view == "change":
        may_change = (model, role) in MAY_CHANGE
        assert response.context["has_change_permission"] is may_change
        assert ('name="_save"' in response.content.decode()) is may_change


# The promotion admin's own pages: QR downloads, the list of goods walls, one store's wall.
EXTRA_PAGES = {
    "qr-png": lambda s: reverse("admin:orders_promotion_qr", args=[s.promotion.pk, s.side.store.pk, "png"]),
    "qr-svg": lambda s: reverse("admin:orders_promotion_qr", args=[s.promotion.pk, s.side.store.pk, "svg"]),
    "walls": lambda s: reverse("admin:orders_promotion_walls"),
    "wall": lambda s: reverse("admin:orders_promotion_wall", args=[s.side.store.pk]),
}


@pytest.mark.parametrize("role", ["manager", "analyst"])
@pytest.mark.parametrize("extra", EXTRA_PAGES)
def test_managers_and_analysts_download_qr_codes_and_print_goods_walls(client, demo, ours, extra, role):
    sign_in(client, demo, role)

    response = client.get(EXTRA_PAGES[extra](ours))

    assert response.status_code == 200
    if extra == "wall":
        assert [card["promotion"] for card in response.context["cards"]] == [ours.promotion]


KEPT_OUT_PAGES = [(model, view) for model in ROW for view in EVERYTHING] + [("promotion", e) for e in EXTRA_PAGES]


@pytest.mark.parametrize("model,view", KEPT_OUT_PAGES)
@pytest.mark.parametrize("role", KEPT_OUT_OF_ADMIN)
def test_admin_pages_send_cashiers_and_strangers_to_the_login(client, demo, ours, role, model, view):
    sign_in(client, demo, role)
    url = EXTRA_PAGES[view](ours) if view in EXTRA_PAGES else _page_url(ours, model, view)
    before = everything()

    assert is_login_redirect(client.get(url))
    assert is_login_redirect(client.post(url, {"post": "yes", "title": "Taken over", "name": "Taken over"}))
    assert everything() == before


def test_cashier_with_the_staff_flag_is_still_kept_out_of_orders(client, demo, ours):
    # The role decides, not the flag (a cashier's user may carry is_staff from an earlier role).
    cashier = demo.ours.cashier
    type(cashier).objects.filter(pk=cashier.pk).update(is_staff=True)
    client.force_login(type(cashier).objects.get(pk=cashier.pk))

    for model in ROW:
        assert is_login_redirect(client.get(admin_url(model, "changelist")))
    assert is_login_redirect(client.get(EXTRA_PAGES["qr-png"](ours)))


# ============================================================================ writes

# model -> (Sales -> the row a change is tried on, Sales -> what its change form posts)
CHANGES = {
    "promotion": (lambda s: s.promotion, lambda s: _change_data(s, title="Spring Festival Longjing")),
    "member": (lambda s: s.member, lambda s: {"name": "Zhang Wei", "marketing_consent": "on"}),
    # Read-only records: whatever is posted, nothing may change.
    "order": (lambda s: s.order, lambda s: {"status": "cancelled", "total": "0.00", "pickup_code": "TAKEN"}),
    "scan": (lambda s: s.scan, lambda s: {"store": "", "promotion": s.draft.pk}),
}
WRITERS = [(model, role) for model in CHANGES for role in ("manager", "analyst")]


def _values(row) -> dict:
    return type(row).objects.filter(pk=row.pk).values().get()


@pytest.mark.parametrize("model,role", WRITERS)
def test_admin_change_saves_for_managers_of_promotions_and_members_only(client, demo, ours, model, role):
    row_of, data = CHANGES[model]
    row = row_of(ours)
    before = _values(row)
    sign_in(client, demo, role)

    response = client.post(admin_url(model, "change", row.pk), data(ours))

    if (model, role) in MAY_CHANGE:
        assert response.status_code == 302, response.context and response.context["errors"]
        assert _values(row) != before
    else:
        assert response.status_code == 403
        assert _values(row) == before


ADDS = {
    "promotion": lambda s: _add_data(s),
    "member": lambda s: {"phone": "13700001111", "name": "Li Na"},
    "order": lambda s: {"promotion": s.promotion.pk, "member": s.member.pk, "quantity": "1", "fulfilment": "pickup"},
    "scan": lambda s: {"promotion": s.promotion.pk, "store": s.side.store.pk},
}


@pytest.mark.parametrize("model,role", WRITERS)
def test_admin_add_creates_promotions_for_managers_only_and_nothing_else(client, demo, ours, model, role):
    before = everything()
    sign_in(client, demo, role)

    response = client.post(admin_url(model, "add"), ADDS[model](ours))

    if (model, role) == ("promotion", "manager"):
        assert response.status_code == 302, response.context and response.context["errors"]
        assert Promotion.objects.filter(merchant=demo.ours.merchant).count() == 3
    else:
        assert response.status_code == 403
        assert everything() == before


@pytest.mark.parametrize("model,role", WRITERS)
def test_admin_delete_removes_unsold_promotions_for_managers_only(client, demo, ours, model, role):
    row = ROW[model](ours)
    sign_in(client, demo, role)

    response = client.post(admin_url(model, "delete", row.pk), {"post": "yes"})

    gone = not type(row).objects.filter(pk=row.pk).exists()
    if (model, role) == ("promotion", "manager"):
        assert response.status_code == 302
        assert gone
    else:
        assert response.status_code == 403
        assert not gone


def test_a_promotion_that_has_sold_is_not_deleted_even_by_a_manager(client, demo, ours):
    # Its orders keep it (PROTECT): the admin names them instead of deleting.
    sign_in(client, demo, "manager")
    url = admin_url("promotion", "delete", ours.promotion.pk)

    shown = client.get(url)
    response = client.post(url, {"post": "yes"})

    assert shown.status_code == response.status_code == 200
    assert "Cannot delete promotion" in shown.content.decode()
    assert shown.context["protected"]  # the orders that keep it, listed
    assert Promotion.objects.filter(pk=ours.promotion.pk).exists()
    assert Order.objects.filter(pk=ours.order.pk).exists()


# ============================================================================ actions


def _act(client, model: str, action: str, *rows):
    return client.post(
        admin_url(model, "changelist"),
        {"action": action, "_selected_action": [str(r.pk) for r in rows], "post": "yes"},
        follow=True,
    )


def _offered_actions(client, model: str) -> set[str]:
    response = client.get(admin_url(model, "changelist"))
    assert response.status_code == 200
    form = response.context["action_form"]
    return {name for name, _label in form.fields["action"].choices if name} if form else set()


def test_managers_are_offered_and_run_the_promotion_actions(client, demo, ours):
    sign_in(client, demo, "manager")

    assert _offered_actions(client, "promotion") == {"publish", "end", "delete_selected"}
    _act(client, "promotion", "publish", ours.draft)
    _act(client, "promotion", "end", ours.promotion)

    assert Promotion.objects.get(pk=ours.draft.pk).status == P.LIVE
    assert Promotion.objects.get(pk=ours.promotion.pk).status == P.ENDED


def test_analysts_are_offered_no_promotion_actions(client, demo, ours):
    sign_in(client, demo, "analyst")

    assert _offered_actions(client, "promotion") == set()


@pytest.mark.parametrize("action", ["publish", "end", "delete_selected"])
def test_an_analysts_promotion_action_changes_nothing(client, demo, ours, action):
    row = ours.draft if action != "end" else ours.promotion
    before = everything()
    sign_in(client, demo, "analyst")

    _act(client, "promotion", action, row)

    assert everything() == before


@pytest.mark.parametrize("role", ["manager", "analyst"])
@pytest.mark.parametrize("model", ["order", "scan", "member"])
def test_records_offer_no_bulk_delete_and_a_posted_one_deletes_nothing(client, demo, ours, model, role):
    sign_in(client, demo, role)

    offered = _offered_actions(client, model)
    _act(client, model, "delete_selected", ROW[model](ours))

    # Managers mark orders ready for pickup (tests/pickups/test_ready.py) and ship or deliver them
    # (tests/orders/test_shipping_admin.py) from the list; nothing deletes.
    order_actions = {"mark_ready_for_pickup", "ship_selected", "deliver_selected"}
    assert offered == (order_actions if (model, role) == ("order", "manager") else set())
    assert type(ROW[model](ours)).objects.filter(pk=ROW[model](ours).pk).exists()


# ============================================================================ the index


# object name -> (an "add" link, a change link rather than "view") for each role
INDEX_LINKS = {
    "manager": {"Promotion": (True, True), "Order": (False, False), "Scan": (False, False), "Member": (False, True)},
    "analyst": {"Promotion": (False, False), "Order": (False, False), "Scan": (False, False), "Member": (False, False)},
}


@pytest.mark.parametrize("role", ["manager", "analyst"])
def test_admin_index_lists_promotions_orders_scans_members_with_add_links_by_role(client, demo, role):
    sign_in(client, demo, role)

    index = client.get(reverse("admin:index"))

    models = {
        model["object_name"]: model
        for app in index.context["app_list"]
        if app["app_label"] in ("orders", "members")
        for model in app["models"]
    }
    # Only these four: other admins of the same apps (payments) are not this test's subject.
    assert {
        name: (bool(models[name]["add_url"]), not models[name]["view_only"])
        for name in INDEX_LINKS[role]
        if name in models
    } == INDEX_LINKS[role]


# ============================================================================ query counts


def grow_to(side, rows: int) -> None:
    """Give `side`'s merchant `rows` promotions, each with its own product and store, a scan and a
    paid order by its own member: a per-row lookup of any of them shows up as a query per row."""
    merchant = side.merchant
    for i in range(Promotion.objects.filter(merchant=merchant).count(), rows):
        offer = promotion(merchant, title=f"Offer {i}")
        store = offer.pickup_stores.get()
        scan = Scan.objects.create(merchant=merchant, promotion=offer, store=store)
        order = order_place(
            promotion=offer, quantity=1, phone=f"1390000{i:04d}", fulfilment="pickup", submit_key=f"grow-{i}",
            pickup_store=store, scan_key=scan.key,
        )
        order_mark_paid(order=order)
    for model in (Promotion, Scan, Order, Member):
        assert model.objects.filter(merchant=merchant).count() == rows


# A little above what the pages run today (5-9: session, user, staff role, count, rows, filter choices,
# date hierarchy). The equality is the real test; the bound catches a page expensive for any count.
ADMIN_BOUND = 10


@pytest.mark.parametrize("viewer", ["manager", "superuser"])
@pytest.mark.parametrize("model", ["promotion", "order", "scan", "member"])
def test_admin_changelist_queries_do_not_grow_with_rows(client, demo, model, viewer):
    url = admin_url(model, "changelist")
    client.force_login(demo.superuser if viewer == "superuser" else demo.ours.manager)
    grow_to(demo.ours, FEW)
    few, few_rows = count_queries(client, url)

    grow_to(demo.ours, MANY)
    many, many_rows = count_queries(client, url)

    assert many_rows > few_rows >= FEW  # the page did list the new rows
    assert many == few, f"{few} queries for {few_rows} rows, {many} for {many_rows}"
    assert few <= ADMIN_BOUND
