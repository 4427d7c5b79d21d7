"""The pure parts of the fetch cache: freshness, Retry-After, fingerprints, validators."""

from __future__ import annotations

from datetime import UTC, datetime

from pipeline.fetchcache import CachedDocument, freshness, parse_retry_after, source_fingerprint

NOW = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)


def test_max_age_minus_age_gives_fresh_until_capped_at_two_days():
    assert freshness("public, max-age=3600", None, NOW) == "2026-11-28T13:00:00Z"
    assert freshness('max-age="600", must-revalidate', "100", NOW) == "2026-11-28T12:08:20Z"
    assert freshness("MAX-AGE=31536000", None, NOW) == "2026-11-30T12:00:00Z"  # a year: capped
    for value, age in (("no-cache, max-age=3600", None), ("no-store", None), ("max-age=60", "120"),
                       ("s-maxage=600", None), ("max-age=0", None), (None, None), ("private", "x")):
        assert freshness(value, age, NOW) is None, value
    assert freshness("max-age=60", "not a number", NOW) == "2026-11-28T12:01:00Z"


def test_retry_after_as_seconds_or_http_date_capped_at_a_week():
    assert parse_retry_after("120", NOW) == datetime(2026, 11, 28, 12, 2, tzinfo=UTC)
    assert parse_retry_after(b"Sat, 28 Nov 2026 15:00:00 GMT", NOW) == datetime(2026, 11, 28, 15, 0, tzinfo=UTC)
    assert parse_retry_after("Fri, 27 Nov 2026 15:00:00 GMT", NOW) == NOW  # in the past: now
    assert parse_retry_after("99999999", NOW) == datetime(2026, 12, 5, 12, 0, tzinfo=UTC)
    for bad in (None, "", "soon", "-5", "1.5"):
        assert parse_retry_after(bad, NOW) is None, bad


def test_fingerprint_follows_the_registry_entry_and_the_version():
    a = source_fingerprint({"url": "https://x.example/feed", "max_items": 10}, "0.1.0")
    assert a == source_fingerprint({"max_items": 10, "url": "https://x.example/feed"}, "0.1.0")
    assert a != source_fingerprint({"url": "https://x.example/feed", "max_items": 20}, "0.1.0")
    assert a != source_fingerprint({"url": "https://x.example/feed", "max_items": 10}, "0.2.0")


def test_validators_are_sent_back_as_stored():
    doc = CachedDocument("s", "https://x.example/feed", etag='W/"a b"', last_modified="Tue, 24 Nov 2026 08:00:00 GMT")
    assert doc.conditional_headers() == {"If-None-Match": 'W/"a b"',
                                         "If-Modified-Since": "Tue, 24 Nov 2026 08:00:00 GMT"}
    assert CachedDocument("s", "u").conditional_headers() == {}
    assert doc.is_fresh(NOW) is False
    doc.fresh_until = "2026-11-28T12:00:01Z"
    assert doc.is_fresh(NOW) and not doc.is_fresh(datetime(2026, 11, 28, 12, 0, 1, tzinfo=UTC))
