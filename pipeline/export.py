"""Exports of the catalog for people who never open Datasette."""

from __future__ import annotations

import csv
import difflib
import json
from dataclasses import dataclass, field
from typing import IO, Any

from sqlite_utils import Database

EXPORT_COLUMNS = (
    "id", "url", "title", "description", "content_type", "organization", "source_id", "published",
    "updated", "topics", "systems", "author", "thumbnail", "status", "first_seen", "last_seen", "last_changed",
    "link_status", "archived_url",
)
JSON_COLUMNS = ("topics", "systems")
#: Spreadsheet programs run cells that begin with these as formulas (CSV injection).
FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")


def neutralize_cell(value: Any) -> Any:
    """Make a CSV cell inert in spreadsheets: prefix a formula-like value with a quote."""
    if isinstance(value, str) and value.startswith(FORMULA_PREFIXES):
        return "'" + value
    return value


@dataclass
class ExportFilter:
    topics: list[str] = field(default_factory=list)
    systems: list[str] = field(default_factory=list)
    sources: list[str] = field(default_factory=list)
    content_types: list[str] = field(default_factory=list)
    since: str | None = None

    def sql(self) -> tuple[str, list[Any]]:
        where, params = [], []
        if self.topics:
            where.append("EXISTS (SELECT 1 FROM json_each(resources.topics) t WHERE t.value IN ({}))".format(
                ",".join("?" * len(self.topics))))
            params += self.topics
        if self.systems:
            where.append("EXISTS (SELECT 1 FROM json_each(resources.systems) s WHERE s.value IN ({}))".format(
                ",".join("?" * len(self.systems))))
            params += self.systems
        if self.sources:
            where.append("id IN (SELECT resource_id FROM resource_sources WHERE source_id IN ({}))".format(
                ",".join("?" * len(self.sources))))
            params += self.sources
        if self.content_types:
            where.append("content_type IN ({})".format(",".join("?" * len(self.content_types))))
            params += self.content_types
        if self.since:
            where.append("first_seen >= ?")
            params.append(self.since)
        return (" WHERE " + " AND ".join(where)) if where else "", params


def unknown_names(filt: ExportFilter, topics: list[str], systems: list[str]) -> list[str]:
    """One line per filter value that no resource can have (a misspelled topic, system or
    content type), naming the valid ones: such an export would silently be empty."""
    from pipeline.resource import CONTENT_TYPES

    problems = []
    for option, given, known in (("--topic", filt.topics, topics), ("--system", filt.systems, systems),
                                 ("--type", filt.content_types, list(CONTENT_TYPES))):
        for value in given:
            if value not in known:
                close = difflib.get_close_matches(value, known, n=1)
                hint = f"did you mean {close[0]!r}? " if close else ""
                problems.append(f"{option} {value!r} is not known; {hint}valid: {', '.join(known)}")
    return problems


def iter_resources(db: Database, filt: ExportFilter | None = None):
    where, params = (filt or ExportFilter()).sql()
    sql = f"SELECT {', '.join(EXPORT_COLUMNS)} FROM resources{where} ORDER BY coalesce(published, first_seen) DESC, id"
    cursor = db.execute(sql, params)
    for row in cursor:
        record = dict(zip(EXPORT_COLUMNS, row, strict=True))
        for c in JSON_COLUMNS:
            record[c] = json.loads(record[c] or "[]")
        yield record


def export_resources(db: Database, fh: IO[str], fmt: str, filt: ExportFilter | None = None) -> int:
    """Write resources to ``fh`` as csv, json or jsonl; return how many."""
    n = 0
    if fmt == "csv":
        writer = csv.writer(fh)
        writer.writerow(EXPORT_COLUMNS)
        for record in iter_resources(db, filt):
            row = []
            for c in EXPORT_COLUMNS:
                v = record[c]
                if c in JSON_COLUMNS:
                    v = ", ".join(v)
                row.append(neutralize_cell(v))
            writer.writerow(row)
            n += 1
    elif fmt == "jsonl":
        for record in iter_resources(db, filt):
            fh.write(json.dumps(record, ensure_ascii=False) + "\n")
            n += 1
    elif fmt == "json":
        fh.write("[")
        for record in iter_resources(db, filt):
            fh.write(("," if n else "") + "\n  " + json.dumps(record, ensure_ascii=False))
            n += 1
        fh.write("\n]\n" if n else "]\n")
    else:
        raise ValueError(f"unknown export format {fmt!r}")
    return n
