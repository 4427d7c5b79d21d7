"""The five practitioner tasks of issue 17, walked in headless Chromium on the demo catalog at
1280 px and 375 px by clicking from the front page (never typing a URL): find a training video
for my system, find copyright guidance, add upcoming sessions to my calendar, subscribe to
what's new, download a list for my LibGuide. No page on the way may show a SQL link, a raw
column name or an internal table name. Screenshots go to test-artifacts/task-*.png.
"""

from __future__ import annotations

import csv
import io
import urllib.request

import pytest
from icalendar import Calendar

from tests.test_browser import ARTIFACTS, DESKTOP, PHONE, chromium, serve_catalog, set_width
from tests.test_hub import JARGON

pytestmark = [pytest.mark.browser, pytest.mark.slow]

from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.common.keys import Keys  # noqa: E402
from selenium.webdriver.support.ui import WebDriverWait  # noqa: E402

SIZES = {"desktop": DESKTOP, "phone": PHONE}


def loaded(d) -> None:
    WebDriverWait(d, 15).until(lambda d: d.execute_script("return document.readyState") == "complete")


def check_page(d, task: str, step: str, size: tuple[int, int]) -> str:
    """The page's visible text, after checking it for jargon, its width, and taking its picture."""
    loaded(d)
    text = d.execute_script("return document.body.innerText")
    for word in JARGON:
        assert word not in text, (task, step, d.current_url, word)
    assert d.execute_script("return document.documentElement.scrollWidth") <= size[0], (task, step)
    name = f"task-{task}-{step}-{'phone' if size == PHONE else 'desktop'}.png"
    full = min(d.execute_script("return document.documentElement.scrollHeight"), 4000)
    set_width(d, (size[0], max(size[1], full)))
    d.save_screenshot(str(ARTIFACTS / name))
    set_width(d, size)
    return text


def click(d, by, value) -> None:
    el = d.find_element(by, value)
    d.execute_script("arguments[0].scrollIntoView({block: 'center'})", el)
    el.click()
    loaded(d)


def start(d, base: str, size) -> None:
    set_width(d, size)
    d.get(base + "/")
    check_page(d, "0", "front", size)


def fetch(url: str) -> bytes:
    with urllib.request.urlopen(url, timeout=20) as r:
        return r.read()


@pytest.fixture(scope="module")
def served_catalog(tmp_path_factory):
    yield from serve_catalog(tmp_path_factory)


@pytest.fixture(scope="module")
def browser():
    yield from chromium()


@pytest.fixture(params=list(SIZES))
def size(request):
    return SIZES[request.param]


def test_task_training_video_for_my_system(browser, served_catalog, size):
    d = browser
    start(d, served_catalog, size)
    click(d, By.CSS_SELECTOR, "#systems-title ~ ul a.chip[href$='/system/tipasa']")
    text = check_page(d, "1-video", "system", size)
    assert "Tipasa" in d.find_element(By.TAG_NAME, "h1").text and "Videos" in text
    click(d, By.CSS_SELECTOR, "#videos-title ~ ul a.resource-title")
    check_page(d, "1-video", "resource", size)
    assert d.find_element(By.CSS_SELECTOR, "h1.resource-heading").text == "Tipasa tip: clearing the lending queue in five minutes"
    assert d.find_element(By.LINK_TEXT, "Open the resource").get_attribute("href").startswith("https://www.youtube.com/")
    assert d.find_element(By.CSS_SELECTOR, ".resource-desc").text


def test_task_copyright_guidance(browser, served_catalog, size):
    d = browser
    start(d, served_catalog, size)
    box = d.find_element(By.ID, "hub-q")
    box.send_keys("fair use", Keys.ENTER)
    loaded(d)
    text = check_page(d, "2-copyright", "search", size)
    titles = [e.text for e in d.find_elements(By.CSS_SELECTOR, ".card-title")]
    assert 'Copyright in ILL: the CONTU "rule of five" explained' in titles[:10], titles
    assert "Circular 21: Reproduction of Copyrighted Works by Educators and Librarians" in titles
    assert "resources" in text
    click(d, By.CSS_SELECTOR, ".card-chips a.chip-topics[href$='/topic/copyright']")
    check_page(d, "2-copyright", "topic", size)
    assert d.find_element(By.TAG_NAME, "h1").text == "Copyright and fair use"


def test_task_upcoming_sessions_in_my_calendar(browser, served_catalog, size):
    d = browser
    start(d, served_catalog, size)
    click(d, By.LINK_TEXT, "All upcoming events")
    check_page(d, "3-calendar", "events", size)
    subscribe_all = d.find_element(By.PARTIAL_LINK_TEXT, "Subscribe to all upcoming events").get_attribute("href")
    click(d, By.PARTIAL_LINK_TEXT, "Details")
    text = check_page(d, "3-calendar", "event", size)
    assert "UTC" in text and "America/Chicago" in text
    ics = d.find_element(By.CSS_SELECTOR, "a.add-calendar").get_attribute("href")
    [ev] = Calendar.from_ical(fetch(ics)).walk("VEVENT")
    assert str(ev["DTSTART"].dt.tzinfo) == "America/Chicago" and ev.get("LOCATION") and ev.get("URL")
    assert str(ev["SUMMARY"]) == d.find_element(By.CSS_SELECTOR, "h1.resource-heading").text
    assert len(Calendar.from_ical(fetch(subscribe_all)).walk("VEVENT")) >= 3


def test_task_subscribe_to_whats_new(browser, served_catalog, size):
    import feedparser

    d = browser
    start(d, served_catalog, size)
    click(d, By.CSS_SELECTOR, ".hub-nav a[href$='/subscribe']")
    text = check_page(d, "4-subscribe", "subscribe", size)
    assert "feed reader" in text and "iCal" in text
    click(d, By.LINK_TEXT, "Everything new")
    # the feed, shown as a page by its stylesheet
    WebDriverWait(d, 15).until(lambda d: d.find_elements(By.TAG_NAME, "h1"))
    text = check_page(d, "4-subscribe", "feed", size)
    assert "This is a feed." in text and d.find_element(By.TAG_NAME, "h1").text == "illhub: All resources"
    feed = feedparser.parse(fetch(d.current_url))
    assert not feed.bozo and len(feed.entries) >= 20


def test_task_list_for_my_libguide(browser, served_catalog, size):
    d = browser
    start(d, served_catalog, size)
    click(d, By.CSS_SELECTOR, ".tile a[href$='/topic/copyright']")
    check_page(d, "5-libguide", "topic", size)
    csv_url = d.find_element(By.PARTIAL_LINK_TEXT, "Download this list").get_attribute("href")
    body = fetch(csv_url)
    assert body.startswith(b"\xef\xbb\xbf")
    rows = list(csv.DictReader(io.StringIO(body.decode("utf-8-sig"), newline="")))
    assert rows and all("Copyright and fair use" in r["Topics"] for r in rows)
    click(d, By.PARTIAL_LINK_TEXT, "as HTML for a LibGuide")
    check_page(d, "5-libguide", "snippet", size)
    code = d.find_element(By.ID, "libguide-code").get_attribute("value")
    assert code.count("<li>") == len(rows) and '<ul class="illhub-list">' in code
    assert len(d.find_elements(By.CSS_SELECTOR, ".snippet-preview li")) == len(rows)
