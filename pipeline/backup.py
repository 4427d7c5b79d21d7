"""``illhub backup`` and ``illhub restore``: consistent copies of the catalog, rotated, and
putting one back.

What a harvest cannot give back — when each resource was first seen, the link-check
history, the run logs — lives only in the catalog, so it is copied every night:

* :func:`backup` writes ``VACUUM INTO`` a new file: a consistent snapshot of one moment
  (a read transaction: a harvest may go on writing meanwhile) and compact. The copy is then
  checked on its own (``PRAGMA integrity_check`` and valid UTF-8 text: a damaged catalog
  makes a backup that fails, instead of one that pushes the last good copy out), and only a
  sound copy gets its final name, ``<stem>-<UTC time>.db``; then the oldest beyond ``keep``
  are deleted (only files with that pattern).
* :func:`restore` checks the backup the same way, takes the writer lock, moves the current
  catalog and its ``-wal``/``-shm`` files aside (``<name>.replaced-<UTC time>``: nothing is
  deleted), copies the backup into place and migrates it if it came from an older illhub.
"""

from __future__ import annotations

import os
import re
import shutil
import sqlite3
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from pipeline.writelock import writer_lock

DEFAULT_KEEP = 7
STAMP = "%Y%m%dT%H%M%SZ"


class BackupError(Exception):
    """A backup or restore that was refused (one line: what and why)."""


@dataclass
class BackupResult:
    path: Path
    resources: int
    bytes: int
    removed: list[Path]


def default_backup_dir(db_path: str | Path) -> Path:
    return Path(db_path).parent / "backups"


def _pattern(db_path: Path) -> re.Pattern[str]:
    return re.compile(re.escape(db_path.stem) + r"-(\d{8}T\d{6}Z)(-\d+)?\.db$")


def backups_of(db_path: str | Path, directory: str | Path) -> list[Path]:
    """The backups of this catalog in ``directory``, oldest first."""
    db_path, directory = Path(db_path), Path(directory)
    if not directory.is_dir():
        return []
    pattern = _pattern(db_path)
    found = [(m.group(1), int((m.group(2) or "-0")[1:]), p) for p in directory.iterdir()
             if (m := pattern.match(p.name)) and p.is_file()]
    return [p for _, _, p in sorted(found)]


def newest_backup(db_path: str | Path, directory: str | Path) -> Path | None:
    found = backups_of(db_path, directory)
    return found[-1] if found else None


def check_copy(path: Path) -> int:
    """Check a copy on its own (integrity, UTF-8 text, an illhub catalog); return its number
    of resources, or raise :class:`BackupError` saying what is wrong with it."""
    from pipeline.doctor import bad_text

    try:
        conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
        try:
            rows = [r[0] for r in conn.execute("PRAGMA integrity_check(5)")]
            if rows != ["ok"]:
                raise BackupError(f"{path} fails the integrity check: {rows[0]}")
            bad, examples = bad_text(conn)
            if bad:
                raise BackupError(f"{path} holds {bad} text value(s) that are not valid UTF-8 ({examples[0]})")
            return conn.execute("SELECT count(*) FROM resources").fetchone()[0]
        finally:
            conn.close()
    except sqlite3.DatabaseError as e:
        raise BackupError(f"{path} cannot be read as an illhub catalog: {e}") from e


def _target(db_path: Path, directory: Path, now: datetime) -> Path:
    stamp = now.strftime(STAMP)
    target = directory / f"{db_path.stem}-{stamp}.db"
    n = 1
    while target.exists():
        target = directory / f"{db_path.stem}-{stamp}-{n}.db"
        n += 1
    return target


def backup(db_path: str | Path, directory: str | Path | None = None, *, keep: int = DEFAULT_KEEP,
           now: datetime | None = None) -> BackupResult:
    """Copy the catalog into ``directory`` (default ``backups/`` beside it), check the copy,
    and keep the newest ``keep`` backups."""
    from pipeline.store import connect_readonly

    db_path = Path(db_path)
    directory = Path(directory) if directory else default_backup_dir(db_path)
    if keep < 1:
        raise BackupError("--keep must be at least 1")
    if not db_path.exists():
        raise BackupError(f"{db_path} does not exist: nothing to back up")
    directory.mkdir(parents=True, exist_ok=True)
    target = _target(db_path, directory, now or datetime.now(UTC))
    partial = target.with_name(target.name + ".partial")
    partial.unlink(missing_ok=True)
    conn = connect_readonly(db_path)
    try:
        conn.execute("VACUUM INTO ?", [str(partial)])
    except BaseException:
        partial.unlink(missing_ok=True)
        raise
    finally:
        conn.close()
    try:
        resources = check_copy(partial)
    except BaseException as e:
        if not isinstance(e, BackupError):
            partial.unlink(missing_ok=True)
            raise
        kept = partial.with_name(target.stem + ".damaged.db")
        os.replace(partial, kept)
        raise BackupError(f"{db_path} is damaged, so its copy is not a backup: {e}. The older backups were "
                          f"kept (the failed copy is {kept}); run 'illhub doctor'") from e
    _fsync(partial)
    os.replace(partial, target)
    found = backups_of(db_path, directory)
    removed = found[:-keep] if len(found) > keep else []
    for old in removed:
        old.unlink(missing_ok=True)
    return BackupResult(target, resources, target.stat().st_size, removed)


def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


@dataclass
class RestoreResult:
    resources: int
    replaced: list[Path]


def restore(backup_path: str | Path, db_path: str | Path, *, lock_wait: float | None = None,
            on_wait=None, now: datetime | None = None) -> RestoreResult:
    """Put a backup in the catalog's place (the current files are moved aside, not deleted)."""
    from pipeline.store import open_db

    backup_path, db_path = Path(backup_path), Path(db_path)
    if not backup_path.is_file():
        raise BackupError(f"{backup_path} is not a file")
    if backup_path.resolve() == db_path.resolve():
        raise BackupError(f"{backup_path} is the catalog itself; name a backup (see 'illhub doctor')")
    check_copy(backup_path)
    stamp = (now or datetime.now(UTC)).strftime(STAMP)
    with writer_lock(db_path, "restore", wait=lock_wait, on_wait=on_wait):
        replaced = []
        for suffix in ("", "-wal", "-shm"):
            current = db_path.with_name(db_path.name + suffix)
            if current.exists():
                aside = db_path.with_name(f"{db_path.name}.replaced-{stamp}{suffix}")
                os.replace(current, aside)
                replaced.append(aside)
        partial = db_path.with_name(db_path.name + ".restoring")
        shutil.copyfile(backup_path, partial)
        _fsync(partial)
        os.replace(partial, db_path)
        db = open_db(db_path)  # WAL mode again, and migrated if the backup is older than this illhub
        try:
            resources = db.execute("SELECT count(*) FROM resources").fetchone()[0]
        finally:
            db.close()
    return RestoreResult(resources, replaced)
