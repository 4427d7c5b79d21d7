"""``illhub publish DIR``: a snapshot of the catalog for read-only replicas
(``illhub serve --public --immutable`` on each; docs/scaling.md, "Read-only replicas").

The snapshot is made with ``VACUUM INTO``: one read transaction, so it is consistent even while
a harvest writes, and compact. Served ``--immutable``, a file is never migrated, never written
and its WAL never read, so the snapshot is made ready for that: the catalog is brought to this
version's schema first, the copy uses a rollback journal (no ``-wal``/``-shm`` files beside it),
its full-text index is merged into one segment and its statistics are gathered (``ANALYZE``)
for the query planner. It is then checked (``PRAGMA quick_check``) and served once, in the
public profile, from a file opened immutable, before it replaces the previous snapshot (an
atomic rename: a replica copying ``DIR`` never sees half a file). ``NAME.json`` beside it says
what it holds and its SHA-256, for the copies to be checked.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import shutil
import sqlite3
import tempfile
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from pipeline.normalize import iso_utc
from pipeline.version import __version__


class PublishError(Exception):
    """The snapshot could not be made or did not pass its checks (one line, what to do)."""


@dataclass
class Published:
    path: Path
    manifest: Path
    resources: int
    bytes: int
    sha256: str
    seconds: float


def publish(db_path: str | Path, target_dir: str | Path) -> Published:
    """Publish ``db_path`` into ``target_dir`` as ``<same name>.db`` and ``<same name>.json``."""
    from pipeline.store import open_db

    t0 = time.perf_counter()
    db_path, target_dir = Path(db_path), Path(target_dir)
    if not db_path.is_file():
        raise PublishError(f"{db_path} does not exist: run 'illhub harvest' first")
    if target_dir.exists() and not target_dir.is_dir():
        raise PublishError(f"{target_dir} is a file: publish into a folder")
    target_dir.mkdir(parents=True, exist_ok=True)
    final = target_dir / db_path.name
    if final.resolve() == db_path.resolve():
        raise PublishError(f"{final} is the catalog itself: publish into another folder")
    open_db(db_path).close()  # this version's schema: an immutable file is never migrated
    work = Path(tempfile.mkdtemp(prefix=".publish-", dir=target_dir))
    try:
        snapshot = work / db_path.name  # the final name: Datasette names the database after it
        snapshot_copy(db_path, snapshot)
        resources = verify(snapshot)
        digest = hashlib.sha256(snapshot.read_bytes()).hexdigest()
        size = snapshot.stat().st_size
        os.replace(snapshot, final)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    manifest = final.with_suffix(".json")
    tmp = manifest.with_name(f".{manifest.name}.tmp")
    tmp.write_text(json.dumps({
        "file": final.name, "published_at": iso_utc(datetime.now(UTC)), "illhub": __version__,
        "resources": resources, "bytes": size, "sha256": digest,
    }, indent=2) + "\n", encoding="utf-8")
    os.replace(tmp, manifest)
    return Published(final, manifest, resources, size, digest, time.perf_counter() - t0)


def snapshot_copy(db_path: Path, snapshot: Path) -> None:
    """A consistent, compact copy, made ready to be served immutable."""
    source = sqlite3.connect(f"file:{db_path}?mode=ro", uri=True)
    try:
        source.execute("PRAGMA busy_timeout = 10000")
        source.execute("VACUUM INTO ?", [str(snapshot)])
    except sqlite3.Error as e:
        raise PublishError(f"{db_path}: could not copy it: {e}") from None
    finally:
        source.close()
    conn = sqlite3.connect(snapshot)
    try:
        conn.execute("PRAGMA journal_mode = DELETE")
        tables = {name for (name,) in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        if "resources_fts" in tables:
            conn.execute("INSERT INTO resources_fts (resources_fts) VALUES ('optimize')")
        conn.execute("ANALYZE")
        conn.commit()
        problems = [row[0] for row in conn.execute("PRAGMA quick_check")]
        if problems != ["ok"]:
            raise PublishError(f"{db_path}: the snapshot fails SQLite's check ({'; '.join(problems[:3])}); "
                               "the catalog itself may be damaged: run PRAGMA integrity_check on it")
    finally:
        conn.close()


def verify(snapshot: Path) -> int:
    """Open the snapshot immutable, as a replica does, and serve its front page and one page
    of resources in the public profile; returns how many resources it holds."""
    conn = sqlite3.connect(f"file:{snapshot}?immutable=1", uri=True)
    try:
        resources = conn.execute("SELECT count(*) FROM resources").fetchone()[0]
    except sqlite3.Error as e:
        raise PublishError(f"the snapshot cannot be read immutable: {e}") from None
    finally:
        conn.close()
    name = snapshot.stem
    pages = asyncio.run(_serve(snapshot, ["/", f"/{name}/resources.json?_size=1&_shape=objects"]))
    for path, (status, _body) in pages.items():
        if status != 200:
            raise PublishError(f"the snapshot, served --public --immutable, answers {path} with HTTP {status}")
    served = json.loads(pages[f"/{name}/resources.json?_size=1&_shape=objects"][1])
    if resources and not served.get("rows"):
        raise PublishError("the snapshot, served --public --immutable, lists no resources")
    return resources


async def _serve(snapshot: Path, paths: list[str]) -> dict[str, tuple[int, str]]:
    from catalog.app import make_datasette

    ds = make_datasette(snapshot, public=True, immutable=True)
    await ds.invoke_startup()
    out = {}
    for path in paths:
        response = await ds.client.get(path)
        out[path] = (response.status_code, response.text)
    return out
