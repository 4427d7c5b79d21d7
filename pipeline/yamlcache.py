"""Parsed YAML, kept between runs: ``registry.yaml`` and ``data/taxonomy.yaml`` are read on
every harvest and change rarely, and ruamel.yaml's pure-Python parser takes about 0.13 s
for a 500-source registry (0.06 s for the taxonomy), a large share of a nightly re-harvest
of unchanged feeds that otherwise takes about a second.

The cache holds what the YAML parser returned, never what was validated from it: the
registry and the taxonomy are validated on every run exactly as before, so a changed
taxonomy or a new illhub version still checks every source. An entry is keyed on the
SHA-256 of the file's text, so any edit parses afresh. Only plain data is kept (mappings
with string keys, lists, strings, numbers, booleans, null and dates); a file holding
anything else (a timestamp, binary, a non-string key) is simply parsed every time, as is
every file whose parse fails, so errors and their line numbers are always the parser's own.

Where: the ``yaml`` directory of ``$ILLHUB_CACHE_DIR``, else of ``$XDG_CACHE_HOME/illhub``,
else of ``~/.cache/illhub``; a cache that cannot be read or written is skipped silently (the
file is parsed instead). ``ILLHUB_CACHE_DIR=off`` turns it off. At most :data:`KEEP`
entries are kept, the least recently used dropped first.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

#: Bump when the stored form, or what the parse function accepts, changes (2: aliases and deep
#: nesting refused by pipeline.safeyaml, so no entry written before can stand for a refused file).
FORMAT = 2
#: Entries kept (the newest by modification time).
KEEP = 32
_DATE = "\x00date"


class _Uncachable(Exception):
    pass


def cache_dir() -> Path | None:
    configured = os.environ.get("ILLHUB_CACHE_DIR")
    if configured:
        return None if configured.lower() in ("off", "0", "none") else Path(configured) / "yaml"
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "illhub" / "yaml"


def _encode(value: Any) -> Any:
    if value is None or isinstance(value, (str, bool, int, float)):
        return value
    if isinstance(value, dict):
        if not all(isinstance(k, str) for k in value) or _DATE in value:
            raise _Uncachable
        return {k: _encode(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_encode(v) for v in value]
    if type(value) is dt.date:
        return {_DATE: value.isoformat()}
    raise _Uncachable  # datetime (its tzinfo), bytes, sets, …


def _decode_object(obj: dict) -> Any:
    if len(obj) == 1 and _DATE in obj:
        return dt.date.fromisoformat(obj[_DATE])
    return obj


def _key(text: str, kind: str) -> str:
    from ruamel.yaml import __version__ as ruamel_version

    h = hashlib.sha256(f"{FORMAT}\n{kind}\n{ruamel_version}\n".encode())
    h.update(text.encode("utf-8", "surrogatepass"))
    return h.hexdigest()


def load(text: str, parse: Callable[[str], Any], kind: str = "yaml") -> Any:
    """``parse(text)``, or what it returned the last time it was given the same text."""
    directory = cache_dir()
    if directory is None:
        return parse(text)
    path = directory / f"{_key(text, kind)}.json"
    try:
        data = json.loads(path.read_text(encoding="utf-8"), object_hook=_decode_object)
    except (OSError, ValueError):
        pass
    else:
        try:
            os.utime(path)  # recently used: kept when older entries are pruned
        except OSError:
            pass
        return data
    data = parse(text)  # a parse error propagates, and nothing is stored
    try:
        encoded = json.dumps(_encode(data), ensure_ascii=False, allow_nan=True)
    except (_Uncachable, RecursionError, ValueError):
        return data
    _store(directory, path, encoded)
    return data


def _store(directory: Path, path: Path, encoded: str) -> None:
    try:
        directory.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=directory, prefix=".tmp-", suffix=".json")
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as f:
                f.write(encoded)
            os.replace(tmp, path)  # atomic: a reader sees the old entry or the whole new one
        except BaseException:
            os.unlink(tmp)
            raise
        entries = sorted(directory.glob("*.json"), key=lambda p: p.stat().st_mtime, reverse=True)
        for old in entries[KEEP:]:
            old.unlink(missing_ok=True)
    except (OSError, ValueError):
        pass  # a read-only or full cache directory (or text no file can hold) only costs the parse
