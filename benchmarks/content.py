"""Realistic, deterministic content for benchmarks: ILL feeds, pages and resources."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from xml.sax.saxutils import escape

SUBJECTS = [
    "Borrowing 101", "Lending workflows", "Copyright and CONTU", "Section 108 in practice", "ILLiad addons",
    "Tipasa reports", "WorldShare ILL tips", "Alma resource sharing", "Rapido partners", "ReShare and ISO 18626",
    "International ILL", "Shipping costs", "Hard citations", "Gray literature", "Customer service at the desk",
    "Training student workers", "Accessibility and alternate formats", "Careers in resource sharing",
    "Fill rate dashboards", "Reciprocal agreements", "NCIP interoperability", "Special collections lending",
]
VERBS = ["explained", "for new staff", "a case study", "what we learned", "step by step", "in ten minutes",
         "revisited", "checklist", "webinar recording", "panel discussion"]
SENTENCES = [
    "How our unit handles {s} with a small staff.",
    "Practical advice on {s} from a consortium working group.",
    "Slides and notes from the conference session on {s}.",
    "We compare three approaches to {s} and the numbers behind them.",
    "A walkthrough for anyone new to {s}, with screenshots.",
]


def title(rng: random.Random) -> str:
    return f"{rng.choice(SUBJECTS)}: {rng.choice(VERBS)}"


def description(rng: random.Random) -> str:
    return " ".join(rng.choice(SENTENCES).format(s=rng.choice(SUBJECTS).lower()) for _ in range(3))


def rss_feed(feed_no: int, entries: int = 20, site: str = "https://bench{n}.example.org") -> bytes:
    rng = random.Random(feed_no)
    base = site.format(n=feed_no)
    now = datetime(2026, 11, 1, tzinfo=UTC)
    items = []
    for i in range(entries):
        t = escape(title(rng))
        d = escape(f"<p>{description(rng)}</p>")
        when = format_datetime(now - timedelta(days=i, minutes=feed_no))
        items.append(
            f"<item><title>{t}</title><link>{base}/posts/{i}/?utm_source=rss</link>"
            f"<guid>{base}/posts/{i}/</guid><pubDate>{when}</pubDate><description>{d}</description>"
            f"<category>ILL</category></item>"
        )
    return (
        '<?xml version="1.0" encoding="UTF-8"?><rss version="2.0"><channel>'
        f"<title>Benchmark library {feed_no}</title><link>{base}/</link><description>bench</description>"
        + "".join(items) + "</channel></rss>"
    ).encode()


def registry_yaml(urls: list[str], kind: str = "feed") -> str:
    lines = ["sources:"]
    for i, url in enumerate(urls):
        lines += [f"  - id: bench-{i}", f"    name: Benchmark source {i}", f"    kind: {kind}", f'    url: "{url}"']
    return "\n".join(lines) + "\n"
