"""Bounded plans for the hub's large lists (:func:`catalog.listing.fetch` chooses among them).

The exact list query unites, for each concept of a search, the rowids the full-text index
finds with those of its topics, systems and types, then ranks every text match by bm25: on a
million resources "copyright" (289,000 matches) costs about 1 s for the count and 0.9 s for
the page, "lending workflow" over 2 s. A list is exact and cheap when what it must read is
small; otherwise the hub answers the way the Datasette pages do (catalog/search.py):

- **the sizes first**: each concept's size is bounded from above by its full-text count (the
  index alone, about 0.05 us a match), its tags' counts (``tag_counts``) and its types'
  count (an index); a topic or system filter's from ``tag_counts``;
- **small parts as sets, large ones as tests**: a concept or filter up to :data:`SET_MAX`
  resources is listed once (``rowid in (...)``); a larger one is asked of each row met
  (the full-text index about that rowid, ``resource_tags`` by its primary key), so the
  smallest part drives the query and nothing large is listed;
- **a search of several concepts, one of them small**: that concept's resources are listed,
  the full-text index reads each other concept once keeping only those rowids (never a probe
  per row: about 0.4 ms each), and the matches are ranked and counted exactly (:func:`driven`);
- **a broad list** (every part larger than :data:`SET_MAX`) is counted in the newest
  :data:`WINDOW` resources and scaled ("about N", exact when the window holds the whole
  catalog); its facets are counted over those matches (at most :data:`FACET_SAMPLE`, the most
  recently added, said so in the page); a search's first page by relevance is the best bm25
  ranks among the window's matches (the window grows fourfold while it holds fewer matches
  than the page needs), and a list's first page newest first walks the ``published`` index,
  keeping the rows that pass the tests (the exact newest).
"""

from __future__ import annotations

import heapq
import json
from dataclasses import dataclass, field
from operator import itemgetter
from typing import Any

from catalog import wording

#: A concept or filter with at most this many resources is listed once; a larger one is asked
#: of each row (on a million resources listing costs about 3 us a resource, asking 3-45 us a row).
SET_MAX = 5_000
#: The newest resources a broad list is counted and ranked in (grown fourfold, at most
#: :data:`WINDOW_GROWTH` times, while it holds fewer matches than the page needs).
WINDOW = 5_000
WINDOW_GROWTH = 2
#: A broad list's facets are counted over at most this many of its matches, the most recent.
FACET_SAMPLE = 2000
RANK = "bm25(resources_fts, 10.0, 4.0, 1.0)"
#: A match, as the plans keep it: (rowid, bm25 rank or None, published, id, concepts matched
#: when the list is partial, else 0).
RID, RK, PUBLISHED, ID, SCORE = range(5)


@dataclass
class Sizes:
    """Upper bounds of each concept's and each tag filter's resources, and the catalog's rows."""

    concepts: list[int]
    tags: dict[str, int]
    rows: int

    def broad(self) -> bool:
        parts = self.concepts + list(self.tags.values())
        return bool(parts) and min(parts) > SET_MAX


async def sizes(db: Any, plan: wording.Plan | None, tags: dict[str, str]) -> Sizes:
    params: dict[str, Any] = {}
    parts = ["(select max(rowid) from resources)"]
    for i, c in enumerate(plan.concepts if plan else ()):
        params[f"m{i}"] = c.fts()
        # bounded: past SET_MAX the part is asked of each row, however large it is
        expr = [f"(select count(*) from (select rowid from resources_fts where resources_fts match :m{i} "
                f"limit {SET_MAX + 1}))"]
        for col, values in (("topics", c.topics), ("systems", c.systems)):
            for j, v in enumerate(values):
                params[f"s{i}{col}{j}"] = v
                expr.append(f"coalesce((select n from tag_counts where col = '{col}' and value = :s{i}{col}{j}), 0)")
        if c.types:
            expr.append(f"(select count(*) from resources where content_type in ({names(f's{i}type', c.types, params)}))")
        parts.append(" + ".join(expr))
    for col, value in tags.items():
        params[f"t{col}"] = value
        parts.append(f"coalesce((select n from tag_counts where col = '{col}' and value = :t{col}), 0)")
    row = (await db.execute("select " + ", ".join(parts), params)).first()
    n = len(plan.concepts) if plan else 0
    return Sizes(list(row[1:1 + n]), dict(zip(tags, row[1 + n:], strict=True)), row[0] or 0)


def names(prefix: str, values: tuple[str, ...], params: dict[str, Any]) -> str:
    """``values`` as named parameters (``:prefix0, :prefix1``), added to ``params``."""
    names = []
    for j, v in enumerate(values):
        params[f"{prefix}{j}"] = v
        names.append(f":{prefix}{j}")
    return ", ".join(names)


def tag_test(col: str, values: tuple[str, ...], prefix: str, params: dict[str, Any]) -> str:
    """Whether the row has one of ``values`` in ``col``: a primary-key lookup per row."""
    return (f"exists (select 1 from resource_tags t where t.col = '{col}' and t.value in "
            f"({names(prefix, values, params)}) and t.resource_id = r.id)")


def concept_test(c: wording.Concept, i: int, params: dict[str, Any], windowed: bool = False) -> str:
    """One concept asked of each row: inside a window (``rowid > lo``) its full-text matches
    there are listed once (at most the window), else the index is asked about the row."""
    params[f"m{i}"] = c.fts()
    if not windowed:
        parts = [f"exists (select 1 from resources_fts where resources_fts match :m{i} "
                 "and resources_fts.rowid = r.rowid)"]
    else:
        parts = [f"r.rowid in (select rowid from resources_fts where resources_fts match :m{i} and rowid > :lo)"]
    for col, values in (("topics", c.topics), ("systems", c.systems)):
        if values:
            parts.append(tag_test(col, values, f"c{i}_{col}", params))
    if c.types:
        parts.append(f"r.content_type in ({names(f'c{i}_type', c.types, params)})")
    return "(" + " or ".join(parts) + ")"


@dataclass
class Window:
    """A broad list's matches among the newest ``size`` resources."""

    size: int
    rows: int
    matches: list[tuple] = field(default_factory=list)
    partial: bool = False

    def estimate(self) -> int:
        if self.size >= self.rows or not self.matches:
            return len(self.matches) if self.size >= self.rows else 0
        return round(len(self.matches) * self.rows / self.size)

    def sample_ids(self) -> list[int]:
        return sorted([m[RID] for m in self.matches], reverse=True)[:FACET_SAMPLE]


async def driven(db: Any, plan: wording.Plan, where: list[str], params: dict[str, Any], rows: int,
                 driver: int, driver_sql: str) -> Window:
    """Every match of a search one of whose concepts (``driver``, at most :data:`SET_MAX`
    resources, ``driver_sql`` its listed form) is small: that concept's resources are listed,
    then each other concept is asked which of them it matches (the full-text index keeping only
    those rowids, its tags by primary key), and the matches ranked (an exact count)."""
    found = {r[0]: [r[0], None, r[1], r[2], 0] for r in await db.execute(
        f"select r.rowid as rid, r.published as published, r.id as id from resources r "
        f"where {' and '.join([*where, driver_sql])}", params)}
    for i, c in enumerate(plan.concepts):
        if i == driver or not found:
            continue
        p: dict[str, Any] = {"ids": json.dumps(list(found))}
        test = concept_test(c, i, p, windowed=True).replace("and rowid > :lo", "and +rowid in (select value from json_each(:ids))")
        keep = {r[0] for r in await db.execute(
            f"select r.rowid from resources r where r.rowid in (select value from json_each(:ids)) and {test}", p)}
        found = {k: v for k, v in found.items() if k in keep}
    if found:
        ranks = {r[0]: r[1] for r in await db.execute(
            f"select rowid, {RANK} from resources_fts where resources_fts match :m and +rowid in "
            "(select value from json_each(:ids))", {"m": plan.fts_any(), "ids": json.dumps(list(found))})}
        for k, m in found.items():
            m[RK] = ranks.get(k)
    return Window(rows, rows, [tuple(m) for m in found.values()])


async def window(db: Any, plan: wording.Plan | None, where: list[str], params: dict[str, Any], rows: int,
                 need: int) -> Window:
    """The matches of the list among the newest resources, each with its rank and which
    concepts it matches (all of them, or, when none matches all, any)."""
    size = WINDOW
    for _ in range(WINDOW_GROWTH + 1):
        p = dict(params, lo=max(0, rows - size))
        concepts = plan.concepts if plan else ()
        flags = [concept_test(c, i, p, windowed=True) for i, c in enumerate(concepts)]
        rank = "null as rk"
        join = ""
        if concepts:
            p["rank_match"] = plan.fts_any()
            rank = "f.rk as rk"
            join = (f"left join (select rowid as fr, {RANK} as rk from resources_fts where resources_fts match "
                    ":rank_match and rowid > :lo) f on f.fr = r.rowid ")
        cols = f"r.rowid as rid, {rank}, r.published as published, r.id as id"
        sql = f"select {cols}{{score}} from resources r {join}where {' and '.join([*where, 'r.rowid > :lo'])}"
        every = [tuple(r) + (0,) for r in await db.execute(sql.format(score="") + "".join(f" and {f}" for f in flags), p)]
        w = Window(min(size, rows), rows, every)
        if not every and len(flags) > 1:  # none matches every concept: those matching any, by how many
            score = ", " + " + ".join(f"({f})" for f in flags) + " as score"
            found = [tuple(r) for r in await db.execute(sql.format(score=score) + f" and ({' or '.join(flags)})", p)]
            w = Window(min(size, rows), rows, found, partial=bool(found))
        if len(w.matches) >= need or size >= rows:
            return w
        size *= 4
    return w


def rank_order(w: Window, need: int) -> list[int]:
    """The first ``need`` of the window's matches by relevance: more concepts matched first (a
    partial list), text matches by bm25, then the rest newest first (only as many sorted as
    the page needs)."""
    groups: dict[int, list[tuple]] = {}
    for m in w.matches:
        groups.setdefault(-m[SCORE], []).append(m)
    out: list[int] = []
    for _score, ms in sorted(groups.items()):
        ranked = [m for m in ms if m[RK] is not None]
        out += [m[RID] for m in heapq.nsmallest(need - len(out), ranked, key=itemgetter(RK, ID))]
        if len(out) >= need:
            break
        rest = sorted((m for m in ms if m[RK] is None), key=itemgetter(ID))
        rest.sort(key=lambda m: m[PUBLISHED] or "", reverse=True)
        out += [m[RID] for m in rest[:need - len(out)]]
        if len(out) >= need:
            break
    return out


def sample_where(ids: list[int], params: dict[str, Any]) -> list[str]:
    params["sample_ids"] = json.dumps(ids)
    return ["r.rowid in (select value from json_each(:sample_ids))"]
