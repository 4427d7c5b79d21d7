"""``illhub add-source``: turn a discovery proposal into a registry entry and append it to
``registry.yaml`` without touching anything else in the file.

The entry is validated together with the whole registry before anything is written; the
new text is written to a temporary file and moved into place only when it reads back as
the old registry plus exactly one source. Any failure leaves the file byte-for-byte as it was.
"""

from __future__ import annotations

import io
import os
import re
import tempfile
import textwrap
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap, CommentedSeq

from harvesters.discover import Proposal, propose_id
from harvesters.kinds import KINDS
from harvesters.source import SourceBase, check_http_url, check_slug
from illhub.registry import RegistryError, load_yaml, parse_registry
from pipeline import safeyaml
from pipeline.taxonomy import Taxonomy
from pipeline.urls import loose_url_key

FIELD_ORDER = ("id", "name", "kind", "url", "channel_id", "playlist_id", "api_url", "locale", "organization",
               "topics", "include")


class AddSourceError(Exception):
    """add-source cannot go on; the message says why and what to do. Nothing was written."""

    def __init__(self, message: str, code: int = 2):
        super().__init__(message)
        self.code = code


@dataclass
class Added:
    entry: dict[str, Any]
    text: str  # the YAML block (comment + entry) as appended
    path: Path


def duplicate_of(sources: list[SourceBase], urls: list[str], channel_id: str | None = None,
                 playlist_id: str | None = None) -> SourceBase | None:
    keys = {loose_url_key(u) for u in urls if u}
    for s in sources:
        if s.url and s.uses_network and loose_url_key(s.url) in keys:
            return s
        if channel_id and getattr(s, "channel_id", None) == channel_id:
            return s
        if playlist_id and getattr(s, "playlist_id", None) == playlist_id:
            return s
    return None


def build_entry(proposal: Proposal, *, source_id: str | None = None, name: str | None = None,
                topics: list[str] | None = None, organization: str | None = None) -> dict[str, Any]:
    """The registry entry, fields in the registry's usual order."""
    fields = dict(proposal.fields)
    entry: dict[str, Any] = {
        "id": source_id or propose_id(proposal),
        "name": name or proposal.name or urlsplit(proposal.url).hostname or proposal.url,
        "kind": proposal.kind,
    }
    entry.update(fields)
    org = organization or proposal.organization
    if org:
        entry["organization"] = org
    # Guessed topics are only proposed (see comment_for): classification already tags each
    # item, and a source-wide topic would be given to every item of the source.
    if topics:
        entry["topics"] = list(topics)
    if proposal.mostly_off_topic:
        entry["on_topic_only"] = True
    ordered = {k: entry[k] for k in FIELD_ORDER if k in entry}
    ordered.update({k: v for k, v in entry.items() if k not in ordered})
    return ordered


def comment_for(entry: dict[str, Any], proposal: Proposal, today: str | None = None) -> list[str]:
    today = today or datetime.now(UTC).strftime("%Y-%m-%d")
    org = f" ({entry['organization']})" if entry.get("organization") else ""
    text = f"{entry['name']}{org}: {proposal.evidence}. Added with illhub add-source on {today}."
    if entry.get("on_topic_only"):
        text += (f" {proposal.off_topic_items} of the {len(proposal.items)} items sampled are about nothing in"
                 " the vocabulary, so only the items whose own words give a topic or system are kept"
                 " (on_topic_only).")
    return textwrap.wrap(text, width=100, break_long_words=False, break_on_hyphens=False)


def proposed_topics(entry: dict[str, Any], proposal: Proposal) -> list[str]:
    """The topics guessed from the site, when none were chosen with --topics."""
    return [] if "topics" in entry else list(proposal.topics)


def topics_comment(topics: list[str]) -> list[str]:
    """The commented-out ``topics:`` line written into a new entry for the maintainer to confirm."""
    if not topics:
        return []
    return ["topics proposed from the site: every item of the source would get them, and classification",
            "already tags each item by its own text. To keep them, confirm and uncomment:",
            f"topics: [{', '.join(topics)}]"]


def render_entry(entry: dict[str, Any], comment: list[str], offset: int = 2, after: list[str] | None = None) -> str:
    """The entry as a block-sequence item at ``offset`` spaces, lists in flow style; ``after``
    are comment lines inside it, below its fields."""
    cm = CommentedMap()
    for k, v in entry.items():
        if isinstance(v, list):
            seq = CommentedSeq(v)
            seq.fa.set_flow_style()
            cm[k] = seq
        else:
            cm[k] = v
    yaml = YAML()
    yaml.indent(mapping=2, sequence=2, offset=0)
    yaml.width = 4096
    buf = io.StringIO()
    yaml.dump(cm, buf)
    lines = buf.getvalue().rstrip("\n").splitlines()
    pad = " " * offset
    out = [f"{pad}# {c}" for c in comment]
    out.append(f"{pad}- {lines[0]}")
    out += [f"{pad}  {line}" if line else "" for line in lines[1:]]
    out += [f"{pad}  # {c}" for c in after or []]
    return "\n".join(out) + "\n"


def _item_offset(lines: list[str], start: int) -> int:
    for line in lines[start:]:
        m = re.match(r"^(\s*)- ", line)
        if m:
            return len(m.group(1))
    return 2


def insert_entry(text: str, entry: dict[str, Any], comment: list[str], after: list[str] | None = None) -> str:
    """``text`` with the entry added at the end of its ``sources:`` list; every other byte kept."""
    rt = YAML()
    data = rt.load(text)
    if not isinstance(data, dict) or "sources" not in data:
        raise AddSourceError("the registry has no top-level 'sources:' list to add to")
    lines = text.splitlines(keepends=True)
    keys = list(data.keys())
    src_line = data.lc.key("sources")[0]
    sources = data["sources"]
    if not sources:  # "sources:" or "sources: []"
        block = render_entry(entry, comment, 2, after)
        line = lines[src_line]
        newline = "\n" if line.endswith("\n") else ""
        lines[src_line] = re.sub(r"^sources:.*$", "sources:", line.rstrip("\r\n")) + "\n" + block.rstrip("\n") + newline
        return "".join(lines)
    if getattr(sources, "fa", None) is not None and sources.fa.flow_style():
        raise AddSourceError("the registry's 'sources:' list is written in flow style ([...]); "
                             "write it as a block list (one '- id:' per source) and try again")
    block = render_entry(entry, comment, _item_offset(lines, src_line + 1), after)
    after = keys[keys.index("sources") + 1:]
    if not after:
        if text and not text.endswith("\n"):
            text += "\n"
        sep = "" if text.endswith("\n\n") else "\n"
        return text + sep + block
    at = data.lc.key(after[0])[0]
    while at > 0 and (lines[at - 1].strip() == "" or lines[at - 1].lstrip().startswith("#")) \
            and not lines[at - 1].startswith(" "):
        at -= 1
    return "".join(lines[:at]) + ("\n" if at and lines[at - 1].strip() else "") + block + "\n" + "".join(lines[at:])


def check_kind(entry: dict[str, Any], proposal: Proposal) -> None:
    kind = entry["kind"]
    if kind in KINDS:
        return
    others = [c for c in ("feed", "youtube", "sitemap", "crawl") if c in KINDS]
    hint = ""
    feeds = [c for c in proposal.tried if c.startswith("feed ")]
    if feeds:
        hint = f" (a feed was also tried: {feeds[0]})"
    raise AddSourceError(
        f"discovery proposes kind {kind!r} for {proposal.url} ({proposal.evidence}), but this version of illhub "
        f"has no {kind!r} kind yet (available: {', '.join(sorted(KINDS))}). Update illhub, or run again with "
        f"--kind {' or --kind '.join(others)} to harvest it another way{hint}. Nothing was written."
    )


def validate_with_registry(path: Path, data: Any, entry: dict[str, Any], taxonomy: Taxonomy | None) -> None:
    candidate = dict(data)
    candidate["sources"] = list(data.get("sources") or []) + [entry]
    try:
        parse_registry(candidate, path, taxonomy)
    except RegistryError as e:
        n = len(candidate["sources"])
        mine = [p for p in e.problems if f"(#{n})" in p] or e.problems
        fix = ("--kind (another kind takes this URL) or another URL" if any("field 'url'" in p for p in mine)
               else "--id, --name, --topics or --kind")
        raise AddSourceError(
            "the proposed entry does not validate:\n  " + "\n  ".join(mine)
            + f"\nFix it with {fix}; nothing was written."
        ) from None


def prepare(path: Path, proposal: Proposal, *, source_id: str | None = None, name: str | None = None,
            topics: list[str] | None = None, organization: str | None = None,
            taxonomy: Taxonomy | None = None, extra_urls: list[str] | None = None) -> tuple[dict[str, Any], str]:
    """Check everything and return the entry and the registry's new text (nothing written)."""
    if source_id:
        try:
            check_slug(source_id)
        except ValueError as e:
            raise AddSourceError(f"--id {e}") from None
    data = load_yaml(path)
    registry = parse_registry(data, path, taxonomy)
    entry = build_entry(proposal, source_id=source_id, name=name, topics=topics, organization=organization)
    for s in registry.sources:
        if s.id == entry["id"]:
            raise AddSourceError(
                f"{path} already has a source with id {entry['id']!r} ({s.name}, {s.url or s.kind}); "
                f"choose another id with --id. Nothing was written."
            )
    dup = duplicate_of(registry.sources, [entry.get("url") or "", proposal.url, *(extra_urls or [])],
                       entry.get("channel_id"), entry.get("playlist_id"))
    if dup is not None:
        raise AddSourceError(
            f"{path}: source {dup.id!r} ({dup.kind}) already harvests {dup.url or entry.get('url')}; "
            f"edit that entry instead of adding another. Nothing was written."
        )
    check_kind(entry, proposal)
    validate_with_registry(path, data, entry, taxonomy)
    text = path.read_text(encoding="utf-8")
    new_text = insert_entry(text, entry, comment_for(entry, proposal), topics_comment(proposed_topics(entry, proposal)))
    verify(path, text, new_text, data, entry, taxonomy)
    return entry, new_text


def verify(path: Path, old_text: str, new_text: str, old_data: Any, entry: dict[str, Any],
           taxonomy: Taxonomy | None) -> None:
    """The new text must read as the old registry plus exactly the new entry, and keep every
    old line (comments included) in order."""
    new_data = safeyaml.parse(new_text)
    try:
        parse_registry(new_data, path, taxonomy)
    except RegistryError as e:  # pragma: no cover - validate_with_registry ran first
        raise AddSourceError("the updated registry would not validate: " + "; ".join(e.problems)) from None
    old_sources = list(old_data.get("sources") or [])
    if new_data.get("sources", [])[:-1] != old_sources or new_data["sources"][-1] != entry:
        raise AddSourceError("could not add the entry without changing others (unusual registry layout); "
                             "add it by hand. Nothing was written.")
    empty_list = re.compile(r"^sources:\s*(\[\s*\])?\s*$")
    old_lines = [line.rstrip() for line in old_text.splitlines() if line.strip() and not empty_list.match(line)]
    new_lines = iter(line.rstrip() for line in new_text.splitlines())
    if not all(any(n == o for n in new_lines) for o in old_lines):
        raise AddSourceError("could not add the entry while keeping every line of the file; add it by hand. "
                             "Nothing was written.")


def write_atomically(path: Path, text: str) -> None:
    mode = path.stat().st_mode & 0o777 if path.exists() else 0o644
    fd, tmp = tempfile.mkstemp(prefix=".registry-", suffix=".yaml", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as fh:
            fh.write(text)
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def next_command(source_id: str, registry_path: Path, allow_private_network: bool) -> str:
    """The harvest command that tries the new source, as it must be typed here."""
    import shlex

    words = ["illhub", "harvest", "--source", source_id]
    if str(registry_path) != "registry.yaml":
        words += ["--registry", str(registry_path)]
    if allow_private_network:
        words.append("--allow-private-network")
    return shlex.join(words)


def check_url(url: str) -> str:
    try:
        return check_http_url(url)
    except ValueError as e:
        raise AddSourceError(f"URL {url!r} {e}") from None
