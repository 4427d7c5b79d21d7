"""A document that is costly to parse fails its own source and nothing else (issue 21, item 7).

feedparser's strict (SAX) path is quadratic in the attributes of one element: 200,000 of them
cost about four minutes of CPU and stalled a whole harvest. Every document's parse is now
bounded in CPU time (``--parse-cpu-limit``), in the harvest process and in parse workers
alike. Here 60,000 attributes (about half a minute of CPU unbounded) against a one-second
limit: the hostile source fails in one line, the others are stored.
"""

from __future__ import annotations

import pytest

from tests.reliability.helpers import feed_source, harvest, items_for, rss, runs, snapshot, write_registry
from tests.server import StubServer, ok

ATTRIBUTES = 60_000


def attribute_bomb(n: int = ATTRIBUTES) -> bytes:
    attributes = " ".join(f'a{i}="x"' for i in range(n))
    return rss(items_for("bomb", 1), raw_items=f"<item {attributes}><title>x</title>"
               "<link>http://127.0.0.81:9/bomb/x</link></item>")


@pytest.fixture(scope="module")
def server():
    with StubServer("127.0.0.81") as s:
        s.route("/bomb.xml", ok(attribute_bomb()))
        for i in range(3):
            s.route(f"/feed-{i}.xml", ok(rss(items_for(f"good-{i}", 2))))
        yield s


@pytest.mark.parametrize("workers", ["0", "1"], ids=["inline", "worker"])
def test_a_costly_document_fails_its_source_in_one_line(server, tmp_path, workers):
    sources = [feed_source("bomb", server.url("/bomb.xml"))]
    sources += [feed_source(f"good-{i}", server.url(f"/feed-{i}.xml")) for i in range(3)]
    registry = write_registry(tmp_path / "registry.yaml", sources)
    db = tmp_path / "catalog.db"
    result = harvest(registry, db, "--parse-cpu-limit", "1", "--workers", workers, timeout=120)
    assert result.returncode == 1, result.stdout + result.stderr
    latest = runs(db)
    bomb = latest["bomb"]
    assert bomb["status"] == "failed"
    assert bomb["error"] == (f"{server.url('/bomb.xml')}: parsing stopped after 1 s of CPU time (--parse-cpu-limit): "
                             "the document is too costly to read (thousands of attributes on one element?); "
                             "nothing from it was stored")
    assert "Traceback" not in result.stderr
    assert snapshot(db, "bomb") == []
    for i in range(3):
        assert latest[f"good-{i}"]["status"] == "ok" and len(snapshot(db, f"good-{i}")) == 2


def test_the_limit_is_a_checked_option(tmp_path):
    registry = write_registry(tmp_path / "registry.yaml", [feed_source("x", "http://127.0.0.81:9/feed.xml")])
    for bad in ("0", "-1", "nan", "inf", "99999"):
        result = harvest(registry, tmp_path / "catalog.db", "--parse-cpu-limit", bad)
        assert result.returncode == 2 and "--parse-cpu-limit" in result.stderr, result.stderr
        assert "Traceback" not in result.stderr
