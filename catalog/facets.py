"""illhub's facets: a fast facet for JSON-array columns, and Datasette's column facet with
cached counts (:mod:`catalog.facetcache`).

``tags`` (``_facet_tags=topics``): Datasette's own array facet de-duplicates ``(value, whole
row)`` pairs with ``select distinct j.value, inner.*``, which copies every column of every
row: about 200 ms on 100,000 resources, at the edge of the default facet time limit.
illhub's arrays never repeat a value (the pipeline stores sorted sets), so counting
``json_each`` items directly gives the same counts while SQLite reads only the one column
(benchmarks/catalog.py measures it). On the resources table, selecting a
value adds ``_topic=value`` (or ``_system=value``): the same rows as Datasette's
``topics__arraycontains=value``, found through the ``resource_tags`` index the triggers keep
(migration m1002) instead of by parsing every resource's JSON (:func:`tag_filters`).
Elsewhere it adds ``column__arraycontains=value``, like the array facet.

``values`` (metadata ``values: content_type``): Datasette's column facet, unchanged (same
SQL, labels, selection and ``column=value`` filters), whose counts are cached.

A search matching more than ``catalog.search.FACET_SAMPLE`` resources has its facets counted
over that many of its matches, the most recently added: each facet of it then carries
``"sampled": {"rows": n, "of": matches}`` (in the JSON, and said above the facets in the page).

``datasette_config/plugins/illhub_facets.py`` registers them.
"""

from __future__ import annotations

import re

from datasette.database import QueryInterrupted
from datasette.facets import ArrayFacet, ColumnFacet
from datasette.filters import FilterArguments
from datasette.utils import escape_sqlite, path_with_added_args, path_with_removed_args

from catalog.facetcache import cached_execute, facet_sample, narrowed
from catalog.keyset import without_next
from catalog.labels import ARRAY_FILTER_PARAMS

#: Query parameters that narrow the resources table to a topic or a system, and their columns
#: (the one mapping in ``catalog.labels``, which builds the links).
TAG_PARAMS_BY_COLUMN = ARRAY_FILTER_PARAMS
TAG_PARAMS = {param: column for column, param in ARRAY_FILTER_PARAMS.items()}


class _CachingDatasette:
    """The Datasette instance as a facet sees it, with facet queries going through the cache
    (and through ``rewrite`` first, when given)."""

    def __init__(self, ds, rewrite=None, facet=None):
        self._ds = ds
        self._rewrite = rewrite
        self._facet = facet

    def __getattr__(self, name):
        return getattr(self._ds, name)

    async def execute(self, database, sql, params=None, **kwargs):
        described = None
        if self._facet is not None:
            m = _COLUMN_FACET_GROUP_BY.search(sql)
            if m:
                described = (self._facet.table, self._facet.type, m.group(1).strip("[]"), self._facet.sql)
        if self._rewrite is not None:
            sql = self._rewrite(sql)
        return await cached_execute(self._ds, database, sql, params, facet=described, **kwargs)


#: The end of Datasette 0.65's column-facet query (``datasette.facets.ColumnFacet``).
_COLUMN_FACET_GROUP_BY = re.compile(r"\bgroup by (\[[^\]]+\]|\w+) order by count desc, value limit (\d+)\s*$")


class ValuesFacet(ColumnFacet):
    """Datasette's column facet with cached counts (metadata: ``values: column``).

    On a narrowed table (a filter or a search) the count groups by ``+column`` instead of
    ``column``: the same groups, but SQLite no longer walks the facet column's own index in
    order, looking up every resource to test the filter (``content_type=article`` with the
    organization facet read all 100,000 resources, 130-150 ms against the 200 ms facet time
    limit, and timed out for a single client), and reads only the rows the filter or the
    search selects instead (18 ms). Unfiltered, the column's index still answers alone."""

    type = "values"

    def __init__(self, ds, *args, **kwargs):
        super().__init__(_CachingDatasette(ds, rewrite=self._group_by_selected_rows, facet=self), *args, **kwargs)
        self.sql, self.params = without_next(self.sql, self.params, self.request)

    def _group_by_selected_rows(self, sql: str) -> str:
        if not narrowed(self.sql):
            return sql
        return _COLUMN_FACET_GROUP_BY.sub(r"group by +\1 order by count desc, value limit \2", sql)

    async def suggest(self):
        return []

    async def facet_results(self):
        results, timed_out = await super().facet_results()
        sample = await facet_sample(self.ds, self.database, self.sql, self.params) if results else None
        for facet in results:
            # the facet is hidden with the parameter that added it, as for a column facet
            facet["toggle_url"] = self.ds.urls.path(path_with_removed_args(self.request, {"_facet_values": facet["name"]}))
            if sample:
                facet["sampled"] = sample
        return results, timed_out


class TagsFacet(ArrayFacet):
    type = "tags"

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.sql, self.params = without_next(self.sql, self.params, self.request)

    async def suggest(self):
        return []

    async def _has_counts(self, column: str) -> bool:
        """Whether precomputed counts answer this facet: the resources table, unfiltered
        (no WHERE clause and no parameters: no search, no filter), with a tag_counts table."""
        if self.table != "resources" or column not in ("topics", "systems") or self.params:
            return False
        if narrowed(self.sql):
            return False
        db = self.ds.get_database(self.database)
        return await db.table_exists("tag_counts")

    async def facet_results(self):
        facet_results, facets_timed_out = [], []
        facet_size = self.get_facet_size()
        pairs = self.get_querystring_pairs()
        indexed = await _has_tag_index(self.ds, self.database, self.table)
        sample = await facet_sample(self.ds, self.database, self.sql, self.params)
        for source_and_config in self.get_configs():
            config = source_and_config["config"]
            column = config.get("column") or config["simple"]
            facet_sql = (
                f"with inner as ({self.sql}) "
                f"select j.value as value, count(*) as count "
                f"from inner, json_each(inner.{escape_sqlite(column)}) j "
                f"group by j.value order by count(*) desc, j.value limit {facet_size + 1}"
            )
            params = self.params
            if await self._has_counts(column):
                # The whole table: the counts the triggers keep (migration m1001_tag_counts).
                facet_sql = ("select value, n as count from tag_counts where col = :illhub_col and n > 0 "
                             f"order by n desc, value limit {facet_size + 1}")
                params = {"illhub_col": column}
            try:
                rows = await cached_execute(
                    self.ds, self.database, facet_sql, params, truncate=False,
                    custom_time_limit=self.ds.setting("facet_time_limit_ms"),
                    facet=None if params is not self.params else (self.table, self.type, column, self.sql),
                )
            except QueryInterrupted:
                facets_timed_out.append(column)
                continue
            values = []
            param = TAG_PARAMS_BY_COLUMN.get(column) if indexed else None
            for row in rows.rows[:facet_size]:
                value = str(row["value"])
                arg = {param or f"{column}__arraycontains": value}
                selected = (f"{column}__arraycontains", value) in pairs or (param, value) in pairs
                if selected and param:
                    arg = {param: value, f"{column}__arraycontains": value}  # either way it was chosen
                toggle = path_with_removed_args(self.request, arg) if selected else path_with_added_args(
                    self.request, arg)
                values.append({"value": value, "label": value, "count": row["count"],
                               "toggle_url": self.ds.absolute_url(self.request, toggle), "selected": selected})
            facet_results.append({
                "name": column, "type": self.type, "results": values,
                "hideable": source_and_config["source"] != "metadata",
                "toggle_url": self.ds.urls.path(path_with_removed_args(self.request, {"_facet_tags": column})),
                "truncated": len(rows.rows) > facet_size,
                **({"sampled": sample} if sample and params is self.params else {}),
            })
        return facet_results, facets_timed_out


async def _has_tag_index(ds, database: str, table: str | None) -> bool:
    if table != "resources":
        return False
    return await ds.get_database(database).table_exists("resource_tags")


def tag_filters(request, database, table, datasette):
    """``_topic=value`` / ``_system=value`` on the resources table: the resources whose topics
    (systems) hold the value, through ``resource_tags``. Repeating a parameter asks for all.
    A catalog without ``resource_tags`` (an older file served ``--immutable``, which is never
    migrated) gets the same rows the slow way, by reading each resource's JSON: the front
    page and the cells link ``_topic=`` everywhere, so it must never be ignored."""
    if table != "resources" or not any(p in request.args for p in TAG_PARAMS):
        return None

    async def inner():
        indexed = await _has_tag_index(datasette, database, table)
        clauses, params, descriptions = [], {}, []
        for param, column in TAG_PARAMS.items():
            for i, value in enumerate(request.args.getlist(param)):
                name = f"illhub{param}{i}"
                if indexed:
                    clauses.append(f"id in (select resource_id from resource_tags where col = '{column}' "
                                   f"and value = :{name})")
                else:
                    clauses.append(f":{name} in (select value from json_each({escape_sqlite(column)}))")
                params[name] = value
                descriptions.append(f'{column} contains "{value}"')
        return FilterArguments(clauses, params, descriptions)

    return inner
