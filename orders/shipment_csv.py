"""Reading a shipments file (order, carrier, tracking number per line), one line at a time.

The format, as the import page explains it to staff:
- a header line naming the columns `order`, `carrier`, `tracking_number` (any order, any case; the
  Chinese headings 订单号, 快递公司, 运单号 too); other columns are ignored, so a spreadsheet exported
  from the order list with columns added keeps working;
- `order` is the order number staff see in the admin and customers on their order page (`123` or
  `#123`), not the customer's secret link;
- `carrier` is a code (SF, JD, ZTO, YTO, STO, YUNDA, EMS, JTSD, DBL, OTHER) or the carrier's name;
- commas (or semicolons or tabs, as the header uses), cells may be quoted; UTF-8 (with or without
  the BOM Excel writes) or GBK (what Excel on a Chinese Windows saves); blank lines are skipped.

Nothing here touches the database: each line becomes a ShipmentRow or one ShipmentProblem per bad
field, both with the physical line number (from 1) so staff can find it in the file. Memory stays
flat however long the file: lines are read with a length limit and yielded as they come.
"""

from __future__ import annotations

import csv
import unicodedata
from collections.abc import Iterator
from dataclasses import dataclass
from typing import BinaryIO

from django.utils.translation import gettext as _

from .carriers import CarrierInvalid, carrier_parse, tracking_number_parse

# A shipments line is a few dozen bytes; a longer "line" is not one, and reading it whole would let
# one upload grow our memory without bound.
MAX_LINE_BYTES = 4096
# One import is one transaction: a busy day's parcels, not a year's.
MAX_ROWS = 10_000
# Orders are numbered by a bigint primary key.
_MAX_ORDER_ID = 2**63 - 1

COLUMNS = ("order", "carrier", "tracking_number")
_HEADINGS = {
    "order": "order", "order id": "order", "order_id": "order", "order no": "order", "order number": "order",
    "订单": "order", "订单号": "order", "订单编号": "order",
    "carrier": "carrier", "courier": "carrier", "快递公司": "carrier", "快递": "carrier", "承运商": "carrier",
    "物流公司": "carrier",
    "tracking_number": "tracking_number", "tracking number": "tracking_number", "tracking": "tracking_number",
    "tracking no": "tracking_number", "waybill": "tracking_number", "运单号": "tracking_number",
    "快递单号": "tracking_number", "物流单号": "tracking_number",
}  # fmt: skip
_DELIMITERS = (",", ";", "\t")


@dataclass(frozen=True)
class ShipmentRow:
    line_no: int
    order_id: int
    carrier: str
    tracking_number: str


@dataclass(frozen=True)
class ShipmentProblem:
    line_no: int
    field: str  # a column name, or "" for the line as a whole
    message: str

    def __str__(self) -> str:
        where = _("line %(line)d") % {"line": self.line_no}
        if self.field:
            where = _("line %(line)d, %(field)s") % {"line": self.line_no, "field": self.field}
        return f"{where}: {self.message}"


def shipment_lines(stream: BinaryIO, *, max_rows: int = MAX_ROWS) -> Iterator[ShipmentRow | ShipmentProblem]:
    """Each data line of a shipments file as a row, or the problems found on it.

    A problem with the file as a whole (no header, a missing column, an overlong line, too many rows)
    is yielded and ends the reading: what follows could not be trusted to line up.
    """
    columns: dict[str, int] | None = None
    delimiter = ","
    rows = 0
    for line_no, text in _lines(stream):
        if isinstance(text, ShipmentProblem):
            yield text
            if columns is None:
                return  # without a header nothing after it can be read
            continue
        if not text.strip(" \t\ufeff,;"):
            continue  # blank (spreadsheets leave ",,," lines at the end)
        if columns is None:
            delimiter = next((d for d in _DELIMITERS if d in text), ",")
            try:
                cells = _cells(text, delimiter)
            except csv.Error:
                yield ShipmentProblem(line_no, "", _("The header line is not valid CSV (a quote is not closed?)."))
                return
            columns, problem = _header(cells, line_no)
            if problem:
                yield problem
                return
            continue
        rows += 1
        if rows > max_rows:
            yield ShipmentProblem(
                line_no, "", _("More than %(max)d shipments in one file; split it into smaller files.")
                % {"max": max_rows},
            )
            return
        try:
            cells = _cells(text, delimiter)
        except csv.Error:
            yield ShipmentProblem(line_no, "", _("The line is not valid CSV (a quote is not closed?)."))
            continue
        yield from _row(cells, columns, line_no)
    if columns is None:
        yield ShipmentProblem(1, "", _("The file is empty: it needs a header line (order, carrier, tracking_number)."))


def _lines(stream: BinaryIO) -> Iterator[tuple[int, str | ShipmentProblem]]:
    line_no = 0
    while True:
        raw = stream.readline(MAX_LINE_BYTES + 1)
        if not raw:
            return
        line_no += 1
        if len(raw) > MAX_LINE_BYTES:
            yield line_no, ShipmentProblem(
                line_no, "", _("The line is longer than %(max)d bytes; this is not a shipments file.")
                % {"max": MAX_LINE_BYTES},
            )
            return
        if line_no == 1 and raw.startswith(b"\xef\xbb\xbf"):
            raw = raw[3:]
        raw = raw.rstrip(b"\r\n")
        # Each line decoded on its own: ASCII lines read the same either way, and a file is UTF-8 or GBK
        # (GB 18030 is its superset) as a whole. Neither uses the byte 0x0A inside a character.
        for encoding in ("utf-8", "gb18030"):
            try:
                text = raw.decode(encoding)
                break
            except UnicodeDecodeError:
                continue
        else:
            yield line_no, ShipmentProblem(line_no, "", _("The line is neither UTF-8 nor GBK text."))
            continue
        if "\x00" in text:
            yield line_no, ShipmentProblem(line_no, "", _("The line holds a NUL character; is this a CSV file?"))
            continue
        yield line_no, text


def _cells(text: str, delimiter: str) -> list[str]:
    if '"' not in text:
        return [cell.strip() for cell in text.split(delimiter)]
    rows = list(csv.reader([text], delimiter=delimiter, strict=True))
    return [cell.strip() for cell in (rows[0] if rows else [])]


def _header(cells: list[str], line_no: int) -> tuple[dict[str, int], ShipmentProblem | None]:
    columns: dict[str, int] = {}
    for index, cell in enumerate(cells):
        name = _HEADINGS.get(" ".join(unicodedata.normalize("NFKC", cell).split()).casefold())
        if name is None:
            continue
        if name in columns:
            return columns, ShipmentProblem(line_no, name, _("The column “%(name)s” appears twice.") % {"name": name})
        columns[name] = index
    missing = [name for name in COLUMNS if name not in columns]
    if missing:
        return columns, ShipmentProblem(
            line_no, missing[0],
            _("The header line is missing %(missing)s; it needs the columns order, carrier and tracking_number.")
            % {"missing": ", ".join(missing)},
        )
    return columns, None


def _row(cells: list[str], columns: dict[str, int], line_no: int) -> Iterator[ShipmentRow | ShipmentProblem]:
    def cell(name: str) -> str:
        index = columns[name]
        return cells[index] if index < len(cells) else ""

    problems = []
    order_id = order_id_parse(cell("order"))
    if isinstance(order_id, str):
        problems.append(ShipmentProblem(line_no, "order", order_id))
    try:
        carrier = carrier_parse(cell("carrier"))
    except CarrierInvalid as error:
        problems.append(ShipmentProblem(line_no, "carrier", str(error)))
    try:
        tracking = tracking_number_parse(cell("tracking_number"))
    except CarrierInvalid as error:
        problems.append(ShipmentProblem(line_no, "tracking_number", str(error)))
    if problems:
        yield from problems
        return
    yield ShipmentRow(line_no=line_no, order_id=order_id, carrier=carrier, tracking_number=tracking)


def order_id_parse(text: str) -> int | str:
    """The order number, or the message saying why `text` is not one."""
    value = unicodedata.normalize("NFKC", text or "").strip().removeprefix("#").strip()
    if not value:
        return _("Enter the order number.")
    if not (value.isascii() and value.isdigit()) or int(value) < 1 or int(value) > _MAX_ORDER_ID:
        return _("“%(value)s” is not an order number.") % {"value": text.strip()[:40]}
    return int(value)
