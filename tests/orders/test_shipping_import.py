"""Importing a shipments file: every line checked first, all problems named by line and column, and then
all of it applied or none of it; importing the same file again changes nothing; another merchant's
orders are unknown orders."""

import io

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from o2o.tenancy import scope_queryset
from orders import fulfilment
from orders.fulfilment import order_ship, shipments_import
from orders.models import Order, OrderEvent
from tests.orders.fulfilment_world import fulfilment_shop

O = Order.Status  # noqa: E741


@pytest.fixture
def lotus(db):
    return fulfilment_shop("lotus")


@pytest.fixture
def rival(db):
    return fulfilment_shop("rival")


def csv(*lines: str, encoding: str = "utf-8") -> io.BytesIO:
    return io.BytesIO(("\r\n".join(lines) + "\r\n").encode(encoding))


def run(shop, stream):
    orders = scope_queryset(Order.objects.all(), shop.manager)
    return shipments_import(stream=stream, orders=orders, actor=shop.manager)


def state(*orders):
    return [Order.objects.filter(pk=o.pk).values_list("status", "carrier", "tracking_number").get() for o in orders]


def problems(result):
    return [(p.line_no, p.field, p.message) for p in result.problems]


def test_a_good_file_ships_every_order_it_names_with_one_event_each(lotus):
    a, b = lotus.order(), lotus.order()

    result = run(lotus, csv(
        "order,carrier,tracking_number",
        f"{a.pk},SF,SF123456789012",
        f"#{b.pk},中通,773012345678901",
    ))

    assert result.ok and (result.shipped, result.unchanged) == (2, 0)
    assert state(a, b) == [(O.SHIPPED, "SF", "SF123456789012"), (O.SHIPPED, "ZTO", "773012345678901")]
    assert OrderEvent.objects.filter(to_status=O.SHIPPED, actor=lotus.manager).count() == 2


def test_one_bad_line_lists_every_problem_by_line_and_column_and_ships_nothing(lotus):
    good, pickup, unpaid = lotus.order(), lotus.order(fulfilment="pickup"), lotus.order(pay=False)

    result = run(lotus, csv(
        "order,carrier,tracking_number",
        f"{good.pk},SF,SF123456789012",
        f"{pickup.pk},SF,SF123456789013",
        f"{unpaid.pk},SF,SF123456789014",
        "999999,SF,SF123456789015",
        "abc,DHL,1",
    ))

    assert not result.ok
    assert problems(result) == [
        (3, "order", f"Order #{pickup.pk} is for pickup in store, not express delivery."),
        (4, "order", f"Order #{unpaid.pk} is pending payment; only paid express orders can be shipped."),
        (5, "order", "Unknown order #999999."),
        (6, "order", "“abc” is not an order number."),
        (6, "carrier", "Unknown carrier “DHL”; use one of SF, JD, ZTO, YTO, STO, YUNDA, EMS, JTSD, DBL, OTHER."),
        (6, "tracking_number", "A tracking number has 6 to 32 characters; this one has 1."),
    ]
    assert state(good) == [(O.PAID, "", "")]  # the good line was not applied either
    assert not OrderEvent.objects.filter(to_status=O.SHIPPED).exists()


def test_importing_the_same_file_again_changes_nothing(lotus):
    a, b = lotus.order(), lotus.order()
    lines = ("order,carrier,tracking_number", f"{a.pk},SF,SF123456789012", f"{b.pk},JD,JDVA01234567890")
    run(lotus, csv(*lines))
    events = list(OrderEvent.objects.values_list("pk", flat=True))

    again = run(lotus, csv(*lines))

    assert again.ok and (again.shipped, again.unchanged) == (0, 2)
    assert list(OrderEvent.objects.values_list("pk", flat=True)) == events


def test_a_different_parcel_for_an_order_already_shipped_is_an_error_naming_the_line(lotus):
    a, b = lotus.order(), lotus.order()
    order_ship(order=a, carrier="SF", tracking_number="SF123456789012", actor=None, channel="admin")

    result = run(lotus, csv(
        "order,carrier,tracking_number", f"{b.pk},SF,SF123456789099", f"{a.pk},SF,SF999999999999",
    ))

    assert problems(result) == [
        (3, "tracking_number", f"Order #{a.pk} was already shipped with SF Express SF123456789012."),
    ]
    assert state(a, b) == [(O.SHIPPED, "SF", "SF123456789012"), (O.PAID, "", "")]


def test_an_order_twice_in_the_file_with_two_parcels_is_an_error(lotus):
    a = lotus.order()

    result = run(lotus, csv(
        "order,carrier,tracking_number", f"{a.pk},SF,SF123456789012", "", f"{a.pk},SF,SF123456789013",
    ))

    assert problems(result) == [
        (4, "tracking_number", f"Order #{a.pk} is also on line 2 with another carrier or tracking number."),
    ]
    assert state(a) == [(O.PAID, "", "")]


def test_another_merchants_order_is_an_unknown_order_exactly_like_a_missing_one(lotus, rival):
    theirs = rival.order()
    missing = theirs.pk + 1000

    result = run(lotus, csv(
        "order,carrier,tracking_number", f"{theirs.pk},SF,SF123456789012", f"{missing},SF,SF123456789012",
    ))

    assert problems(result) == [
        (2, "order", f"Unknown order #{theirs.pk}."), (3, "order", f"Unknown order #{missing}."),
    ]
    assert state(theirs) == [(O.PAID, "", "")]


def test_a_file_from_excel_on_chinese_windows_reads(lotus):
    a = lotus.order()

    result = run(lotus, csv(
        "订单号,收件人,快递公司,运单号", f"{a.pk},张伟,韵达快递,４３１２３４５６７８９０１", encoding="gbk",
    ))

    assert result.ok and state(a) == [(O.SHIPPED, "YUNDA", "4312345678901")]


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        (b"", [(1, "", "The file is empty: it needs a header line (order, carrier, tracking_number).")]),
        (b"order,carrier\r\n1,SF\r\n", [(1, "tracking_number", "The header line is missing tracking_number; it "
                                          "needs the columns order, carrier and tracking_number.")]),
        (b"order,carrier,tracking_number\r\n", [(2, "", "The file has a header line but no shipments.")]),
        (b"order,carrier,tracking_number\r\n" + b"1," * 3000 + b"\r\n",
         [(2, "", "The line is longer than 4096 bytes; this is not a shipments file.")]),
        (b"order,carrier,tracking_number\r\n1,SF,\"SF123\r\n",
         [(2, "", "The line is not valid CSV (a quote is not closed?).")]),
        (b"order,carrier,tracking_number\r\n\xff\xfe\xff,SF,SF123456789012\r\n",
         [(2, "", "The line is neither UTF-8 nor GBK text.")]),
    ],
)
def test_files_that_are_not_shipments_are_refused_with_the_line(lotus, content, expected):
    assert problems(run(lotus, io.BytesIO(content))) == expected


def test_too_many_lines_are_refused_before_anything_is_read_from_the_database(lotus, monkeypatch):
    monkeypatch.setattr("orders.shipment_csv.MAX_ROWS", 3)
    from orders.shipment_csv import shipment_lines

    monkeypatch.setattr(fulfilment, "shipment_lines", lambda stream: shipment_lines(stream, max_rows=3))
    lines = ["order,carrier,tracking_number"] + [f"{n},SF,SF12345678901{n}" for n in range(1, 6)]

    result = run(lotus, csv(*lines))

    assert (5, "", "More than 3 shipments in one file; split it into smaller files.") in problems(result)


def test_an_order_refunded_between_the_check_and_the_apply_rolls_everything_back(lotus, monkeypatch):
    a, b = lotus.order(), lotus.order()
    real = fulfilment.shipment_lines
    reads = []

    def refunded_meanwhile(stream):
        reads.append(1)
        if len(reads) == 2:  # the second read applies: the customer's refund landed just before it
            Order.objects.filter(pk=b.pk).update(status=O.REFUNDED)
        return real(stream)

    monkeypatch.setattr(fulfilment, "shipment_lines", refunded_meanwhile)

    result = run(lotus, csv(
        "order,carrier,tracking_number", f"{a.pk},SF,SF123456789012", f"{b.pk},SF,SF123456789013",
    ))

    assert problems(result) == [
        (3, "order", f"Order #{b.pk} is refunded; only paid express orders can be shipped."),
    ]
    assert result.shipped == 0 and state(a) == [(O.PAID, "", "")]


def test_the_import_is_set_based_the_queries_do_not_grow_with_the_lines(lotus):
    few = [lotus.order() for _ in range(3)]
    many = [lotus.order() for _ in range(40)]

    def lines(orders, prefix):
        return csv("order,carrier,tracking_number", *(f"{o.pk},SF,{prefix}{o.pk:08d}" for o in orders))

    orders = scope_queryset(Order.objects.all(), lotus.manager)

    with CaptureQueriesContext(connection) as small:
        assert shipments_import(stream=lines(few, "SF1"), orders=orders, actor=lotus.manager).shipped == 3
    with CaptureQueriesContext(connection) as big:
        assert shipments_import(stream=lines(many, "SF2"), orders=orders, actor=lotus.manager).shipped == 40

    # check (1 read), apply (savepoint, locked read, one UPDATE, one INSERT of events, release)
    assert len(big.captured_queries) == len(small.captured_queries) == 6


def test_a_file_full_of_mistakes_counts_them_all_and_lists_the_first_two_hundred_in_file_order(lotus):
    lines = ["order,carrier,tracking_number"] + [f"{n},SF,X" for n in range(1, 251)]

    result = run(lotus, csv(*lines))

    assert result.problem_count == 250 and len(result.problems) == 200
    assert [p.line_no for p in result.problems] == list(range(2, 202))
