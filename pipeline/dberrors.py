"""What went wrong with the catalog file, in one line that says what to do.

SQLite reports a full disk, a read-only file, a file that is not a database, a damaged one
and a busy one as exceptions whose text means little to the person running the command
("database or disk is full", "unable to open database file", "file is not a database",
"database disk image is malformed", "Could not decode to UTF-8 column ..."). :func:`explain`
turns such an exception into a :class:`CatalogProblem` naming the file and the remedy, or
returns None for anything else (a bug, which keeps its traceback).

Exit codes of the commands (documented in docs/operations.md): :data:`EXIT_CATALOG` when the
catalog file cannot be used; :data:`pipeline.writelock.EXIT_LOCKED` when another writer
holds it.
"""

from __future__ import annotations

import os
import sqlite3
from dataclasses import dataclass
from pathlib import Path

from pipeline.writelock import EXIT_LOCKED, CatalogLocked

#: Exit code of a command that could not read or write the catalog file (``EX_IOERR``).
EXIT_CATALOG = 74

DOCTOR = "Run 'illhub doctor' to check it, and restore the latest backup if it says so (docs/operations.md)"


class CatalogProblem(Exception):
    """The catalog file cannot be used; ``kind`` is one of full, readonly, notadb, damaged,
    text, busy, locked, io; the message is one line naming the file and what to do."""

    def __init__(self, kind: str, message: str, exit_code: int = EXIT_CATALOG, detail: str = ""):
        super().__init__(message)
        self.kind = kind
        self.exit_code = exit_code
        self.detail = detail

    @property
    def short(self) -> str:
        """A few words for a source's run row (the command prints the whole message once)."""
        text = SHORT.get(self.kind, str(self))
        return f"{text} ({self.detail})" if self.detail and self.kind == "io" else text

    @property
    def fatal(self) -> bool:
        """Whether nothing more can be stored in this run: a full disk, a read-only or damaged
        file (a busy catalog or one input/output error may pass)."""
        return self.kind in ("full", "readonly", "notadb", "damaged", "cantopen")


SHORT = {
    "full": "the disk is full",
    "readonly": "the catalog file is read-only",
    "notadb": "the catalog file is not an SQLite database",
    "damaged": "the catalog file is damaged",
    "cantopen": "the catalog file cannot be opened",
    "busy": "the catalog was busy (another program kept it locked for writing); fetched again next time",
    "io": "the disk reported an input/output error",
    "text": "the catalog holds text that is not valid UTF-8",
}


@dataclass
class _Rule:
    kind: str
    names: tuple[str, ...]
    phrases: tuple[str, ...]


_RULES = (
    _Rule("full", ("SQLITE_FULL",), ("database or disk is full",)),
    _Rule("readonly", ("SQLITE_READONLY", "SQLITE_READONLY_DBMOVED", "SQLITE_READONLY_DIRECTORY",
                       "SQLITE_READONLY_CANTINIT", "SQLITE_READONLY_RECOVERY", "SQLITE_READONLY_CANTLOCK",
                       "SQLITE_READONLY_ROLLBACK"), ("readonly database", "read-only")),
    _Rule("notadb", ("SQLITE_NOTADB",), ("file is not a database",)),
    _Rule("damaged", ("SQLITE_CORRUPT", "SQLITE_CORRUPT_INDEX", "SQLITE_CORRUPT_SEQUENCE", "SQLITE_CORRUPT_VTAB"),
          ("malformed", "corrupt")),
    _Rule("text", (), ("could not decode to utf-8",)),
    _Rule("busy", ("SQLITE_BUSY", "SQLITE_BUSY_SNAPSHOT", "SQLITE_BUSY_RECOVERY", "SQLITE_LOCKED"),
          ("database is locked", "database table is locked")),
    _Rule("cantopen", ("SQLITE_CANTOPEN", "SQLITE_CANTOPEN_ISDIR", "SQLITE_CANTOPEN_FULLPATH"),
          ("unable to open database file",)),
    _Rule("io", (), ("disk i/o error",)),
)


def _kind(exc: BaseException) -> str | None:
    name = str(getattr(exc, "sqlite_errorname", "") or "")
    text = str(exc).lower()
    for rule in _RULES:
        if name in rule.names or any(p in text for p in rule.phrases):
            return rule.kind
    if name.startswith("SQLITE_IOERR"):
        return "io"
    return None


def read_only_reason(path: Path) -> str | None:
    """Why this process cannot write the catalog (None if it can, as far as it can tell)."""
    directory = path.parent if str(path.parent) else Path(".")
    try:
        if os.statvfs(directory).f_flag & os.ST_RDONLY:
            return f"its directory {directory} is on a read-only file system"
    except OSError:
        return None
    if path.exists() and not os.access(path, os.W_OK):
        return "the file is read-only for this user"
    if not os.access(directory, os.W_OK):
        return f"its directory {directory} is read-only for this user (SQLite writes its -wal and -shm files there)"
    return None


def _short(exc: BaseException, limit: int = 120) -> str:
    text = " ".join(str(exc).split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _message(kind: str, path: Path, exc: BaseException) -> tuple[str, str]:
    why = _short(exc)
    if kind == "cantopen":
        reason = read_only_reason(path)
        if reason is None:
            if not path.parent.exists():
                return kind, f"{path}: cannot be opened: its directory {path.parent} does not exist"
            return kind, f"{path}: cannot be opened ({why}); check that it is a file this user may read and write"
        kind = "readonly"
    if kind == "readonly":
        reason = read_only_reason(path) or "the file or its directory is read-only"
        return kind, (f"{path} cannot be written: {reason}. Commands that write (harvest, check-links, reprocess, "
                      f"merge, restore) need write access to the file and its directory; to browse it as it is, "
                      f"use 'illhub serve --immutable'")
    text = {
        "full": f"{path}: the disk is full ({why}). Free space on the disk that holds it and run the command "
                f"again; what was stored before is kept, and the next harvest fetches again what this one could not store",
        "notadb": f"{path} is not an SQLite database (the file was overwritten or is something else). {DOCTOR}",
        "damaged": f"{path} is damaged ({why}). {DOCTOR}",
        "text": f"{path} holds text that is not valid UTF-8 ({why}): the file is damaged. {DOCTOR}",
        "busy": f"{path} is busy: another program kept it locked for writing for longer than the wait "
                f"(ILLHUB_BUSY_TIMEOUT, 10 s by default, several times). Nothing was lost; run the command again "
                f"when that program has finished",
        "io": f"{path}: the disk reported an input/output error ({why}): the disk may be full or failing. Check it; "
              f"{DOCTOR}",
    }[kind]
    return kind, text


def explain(exc: BaseException, path: str | Path) -> CatalogProblem | None:
    """A :class:`CatalogProblem` for an exception caused by the catalog file at ``path``, or
    None if it is something else."""
    if isinstance(exc, CatalogProblem):
        return exc
    path = Path(path)
    if isinstance(exc, CatalogLocked):
        return CatalogProblem("locked", str(exc), EXIT_LOCKED)
    if isinstance(exc, PermissionError) or (isinstance(exc, OSError) and exc.errno == 30):  # EROFS
        kind, message = _message("readonly", path, exc)
        return CatalogProblem(kind, message)
    if isinstance(exc, OSError) and exc.errno == 28:  # ENOSPC
        kind, message = _message("full", path, exc)
        return CatalogProblem(kind, message)
    if not isinstance(exc, sqlite3.Error):
        return None
    kind = _kind(exc)
    if kind is None:
        return None
    kind, message = _message(kind, path, exc)
    return CatalogProblem(kind, message, EXIT_LOCKED if kind == "busy" else EXIT_CATALOG, _short(exc))
