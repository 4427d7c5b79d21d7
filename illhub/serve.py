"""Serving the catalog with Datasette and the settings in ``datasette_config/``."""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from ruamel.yaml import YAML

CONFIG_DIR = Path(__file__).resolve().parent.parent / "datasette_config"
METADATA = CONFIG_DIR / "metadata.yml"
TEMPLATE_KEY = "illhub"

#: Settings for every serve; the public profile tightens them further. Datasette's time
#: limits are kept at their defaults; suggested facets are off (they cost more than the
#: page itself on a large catalog: see benchmarks/catalog.py).
BASE_SETTINGS = {"default_page_size": "50", "suggest_facets": "off"}


def build_metadata(db_path: str | Path) -> dict[str, Any]:
    """The metadata with the catalog's section filed under the served database's name."""
    data = YAML(typ="safe").load(METADATA.read_text(encoding="utf-8"))
    name = Path(db_path).stem
    dbs = data.get("databases", {})
    if TEMPLATE_KEY in dbs and name != TEMPLATE_KEY:
        dbs[name] = dbs.pop(TEMPLATE_KEY)
    return data


def datasette_args(db_path: Path, metadata_path: Path, *, public: bool = False) -> list[str]:
    args = [str(db_path), "--metadata", str(metadata_path)]
    for flag, sub in (("--template-dir", "templates"), ("--plugins-dir", "plugins")):
        d = CONFIG_DIR / sub
        if d.is_dir() and any(p.suffix in (".html", ".py") for p in d.iterdir()):
            args += [flag, str(d)]
    static = CONFIG_DIR / "static"
    if static.is_dir() and any(static.iterdir()):
        args += ["--static", f"static:{static}"]
    for k, v in BASE_SETTINGS.items():
        args += ["--setting", k, v]
    return args


def serve_datasette(db_path: Path, *, host: str = "127.0.0.1", port: int = 8001, public: bool = False) -> int:
    with tempfile.TemporaryDirectory(prefix="illhub-serve-") as tmp:
        meta = Path(tmp) / "metadata.json"
        meta.write_text(json.dumps(build_metadata(db_path)), encoding="utf-8")
        cmd = [sys.executable, "-m", "datasette", "serve", *datasette_args(db_path, meta, public=public),
               "--host", host, "--port", str(port)]
        print(f"illhub: serving {db_path} at http://{host}:{port}/ (Ctrl-C to stop)", flush=True)
        try:
            return subprocess.call(cmd)
        except KeyboardInterrupt:
            return 0
