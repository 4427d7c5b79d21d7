"""The youtube kind: channel and playlist feeds (tests/fixtures/youtube/), feed URLs from ids and
channel pages, and the registry's checks of its fields."""

from __future__ import annotations

from pathlib import Path

import pytest

from harvesters.parsers.youtube import (
    feed_url_for,
    feed_url_from_page,
    feed_url_from_page_url,
    parse_youtube_feed,
)
from pipeline.normalize import normalize_resource
from tests.conftest import one_problem, run_cli

FIXTURES = Path(__file__).parent / "fixtures" / "youtube"
YT = {"id": "yt", "name": "YT", "kind": "youtube"}
DEMO_YT = Path(__file__).resolve().parent.parent / "data" / "demo" / "site" / "youtube"


def fixture(name: str) -> bytes:
    return (FIXTURES / name).read_bytes()


def test_youtube_channel_feed_quirks():
    url = feed_url_for(channel_id="UCtestValleyLibrary00001")
    parsed = parse_youtube_feed(fixture("youtube-channel.xml"), url, source_id="yt",
                                http_content_type="text/xml; charset=UTF-8")
    # the feed-level channelId lacks the UC prefix; it is restored
    assert parsed.meta["channel_id"] == "UCtestValleyLibrary00001" and parsed.warnings == []
    video, short = parsed.resources
    assert video.content_type == "video" and video.url == "https://www.youtube.com/watch?v=tEsTvid0001"
    assert video.extra == {"video_id": "tEsTvid0001", "channel_id": "UCtestValleyLibrary00001",
                           "channel_title": "Test Valley Library", "is_short": False, "views": 2048,
                           "star_rating": 4.5, "rating_count": 12}
    assert video.thumbnail == "https://i3.ytimg.com/vi/tEsTvid0001/hqdefault.jpg"
    assert video.published == "2026-11-01T15:00:00Z" and video.author == "Test Valley Library"
    assert normalize_resource(video).description == (
        "Pulling, packing and shipping a lending request. Second line with markup.")
    # a /shorts/ link marks a Short (stored under its watch URL); its empty description is fine;
    # an entry without yt:channelId gets the feed's (with the UC prefix restored)
    assert short.extra["is_short"] is True and short.url == "https://www.youtube.com/watch?v=tEsTvid0002"
    assert short.extra["channel_id"] == "UCtestValleyLibrary00001" and short.extra["views"] == 0
    assert short.description == "" and normalize_resource(short).description == ""


def test_youtube_playlist_feed():
    url = feed_url_for(playlist_id="PLtestValleyWebinars01")
    parsed = parse_youtube_feed(fixture("youtube-playlist.xml"), url, source_id="yt")
    assert parsed.title == "ILL webinars"
    [video] = parsed.resources
    assert video.extra["channel_id"] == "UCtestValleyLibrary00001"
    assert video.extra["channel_title"] == "Test Valley Library"  # the channel, not the playlist
    assert video.extra["views"] == 310 and "star_rating" not in video.extra
    assert video.updated == "2026-09-12T10:00:00Z"


def test_youtube_feed_urls():
    assert feed_url_for(channel_id="UC" + "a" * 22) == "https://www.youtube.com/feeds/videos.xml?channel_id=UC" + "a" * 22
    assert feed_url_for(playlist_id="PLx") == "https://www.youtube.com/feeds/videos.xml?playlist_id=PLx"
    assert feed_url_from_page_url("https://www.youtube.com/channel/UC" + "b" * 22 + "/videos") == (
        "https://www.youtube.com/feeds/videos.xml?channel_id=UC" + "b" * 22)
    feed = "https://www.youtube.com/feeds/videos.xml?channel_id=UC" + "c" * 22
    assert feed_url_from_page_url(feed) == feed
    assert feed_url_from_page_url("https://www.youtube.com/@handle") is None
    with pytest.raises(ValueError):
        feed_url_for()


def test_youtube_handle_page_resolves_to_the_channel_feed():
    page = (DEMO_YT / "handle-prairiestatelibrarydemo.html").read_bytes()
    assert feed_url_from_page(page, "http://127.0.0.1:9/@prairiestatelibrarydemo") == (
        "http://127.0.0.1:9/feeds/videos.xml?channel_id=UCdemoPrairieStateLib001")
    assert feed_url_from_page(b'<html>"channelId":"UC' + b"d" * 22 + b'"</html>', "https://www.youtube.com/@x") == (
        "https://www.youtube.com/feeds/videos.xml?channel_id=UC" + "d" * 22)
    assert feed_url_from_page(b"<html>nothing here</html>", "https://www.youtube.com/@x") is None


def test_youtube_needs_one_of_channel_playlist_url():
    p = one_problem(YT)
    assert "source 'yt' (#1): field 'channel_id/playlist_id/url': give exactly one of" in p


def test_youtube_with_two_ways():
    p = one_problem({**YT, "channel_id": "UC" + "a" * 22, "playlist_id": "PL" + "a" * 16})
    assert "field 'channel_id/playlist_id/url'" in p and "got channel_id, playlist_id" in p
    p = one_problem({**YT, "channel_id": "UC" + "a" * 22, "url": "https://www.youtube.com/@x"})
    assert "got channel_id, url" in p


@pytest.mark.parametrize("bad", ["UCshort", "XX" + "a" * 22, "UC" + "a" * 23])
def test_bad_channel_id(bad):
    assert f"field 'channel_id': {bad!r} is not a YouTube channel id" in one_problem({**YT, "channel_id": bad})


def test_bad_playlist_id_and_youtube_url():
    assert "field 'playlist_id'" in one_problem({**YT, "playlist_id": "nope"})
    assert "field 'url': url must be a channel page" in one_problem({**YT, "url": "https://www.youtube.com/watch?v=x"})


def _video(vid: str, title: str, description: str) -> str:
    return (f"<entry><id>yt:video:{vid}</id><yt:videoId>{vid}</yt:videoId>"
            f"<yt:channelId>UCstateLibraryOfTestland1</yt:channelId><title>{title}</title>"
            f'<link rel="alternate" href="https://www.youtube.com/watch?v={vid}"/>'
            "<author><name>State Library of Testland</name></author>"
            "<published>2026-11-20T15:00:00+00:00</published><updated>2026-11-20T15:00:00+00:00</updated>"
            f"<media:group><media:title>{title}</media:title>"
            f"<media:description>{description}</media:description></media:group></entry>")


def test_a_broad_channel_keeps_only_its_videos_on_topic(tmp_path):
    """A state library's channel is mostly about other things: with `on_topic_only`, only the
    videos whose own title and description give them a topic or system are kept (the source's
    registry topic does not count), in the harvest process and in parse workers alike; without
    it, every video is kept and gets the registry topic."""
    from tests.harvesting import rows
    from tests.server import StubServer

    feed = ('<?xml version="1.0" encoding="UTF-8"?><feed xmlns:yt="http://www.youtube.com/xml/schemas/2015" '
            'xmlns:media="http://search.yahoo.com/mrss/" xmlns="http://www.w3.org/2005/Atom">'
            "<title>State Library of Testland</title>"
            + _video("vidILLartcl", "Requesting journal articles through interlibrary loan",
                     "How patrons of member libraries request articles, and how long delivery takes.")
            + _video("vidStorytme", "Storytime with the bookmobile", "Songs and stories for toddlers.")
            + _video("vidTipasa01", "Tipasa tips for the borrowing desk", "Three settings worth checking.")
            + _video("vidConcert1", "Summer concert on the library lawn", "Jazz in the park, Friday at six.")
            + "</feed>")
    with StubServer() as srv:
        srv.add("/feeds/videos.xml", feed, "application/atom+xml; charset=utf-8")
        kept = {}
        for flag, workers in (("true", "0"), ("true", "2"), ("false", "0")):
            registry = tmp_path / f"r-{flag}-{workers}.yaml"
            registry.write_text(
                "sources:\n  - id: testland-youtube\n    name: State Library of Testland on YouTube\n"
                f'    kind: youtube\n    url: "{srv.base}/feeds/videos.xml?channel_id=UCstateLibraryOfTestland1"\n'
                f"    topics: [inspiration]\n    on_topic_only: {flag}\n", encoding="utf-8")
            db = tmp_path / f"c-{flag}-{workers}.db"
            result = run_cli("harvest", "--registry", str(registry), "--db", str(db), "--delay", "0.005",
                             "--quiet", "--workers", workers)
            assert result.returncode == 0, result.stderr
            kept[flag, workers] = rows(db, "select title, topics from resources order by title")
            assert rows(db, "select items_seen from harvest_runs") == [(4,)]
            said = " ".join(result.stdout.split())
            assert ("2 left out as off topic (on_topic_only)" in said) == (flag == "true"), said
    on_topic = kept["true", "0"]
    assert [t for t, _ in on_topic] == ["Requesting journal articles through interlibrary loan",
                                        "Tipasa tips for the borrowing desk"]
    assert all("inspiration" in topics for _, topics in on_topic)  # the registry topic still applies
    assert kept["true", "2"] == on_topic
    assert len(kept["false", "0"]) == 4
