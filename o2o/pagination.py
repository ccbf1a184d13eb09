"""Pagination for big admin lists (scans, orders) that never counts a whole table."""

from django.core.paginator import Paginator
from django.utils.functional import cached_property

COUNT_CAP = 10_000


class CappedCountPaginator(Paginator):
    """Counts at most COUNT_CAP + 1 rows: `SELECT COUNT(*) FROM (... LIMIT 10001)` costs the same on
    a million rows as on ten thousand. Past the cap the admin shows the first pages only; filters
    and search narrow the list."""

    @cached_property
    def count(self) -> int:
        return self.object_list[: COUNT_CAP + 1].count()
