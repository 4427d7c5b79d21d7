"""What goes to a Scrapyd job and what comes back, as plain JSON.

To the job (spider arguments, :func:`pack`-ed when long): the registry entries of its sources
(:func:`registry_text`) and their fetch state (:class:`JobState`: the fetch cache rows, the
sitemap ``lastmod`` of each page already in the catalog, the sources' fingerprints), so that a
job re-harvests conditionally, as a local harvest does, with nothing from the dispatcher's disk.

From the job, one JSON record a line in the job's item feed (:class:`RecordWriter`), in the
order the harvest produced them: ``hello`` (the code the job runs), then what a local harvest
hands its store pipeline (``batch`` with its resources normalized and classified — prepared
for storing, as a parse worker prepares them —, ``doc`` — a fetched document's cache
row, saved once the batches it produced are stored —, ``visit``, ``pages``), ``touch`` (a
document found unchanged), a ``source`` summary per source (what the spider counted: documents,
requests, bytes, errors…) and ``end`` with the crawl's close reason. A job whose feed has no
``end`` did not finish: nothing of it is stored. A job that could not start writes ``fail``.
"""

from __future__ import annotations

import base64
import json
import zlib
from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import IO, Any

from harvesters.conditional import DocumentRecord
from pipeline.fetchcache import CachedDocument
from pipeline.pages import PagesUnchanged, PageVisit
from pipeline.resource import Batch, Resource

#: Version of the record format; a job and its dispatcher must agree on it.
FORMAT = 1
#: Spider arguments longer than this are compressed (Scrapyd passes them on a command line).
PACK_ABOVE = 2048
_PACKED = "z:"

#: What a job's spider counts per source and the dispatcher adds to its own run of the source
#: (``seen``, ``new``, ``updated`` and store errors are counted where the batches are stored).
SUMMARY_FIELDS = ("documents", "http_status", "requests", "bytes", "errors", "warnings", "deferred", "unchanged",
                  "retry_after", "done")


def pack(text: str) -> str:
    """A spider argument: ``text`` as is when short, else ``z:`` and its zlib, in base64."""
    if len(text) <= PACK_ABOVE:
        return text
    return _PACKED + base64.b64encode(zlib.compress(text.encode("utf-8"), 9)).decode("ascii")


def unpack(value: str) -> str:
    if value.startswith(_PACKED):
        return zlib.decompress(base64.b64decode(value[len(_PACKED):])).decode("utf-8")
    return value


def registry_text(registry: Any, sources: Iterable[Any]) -> str:
    """A registry (JSON, which is YAML) holding ``registry``'s defaults and only these sources,
    each as its validated entry: parsed again, it gives the same sources."""
    return json.dumps({
        "defaults": registry.defaults.model_dump(mode="json", exclude_defaults=True),
        "sources": [s.model_dump(mode="json", exclude_defaults=True) for s in sources],
    }, ensure_ascii=False, separators=(",", ":"))


@dataclass
class JobState:
    """The fetch state a job needs for its sources (see :class:`harvesters.conditional.FetchState`)."""

    fingerprints: dict[str, str] = field(default_factory=dict)
    cache: list[CachedDocument] = field(default_factory=list)
    #: source id → {page URL: sitemap lastmod} of the pages whose resource is in the catalog
    lastmods: dict[str, dict[str, str]] = field(default_factory=dict)
    use_cache: bool = True
    honour_freshness: bool = True

    def to_json(self) -> str:
        return json.dumps({"fingerprints": self.fingerprints, "cache": [asdict(d) for d in self.cache],
                           "lastmods": self.lastmods, "use_cache": self.use_cache,
                           "honour_freshness": self.honour_freshness}, ensure_ascii=False, separators=(",", ":"))

    @classmethod
    def from_json(cls, text: str) -> JobState:
        data = json.loads(text)
        return cls(fingerprints=dict(data.get("fingerprints") or {}),
                   cache=[CachedDocument(**d) for d in data.get("cache") or []],
                   lastmods={k: dict(v) for k, v in (data.get("lastmods") or {}).items()},
                   use_cache=bool(data.get("use_cache", True)),
                   honour_freshness=bool(data.get("honour_freshness", True)))

    def for_sources(self, ids: set[str]) -> JobState:
        return JobState({k: v for k, v in self.fingerprints.items() if k in ids},
                        [d for d in self.cache if d.source_id in ids],
                        {k: v for k, v in self.lastmods.items() if k in ids}, self.use_cache, self.honour_freshness)


# -- from the job ----------------------------------------------------------------------


@dataclass
class Touch:
    """A document found unchanged: its cache row's check time, freshness and new validators."""

    source_id: str
    url: str
    checked_at: str
    fresh_until: str | None
    etag: str | None = None
    last_modified: str | None = None


@dataclass
class SourceSummary:
    source_id: str
    values: dict[str, Any]


@dataclass
class Hello:
    format: int
    version: str
    code: str
    sources: list[str]
    policy: str


@dataclass
class End:
    reason: str


@dataclass
class Fail:
    error: str


def _json_line(record: dict[str, Any]) -> str:
    return json.dumps(record, ensure_ascii=False, separators=(",", ":"), allow_nan=False) + "\n"


class RecordWriter:
    """Writes a job's records to its feed file, a line each (see the module's docstring)."""

    def __init__(self, stream: IO[str]):
        self.stream = stream
        self.count = 0
        #: id() of a DocumentRecord sent → (the record, its number, batches still to send)
        self._docs: dict[int, list[Any]] = {}
        self._next_doc = 0

    def write(self, record: dict[str, Any]) -> None:
        self.stream.write(_json_line(record))
        self.count += 1

    def hello(self, version: str, code: str, sources: list[str], policy: str) -> None:
        self.write({"t": "hello", "format": FORMAT, "version": version, "code": code, "sources": sources,
                    "policy": policy})

    def item(self, item: Any) -> None:
        """One item of the harvest, as the store pipeline would have received it; the
        items of one document are all encoded before any is written (all or nothing)."""
        if isinstance(item, Batch):
            record = item.document if isinstance(item.document, DocumentRecord) else None
            entry = self._docs.get(id(record)) if record is not None else None
            number = None if record is None else (entry[1] if entry is not None else self._next_doc)
            lines = [self._doc_record(record, number)] if record is not None and entry is None else []
            record_ = {"t": "batch", "source": item.source_id, "url": item.url, "http_status": item.http_status,
                       "warnings": list(item.warnings), "site": item.site, "doc": number,
                       "resources": [r.to_dict() for r in item.resources]}
            if item.prepared is not None:  # normalized and classified in the job
                record_["prepared"] = [[rid, r.to_dict(), raw, reasons, list(encoded)]
                                       for rid, (r, raw, reasons, encoded) in item.prepared.items()]
                record_["prepared_result"] = dict(item.prepared_result or {})
            lines.append(record_)
            text = "".join(_json_line(r) for r in lines)  # raises before anything is written
            self.stream.write(text)
            self.count += len(lines)
            if record is not None:
                self._sent(record, entry)
        elif isinstance(item, DocumentRecord):
            self.write(self._doc_record(item, self._next_doc))
            self._next_doc += 1
        elif isinstance(item, PageVisit):
            self.write({"t": "visit", **asdict(item)})
        elif isinstance(item, PagesUnchanged):
            self.write({"t": "pages", **asdict(item)})

    def _sent(self, record: DocumentRecord, entry: list[Any] | None) -> None:
        """One more batch of ``record`` written (the first one wrote the record too)."""
        if entry is None:
            entry = self._docs[id(record)] = [record, self._next_doc, record.pending]
            self._next_doc += 1
        entry[2] -= 1
        if entry[2] <= 0:
            del self._docs[id(record)]

    @staticmethod
    def _doc_record(record: DocumentRecord, number: int) -> dict[str, Any]:
        return {"t": "doc", "n": number, "pending": record.pending, "doc": asdict(record.doc)}

    def touch(self, touch: Touch) -> None:
        self.write({"t": "touch", **asdict(touch)})

    def summary(self, source_id: str, state: Any) -> None:
        values = {k: getattr(state, k) for k in SUMMARY_FIELDS}
        if isinstance(values["retry_after"], datetime):
            values["retry_after"] = values["retry_after"].isoformat()
        self.write({"t": "source", "source": source_id, **values})

    def end(self, reason: str) -> None:
        self.write({"t": "end", "reason": reason, "records": self.count + 1})

    def fail(self, error: str) -> None:
        self.write({"t": "fail", "error": error})


class BadOutput(ValueError):
    """A job's feed that cannot be read as records."""


def read_records(lines: Iterable[str | bytes]) -> Iterator[Any]:
    """The objects a job's feed holds, in order: :class:`Hello`, then items for the store
    pipeline (:class:`~pipeline.resource.Batch` with its ``document`` set, a standalone
    :class:`~harvesters.conditional.DocumentRecord`, :class:`~pipeline.pages.PageVisit`,
    :class:`~pipeline.pages.PagesUnchanged`), :class:`Touch`, :class:`SourceSummary`,
    :class:`End` or :class:`Fail`."""
    docs: dict[int, DocumentRecord] = {}
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            r = json.loads(line)
            yield _decode(r, docs)
        except (ValueError, KeyError, TypeError) as e:
            raise BadOutput(f"line {number}: {type(e).__name__}: {e}") from None


def _decode(r: dict[str, Any], docs: dict[int, DocumentRecord]) -> Any:
    t = r["t"]
    if t == "batch":
        batch = Batch(r["source"], [Resource.from_dict(d) for d in r["resources"]], url=r["url"],
                      http_status=r["http_status"], warnings=list(r["warnings"]), site=r["site"])
        if r.get("prepared") is not None:
            batch.prepared = {rid: (Resource.from_dict(res), raw, reasons, tuple(encoded))
                              for rid, res, raw, reasons, encoded in r["prepared"]}
            batch.prepared_result = dict(r["prepared_result"])
        if r["doc"] is not None:
            batch.document = docs[r["doc"]]
        return batch
    if t == "doc":
        record = DocumentRecord(CachedDocument(**r["doc"]), pending=r["pending"])
        docs[r["n"]] = record
        # a document that gave no batch goes to the store pipeline itself; the others are
        # saved by the pipeline once their batches are stored
        return record if record.pending == 0 else None
    fields = {k: v for k, v in r.items() if k != "t"}
    if t == "visit":
        return PageVisit(**fields)
    if t == "pages":
        return PagesUnchanged(**fields)
    if t == "touch":
        return Touch(**fields)
    if t == "source":
        return SourceSummary(fields.pop("source"), {k: fields[k] for k in SUMMARY_FIELDS})
    if t == "hello":
        return Hello(**fields)
    if t == "end":
        return End(r["reason"])
    if t == "fail":
        return Fail(r["error"])
    raise ValueError(f"unknown record type {t!r}")
