"""The project's egg for Scrapyd, and the digest that tells whether two machines run the same code.

An egg is a zip of the packages with an ``EGG-INFO`` folder whose ``entry_points.txt`` names
the Scrapy settings module; Scrapyd puts it on the job's ``sys.path``. illhub's egg also holds
``data/taxonomy.yaml`` beside the packages, where :mod:`pipeline.taxonomy` looks for it; since
a file cannot be opened inside a zip, a job run from the egg first extracts it
(:func:`extract`, called by :mod:`illhub.distributed.settings`).

``scrapyd-deploy`` builds an equivalent egg with ``python setup.py bdist_egg``.

Standard library only: :mod:`illhub.distributed.settings` imports this module from the zip,
before the egg is extracted.
"""

from __future__ import annotations

import hashlib
import io
import os
import shutil
import tempfile
import time
import zipfile
from pathlib import Path

#: The project's top-level packages (pyproject.toml) and the data files that go with them.
PACKAGES = ("illhub", "harvesters", "pipeline", "catalog")
DATA_FILES = ("data/taxonomy.yaml",)
PROJECT = "illhub"
SETTINGS_MODULE = "illhub.distributed.settings"
#: A fixed time for every entry, so the same code gives the same egg, byte for byte.
_EPOCH = (2020, 1, 1, 0, 0, 0)


def project_root() -> Path:
    """The folder holding the packages of the code now running."""
    return Path(__file__).resolve().parent.parent.parent


def code_files(root: Path | None = None) -> list[tuple[str, Path]]:
    """(name in the egg, file) of every module of the packages and of the data files, sorted."""
    root = root or project_root()
    files = []
    for package in PACKAGES:
        for path in (root / package).rglob("*.py"):
            if "__pycache__" not in path.parts:
                files.append((path.relative_to(root).as_posix(), path))
    files += [(name, root / name) for name in DATA_FILES]
    return sorted(files)


def code_digest(root: Path | None = None) -> str:
    """A SHA-256 over the names and contents of :func:`code_files` (a missing file counts as
    missing): the same digest on two machines means the same harvester code and taxonomy."""
    h = hashlib.sha256()
    for name, path in code_files(root):
        h.update(name.encode("utf-8") + b"\0")
        try:
            h.update(path.read_bytes())
        except FileNotFoundError:
            h.update(b"\0missing\0")
        h.update(b"\0")
    return h.hexdigest()


def egg_version(version: str, digest: str) -> str:
    """The version the egg is deployed as: illhub's version and the code digest, in the
    characters Scrapyd keeps in its egg file names (it turns any other into ``_``)."""
    return f"{version}-{digest[:12]}".replace(".", "_")


def build_egg(version: str, root: Path | None = None) -> bytes:
    """The egg of the code in ``root`` (default: the code now running), as bytes."""
    root = root or project_root()
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as egg:
        def add(name: str, data: bytes) -> None:
            info = zipfile.ZipInfo(name, date_time=_EPOCH)
            info.compress_type = zipfile.ZIP_DEFLATED
            info.external_attr = 0o644 << 16
            egg.writestr(info, data)

        for name, path in code_files(root):
            add(name, path.read_bytes())
        add("EGG-INFO/PKG-INFO", f"Metadata-Version: 2.1\nName: {PROJECT}\nVersion: {version}\n".encode())
        add("EGG-INFO/entry_points.txt", f"[scrapy]\nsettings = {SETTINGS_MODULE}\n".encode())
        add("EGG-INFO/top_level.txt", "".join(f"{p}\n" for p in PACKAGES).encode())
        add("EGG-INFO/zip-safe", b"\n")
    return buf.getvalue()


def extract(archive: str | Path, cache: Path | None = None) -> Path:
    """Extract an egg once (several jobs may start together) into a folder named by its
    content's hash; returns the folder."""
    archive = Path(archive)
    digest = hashlib.sha256(archive.read_bytes()).hexdigest()[:20]
    cache = cache or Path(tempfile.gettempdir()) / "illhub-eggs"
    target = cache / digest
    if (target / "EGG-INFO").is_dir():
        os.utime(target)  # in use: kept by _prune
        return target
    cache.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{digest}-", dir=cache))
    try:
        with zipfile.ZipFile(archive) as egg:
            egg.extractall(tmp)
        try:
            os.rename(tmp, target)
        except OSError:  # another job extracted it first
            if not (target / "EGG-INFO").is_dir():
                raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    _prune(cache, keep=target)
    return target


def _prune(cache: Path, keep: Path, days: float = 7) -> None:
    """Remove extracted eggs unused for ``days`` (a deployment leaves one per version)."""
    limit = time.time() - days * 86400
    for path in cache.iterdir():
        try:
            if path != keep and path.is_dir() and path.stat().st_mtime < limit:
                shutil.rmtree(path, ignore_errors=True)
        except OSError:
            continue
