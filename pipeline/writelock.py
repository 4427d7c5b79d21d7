"""One writer per catalog: a lock file beside it, taken by every command that writes.

Two harvests on one catalog used to interleave their writes until one of them got
"database is locked" and dropped what it had fetched. Every writing command (``harvest``,
``check-links``, ``reprocess``, ``merge``, ``restore``, the scheduler's runs, and
migrations) now takes :func:`writer_lock` first: an exclusive ``flock`` on
``<catalog>.lock`` in the catalog's directory (``data/illhub.db.lock``). A second writer
waits for it, at most ``wait`` seconds, then gives up with :class:`CatalogLocked` (exit code
:data:`EXIT_LOCKED`), whose message names the command holding it. The operating system
releases the lock when its holder exits, however it exits (``kill -9`` included), so a
crash never leaves a stale lock behind; the file itself stays (it is empty apart from the
holder's description) and may be deleted at any time nobody holds it.

Readers (``serve``, ``export``, ``backup``, ``doctor``) take no lock: SQLite's WAL mode lets
them read while the writer writes. The lock is re-entrant within a process (a harvest that
holds it opens the catalog, and opening migrates it under the same lock).
"""

from __future__ import annotations

import json
import math
import os
import socket
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None  # type: ignore[assignment]

#: Exit code of a command that could not get the catalog's writer lock in time
#: (``EX_TEMPFAIL`` of sysexits.h: try again later).
EXIT_LOCKED = 75
#: How long a writing command waits for another one to finish, unless told otherwise
#: (``--lock-wait``, env ``ILLHUB_LOCK_WAIT``).
DEFAULT_WAIT = 600.0
WAIT_ENV = "ILLHUB_LOCK_WAIT"
POLL = 0.1


class CatalogLocked(RuntimeError):
    """Another process held the catalog's writer lock for the whole wait."""

    def __init__(self, path: Path, holder: dict | None, waited: float):
        self.path, self.holder, self.waited = path, holder, waited
        who = describe_holder(holder)
        super().__init__(
            f"{path} is being written by {who}; waited {waited:.0f} s for it to finish. "
            f"Run this again when it has ended, or wait longer with --lock-wait SECONDS (env {WAIT_ENV})"
        )


def describe_holder(holder: dict | None) -> str:
    if not holder:
        return "another illhub command"
    text = f"another 'illhub {holder.get('command', '?')}'"
    details = [f"pid {holder['pid']}" if holder.get("pid") else "", holder.get("host", ""),
               f"since {holder['since']}" if holder.get("since") else ""]
    details = [d for d in details if d]
    return f"{text} ({', '.join(details)})" if details else text


def lock_path(db_path: str | Path) -> Path:
    db_path = Path(db_path)
    return db_path.with_name(db_path.name + ".lock")


def env_seconds(name: str, default: float) -> float:
    """Seconds from environment variable ``name``: a finite number >= 0, else ``default``
    (unset, not a number, negative, ``nan`` or ``inf``)."""
    try:
        value = float(os.environ.get(name, ""))
    except ValueError:
        return default
    return value if math.isfinite(value) and value >= 0 else default


def default_wait() -> float:
    return env_seconds(WAIT_ENV, DEFAULT_WAIT)


class _Held:
    def __init__(self, fd: int):
        self.fd = fd
        self.depth = 0


#: Locks this process holds, by lock file: re-entrant within the process.
_HELD: dict[str, _Held] = {}
_GUARD = threading.Lock()


def read_holder(path: Path) -> dict | None:
    """The description the holder wrote into the lock file (None if unreadable or empty)."""
    try:
        text = path.read_text(encoding="utf-8")
        return json.loads(text) if text.strip() else None
    except (OSError, ValueError):
        return None


def _try_lock(fd: int) -> bool:
    if fcntl is None:  # pragma: no cover - Windows
        import msvcrt

        try:
            msvcrt.locking(fd, msvcrt.LK_NBLCK, 1)
            return True
        except OSError:
            return False
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        return True
    except BlockingIOError:
        return False


def _unlock(fd: int) -> None:
    if fcntl is None:  # pragma: no cover - Windows
        import msvcrt

        os.lseek(fd, 0, os.SEEK_SET)
        msvcrt.locking(fd, msvcrt.LK_UNLCK, 1)
        return
    fcntl.flock(fd, fcntl.LOCK_UN)


@contextmanager
def writer_lock(db_path: str | Path, command: str, *, wait: float | None = None,
                on_wait: Callable[[dict | None], None] | None = None) -> Iterator[None]:
    """Hold the catalog's writer lock for the block, waiting at most ``wait`` seconds for it
    (default :func:`default_wait`); ``on_wait(holder)`` is called once if it has to wait.

    Raises :class:`CatalogLocked` when the wait runs out, ``OSError`` when the lock file
    cannot be created (a read-only directory: see :mod:`pipeline.dberrors`). A catalog in
    memory needs no lock.
    """
    if str(db_path) == ":memory:":
        yield
        return
    path = lock_path(db_path)
    path.parent.mkdir(parents=True, exist_ok=True)
    key = str(path.resolve())
    with _GUARD:
        held = _HELD.get(key)
        if held is not None:
            held.depth += 1
    if held is not None:
        try:
            yield
        finally:
            with _GUARD:
                held.depth -= 1
        return
    held = _acquire(path, command, default_wait() if wait is None else wait, on_wait)
    with _GUARD:
        _HELD[key] = held
    try:
        yield
    finally:
        with _GUARD:
            del _HELD[key]
        try:
            os.ftruncate(held.fd, 0)
        except OSError:
            pass
        _unlock(held.fd)
        os.close(held.fd)


def _acquire(path: Path, command: str, wait: float, on_wait: Callable[[dict | None], None] | None) -> _Held:
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o664)
    start = time.monotonic()
    told = False
    try:
        while not _try_lock(fd):
            waited = time.monotonic() - start
            if waited >= wait:
                raise CatalogLocked(path.with_name(path.name.removesuffix(".lock")), read_holder(path), waited)
            if not told and on_wait is not None:
                on_wait(read_holder(path))
                told = True
            time.sleep(min(POLL, max(0.0, wait - waited)))
    except BaseException:
        os.close(fd)
        raise
    me = {"command": command, "pid": os.getpid(), "host": socket.gethostname(),
          "since": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")}
    try:
        os.ftruncate(fd, 0)
        os.pwrite(fd, json.dumps(me).encode("utf-8"), 0)
    except OSError:
        pass  # the description is a courtesy; the lock is what counts
    return _Held(fd)
