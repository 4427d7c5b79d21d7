"""The catalog's Datasette app, built from the settings in ``datasette_config/``.

:func:`datasette_kwargs` is the one place that says how Datasette is built (metadata,
templates, plugins, static files, settings, the public profile); ``illhub serve`` and the
tests both use it, so what is tested is what is served.
"""

from __future__ import annotations

import copy
import warnings
from pathlib import Path
from typing import Any

from ruamel.yaml import YAML

from catalog.load import SQL_THREADS
from catalog.public import drop_private_queries

# datasette-ics serializes with str(Calendar), which the `ics` library it pins (0.7.2) warns
# about on every .ics request; the output is right, the warning is noise in the server log.
warnings.filterwarnings("ignore", message=r"Behaviour of str\(Component\) will change", category=FutureWarning)

CONFIG_DIR = Path(__file__).resolve().parent.parent / "datasette_config"
METADATA = CONFIG_DIR / "metadata.yml"
TEMPLATE_KEY = "illhub"
PLUGIN_KEY = "illhub"

#: Settings for every serve; the public profile tightens them further. Datasette's time
#: limits are kept at their defaults; suggested facets are off (they cost more than the
#: page itself on a large catalog: see benchmarks/catalog.py); one SQL thread more than
#: heavy requests may hold at once (catalog/load.py).
BASE_SETTINGS: dict[str, Any] = {"default_page_size": 50, "suggest_facets": False, "num_sql_threads": SQL_THREADS}
#: The public (internet-facing) profile: no arbitrary SQL, no database download. The time
#: limits (sql_time_limit_ms, facet_time_limit_ms) and max_returned_rows stay as they are.
PUBLIC_SETTINGS: dict[str, Any] = {"default_allow_sql": False, "allow_download": False}
ROBOTS_DEFAULT = {False: "allow", True: "pages"}


def build_metadata(db_path: str | Path, *, public: bool = False, robots: str | None = None) -> dict[str, Any]:
    """The metadata with the catalog's section filed under the served database's name.

    Adds the plugin's options and, in the public profile, drops every canned query that writes
    and those that show harvest errors (:data:`catalog.public.PRIVATE_QUERIES`).
    Every canned query lives in metadata.yml: migrations give every catalog the tables and
    columns they read (``illhub serve`` migrates an older catalog before serving it).
    """
    data = YAML(typ="safe").load(METADATA.read_text(encoding="utf-8"))
    name = Path(db_path).stem
    dbs = data.setdefault("databases", {})
    if TEMPLATE_KEY in dbs and name != TEMPLATE_KEY:
        dbs[name] = dbs.pop(TEMPLATE_KEY)
    section = dbs.setdefault(name, {})
    queries = section.setdefault("queries", {})
    if public:
        for qname in [k for k, v in queries.items() if isinstance(v, dict) and v.get("write")]:
            del queries[qname]
        drop_private_queries(queries)
    plugins = data.setdefault("plugins", {})
    plugins[PLUGIN_KEY] = {
        **(plugins.get(PLUGIN_KEY) or {}),
        "public": public,
        "robots": robots or ROBOTS_DEFAULT[public],
        "neutralize_csv": True,
    }
    return data


def datasette_kwargs(db_path: str | Path, *, public: bool = False, allow_sql: bool = False,
                     allow_download: bool = False, immutable: bool = False,
                     robots: str | None = None) -> dict[str, Any]:
    """Keyword arguments for ``datasette.app.Datasette`` serving the catalog at ``db_path``.

    ``public`` selects the internet-facing profile; ``allow_sql`` and ``allow_download``
    re-enable arbitrary SQL and the database download in it (Datasette offers only
    immutable files for download, so that needs ``immutable``: a snapshot nothing writes
    to while it is served); ``robots`` is ``allow``, ``pages`` or ``block`` (default:
    ``pages`` when public, else ``allow``).

    Either way Datasette reads the catalog through read-only connections (``mode=ro``),
    so a harvest may keep writing to it while it is served.
    """
    settings = copy.deepcopy(BASE_SETTINGS)
    if public:
        settings.update(PUBLIC_SETTINGS)
        if allow_sql:
            settings["default_allow_sql"] = True
        if allow_download:
            settings["allow_download"] = True
    kwargs: dict[str, Any] = {
        "files": [] if immutable else [str(db_path)],
        "immutables": [str(db_path)] if immutable else [],
        "metadata": build_metadata(db_path, public=public, robots=robots),
        "settings": settings,
    }
    templates, plugins, static = CONFIG_DIR / "templates", CONFIG_DIR / "plugins", CONFIG_DIR / "static"
    if templates.is_dir():
        kwargs["template_dir"] = str(templates)
    if plugins.is_dir():
        kwargs["plugins_dir"] = str(plugins)
    if static.is_dir():
        kwargs["static_mounts"] = [("static", str(static))]
    return kwargs


def prepare_catalog(db_path: str | Path) -> None:
    """Bring the catalog's schema up to date (the harvest's migrations), so a catalog made by
    an older illhub serves every page and canned query. Never used for ``--immutable``."""
    from pipeline.store import open_db

    open_db(db_path).close()


def make_datasette(db_path: str | Path, **options: Any):
    """A Datasette instance built from :func:`datasette_kwargs` (startup not yet invoked)."""
    from datasette.app import Datasette

    return Datasette(**datasette_kwargs(db_path, **options))
