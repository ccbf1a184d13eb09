"""Shipping, delivery, the shipments import and the needs-attention list in the admin: what managers do,
what analysts only see, and what the rival merchant's staff find (nothing, as if it did not exist)."""

import io
import re

import pytest
from django.urls import reverse

from orders.fulfilment import order_ship, pickups_expire_overdue
from orders.models import Order, OrderEvent
from orders.payments.models import SandboxTrade
from tests.factories import UserFactory
from tests.orders.fulfilment_world import fulfilment_shop, signed_in

O = Order.Status  # noqa: E741


@pytest.fixture
def lotus(db):
    return fulfilment_shop("lotus")


@pytest.fixture
def rival(db):
    return fulfilment_shop("rival")


def url(name, *args):
    return reverse(f"admin:orders_order_{name}", args=args)


def state(order):
    return Order.objects.filter(pk=order.pk).values_list("status", "carrier", "tracking_number").get()


def upload(client, text: str, encoding="utf-8"):
    file = io.BytesIO(text.encode(encoding))
    file.name = "shipments.csv"
    return client.post(url("import_shipments"), {"file": file})


def flagged(shop) -> Order:
    """An overdue pickup whose automatic refund the provider refused: on the needs-attention list."""
    order = shop.order(fulfilment="pickup")
    from django.db.models import F
    from django.utils import timezone

    Order.objects.filter(pk=order.pk).update(pickup_deadline=timezone.now() - timezone.timedelta(minutes=5))
    SandboxTrade.objects.filter(out_trade_no=shop.payment(order).out_trade_no).update(
        refunded_minor=F("amount_minor")
    )
    pickups_expire_overdue()
    order.refresh_from_db()
    assert order.needs_attention
    return order


# --------------------------------------------------------------------------- one order


def test_a_manager_ships_an_order_from_its_page_with_carrier_and_tracking_number(lotus):
    order, client = lotus.order(), signed_in(lotus.manager)

    page = client.get(url("change", order.pk)).content.decode()
    form = client.get(url("ship", order.pk))
    done = client.post(url("ship", order.pk), {"carrier": "SF", "tracking_number": " sf123456789012 "}, follow=True)

    assert 'class="fieldset-heading">Parcel</h2>' in page
    assert f'href="{url("ship", order.pk)}"' in page and "Mark shipped" in page
    assert form.status_code == 200 and "SF Express (SF)" in form.content.decode()
    assert state(order) == (O.SHIPPED, "SF", "SF123456789012")
    assert f"Order #{order.pk} shipped with SF Express SF123456789012." in done.content.decode()
    assert OrderEvent.objects.get(order=order, to_status=O.SHIPPED).actor == lotus.manager


def test_a_pickup_order_has_no_shipping_block_and_cannot_be_shipped_by_url(lotus):
    order, client = lotus.order(fulfilment="pickup"), signed_in(lotus.manager)

    page = client.get(url("change", order.pk)).content.decode()
    answer = client.post(url("ship", order.pk), {"carrier": "SF", "tracking_number": "SF123456789012"})

    assert 'class="fieldset-heading">Parcel</h2>' not in page and url("ship", order.pk) not in page
    assert answer.context["form"].non_field_errors() == [
        f"Order #{order.pk} is for pickup in store, not express delivery."
    ]
    assert state(order) == (O.PAID, "", "")


def test_a_bad_tracking_number_is_shown_at_its_field_and_changes_nothing(lotus):
    order, client = lotus.order(), signed_in(lotus.manager)

    answer = client.post(url("ship", order.pk), {"carrier": "SF", "tracking_number": "SF 12 34"})

    assert answer.status_code == 200
    assert answer.context["form"].errors == {
        "tracking_number": ["A tracking number has only letters, digits and inner hyphens."]
    }
    assert state(order) == (O.PAID, "", "")


def test_a_manager_marks_a_shipped_order_delivered_from_its_page(lotus):
    order, client = lotus.order(), signed_in(lotus.manager)
    order_ship(order=order, carrier="JD", tracking_number="JDVA01234567890", actor=None, channel="admin")

    page = client.get(url("change", order.pk)).content.decode()
    confirm = client.get(url("deliver", order.pk)).content.decode()
    client.post(url("deliver", order.pk))

    assert "JD Logistics (JD)" in page and "JDVA01234567890" in page and url("deliver", order.pk) in page
    assert "Shipped with JD Logistics JDVA01234567890" in confirm
    assert state(order)[0] == O.DELIVERED


def test_analysts_see_the_parcel_but_no_buttons_and_cannot_post(lotus):
    order, client = lotus.order(), signed_in(lotus.analyst)
    order_ship(order=order, carrier="JD", tracking_number="JDVA01234567890", actor=None, channel="admin")

    page = client.get(url("change", order.pk)).content.decode()
    changelist = client.get(url("changelist")).content.decode()

    assert "JDVA01234567890" in page and url("deliver", order.pk) not in page
    assert url("import_shipments") not in changelist
    assert client.post(url("deliver", order.pk)).status_code == 403
    assert client.post(url("ship", order.pk), {"carrier": "SF", "tracking_number": "SF1234567890"}).status_code == 403
    assert client.get(url("import_shipments")).status_code == 403
    assert state(order)[0] == O.SHIPPED


def test_the_rival_finds_our_order_pages_exactly_like_missing_ones(lotus, rival):
    ours, client = lotus.order(), signed_in(rival.manager)
    missing = ours.pk + 1000
    flagged_order = flagged(lotus)

    for name in ("ship", "deliver", "attention"):
        for pk in (ours.pk, flagged_order.pk, missing):
            assert client.get(url(name, pk)).status_code == 404, (name, pk)
            assert client.post(url(name, pk), {"carrier": "SF", "tracking_number": "SF1234567890",
                                               "note": "x"}).status_code == 404
    assert state(ours) == (O.PAID, "", "")
    assert Order.objects.get(pk=flagged_order.pk).needs_attention


def test_the_order_page_with_the_shipping_block_stays_within_its_queries(lotus, django_assert_max_num_queries):
    order, client = lotus.order(), signed_in(lotus.manager)
    order_ship(order=order, carrier="JD", tracking_number="JDVA01234567890", actor=None, channel="admin")
    client.get(url("change", order.pk))

    # The order page's own 19 (session, user, role, order, money, inlines incl. notifications, permissions,
    # related rows); the shipping block reads the order's own columns and adds none.
    with django_assert_max_num_queries(19):
        assert client.get(url("change", order.pk)).status_code == 200
    with django_assert_max_num_queries(7):  # session, user, role, order, items, permissions x2
        assert client.get(url("ship", order.pk)).status_code == 200


# --------------------------------------------------------------------------- the import page


def test_the_import_page_lists_every_problem_with_line_and_column_and_imports_nothing(lotus, rival):
    good, theirs, client = lotus.order(), rival.order(), signed_in(lotus.manager)

    changelist = client.get(url("changelist")).content.decode()
    answer = upload(client, f"order,carrier,tracking_number\n{good.pk},SF,SF123456789012\n"
                            f"{theirs.pk},SF,SF123456789013\n{good.pk + 1000},顺丰,SF123456789014\n"
                            f"{good.pk},SF,12\n")
    text = answer.content.decode()

    assert f'href="{url("import_shipments")}"' in changelist
    assert answer.status_code == 200 and "The file has 3 problems. Nothing was imported" in text
    rows = re.findall(r"<tr><td>(\d+)</td><td>([^<]+)</td><td>([^<]+)</td></tr>", text)
    assert rows == [
        ("3", "order", f"Unknown order #{theirs.pk}."),
        ("4", "order", f"Unknown order #{good.pk + 1000}."),
        ("5", "tracking_number", "A tracking number has 6 to 32 characters; this one has 2."),
    ]
    assert state(good) == (O.PAID, "", "") and state(theirs) == (O.PAID, "", "")


def test_a_good_file_is_imported_and_the_shipped_orders_are_listed(lotus):
    a, b, client = lotus.order(), lotus.order(), signed_in(lotus.manager)
    text = f"order,carrier,tracking_number\n{a.pk},SF,SF123456789012\n{b.pk},EMS,EA123456789CN\n"

    first = upload(client, text)
    listing = client.get(first["Location"]).content.decode()
    again = client.get(upload(client, text)["Location"])

    assert first.status_code == 302 and first["Location"].endswith("?status__exact=shipped")
    assert "2 orders marked shipped." in listing
    messages = [str(m) for m in again.context["messages"]]
    assert messages == ["0 orders marked shipped.",
                        "2 lines were already shipped with the same carrier and number: unchanged."]
    assert state(a) == (O.SHIPPED, "SF", "SF123456789012") and state(b) == (O.SHIPPED, "EMS", "EA123456789CN")


def test_an_empty_or_missing_file_is_a_form_error(lotus):
    client = signed_in(lotus.manager)

    assert client.post(url("import_shipments"), {}).context["form"].errors == {"file": ["This field is required."]}
    assert upload(client, "").context["form"].errors["file"] == ["The submitted file is empty."]


def test_the_import_page_queries_do_not_grow_with_the_file(lotus, django_assert_max_num_queries):
    client = signed_in(lotus.manager)
    orders = [lotus.order() for _ in range(30)]
    bad = "order,carrier,tracking_number\n" + "".join(f"{o.pk},SF,X\n" for o in orders)
    good = "order,carrier,tracking_number\n" + "".join(f"{o.pk},SF,SF{o.pk:012d}\n" for o in orders)
    client.get(url("import_shipments"))

    with django_assert_max_num_queries(6):
        assert client.get(url("import_shipments")).status_code == 200
    with django_assert_max_num_queries(6):
        assert upload(client, bad).status_code == 200
    with django_assert_max_num_queries(14):
        assert upload(client, good).status_code == 302
    assert {state(o)[0] for o in orders} == {O.SHIPPED}


# --------------------------------------------------------------------------- list actions


def test_ship_selected_asks_for_each_parcel_then_ships_all_or_none(lotus):
    a, b, pickup, client = lotus.order(), lotus.order(), lotus.order(fulfilment="pickup"), signed_in(lotus.manager)
    chosen = {"action": "ship_selected", "_selected_action": [a.pk, b.pk, pickup.pk]}

    asked = client.post(url("changelist"), chosen)
    bad = client.post(url("changelist"), {**chosen, "apply": "1", f"carrier-{a.pk}": "SF",
                                          f"tracking-{a.pk}": "SF123456789012", f"carrier-{b.pk}": "SF",
                                          f"tracking-{b.pk}": "oops"})
    good = client.post(url("changelist"), {**chosen, "apply": "1", f"carrier-{a.pk}": "SF",
                                           f"tracking-{a.pk}": "SF123456789012", f"carrier-{b.pk}": "ZTO",
                                           f"tracking-{b.pk}": "773012345678901"})

    assert asked.status_code == 200 and [line["order"] for line in asked.context["lines"]] == [a, b]
    assert "1 selected order is not a paid express order and is left alone." in asked.content.decode()
    assert bad.status_code == 200 and bad.context["lines"][1]["problems"] == [
        "A tracking number has 6 to 32 characters; this one has 4."
    ]
    assert good.status_code == 302
    assert [state(o) for o in (a, b)] == [(O.SHIPPED, "SF", "SF123456789012"), (O.SHIPPED, "ZTO", "773012345678901")]
    assert state(pickup) == (O.PAID, "", "")


def test_deliver_selected_delivers_the_shipped_ones_and_says_what_it_left(lotus):
    shipped, paid, client = lotus.order(), lotus.order(), signed_in(lotus.manager)
    order_ship(order=shipped, carrier="SF", tracking_number="SF123456789012", actor=None, channel="admin")

    answer = client.post(url("changelist"), {"action": "deliver_selected", "_selected_action": [shipped.pk, paid.pk]},
                         follow=True)

    assert [str(m) for m in answer.context["messages"]] == [
        "1 order marked delivered.", "1 selected order was not shipped and is unchanged.",
    ]
    assert (state(shipped)[0], state(paid)[0]) == (O.DELIVERED, O.PAID)


def test_the_rivals_ids_in_a_list_action_ship_nothing(lotus, rival):
    ours, client = lotus.order(), signed_in(rival.manager)

    answer = client.post(url("changelist"), {"action": "ship_selected", "_selected_action": [ours.pk], "apply": "1",
                                             f"carrier-{ours.pk}": "SF", f"tracking-{ours.pk}": "SF123456789012"})

    # Our id is not among the rival's rows: Django finds nothing selected, exactly as for a made-up id.
    assert answer.status_code == 302 and state(ours) == (O.PAID, "", "")


# --------------------------------------------------------------------------- needs attention


def test_the_needs_attention_filter_lists_our_flagged_orders_only(lotus, rival, django_assert_max_num_queries):
    ours, theirs = flagged(lotus), flagged(rival)
    calm = lotus.order(fulfilment="pickup")
    client = signed_in(lotus.manager)
    client.get(url("changelist") + "?attention=yes")

    with django_assert_max_num_queries(14):
        listing = client.get(url("changelist") + "?attention=yes")

    shown = [row.pk for row in listing.context["cl"].result_list]
    assert shown == [ours.pk]
    assert listing.content.decode().count("⚠ needs attention") == 1
    assert theirs.pk not in shown and calm.pk not in shown
    assert rival.merchant.name not in listing.content.decode()
    # The positive control: the platform superuser, who sees every merchant, finds both with the same filter.
    platform = UserFactory(username="platform", is_staff=True, is_superuser=True)
    everything = signed_in(platform).get(url("changelist") + "?attention=yes")
    assert sorted(row.pk for row in everything.context["cl"].result_list) == sorted([ours.pk, theirs.pk])


def test_a_manager_clears_the_flag_with_a_note_kept_on_the_order_and_in_its_history(lotus):
    order, client = flagged(lotus), signed_in(lotus.manager)

    page = client.get(url("change", order.pk)).content.decode()
    empty = client.post(url("attention", order.pk), {"note": "  "})
    client.post(url("attention", order.pk), {"note": "Refunded 99.00 by bank transfer"})

    order.refresh_from_db()
    assert "The provider refused the automatic refund" in page and url("attention", order.pk) in page
    assert empty.status_code == 200 and "note" in empty.context["form"].errors
    assert not order.needs_attention
    assert order.attention_note == "Cleared by lotus_manager: Refunded 99.00 by bank transfer"
    assert OrderEvent.objects.filter(order=order, note="Attention cleared: Refunded 99.00 by bank transfer",
                                     actor=lotus.manager).exists()
    cleared = client.get(url("changelist") + "?attention=cleared")
    assert [row.pk for row in cleared.context["cl"].result_list] == [order.pk]


def test_ship_selected_shows_one_batch_and_says_how_many_more_wait(lotus, monkeypatch):
    monkeypatch.setattr("orders.fulfilment.BATCH", 2)
    orders, client = [lotus.order() for _ in range(3)], signed_in(lotus.manager)

    asked = client.post(url("changelist"), {"action": "ship_selected", "_selected_action": [o.pk for o in orders]})

    assert [line["order"] for line in asked.context["lines"]] == orders[:2]
    assert "1 more selected order is not shown" in asked.content.decode()
    assert "not a paid express order" not in asked.content.decode()


def test_the_order_history_names_statuses_and_columns_in_the_managers_language(lotus):
    """Events read 已支付 → 已发货, not the stored codes, in the admin's language."""
    order, client = lotus.order(), signed_in(lotus.manager)
    order_ship(order=order, carrier="SF", tracking_number="SF1234567890", actor=lotus.manager, channel="admin")
    page = client.get(f"/admin/orders/order/{order.pk}/change/", HTTP_ACCEPT_LANGUAGE="zh-hans").content.decode()
    assert "原状态" in page and "新状态" in page and "操作人" in page
    assert "申请人" in page  # the refunds' columns, labelled too
    assert "已支付 → 已发货" in page  # each event's title
    events = page[page.index("原状态"):]
    assert "已支付" in events and "已发货" in events and ">shipped<" not in events
