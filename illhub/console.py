"""What the command line shows: the consoles (``out`` for results, ``err`` for progress and
messages), progress bars for harvests and link checks, status styles, and the summaries of a
harvest, a link check, a schedule and the registry's sources.

The commands (:mod:`illhub.cli`) and the demo (:mod:`illhub.demo`) print through it.

Rich reads ``[bold red]…[/]`` and ``[link=…]`` in a string as markup, and a terminal obeys
escape sequences: every string that comes from outside (a server's error or ``Location``,
a harvested title, a registry field, a path) goes through :func:`plain` (a table cell, never
markup) or :func:`escape` (inside a message that has markup of its own) before Rich sees it.
Emoji codes (``:warning:``) are off on both consoles for the same reason.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.markup import escape as escape_markup
from rich.progress import BarColumn, MofNCompleteColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn
from rich.table import Table
from rich.text import Text

out = Console(highlight=False, emoji=False, width=None if sys.stdout.isatty() else 160)
err = Console(stderr=True, highlight=False, emoji=False, soft_wrap=True)

#: Control characters (C0 but tab and newline, DEL, C1) and the invisible characters that
#: reorder or hide text (bidirectional overrides and isolates, zero-width, BOM).
_UNPRINTABLE = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f\u200b-\u200f\u202a-\u202e\u2066-\u2069\ufeff]")


def _visible(value: Any) -> str:
    text = "" if value is None else str(value)
    return _UNPRINTABLE.sub(lambda m: f"\\x{ord(m.group()):02x}" if ord(m.group()) < 0x100
                            else f"\\u{ord(m.group()):04x}", text)


def plain(value: Any, style: str = "") -> Text:
    """An outside string as Rich text: never read as markup, control characters shown as
    ``\\x1b`` instead of reaching the terminal."""
    return Text(_visible(value), style=style)


def escape(value: Any) -> str:
    """An outside string to put inside a message with markup of its own."""
    return escape_markup(_visible(value))

#: Colours of a source's harvest status and of a link check's outcome.
STATUS_STYLE = {"ok": "green", "warning": "yellow", "failed": "red", "deferred": "cyan", "skipped": "cyan",
                "interrupted": "magenta"}
OUTCOME_STYLE = {"ok": "green", "redirected": "cyan", "blocked": "yellow", "failed": "red", "skipped": "dim"}


class BarProgress:
    """A transient progress bar on stderr, for long runs; subclasses say what one step is."""

    label = "working"

    def __init__(self, console: Console):
        self.console = console
        self.progress = Progress(
            SpinnerColumn(), TextColumn("[progress.description]{task.description}"), BarColumn(),
            MofNCompleteColumn(), TimeElapsedColumn(), console=console, transient=True,
        )
        self.task = None

    def start(self, total: int) -> None:
        self.progress.start()
        self.task = self.progress.add_task(self.label, total=total)

    def stop(self) -> None:
        self.progress.stop()


class RichProgress(BarProgress):
    """Progress display for long harvests (on stderr; a line per source when not a terminal)."""

    label = "harvesting"

    def advance(self, state) -> None:
        self.progress.update(self.task, advance=1, description=f"{escape(state.source.id)}: {state.status}")
        if not self.console.is_terminal:
            self.console.print(plain(f"  done {state.source.id}: {state.status}"))


class LinkProgress(BarProgress):
    """Progress display for link checks (on stderr; transient)."""

    label = "checking links"

    def advance(self, record) -> None:
        self.progress.update(self.task, advance=1, description=f"{record.outcome}: {escape(record.url[:60])}")


#: A harvest with more sources than this that were ok lists only the others one by one.
SUMMARY_OK_ROWS = 40


def print_summary(result, db_path: Path) -> None:
    """A harvest's outcome: a row per source (only those that need a look, after a large
    harvest), the count of each status, and the recordings linked to sessions."""
    table = Table(title=plain(f"harvest {result.run_group} → {db_path}"), title_justify="left")
    for col, kw in (("source", {}), ("status", {}), ("seen", {"justify": "right"}), ("new", {"justify": "right"}),
                    ("updated", {"justify": "right"}), ("http", {"justify": "right"}), ("note", {"overflow": "fold"})):
        table.add_column(col, **kw)
    rows = sorted(result.states, key=lambda s: (s.status == "ok", s.source.id))
    ok = [s for s in rows if s.status == "ok"]
    if len(ok) > SUMMARY_OK_ROWS:
        # hundreds of "ok" rows would bury the few that need a look
        rows = [s for s in rows if s.status != "ok"]
    for s in rows:
        off_topic = [f"{s.off_topic} left out as off topic (on_topic_only)"] if getattr(s, "off_topic", 0) else []
        note = "; ".join(dict.fromkeys(s.errors + ([s.deferred] if s.deferred else []) + s.warnings
                                       + ([s.skip_reason] if s.skip_reason else []) + off_topic))
        style = STATUS_STYLE.get(s.status, "")
        table.add_row(plain(s.source.id), plain(s.status, style), str(s.seen), str(s.new), str(s.updated),
                      str(s.http_status or ""), plain(note[:300]))
    out.print(table)
    if len(ok) > SUMMARY_OK_ROWS:
        out.print(f"{len(ok)} sources ok ({sum(s.seen for s in ok)} items seen, {sum(s.new for s in ok)} new, "
                  f"{sum(s.updated for s in ok)} updated) are not listed one by one: 'illhub sources' shows each")
    counts: dict[str, int] = {}
    for s in result.states:
        counts[s.status] = counts.get(s.status, 0) + 1
    out.print(", ".join(f"{n} {k}" for k, n in sorted(counts.items())) or "no sources harvested")
    if result.links:
        out.print(f"{len(result.links)} recording(s) or slide deck(s) linked to their conference sessions")


def print_link_summary(result, db_path: Path) -> None:
    """A link check's outcome: counts, the links now broken and those recovered, errors."""
    if not result.selected:
        out.print(f"link check {result.run_id} → {db_path}: no links due (all checked recently; "
                  "use --older-than 0 to check them anyway)")
        return
    counts = ", ".join(f"[{OUTCOME_STYLE.get(k, '')}]{n} {escape(k)}[/]" for k, n in result.counts.items() if n)
    out.print(f"link check {result.run_id} → {escape(db_path)}: checked {result.checked} of {result.selected} links "
              f"({result.requests} requests): {counts or 'nothing'}")
    for title, transitions in (("now broken", result.newly_broken), ("recovered", result.recovered)):
        if transitions:
            table = Table(title=f"{len(transitions)} {title}", title_justify="left")
            table.add_column("resource")
            table.add_column("url", overflow="fold")
            for t in transitions[:50]:
                table.add_row(plain(t.resource_id), plain(t.url))
            out.print(table)
    for e in result.errors:
        out.print(plain(e, "red"))


def print_schedule(registry, rows, health, link_check: str, link_check_next) -> None:
    """Each source's schedule and next run (``rows``: (source id, schedule, next run)), with
    its backoff and attention from ``health`` (source id → its health), then the link checks'
    schedule and next run."""
    table = Table(title=plain(f"schedule of {registry.path} (UTC)"), title_justify="left")
    for col in ("source", "schedule", "next run", "backing off until", "attention"):
        table.add_column(col)
    for sid, sched, when in rows:
        h = health.get(sid)
        table.add_row(plain(sid), plain(sched), when.strftime("%Y-%m-%d %H:%M UTC") if when else "never",
                      (h.next_attempt or "") if h and h.consecutive_failures else "",
                      f"{h.consecutive_failures} failures" if h and h.needs_attention else "")
    out.print(table)
    disabled = [s.id for s in registry.sources if not s.enabled]
    if disabled:
        out.print(plain(f"not scheduled (enabled: false): {', '.join(disabled)}"))
    when = link_check_next
    out.print(plain(f"link checks (defaults.link_check_schedule): {link_check}, next run "
                    f"{when.strftime('%Y-%m-%d %H:%M UTC') if when else 'never'}"))


def print_sources(rows, registry_path: Path) -> None:
    """The registry's sources (``rows`` from :func:`illhub.sources.source_statuses`) as a table."""
    table = Table(title=plain(f"{len(rows)} sources in {registry_path}"), title_justify="left")
    for col, kw in (("id", {}), ("kind", {}), ("organization", {}), ("topics", {}), ("status", {}),
                    ("last run", {}), ("resources", {"justify": "right"}), ("note", {"overflow": "fold"})):
        table.add_column(col, **kw)
    for r in rows:
        style = STATUS_STYLE.get(r["status"], "dim")
        table.add_row(plain(r["id"]), plain(r["kind"]), plain(r["organization"]), plain(", ".join(r["topics"])),
                      plain(r["status"], style), plain(r["last_run"]), str(r["resources"]),
                      plain((r["error"] or r["warning"] or "")[:200]))
    out.print(table)


CHECK_STYLE = {"ok": "green", "warn": "yellow", "fail": "red", "skipped": "dim"}


def print_check(results, registry_path: Path) -> None:
    """``illhub check-registry``'s table: the sources that need a look first, with what to do,
    then the count of each status."""
    table = Table(title=plain(f"online check of {len(results)} sources in {registry_path}"), title_justify="left")
    for col, kw in (("source", {}), ("kind", {}), ("status", {}), ("http", {"justify": "right"}),
                    ("result", {"overflow": "fold"}), ("what to do", {"overflow": "fold"})):
        table.add_column(col, **kw)
    order = {"fail": 0, "warn": 1, "ok": 2, "skipped": 3}
    for r in sorted(results, key=lambda r: (order.get(r.status, 9), r.source_id)):
        style = CHECK_STYLE.get(r.status, "")
        table.add_row(plain(r.source_id), plain(r.kind), plain(r.status, style), str(r.http_status or ""),
                      plain(r.detail[:300]), plain(r.action[:300]))
    out.print(table)
    counts: dict[str, int] = {}
    for r in results:
        counts[r.status] = counts.get(r.status, 0) + 1
    out.print(", ".join(f"{n} {k}" for k, n in sorted(counts.items(), key=lambda kv: order.get(kv[0], 9)))
              or "no sources checked")


def print_coverage(cov, registry_path: Path) -> None:
    """``illhub sources --coverage``: topics, systems and kinds with their sources and curated
    entries; the thin ones (below their floor) marked."""
    out.print(f"{escape(registry_path)}: {cov.sources} enabled sources ({cov.harvested} harvested, "
              f"{cov.sources - cov.harvested} curated lists with {cov.entries} entries)")
    for title, rows in (("topics", cov.topics), ("systems", cov.systems), ("kinds", cov.kinds)):
        table = Table(title=title, title_justify="left")
        for col, kw in ((title[:-1], {}), ("sources", {"justify": "right"}), ("curated", {"justify": "right"}),
                        ("total", {"justify": "right"}), ("", {})):
            table.add_column(col, **kw)
        for r in rows:
            flag = f"[red]thin (< {r.floor})[/]" if r.thin else ""
            table.add_row(plain(r.id), str(len(r.sources)), str(r.entries), str(r.total), flag)
        out.print(table)
    thin = cov.thin
    out.print(plain(f"{len(thin)} thin: {', '.join(r.id for r in thin)}", "red") if thin
              else "no topic or system below its floor")
