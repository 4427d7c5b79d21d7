"""Relative links in the docs that lead nowhere: a missing file, or a ``#anchor`` that no
heading of the Markdown page it names gives. The tests run it on README.md and docs/*.md.

    python -m tools.links           list the broken links; exit 1 if there are any
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

from tools.docs import ROOT, doc_files, slug

LINK = re.compile(r"\]\(([^()\s]+)\)")
FENCE = re.compile(r"^```.*?^```", re.S | re.M)
CODE_SPAN = re.compile(r"`[^`\n]*`")


def anchors(text: str) -> set[str]:
    """The ``#anchors`` GitHub gives a page's headings (lower case, punctuation dropped,
    spaces as hyphens, ``-1``, ``-2`` ... for repeats)."""
    seen: dict[str, int] = {}
    out: set[str] = set()
    for line in FENCE.sub("", text).splitlines():
        m = re.match(r"#{1,6}\s+(.*?)\s*#*\s*$", line)
        if not m:
            continue
        base = slug(m.group(1))
        n = seen.get(base, 0)
        seen[base] = n + 1
        out.add(base if n == 0 else f"{base}-{n}")
    return out


def broken_links(path: Path) -> list[str]:
    """Relative links in the Markdown page ``path`` whose file, or ``#anchor`` in a Markdown
    file, does not exist (code blocks and code spans are not read)."""
    text = CODE_SPAN.sub("", FENCE.sub("", path.read_text(encoding="utf-8")))
    broken = []
    for target in LINK.findall(text):
        if re.match(r"[a-z][a-z0-9+.-]*:", target):  # http:, https:, mailto: ...
            continue
        file_part, _, anchor = target.partition("#")
        dest = (path.parent / file_part).resolve() if file_part else path
        if not dest.exists():
            broken.append(f"{path.name}: {target} (no such file)")
        elif anchor and dest.suffix == ".md" and anchor not in anchors(dest.read_text(encoding="utf-8")):
            broken.append(f"{path.name}: {target} (no such heading)")
    return broken


def main() -> int:
    broken = [line for path in doc_files(ROOT) for line in broken_links(path)]
    for line in broken:
        print(line, file=sys.stderr)
    return 1 if broken else 0


if __name__ == "__main__":
    sys.exit(main())
