"""OPML 2.0 export of the registry's feed sources, so people can subscribe in their own reader."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from datetime import UTC, datetime
from email.utils import format_datetime
from typing import IO, Any

from harvesters.parsers.youtube import feed_url_for, feed_url_from_page_url
from harvesters.source import SourceBase
from illhub.registry import Registry


def subscription_url(source: SourceBase) -> str | None:
    """The feed a reader can subscribe to for this source, or None when there is none
    known without the network (a YouTube ``/@handle`` page, a crawled site)."""
    kind = source.kind
    if kind == "feed":
        return source.url
    if kind == "youtube":
        if getattr(source, "channel_id", None) or getattr(source, "playlist_id", None):
            return feed_url_for(channel_id=source.channel_id, playlist_id=source.playlist_id)
        return feed_url_from_page_url(source.url) if source.url else None
    if kind == "wordpress" and source.url:
        return source.url.rstrip("/") + "/feed/"  # every WordPress site serves its posts feed here
    return None


def site_url(source: SourceBase) -> str | None:
    url = source.url or ""
    if source.kind == "youtube":
        if getattr(source, "channel_id", None):
            return f"https://www.youtube.com/channel/{source.channel_id}"
        if getattr(source, "playlist_id", None):
            return f"https://www.youtube.com/playlist?list={source.playlist_id}"
        return url if "/feeds/videos.xml" not in url else None
    if source.kind == "wordpress":
        return url
    return None


def build_opml(registry: Registry, *, title: str = "illhub: interlibrary loan feeds",
               now: datetime | None = None, include_disabled: bool = False) -> tuple[ET.Element, list[str]]:
    """The OPML tree (feeds grouped by organization) and the ids of sources left out."""
    now = now or datetime.now(UTC)
    root = ET.Element("opml", version="2.0")
    head = ET.SubElement(root, "head")
    ET.SubElement(head, "title").text = title
    ET.SubElement(head, "dateCreated").text = format_datetime(now)
    ET.SubElement(head, "docs").text = "https://opml.org/spec2.opml"
    body = ET.SubElement(root, "body")
    groups: dict[str, ET.Element] = {}
    skipped: list[str] = []
    for source in sorted(registry.sources, key=lambda s: ((s.organization or "").lower(), s.name.lower())):
        if not source.enabled and not include_disabled:
            continue
        xml_url = subscription_url(source)
        if not xml_url:
            if source.kind in ("feed", "youtube"):
                skipped.append(source.id)
            continue
        org = source.organization or "Other"
        group = groups.get(org)
        if group is None:
            group = groups[org] = ET.SubElement(body, "outline", text=org, title=org)
        attrs = {"type": "rss", "text": source.name, "title": source.name, "xmlUrl": xml_url}
        html = site_url(source)
        if html:
            attrs["htmlUrl"] = html
        if source.topics:
            attrs["category"] = ",".join(f"/{t}" for t in source.topics)
        if source.notes:
            attrs["description"] = source.notes
        attrs["illhubId"] = source.id
        ET.SubElement(group, "outline", attrs)
    return root, skipped


def write_opml(registry: Registry, fh: IO[str], **kwargs: Any) -> tuple[int, list[str]]:
    """Write the OPML document; return how many feeds it lists and the sources left out."""
    root, skipped = build_opml(registry, **kwargs)
    ET.indent(root, space="  ")
    fh.write('<?xml version="1.0" encoding="UTF-8"?>\n')
    fh.write(ET.tostring(root, encoding="unicode"))
    fh.write("\n")
    return sum(1 for o in root.iter("outline") if o.get("xmlUrl")), skipped
