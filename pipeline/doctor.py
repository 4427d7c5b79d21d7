"""``illhub doctor``: is the catalog file sound, and if not, what to do.

The checks, in order (each stops the rest when nothing further can be read):

1. the file exists and starts with SQLite's header ("not an SQLite database" otherwise);
2. it opens (read-only: the doctor never writes);
3. ``PRAGMA integrity_check`` (every page, index and constraint);
4. every text value decodes as UTF-8 (a bit flipped inside a title passes the integrity
   check, then breaks ``illhub export`` and Datasette's pages);
5. the full-text index agrees with the resources (when the file can be written to: FTS5's
   check is an INSERT, made inside a transaction that is rolled back);
6. it is an illhub catalog, at this version or an older one (a harvest migrates it);
7. the conditions to keep it safe: write access, free disk space, who holds the writer
   lock, and how old the newest backup is (:mod:`pipeline.backup`).

The verdict is ``healthy``, or ``damaged`` with the backup to restore
(``illhub restore FILE``) when there is one.
"""

from __future__ import annotations

import shutil
import sqlite3
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from pipeline.dberrors import read_only_reason
from pipeline.writelock import describe_holder, lock_path, read_holder

SQLITE_HEADER = b"SQLite format 3\x00"
#: Free space below which the doctor warns (and twice the catalog's size, if larger).
LOW_SPACE = 200 * 1024 * 1024
#: Examples of damaged text listed, at most.
EXAMPLES = 5


@dataclass
class Diagnosis:
    path: Path
    problems: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    #: The newest backup that passed its own check when it was made (None: none found).
    backup: Path | None = None

    @property
    def healthy(self) -> bool:
        return not self.problems

    def advice(self) -> str:
        if self.healthy:
            return f"{self.path} is healthy: nothing to do."
        if self.backup is not None:
            return (f"{self.path} is damaged: restore the latest backup with 'illhub restore {self.backup}"
                    f"{'' if self.path == Path('data/illhub.db') else f' --db {self.path}'}' (the damaged file "
                    "is kept beside it), then harvest to catch up.")
        return (f"{self.path} is damaged and no backup was found: copy it aside, then either salvage it "
                f"('sqlite3 {self.path} .recover | sqlite3 recovered.db') or start a new catalog with "
                "'illhub harvest' (first-seen dates, link-check history and run logs are then lost). "
                "Take backups from now on: 'illhub backup'.")


def _header_ok(path: Path) -> bool:
    with open(path, "rb") as fh:
        return fh.read(16) == SQLITE_HEADER


def _text_columns(conn: sqlite3.Connection) -> list[tuple[str, list[str]]]:
    tables = [r[0] for r in conn.execute(
        "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' "
        "AND sql NOT LIKE 'CREATE VIRTUAL TABLE%' ORDER BY name")]
    shadow = {t for t in tables if any(t.startswith(v + "_") for v in tables) and "_fts_" in t}
    out = []
    for table in tables:
        if table in shadow:
            continue
        cols = [r[1] for r in conn.execute(f"PRAGMA table_xinfo([{table}])")
                if (r[2] or "").upper() in ("TEXT", "") and r[6] in (0, 2, 3)]
        if cols:
            out.append((table, cols))
    return out


def bad_text(conn: sqlite3.Connection, limit: int = EXAMPLES) -> tuple[int, list[str]]:
    """How many stored text values are not valid UTF-8, and where the first few are
    (``table.column`` of rowid N)."""
    count, examples = 0, []
    plan = [(table, cols, "rowid" if _has_rowid(conn, table) else "NULL") for table, cols in _text_columns(conn)]
    previous = conn.text_factory
    conn.text_factory = bytes
    try:
        for table, cols, rowid in plan:
            select = ", ".join(f"[{c}]" for c in cols)
            for row in conn.execute(f"SELECT {rowid}, {select} FROM [{table}]"):
                for col, value in zip(cols, row[1:], strict=True):
                    if isinstance(value, bytes):
                        try:
                            value.decode("utf-8")
                        except UnicodeDecodeError:
                            count += 1
                            if len(examples) < limit:
                                examples.append(f"{table}.{col} of rowid {row[0]}")
    finally:
        conn.text_factory = previous
    return count, examples


def _has_rowid(conn: sqlite3.Connection, table: str) -> bool:
    sql = conn.execute("SELECT sql FROM sqlite_master WHERE name = ?", [table]).fetchone()[0] or ""
    return "WITHOUT ROWID" not in sql.upper()


def _fts_check(path: Path) -> str | None:
    """FTS5's own consistency check of ``resources_fts``, against the content it indexes (None
    when it passes or cannot run)."""
    try:
        conn = sqlite3.connect(path, isolation_level=None, timeout=5)
    except sqlite3.Error:
        return None
    try:
        if not conn.execute("SELECT 1 FROM sqlite_master WHERE name = 'resources_fts'").fetchone():
            return None
        conn.execute("BEGIN")
        # rank 1: also against the content the index reads (its text and facet tokens); the
        # default checks only the index's own structure, which a stale row does not break
        conn.execute("INSERT INTO resources_fts(resources_fts, rank) VALUES ('integrity-check', 1)")
        return None
    except sqlite3.DatabaseError as e:
        if "locked" in str(e) or "readonly" in str(e):
            return None
        return f"the full-text index does not match the resources ({e})"
    finally:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        conn.close()


def diagnose(path: str | Path, backups: str | Path | None = None) -> Diagnosis:
    """Check the catalog at ``path``; ``backups``: where ``illhub backup`` writes (default:
    ``backups/`` beside the catalog)."""
    from pipeline import migrations
    from pipeline.backup import default_backup_dir, newest_backup
    from pipeline.store import connect_readonly

    path = Path(path)
    d = Diagnosis(path)
    d.backup = newest_backup(path, Path(backups) if backups else default_backup_dir(path))
    if not path.exists():
        d.problems.append(f"{path} does not exist")
        return d
    if path.stat().st_size and not _header_ok(path):
        d.problems.append("it is not an SQLite database (its first bytes are not SQLite's header): "
                          "overwritten, or another kind of file")
        return d
    try:
        conn = connect_readonly(path)
    except sqlite3.Error as e:
        d.problems.append(f"it cannot be opened: {e}")
        return d
    try:
        _check_contents(conn, d, migrations)
    except sqlite3.DatabaseError as e:
        d.problems.append(f"reading it failed: {e}")
    finally:
        conn.close()
    if d.healthy and read_only_reason(path) is None:
        fts = _fts_check(path)
        if fts:
            d.problems.append(fts)
    _check_surroundings(path, d)
    return d


def _check_contents(conn: sqlite3.Connection, d: Diagnosis, migrations) -> None:
    rows = [r[0] for r in conn.execute("PRAGMA integrity_check(20)")]
    if rows != ["ok"]:
        d.problems.append(f"the integrity check found {len(rows)}{'+' if len(rows) == 20 else ''} problem(s), "
                          f"first: {rows[0]}")
        return
    d.notes.append("integrity check: ok")
    bad, examples = bad_text(conn)
    if bad:
        d.problems.append(f"{bad} stored text value(s) are not valid UTF-8 (bit rot), for example "
                          + "; ".join(examples))
    else:
        d.notes.append("all stored text is valid UTF-8")
    tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    if "resources" not in tables or "_sqlite_migrations" not in tables:
        d.problems.append("it is an SQLite database but not an illhub catalog (no resources table)")
        return
    applied = {r[0] for r in conn.execute("SELECT name FROM _sqlite_migrations WHERE migration_set = 'illhub'")}
    pending = [m.name for m in migrations.migrations._migrations if m.name not in applied]
    if pending:
        d.warnings.append(f"made by an older illhub: {len(pending)} migration(s) pending; the next harvest "
                          "(or 'illhub serve') applies them")
    resources = conn.execute("SELECT count(*) FROM resources").fetchone()[0]
    last = conn.execute("SELECT max(started_at) FROM harvest_runs").fetchone()[0] if "harvest_runs" in tables else None
    d.notes.append(f"{resources} resources; last harvest {last or 'never'}")


def _check_surroundings(path: Path, d: Diagnosis) -> None:
    reason = read_only_reason(path)
    if reason:
        d.warnings.append(f"it cannot be written: {reason} (harvests will fail; 'illhub serve --immutable' "
                          "can still serve it)")
    try:
        free = shutil.disk_usage(path.parent if str(path.parent) else ".").free
        size = path.stat().st_size
        if free < max(LOW_SPACE, 2 * size):
            d.warnings.append(f"only {free / 1048576:.0f} MiB free on its disk (the catalog is {size / 1048576:.0f} "
                              "MiB): free space before the next harvest or backup")
    except OSError:
        pass
    holder = read_holder(lock_path(path))
    if holder:
        d.notes.append(f"being written now by {describe_holder(holder)}")
    if d.backup is None:
        d.warnings.append("no backup found: take one with 'illhub backup' (and every night: docs/operations.md)")
    else:
        age = datetime.now(UTC).timestamp() - d.backup.stat().st_mtime
        d.notes.append(f"newest backup: {d.backup} ({age / 3600:.0f} h old)")
        if age > 8 * 86400:
            d.warnings.append(f"the newest backup is {age / 86400:.0f} days old")
