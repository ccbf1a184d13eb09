"""The shipments file reader, by property: whatever way a valid file is written (column order, extra
columns, delimiter, quoting, encoding, line endings, blank lines, carrier names), the same rows come back
with the physical line numbers; whatever bytes arrive, it answers rows or problems and never crashes."""

import csv
import io

from hypothesis import example, given, settings
from hypothesis import strategies as st

from orders.carriers import _ALIASES, CARRIERS, carrier_parse, tracking_number_parse
from orders.shipment_csv import MAX_LINE_BYTES, ShipmentProblem, ShipmentRow, shipment_lines

HEADINGS = {"order": ["order", "Order", "订单号", "order_id"], "carrier": ["carrier", "快递公司", "Carrier"],
            "tracking_number": ["tracking_number", "运单号", "Tracking Number"]}
CARRIER_SPELLINGS = [*CARRIERS, *(code.lower() for code in CARRIERS), *_ALIASES]

tracking = st.from_regex(r"[A-Z0-9]{6,30}", fullmatch=True).filter(lambda s: any(c.isdigit() for c in s))
shipment = st.tuples(st.integers(1, 2**63 - 1), st.sampled_from(CARRIER_SPELLINGS), tracking, st.booleans())


@st.composite
def shipments_file(draw):
    rows = draw(st.lists(shipment, min_size=0, max_size=30))
    columns = draw(st.permutations(["order", "carrier", "tracking_number", "extra"]))
    delimiter = draw(st.sampled_from([",", ";", "\t"]))
    encoding = draw(st.sampled_from(["utf-8", "utf-8-sig", "gb18030"]))
    newline = draw(st.sampled_from(["\n", "\r\n"]))
    quoting = draw(st.sampled_from([csv.QUOTE_MINIMAL, csv.QUOTE_ALL]))
    header = {name: draw(st.sampled_from(HEADINGS.get(name, ["remarks"]))) for name in columns}
    text = io.StringIO()
    writer = csv.writer(text, delimiter=delimiter, quoting=quoting, lineterminator=newline)
    writer.writerow([header[name] for name in columns])
    line_no, expected = 1, []
    for order_id, carrier, number, blank_before in rows:
        if blank_before:
            text.write(newline)
            line_no += 1
        cells = {"order": f"#{order_id}" if order_id % 2 else str(order_id), "carrier": carrier,
                 "tracking_number": f" {number.lower()} ", "extra": "备注, “fragile”"}
        writer.writerow([cells[name] for name in columns])
        line_no += 1
        expected.append(ShipmentRow(line_no, order_id, carrier_parse(carrier), number))
    return text.getvalue().encode(encoding), expected


@settings(max_examples=300, deadline=None)
@given(shipments_file())
def test_a_valid_file_however_written_reads_as_its_rows_with_their_line_numbers(case):
    content, expected = case

    got = list(shipment_lines(io.BytesIO(content)))

    assert got == expected


@settings(max_examples=500, deadline=None)
@given(st.one_of(
    st.binary(max_size=2000),
    st.lists(st.text(alphabet=st.characters(codec="utf-8"), max_size=60), max_size=20).map(
        lambda lines: ("order,carrier,tracking_number\n" + "\n".join(lines)).encode("utf-8", "surrogatepass")
    ),
))
@example(b'"')  # a lone quote on the header line once raised csv.Error
@example(b'order,carrier,tracking_number\n"')
def test_any_bytes_give_rows_or_problems_on_real_lines_and_never_an_exception(content):
    lines = content.count(b"\n") + 1

    got = list(shipment_lines(io.BytesIO(content)))

    for item in got:
        assert isinstance(item, ShipmentRow | ShipmentProblem)
        assert 1 <= item.line_no <= lines
        if isinstance(item, ShipmentProblem):
            assert item.message and item.field in ("", "order", "carrier", "tracking_number")
        else:
            assert item.carrier in CARRIERS and tracking_number_parse(item.tracking_number) == item.tracking_number


@settings(max_examples=50, deadline=None)
@given(st.integers(MAX_LINE_BYTES + 1, MAX_LINE_BYTES * 4))
def test_an_overlong_line_stops_the_reading_without_reading_it_whole(length):
    stream = io.BytesIO(b"order,carrier,tracking_number\n" + b"9" * length + b"\n1,SF,SF123456789012\n")

    got = list(shipment_lines(stream))

    assert got == [ShipmentProblem(2, "", f"The line is longer than {MAX_LINE_BYTES} bytes; this is not a "
                                          "shipments file.")]
    assert stream.tell() <= len(b"order,carrier,tracking_number\n") + MAX_LINE_BYTES + 1


@given(st.text(max_size=40))
def test_a_tracking_number_once_accepted_reads_the_same_again(text):
    try:
        once = tracking_number_parse(text)
    except ValueError:
        return
    assert tracking_number_parse(once) == once and once == once.strip().upper()
