"""Settlement statements read one line at a time: memory stays flat however long the file is.

Providers' bills are CSV-like text (Alipay: GBK inside a zip; WeChat Pay: UTF-8, perhaps gzipped).
Every error names the physical line of the file it was found on, counted from 1, so a finance
person can open the file and look.
"""

from __future__ import annotations

import csv
import gzip
import io
import re
import shutil
import tempfile
import zipfile
import zlib
from collections.abc import Iterable, Iterator, Mapping
from datetime import datetime
from typing import BinaryIO
from zoneinfo import ZoneInfo

from django.utils.translation import gettext as _

from o2o.money import MoneyError, minor_from_text

from .base import StatementError

# Both providers write their bills in Beijing time, without an offset.
SHANGHAI = ZoneInfo("Asia/Shanghai")

# A real bill line is a few hundred bytes; a "line" longer than this is not a bill, and reading
# it whole would let one file grow our memory without bound.
MAX_LINE_BYTES = 64 * 1024

_TIME = re.compile(r"(\d{4})-(\d{2})-(\d{2}) +(\d{2}):(\d{2}):(\d{2})", re.ASCII)
_BOM = "\ufeff"


def statement_lines(
    stream: BinaryIO, *, encoding: str, max_line_bytes: int = MAX_LINE_BYTES
) -> Iterator[tuple[int, str]]:
    """Yield (line number, text without its line ending) for each physical line of `stream`.

    Each line is decoded on its own, so a bad byte is reported on its own line. That is safe for
    UTF-8 and GBK alike: neither uses the byte 0x0A inside a multi-byte character.
    """
    line_no = 0
    while True:
        try:
            raw = stream.readline(max_line_bytes + 1)
        except (OSError, EOFError, zlib.error, zipfile.BadZipFile) as error:
            # A truncated gzip or a zip member failing its CRC: the file is not what was sent.
            raise StatementError(_("the file is damaged (%(error)s)") % {"error": error}, line_no=line_no + 1) from None
        if not raw:
            return
        line_no += 1
        if len(raw) > max_line_bytes:
            raise StatementError(
                _("the line is longer than %(limit)s bytes") % {"limit": max_line_bytes}, line_no=line_no
            )
        try:
            text = raw.decode(encoding)
        except UnicodeDecodeError:
            raise StatementError(
                _("the line is not valid %(encoding)s text") % {"encoding": encoding}, line_no=line_no
            ) from None
        if line_no == 1 and text.startswith(_BOM):
            text = text[1:]
        yield line_no, text.rstrip("\r\n")


def csv_cells(text: str, *, line_no: int) -> list[str]:
    """Split one line as CSV (quoted cells allowed), each cell stripped of spaces and tabs."""
    if '"' not in text:
        # Bills rarely quote; a plain split is several times faster than a csv.reader per line.
        return [cell.strip() for cell in text.split(",")]
    try:
        rows = list(csv.reader([text], strict=True))
    except csv.Error as error:
        raise StatementError(_("the line is not valid CSV (%(error)s)") % {"error": error}, line_no=line_no) from None
    return [cell.strip() for cell in (rows[0] if rows else [])]


def header_name(name: str) -> str:
    """Column names compared without spaces, tabs or the width of their brackets: 金额（元） == 金额(元)."""
    return name.strip().replace("（", "(").replace("）", ")")


def column_index(
    header: list[str], *, wanted: Mapping[str, Iterable[str]], required: Iterable[str], line_no: int
) -> dict[str, int]:
    """Map our field names to header positions. `wanted` lists each field's accepted column names,
    first match wins; a field in `required` whose column is absent is an error naming it."""
    positions: dict[str, int] = {}
    for position, name in enumerate(header):
        positions.setdefault(header_name(name), position)
    found: dict[str, int] = {}
    for field, names in wanted.items():
        for name in names:
            if header_name(name) in positions:
                found[field] = positions[header_name(name)]
                break
    missing = [next(iter(wanted[field])) for field in required if field not in found]
    if missing:
        raise StatementError(
            _("the header has no column %(columns)s") % {"columns": ", ".join(missing)}, line_no=line_no
        )
    return found


def amount_minor(text: str, *, line_no: int, column: str, currency: str = "CNY", places: int | None = None) -> int:
    """An amount in yuan as a bill writes it ("12.30", "-10.00") in exact minor units (1230, -1000);
    more precision than the currency has ("12.301") is an error. `places` counts in finer units
    instead (5: hundred-thousandths, as WeChat Pay writes fees)."""
    return _minor(text, line_no=line_no, column=column, currency=currency, round_half_up=False, places=places)


def fee_minor(text: str, *, line_no: int, column: str, currency: str = "CNY") -> int:
    """A fee in minor units, rounded half-up as the providers round it when they settle (WeChat Pay
    writes fees to five places, "0.06000"); empty is no fee."""
    if text == "":
        return 0
    return _minor(text, line_no=line_no, column=column, currency=currency, round_half_up=True)


def _minor(
    text: str, *, line_no: int, column: str, currency: str, round_half_up: bool, places: int | None = None
) -> int:
    try:
        return minor_from_text(text, currency, round_half_up=round_half_up, places=places)
    except MoneyError as error:
        raise StatementError(f"{column} {error}", line_no=line_no) from None


def local_time(text: str, *, line_no: int, column: str) -> datetime | None:
    """ "2026-03-01 10:00:00" in Beijing time; empty is None."""
    if text == "":
        return None
    # Some bills put two spaces between date and time. A regex and the constructor (which checks
    # the ranges) are many times faster than strptime, once per row.
    match = _TIME.fullmatch(text)
    try:
        if match is None:
            raise ValueError(text)
        return datetime(*map(int, match.groups()), tzinfo=SHANGHAI)
    except ValueError:
        raise StatementError(
            _("%(column)s %(text)r is not a time (YYYY-MM-DD HH:MM:SS)") % {"column": column, "text": text},
            line_no=line_no,
        ) from None


def seekable_stream(stream: BinaryIO) -> BinaryIO:
    """A zip needs to seek to its central directory; a pipe or a request body cannot. Copy those
    to a temporary file in chunks (memory stays flat), which the caller closes with the stream."""
    try:
        if stream.seekable():
            return stream
    except (AttributeError, ValueError):
        pass
    spooled = tempfile.TemporaryFile()
    shutil.copyfileobj(stream, spooled, 1024 * 1024)
    spooled.seek(0)
    return spooled


def peek(stream: BinaryIO, size: int) -> tuple[bytes, BinaryIO]:
    """The first `size` bytes of `stream`, and a stream that still starts at them."""
    if isinstance(stream, io.BufferedReader):
        return stream.peek(size)[:size], stream
    try:
        if stream.seekable():
            position = stream.tell()
            head = stream.read(size)
            stream.seek(position)
            return head, stream
    except (AttributeError, ValueError, OSError):
        pass
    buffered = io.BufferedReader(_RawAdapter(stream))
    return buffered.peek(size)[:size], buffered


def ungzipped(stream: BinaryIO) -> BinaryIO:
    """WeChat Pay sends bills gzipped when asked (tar_type=GZIP); read either form."""
    head, stream = peek(stream, 2)
    if head == b"\x1f\x8b":
        return gzip.GzipFile(fileobj=stream, mode="rb")  # type: ignore[return-value]
    return stream


class _RawAdapter(io.RawIOBase):
    """Lets io.BufferedReader peek into any object with read()."""

    def __init__(self, stream: BinaryIO) -> None:
        self._stream = stream

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:  # type: ignore[override]
        data = self._stream.read(len(buffer))
        buffer[: len(data)] = data
        return len(data)
