"""Linking recordings and slides found elsewhere to the conference session they belong to.

A YouTube video or a slide deck harvested from another source is linked to its session
rather than standing alone: the media resource's ``session_id`` points at the session, and
the session's ``recording_url`` (videos) or ``slides_url`` (documents) is filled when its
program named none.

The matching rule, for each video or document not yet linked, against every stored
session (a resource of content type ``event`` with an ``event_name``):

1. **Same link**: a session whose ``recording_url``/``slides_url`` is the media's URL is its
   session (no further checks).
2. **Same conference**: the media's title or description names the conference (its name
   without years and parenthesized remarks, with or without words such as "Conference" and "Annual"; an upper-case
   word of it of four letters or more, such as "NWILL"; or the initials of its words when
   there are four or more, such as "GLRSC" for "Great Lakes Resource Sharing Conference"),
   or it comes from the same organization as the session.
3. **Same year**: if the media's title or description names years, one of them is the
   session's year; otherwise it was published in the session's year or the year after.
4. **Similar title**: both titles are normalized (accents and case folded; the conference
   name, years and words such as "recording", "slides", "session", "keynote" and small
   words removed) and compared with :class:`difflib.SequenceMatcher`; a session title of
   three or more words found whole inside the media title scores at least 0.9. The best
   session scoring at least :data:`THRESHOLD` wins, unless another scores within
   :data:`AMBIGUITY_MARGIN` of it: an ambiguous match links nothing.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from difflib import SequenceMatcher
from typing import Any

from sqlite_utils import Database

from pipeline.normalize import fold

THRESHOLD = 0.85
AMBIGUITY_MARGIN = 0.03
CONTAINED_SCORE = 0.9
MEDIA_TYPES = {"video": "recording_url", "document": "slides_url"}

FILLER = {
    "recording", "recorded", "video", "slides", "slide", "deck", "presentation", "session", "webinar", "keynote",
    "full", "talk", "conference", "the", "a", "an", "and", "of", "for", "in", "on", "to", "at", "with", "from",
}
_YEAR = re.compile(r"\b(?:19|20)\d{2}\b")
_STOP_NAME = {"the", "of", "and", "for", "on", "in", "a", "an", "annual", "conference"}


@dataclass
class Session:
    id: str
    title: str
    event_name: str
    event_year: int | None
    organization: str | None
    keys: list[str]
    norm: str


@dataclass
class Link:
    media_id: str
    session_id: str
    score: float
    rule: str


def _words(text: str) -> list[str]:
    return re.findall(r"[a-z0-9]+", fold(text))


def conference_keys(event_name: str) -> list[str]:
    """Ways a media title may name the conference: its name without years, its upper-case
    words (NWILL), the initials of its words (GLRSC)."""
    keys: list[str] = []
    name = _YEAR.sub(" ", re.sub(r"\([^)]*\)", " ", event_name or ""))  # "(DEMO)", "(virtual)" are no part
    words = _words(name)
    if words:
        keys.append(" ".join(words))
        core = [w for w in words if w not in _STOP_NAME]
        if len(core) >= 2:
            keys.append(" ".join(core))
    # acronyms: upper-case words and the initials of the name, four letters or more
    # (three-letter ones such as ILL or ALA name too much)
    keys += [w.lower() for w in re.findall(r"\b[A-Z][A-Z0-9]{3,}\b", name)]
    significant = [w for w in re.findall(r"[A-Za-z]+", name) if w.lower() not in ("the", "of", "and", "for", "on", "in")]
    if len(significant) >= 4:
        keys.append("".join(w[0] for w in significant).lower())
    return list(dict.fromkeys(k for k in keys if k))


def normalize_title(title: str, keys: list[str] = ()) -> str:
    """A title reduced to the words that identify the talk."""
    text = " " + " ".join(_words(_YEAR.sub(" ", title or ""))) + " "
    for key in sorted(keys, key=len, reverse=True):
        text = text.replace(f" {key} ", " ")
    return " ".join(w for w in text.split() if w not in FILLER)


def similarity(session_norm: str, media_norm: str) -> float:
    if not session_norm or not media_norm:
        return 0.0
    score = SequenceMatcher(None, session_norm, media_norm).ratio()
    if len(session_norm.split()) >= 3 and f" {session_norm} " in f" {media_norm} ":
        score = max(score, CONTAINED_SCORE)
    return score


def year_matches(session_year: int | None, text: str, published: str | None) -> bool:
    if session_year is None:
        return True
    named = {int(y) for y in _YEAR.findall(text or "")}
    if named:
        return session_year in named
    if published and published[:4].isdigit():
        return int(published[:4]) in (session_year, session_year + 1)
    return False


class SessionIndex:
    """Sessions grouped by conference and organization, so that a media item is compared only
    with the sessions of conferences it names (or of its own organization)."""

    def __init__(self, sessions: list[Session]):
        self.by_keys: dict[tuple[str, ...], list[Session]] = {}
        self.by_org: dict[str, list[Session]] = {}
        for s in sessions:
            self.by_keys.setdefault(tuple(s.keys), []).append(s)
            if s.organization:
                self.by_org.setdefault(s.organization, []).append(s)

    def candidates(self, text: str, organization: str | None) -> list[Session]:
        haystack = " " + " ".join(_words(text)) + " "
        found: dict[str, Session] = {}
        for keys, group in self.by_keys.items():
            if any(f" {k} " in haystack for k in keys):
                found.update((s.id, s) for s in group)
        for s in self.by_org.get(organization or "", []):
            found.setdefault(s.id, s)
        return list(found.values())

    def best(self, media: dict[str, Any]) -> tuple[Session | None, float]:
        """The session a media item belongs to under the rule above, and its score."""
        text = f"{media.get('title') or ''} {media.get('description') or ''}"
        scored: list[tuple[float, Session]] = []
        for s in self.candidates(text, media.get("organization")):
            if not year_matches(s.event_year, text, media.get("published")):
                continue
            score = similarity(s.norm, normalize_title(media.get("title") or "", s.keys))
            if score >= THRESHOLD:
                scored.append((score, s))
        if not scored:
            return None, 0.0
        scored.sort(key=lambda pair: (-pair[0], pair[1].id))
        best_score, best = scored[0]
        if len(scored) > 1 and best_score - scored[1][0] < AMBIGUITY_MARGIN:
            return None, best_score
        return best, best_score


def best_session(media: dict[str, Any], sessions: list[Session]) -> tuple[Session | None, float]:
    """The session a media item belongs to under the rule above, and its score."""
    return SessionIndex(sessions).best(media)


def load_sessions(db: Database) -> list[Session]:
    rows = db.execute(
        "SELECT id, title, event_name, event_year, organization FROM resources "
        "WHERE content_type = 'event' AND event_name IS NOT NULL AND status = 'active'"
    ).fetchall()
    sessions = []
    for rid, title, event_name, year, org in rows:
        keys = conference_keys(event_name)
        sessions.append(Session(rid, title, event_name, year, org, keys, normalize_title(title, keys)))
    return sessions


def link_media(db: Database) -> list[Link]:
    """Link every unlinked video and document that matches a session; returns the new links."""
    links: list[Link] = []
    with db.atomic():
        # 1. the same link: the program already named this recording or deck
        for column, rule in (("recording_url", "same-link"), ("slides_url", "same-link")):
            for media_id, session_id in db.execute(
                f"SELECT m.id, s.id FROM resources m JOIN resources s ON s.{column} = m.url "
                "WHERE m.session_id IS NULL AND s.content_type = 'event' AND m.id != s.id"
            ).fetchall():
                db.execute("UPDATE resources SET session_id = ? WHERE id = ?", [session_id, media_id])
                links.append(Link(media_id, session_id, 1.0, rule))
        sessions = load_sessions(db)
        if not sessions:
            return links
        index = SessionIndex(sessions)
        media_rows = db.execute(
            "SELECT id, url, title, description, content_type, published, organization FROM resources "
            "WHERE session_id IS NULL AND content_type IN ('video', 'document') AND status = 'active'"
        ).fetchall()
        for mid, url, title, description, ctype, published, org in media_rows:
            media = {"title": title, "description": description, "published": published, "organization": org}
            session, score = index.best(media)
            if session is None:
                continue
            db.execute("UPDATE resources SET session_id = ? WHERE id = ?", [session.id, mid])
            column = MEDIA_TYPES[ctype]
            db.execute(f"UPDATE resources SET {column} = coalesce({column}, ?) WHERE id = ?", [url, session.id])
            links.append(Link(mid, session.id, round(score, 3), "title"))
    return links
