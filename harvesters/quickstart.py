"""Scrapy's start-up, made cheaper where it does work a harvest never uses.

Scrapy's TLS modules define three deprecated aliases with ``create_deprecated_class``, which
finds the module defining each through ``inspect.stack()``: that reads the source lines of
every frame on the stack (a harvest's is deep: click, the command, the crawler, the engine,
the download handlers being imported), then maps every loaded module to its file, 50-80 ms of
every harvest's start-up. :func:`import_download_handler` imports them with that module found
from the calling frame itself, which gives the same module.
"""

from __future__ import annotations

import inspect
import sys
from typing import Any

#: What a harvest's HTTP download handler imports (with Scrapy's TLS modules).
HANDLER = "scrapy.core.downloader.handlers.http11"


class _CallerInspect:
    """``inspect`` for Scrapy's deprecated-class helper: ``stack()[1][0]`` is the frame that
    called the helper, and ``getmodule`` of a frame is the module whose code it runs."""

    def __getattr__(self, name: str) -> Any:
        return getattr(inspect, name)

    @staticmethod
    def stack(context: int = 1) -> list[Any]:
        return [None, (sys._getframe(2),)]

    @staticmethod
    def getmodule(obj: Any, _filename: Any = None) -> Any:
        name = getattr(obj, "f_globals", {}).get("__name__") if inspect.isframe(obj) else None
        return sys.modules.get(name) if name else inspect.getmodule(obj, _filename)


def import_download_handler() -> None:
    """Import Scrapy's HTTP download handler now (the engine imports it when it starts), with
    the cheap module lookup above; nothing else changes."""
    if HANDLER in sys.modules:
        return
    from scrapy.utils import deprecate

    real = deprecate.inspect
    deprecate.inspect = _CallerInspect()  # type: ignore[assignment]
    try:
        __import__(HANDLER)
    finally:
        deprecate.inspect = real
