"""
Counting and paging the lists of large tables without reading them whole.

Django's admin counts a list with ``COUNT(*)`` and shows a page with
``OFFSET``: on a million rows the first reads the table, and a deep page
computes every column (the latest outcome of each job, say) for every row it
skips. Here:

* a list is counted up to :data:`COUNT_CAP` rows (the first rows an index
  gives, ``SELECT COUNT(*) FROM (... LIMIT 10001)``); beyond that, an
  unfiltered list takes its count from the database's own estimate
  (``pg_class.reltuples`` on PostgreSQL, ``information_schema.TABLES.TABLE_ROWS``
  on MySQL and MariaDB, kept by their statistics) and says "about", and a
  filtered or searched one says "more than 10,000" (its pages stop there);
* a page after the first reads only its rows' keys, from an index (a skipped
  row costs an index entry, not its columns), then the page's rows with all
  their columns; a list may bring a cheaper way to read its keys.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from django.core.paginator import EmptyPage, Page, PageNotAnInteger, Paginator
from django.db import connections
from django.db.models import Model, QuerySet
from django.http import HttpRequest
from django.utils.functional import cached_property

#: Lists are counted up to this many rows: past it, an unfiltered list is
#: estimated, and a filtered one's pages stop there.
COUNT_CAP = 10_000

#: Parameters of a list's address that neither filter nor search it.
UNFILTERING_PARAMS = frozenset({"p", "o", "e", "all", "_popup", "_to_field", "_facets"})

#: Reads the keys of rows ``bottom`` to ``top`` of a list, in its order.
KeyReader = Callable[[int, int], Sequence[Any]]


def is_filtered(request: HttpRequest) -> bool:
    """Whether a list's address filters or searches it (an empty search does not)."""
    return any(
        key not in UNFILTERING_PARAMS and any(value.strip() for value in request.GET.getlist(key))
        for key in request.GET
    )


def estimated_rows(model: type[Model], using: str) -> int | None:
    """
    The database's estimate of a table's rows, from its statistics; None without one.

    PostgreSQL keeps it in ``pg_class.reltuples`` (-1 before the first
    ``ANALYZE``); MySQL and MariaDB in ``information_schema.TABLES``. SQLite
    keeps none.
    """
    connection = connections[using]
    table = model._meta.db_table
    if connection.vendor == "postgresql":
        sql = "SELECT reltuples FROM pg_class WHERE oid = to_regclass(%s)"
        params = [connection.ops.quote_name(table)]
    elif connection.vendor == "mysql":
        sql = (
            "SELECT TABLE_ROWS FROM information_schema.TABLES "
            "WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = %s"
        )
        params = [table]
    else:
        return None
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        row = cursor.fetchone()
    if row is None or row[0] is None or row[0] < 0:
        return None
    return int(row[0])


class LargeTablePaginator(Paginator):
    """
    A paginator for lists that may hold millions of rows (see the module).

    ``filtered`` says whether the list is filtered or searched; ``keys``, when
    given, reads a page's keys in the list's order (a cheaper query than the
    list's own, say one that an index answers alone); by default they are read
    from the list itself, only the primary key selected.
    """

    def __init__(
        self,
        object_list: QuerySet[Any],
        per_page: int,
        orphans: int = 0,
        allow_empty_first_page: bool = True,
        *,
        filtered: bool = True,
        keys: KeyReader | None = None,
    ) -> None:
        super().__init__(object_list, per_page, orphans, allow_empty_first_page)
        #: The list, as a queryset (Django's paginator takes any sequence).
        self.rows: QuerySet[Any] = object_list
        self.filtered = filtered
        self.read_keys = keys or self.keys_of_list
        #: The count is the database's estimate.
        self.estimated = False
        #: The count stopped at COUNT_CAP: there are more rows.
        self.capped = False

    @cached_property
    def count(self) -> int:
        rows = self.rows
        counted = rows.values("pk").order_by()[: COUNT_CAP + 1].count()
        if counted <= COUNT_CAP:
            return counted
        if self.filtered:
            self.capped = True
            return COUNT_CAP
        estimate = estimated_rows(rows.model, rows.db)
        if estimate is not None and estimate > COUNT_CAP:
            self.estimated = True
            return estimate
        return rows.count()  # no statistics (SQLite), or stale ones

    def validate_number(self, number: Any) -> int:
        if not self.estimated:
            return super().validate_number(number)
        # An estimate may fall short of the rows: any page may be asked for (one
        # past the end is empty).
        try:
            value = int(number)
        except (TypeError, ValueError):
            raise PageNotAnInteger("That page number is not an integer") from None
        if value < 1:
            raise EmptyPage("That page number is less than 1")
        return value

    def page(self, number: Any) -> Page:
        number = self.validate_number(number)
        bottom = (number - 1) * self.per_page
        top = bottom + self.per_page
        if not self.estimated and top + self.orphans >= self.count:
            top = self.count
        if bottom == 0 and self.read_keys == self.keys_of_list:
            # The first page skips nothing: the list itself, as Django reads it.
            return Page(list(self.rows[bottom:top]), number, self)
        keys = list(self.read_keys(bottom, top)) if top > bottom else []
        rows = list(self.rows.filter(pk__in=keys)) if keys else []
        return Page(rows, number, self)

    def keys_of_list(self, bottom: int, top: int) -> Sequence[Any]:
        return list(self.rows.values_list("pk", flat=True)[bottom:top])


def capped_counts(using: str, querysets: Sequence[QuerySet[Any]], cap: int) -> list[int]:
    """
    How many rows each queryset has, counting at most ``cap + 1`` of each, in one query.

    Each count reads only the first ``cap + 1`` rows its queryset's index
    gives (``SELECT COUNT(*) FROM (... LIMIT cap + 1)``), so a count above
    ``cap`` says "more than" without reading on.
    """
    if not querysets:
        return []
    connection = connections[using]
    parts: list[str] = []
    params: list[Any] = []
    for number, queryset in enumerate(querysets):
        bounded = queryset.order_by().values("pk")[: cap + 1]
        sql, part_params = bounded.query.get_compiler(using=using).as_sql()
        # The ORM's own SQL, its values parameters; the part's number a literal.
        parts.append(f"SELECT {number} AS part, COUNT(*) AS n FROM ({sql}) AS part{number}")  # noqa: S608
        params.extend(part_params)
    counts = [0] * len(querysets)
    with connection.cursor() as cursor:
        cursor.execute(" UNION ALL ".join(parts), params)
        for number, count in cursor.fetchall():
            counts[int(number)] = int(count)
    return counts
