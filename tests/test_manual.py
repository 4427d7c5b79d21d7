"""The manual kind: curated entries written in the registry (tests/fixtures/manual/), checked
when the registry is loaded and harvested with no network."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

from tests.conftest import one_problem, problems_for, run_cli

FIXTURES = Path(__file__).parent / "fixtures" / "manual"


def test_unknown_key_in_manual_entry():
    p = one_problem({"id": "m", "name": "M", "kind": "manual",
                     "entries": [{"url": "https://example.org/", "title": "T", "link": "x"}]})
    assert "source 'm' (#1): field 'entries[0].link': is not a known field" in p


def test_manual_entry_url_checked_too():
    p = one_problem({"id": "m", "name": "M", "kind": "manual",
                     "entries": [{"url": "file:///etc/passwd", "title": "T"}]})
    assert "field 'entries[0].url': must be an http:// or https:// URL" in p


def test_unknown_topic_and_system_in_manual_entry():
    problems = problems_for({"id": "m", "name": "M", "kind": "manual", "entries": [
        {"url": "https://example.org/", "title": "T", "topics": ["nope"], "systems": ["nosystem"]}]})
    assert any("field 'entries[0].topics': 'nope' is not a topic" in p for p in problems)
    assert any("field 'entries[0].systems': 'nosystem' is not a system" in p for p in problems)


def test_manual_without_entries():
    assert "field 'entries': is required" in one_problem({"id": "m", "name": "M", "kind": "manual"})
    assert "field 'entries': must list at least one item" in one_problem(
        {"id": "m", "name": "M", "kind": "manual", "entries": []})


def test_curated_entries_are_stored_without_any_request(tmp_path):
    db = tmp_path / "catalog.db"
    result = run_cli("harvest", "--registry", str(FIXTURES / "curated.yaml"), "--db", str(db), "--quiet")
    assert result.returncode == 0, result.stdout + result.stderr
    conn = sqlite3.connect(db)
    try:
        runs = dict(conn.execute("select source_id, status || ' ' || requests from harvest_runs").fetchall())
        got = {url: rest for url, *rest in conn.execute(
            "select url, title, content_type, organization, published, topics, classified_by from resources")}
    finally:
        conn.close()
    assert runs == {"curated-copyright": "ok 0", "curated-careers": "ok 0"}
    title, ctype, org, published, topics, why = got["https://www.copyright.gov/circs/circ21.pdf"]
    assert (title, ctype, org) == ("Circular 21: Reproduction of Copyrighted Works by Educators and Librarians",
                                   "document", "U.S. Copyright Office")
    assert "copyright" in json.loads(topics)
    assert json.loads(why)["copyright"] == "registry topic of source 'curated-copyright'"
    law = got["https://www.law.cornell.edu/uscode/text/17/108"]
    assert law[2] == "illhub curators" and law[3] == "2024-05-01T00:00:00Z"
    video = got["https://www.youtube.com/watch?v=Rh7QRjlltdY"]
    assert video[1] == "video" and {"careers", "inspiration"} <= set(json.loads(video[4]))
    assert json.loads(video[5])["careers"] == "curated"
