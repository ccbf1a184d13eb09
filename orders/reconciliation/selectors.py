"""Reads for reconciliation: the CSV export of discrepancies (the runs list is the day-by-day summary)."""

from __future__ import annotations

from collections.abc import Iterator

from django.db.models import QuerySet

from .models import Discrepancy

EXPORT_COLUMNS = [
    ("run_id", "run"),
    ("run__statement_date", "statement date"),
    ("run__provider", "provider"),
    ("kind", "kind"),
    ("status", "status"),
    ("line_no", "statement line"),
    ("out_trade_no", "our trade number"),
    ("provider_trade_no", "provider trade number"),
    ("out_refund_no", "our refund number"),
    ("our_amount", "our amount"),
    ("their_amount", "their amount"),
    ("occurred_at", "provider's time"),
    ("detail", "detail"),
    ("resolution_note", "resolution note"),
    ("resolved_by__username", "resolved by"),
    ("resolved_at", "resolved at"),
]
# A cell a spreadsheet would read as a formula: statement fields come from outside.
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def discrepancy_export_rows(*, discrepancies: QuerySet[Discrepancy]) -> Iterator[list[str]]:
    """The header, then one row per discrepancy of `discrepancies` (already scoped by the caller), read in
    chunks so an export of any size streams in flat memory."""
    yield [label for _field, label in EXPORT_COLUMNS]
    rows = discrepancies.order_by("run_id", "line_no", "id").values_list(*(field for field, _label in EXPORT_COLUMNS))
    for row in rows.iterator(chunk_size=2000):
        yield [_cell(value) for value in row]


def _cell(value) -> str:
    if value is None:
        return ""
    if isinstance(value, str):
        return "'" + value if value.startswith(_FORMULA_START) else value
    if hasattr(value, "isoformat"):
        return value.isoformat()
    return str(value)
