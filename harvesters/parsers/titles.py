"""A page's title, chosen among what the page says (``og:title``, JSON-LD, microdata, Dublin
Core, ``<title>``, ``<h1>``): the value most of them agree on, each without a part that names
the site. Pure string work, used by :mod:`harvesters.parsers.page`."""

from __future__ import annotations

import re
from functools import lru_cache

from pipeline.normalize import fold

_TITLE_SEPARATORS = (" | ", " - ", " – ", " — ", " :: ", " · ", " » ", ": ")


@lru_cache(maxsize=4096)
def _norm(text: str) -> str:
    """Text compared loosely: no accents or case, punctuation as spaces. Cached: choosing one
    page's title compares its half-dozen candidates and their parts pairwise (about 40 calls)."""
    return " ".join(re.sub(r"[^\w]+", " ", fold(text)).split())


def _is_site_name(part: str, site: str) -> bool:
    """Whether a title's part names the site: the same name, or a short phrase ending with it
    ("LibGuides at Hudson Valley Council" for "Hudson Valley Council")."""
    n = _norm(part)
    return bool(site) and (n == site or (n.endswith(" " + site) and len(n.split()) <= len(site.split()) + 3))


def strip_site_suffix(title: str, site_names: list[str]) -> str:
    """``title`` without a leading or trailing part that names the site (" | Site name",
    "Site name - …"); unchanged when no part matches one of ``site_names``."""
    for site in dict.fromkeys(_norm(n) for n in site_names if n):
        for sep in _TITLE_SEPARATORS:
            if sep not in title:
                continue
            head, _, tail = title.rpartition(sep)
            if head.strip() and _is_site_name(tail, site):
                return head.strip()
            first, _, rest = title.partition(sep)
            if rest.strip() and _is_site_name(first, site):
                return rest.strip()
    return title


def _agree(a: str, b: str) -> bool:
    """Two titles agree when they are the same, or one is the other plus a separated part
    ("Borrowing requests | Help Center" and "Borrowing requests")."""
    na, nb = _norm(a), _norm(b)
    if not na or not nb:
        return False
    if na == nb:
        return True
    longer, shorter = (a, b) if len(na) > len(nb) else (b, a)
    return any(_norm(longer.split(sep, 1)[0]) == _norm(shorter) or _norm(longer.rsplit(sep, 1)[-1]) == _norm(shorter)
               for sep in _TITLE_SEPARATORS if sep in longer)


def by_agreement(found: list[tuple[str, str]], site_names: list[str]) -> tuple[str | None, str]:
    """``(source, title)`` among ``found`` (``(source, value)`` pairs in order of precedence):
    each value without a part naming the site; the one most others agree with wins, ties to the
    earlier; ``(None, "")`` when there is none."""
    candidates = [(k, strip_site_suffix(v, site_names)) for k, v in found if v]
    if not candidates:
        return None, ""
    votes = [sum(1 for _, other in candidates if _agree(value, other)) for _, value in candidates]
    best = max(range(len(candidates)), key=lambda i: (votes[i], -i))
    return candidates[best]
