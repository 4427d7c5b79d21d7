"""End to end in headless Chromium: harvest the demo web (plus a hostile feed), run
`illhub serve`, and use the catalog as a person would: front page, search, a facet, a
resource's page, on a desktop and a 375 px phone. Screenshots go to test-artifacts/.

Needs Debian's `chromium` and `chromium-driver` (`.ci/run` installs them); skipped with the
reason when they are missing. Chromium resolves no host names (every name maps to
NOTFOUND, loopback excepted), so the pages' external thumbnails cost no network access.
"""

from __future__ import annotations

import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from illhub.demo import DEMO_REGISTRY, DemoServer
from illhub.loopback import wait_ready
from tests.conftest import ROOT, run_cli
from tests.server import RSS, StubServer

pytestmark = [pytest.mark.browser, pytest.mark.slow]

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHROMEDRIVER = shutil.which("chromedriver")
ARTIFACTS = ROOT / "test-artifacts"
HOSTILE_DIR = Path(__file__).parent / "fixtures" / "hostile"
DESKTOP, PHONE = (1280, 900), (375, 740)

if not (CHROMIUM and CHROMEDRIVER):
    pytest.skip("browser tests need Debian's chromium and chromium-driver on PATH "
                "(apt-get install chromium chromium-driver; .ci/run installs them)", allow_module_level=True)
webdriver = pytest.importorskip("selenium.webdriver", reason="browser tests need selenium (pip install -e '.[test]')")
from selenium.common.exceptions import NoAlertPresentException  # noqa: E402
from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.common.keys import Keys  # noqa: E402
from selenium.webdriver.support import expected_conditions as EC  # noqa: E402
from selenium.webdriver.support.ui import WebDriverWait  # noqa: E402

CHROMIUM_FLAGS = [
    "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
    "--disable-default-apps", "--disable-extensions", "--disable-domain-reliability",
    "--disable-client-side-phishing-detection", "--no-default-browser-check", "--hide-scrollbars",
    "--host-resolver-rules=MAP * ~NOTFOUND , EXCLUDE 127.0.0.1",
]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def served_catalog(tmp_path_factory):
    """The demo web and a hostile feed harvested with `illhub harvest`, served with `illhub serve`."""
    yield from serve_catalog(tmp_path_factory)


def serve_catalog(tmp_path_factory):
    """The body of :func:`served_catalog` (tests/test_browser_tasks.py serves its own the same way)."""
    tmp = tmp_path_factory.mktemp("browser")
    db = tmp / "demo.db"
    with DemoServer() as demo, StubServer() as hostile:
        hostile.add("/hostile.rss", (HOSTILE_DIR / "hostile.rss").read_bytes(), RSS)
        registry = tmp / "registry.yaml"
        registry.write_text(
            DEMO_REGISTRY.read_text(encoding="utf-8").replace("{base}", demo.base)
            + "\n  - id: test-hostile\n    name: Hostile ILL news (TEST)\n    kind: feed\n"
            + f"    url: \"{hostile.base}/hostile.rss\"\n    organization: Hostile Org (TEST)\n",
            encoding="utf-8")
        result = run_cli("harvest", "--registry", str(registry), "--db", str(db), "--delay", "0.01", "--quiet")
    assert db.exists() and "test-hostile" in result.stdout, result.stdout + result.stderr
    port = free_port()
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen([sys.executable, "-m", "illhub", "serve", "--db", str(db), "--port", str(port)],
                            cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    base = f"http://127.0.0.1:{port}"
    try:
        wait_ready(base + "/robots.txt", timeout=30)
        yield base
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)


@pytest.fixture(scope="module")
def browser():
    """One headless Chromium for the module, driven through the system chromedriver
    (given explicitly, so Selenium Manager never downloads anything)."""
    yield from chromium()


def chromium():
    """The body of :func:`browser`."""
    from selenium.webdriver.chrome.service import Service

    os.environ["SE_OFFLINE"] = "true"
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    profile = tempfile.mkdtemp(prefix="illhub-chromium-")
    for flag in CHROMIUM_FLAGS + [f"--user-data-dir={profile}"]:
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(executable_path=CHROMEDRIVER), options=options)
    driver.set_page_load_timeout(30)
    ARTIFACTS.mkdir(exist_ok=True)
    try:
        yield driver
    finally:
        driver.quit()
        shutil.rmtree(profile, ignore_errors=True)


def set_width(driver, size) -> None:
    width, height = size
    driver.execute_cdp_cmd("Emulation.setDeviceMetricsOverride",
                           {"width": width, "height": height, "deviceScaleFactor": 1, "mobile": width < 600})


def shoot(driver, name: str) -> None:
    """Screenshots of the page at desktop and phone width (the page is reloaded for each)."""
    for label, size in (("desktop", DESKTOP), ("phone", PHONE)):
        set_width(driver, size)
        driver.refresh()
        WebDriverWait(driver, 10).until(lambda d: d.execute_script("return document.readyState") == "complete")
        # the whole page in one picture (capped), as a person would scroll through it
        full = min(driver.execute_script("return document.documentElement.scrollHeight"), 5000)
        set_width(driver, (size[0], max(size[1], full)))
        driver.save_screenshot(str(ARTIFACTS / f"{name}-{label}.png"))
        # nothing may make the phone page wider than the phone
        assert driver.execute_script("return document.documentElement.scrollWidth") <= size[0], (name, label)
    set_width(driver, DESKTOP)
    driver.refresh()


def no_script_ran(driver) -> None:
    assert driver.execute_script("return window.__xss === undefined")
    with pytest.raises(NoAlertPresentException):
        driver.switch_to.alert.text  # noqa: B018 - raises when there is no alert


def luminance(rgb: tuple[float, float, float]) -> float:
    def channel(c: float) -> float:
        c /= 255
        return c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4

    r, g, b = (channel(c) for c in rgb)
    return 0.2126 * r + 0.7152 * g + 0.0722 * b


def contrast(fg: str, bg: str) -> float:
    def parse(css: str) -> tuple[float, float, float]:
        return tuple(float(x) for x in re.findall(r"[\d.]+", css)[:3])  # type: ignore[return-value]

    a, b = sorted((luminance(parse(fg)), luminance(parse(bg))), reverse=True)
    return (a + 0.05) / (b + 0.05)


BACKGROUND_JS = """
let el = arguments[0];
while (el) {
  const bg = getComputedStyle(el).backgroundColor;
  if (bg && bg !== 'rgba(0, 0, 0, 0)' && bg !== 'transparent') return bg;
  el = el.parentElement;
}
return 'rgb(255, 255, 255)';
"""


def test_front_page_search_facet_and_row_page(served_catalog, browser):
    d = browser
    set_width(d, DESKTOP)
    d.get(served_catalog + "/")
    # what a person sees on the front page
    assert d.find_element(By.CSS_SELECTOR, "h1").text.startswith("illhub")
    headings = [h.text for h in d.find_elements(By.CSS_SELECTOR, "main h2")]
    assert {"Browse by topic", "New this week", "Browse by system", "For maintainers"} <= set(headings)
    tiles = {t.find_element(By.CSS_SELECTOR, ".tile-label").text for t in d.find_elements(By.CSS_SELECTOR, ".tile")}
    assert {"Copyright and fair use", "Borrowing"} <= tiles
    box = d.find_element(By.ID, "hub-q")
    assert d.find_element(By.CSS_SELECTOR, "label[for=hub-q]").text == "Search the whole catalog"
    shoot(d, "01-front-page")

    # keyboard focus is visible on the search box
    box = d.find_element(By.ID, "hub-q")
    d.find_element(By.TAG_NAME, "body").send_keys(Keys.TAB)  # the skip link comes first
    assert d.switch_to.active_element.get_attribute("class") == "skip-link"
    box.click()
    outline = d.execute_script("const s = getComputedStyle(document.activeElement); return [s.outlineStyle, s.outlineWidth]")
    assert outline[0] != "none" and float(outline[1].rstrip("px")) >= 2

    # search: ranked results with the matching words marked
    box.send_keys("borrowing", Keys.ENTER)
    WebDriverWait(d, 10).until(EC.presence_of_element_located((By.CSS_SELECTOR, ".result-count")))
    assert "/search?q=borrowing" in d.current_url
    titles = [e.text for e in d.find_elements(By.CSS_SELECTOR, ".card-title")]
    assert len(titles) >= 3 and "borrowing" in titles[0].lower()
    assert any(m.text.lower() == "borrowing" for m in d.find_elements(By.CSS_SELECTOR, "mark"))
    # the hub's search page (catalog/hub.py): its list as a spreadsheet
    assert d.find_element(By.PARTIAL_LINK_TEXT, "Download this list").get_attribute("href").split("?")[0].endswith(
        "/search/list.csv")
    shoot(d, "02-search")

    # narrow by a facet: only videos remain
    panel = d.find_element(By.CSS_SELECTOR, ".facet-results")
    panel.find_element(By.LINK_TEXT, "Video").click()
    WebDriverWait(d, 10).until(EC.url_contains("type=video"))
    types = [e.text for e in d.find_elements(By.CSS_SELECTOR, ".card-meta .chip-content_type")]
    assert types and set(types) == {"Video"} and len(types) < len(titles)
    assert "Narrowed to:" in d.find_element(By.CSS_SELECTOR, ".active-filters").text

    # the table view's facets narrow too, and keep CSV/JSON exports
    d.get(served_catalog + "/demo/resources")
    total = int(re.match(r"([\d,]+) resources", d.find_element(By.CSS_SELECTOR, ".result-count").text).group(1))
    d.find_element(By.CSS_SELECTOR, "#facet-topics").find_element(By.LINK_TEXT, "Copyright and fair use").click()
    WebDriverWait(d, 10).until(EC.url_contains("_topic=copyright"))  # the indexed topic filter (m1002)
    narrowed = int(re.match(r"(\d+) resources?", d.find_element(By.CSS_SELECTOR, ".result-count").text).group(1))
    assert 0 < narrowed < total
    for card in d.find_elements(By.CSS_SELECTOR, ".card"):
        assert "Copyright and fair use" in card.text
    exports = d.find_element(By.CSS_SELECTOR, ".export-links").text
    assert "JSON" in exports and "CSV" in exports
    shoot(d, "03-resources-facet")

    # a resource's page: the title, the way to the resource, where it came from
    first = d.find_element(By.CSS_SELECTOR, ".card")
    title = first.find_element(By.CSS_SELECTOR, ".card-title").text
    first.find_element(By.PARTIAL_LINK_TEXT, "Details").click()
    WebDriverWait(d, 10).until(EC.presence_of_element_located((By.CSS_SELECTOR, "h1.resource-heading")))
    assert d.find_element(By.CSS_SELECTOR, "h1.resource-heading").text == title
    open_link = d.find_element(By.LINK_TEXT, "Open the resource").get_attribute("href")
    assert open_link.startswith(("https://", "http://"))
    facts = d.find_element(By.CSS_SELECTOR, ".resource-facts").text
    assert "Topics" in facts and "Copyright and fair use" in facts and "First harvested" in facts
    shoot(d, "04-resource-page")

    # contrast of the text people read (WCAG AA: 4.5:1)
    d.get(served_catalog + "/demo/resources")
    for selector in ("a.resource-title", ".card-meta .date", ".card-desc", "a.chip", "a.chip-content_type",
                     ".hub-brand", ".facet-info a", ".ft", ".ft a", "input[type=submit]"):
        el = d.find_element(By.CSS_SELECTOR, selector)
        fg = el.value_of_css_property("color")
        bg = d.execute_script(BACKGROUND_JS, el)
        assert contrast(fg, bg) >= 4.5, (selector, fg, bg)


def test_hostile_titles_render_as_text(served_catalog, browser):
    d = browser
    set_width(d, DESKTOP)
    d.get(served_catalog + "/demo/search?q=lending+fees")
    WebDriverWait(d, 10).until(EC.presence_of_element_located((By.CSS_SELECTOR, ".card-title")))
    titles = [e.text for e in d.find_elements(By.CSS_SELECTOR, ".card-title")]
    # The escaped markup is kept as text, its '<' stored as '‹' so that it reads as no tag
    # anywhere (issue 21, item 4): shown, never run.
    assert 'Lending fees \u2039img src=x onerror="window.__xss=1"' in titles
    snippet = " ".join(e.text for e in d.find_elements(By.CSS_SELECTOR, ".card-snippet"))
    assert '\u2039img src=x onerror="window.__xss=3"' in snippet  # the match in the description, still text
    no_script_ran(d)
    d.get(served_catalog + "/demo/resources?source_id=test-hostile")
    WebDriverWait(d, 10).until(lambda d: any("Fair use" in e.text for e in d.find_elements(By.CSS_SELECTOR, ".card-title")))
    titles = [e.text for e in d.find_elements(By.CSS_SELECTOR, ".card-title")]
    assert "Fair use: 1 < 2 onerror=alert(1) > 0" in titles
    # the javascript: link was never stored; every title link is http(s)
    assert "Click me for borrowing tips" not in titles
    for a in d.find_elements(By.CSS_SELECTOR, "a.resource-title"):
        assert a.get_attribute("href").startswith(("https://", "http://"))
    shoot(d, "05-hostile-feed")
    no_script_ran(d)
    d.find_element(By.PARTIAL_LINK_TEXT, "Details").click()
    WebDriverWait(d, 10).until(EC.presence_of_element_located((By.CSS_SELECTOR, "h1.resource-heading")))
    assert d.find_element(By.CSS_SELECTOR, "h1.resource-heading").text == (
        'Lending fees \u2039img src=x onerror="window.__xss=1"')
    assert d.find_element(By.CSS_SELECTOR, ".resource-desc").text == (
        'Interlibrary loan fees and \u2039img src=x onerror="window.__xss=3"')
    no_script_ran(d)


def test_front_page_topic_tile_and_system_chip_lead_to_their_resources(served_catalog, browser):
    d = browser
    set_width(d, DESKTOP)
    d.get(served_catalog + "/")
    tile = next(t for t in d.find_elements(By.CSS_SELECTOR, ".tile")
                if t.find_element(By.CSS_SELECTOR, ".tile-label").text == "Copyright and fair use")
    count = int(re.match(r"(\d+) resources?", tile.find_element(By.CSS_SELECTOR, ".tile-count").text).group(1))
    tile.click()
    WebDriverWait(d, 10).until(EC.url_contains("/topic/copyright"))  # the topic's page in the hub
    assert int(re.match(r"(\d+) resources?", d.find_element(By.CSS_SELECTOR, ".result-count").text).group(1)) == count
    cards = d.find_elements(By.CSS_SELECTOR, ".card")
    assert len(cards) == count and all("Copyright and fair use" in c.text for c in cards)
    # the front page's system chips narrow the same way
    d.get(served_catalog + "/")
    chip = d.find_element(By.CSS_SELECTOR, ".system-row a.chip-systems")
    label, count = re.match(r"(.+) (\d+)$", chip.text).groups()
    chip.click()
    WebDriverWait(d, 10).until(EC.url_contains("/system/"))
    assert int(re.match(r"(\d+) resources?", d.find_element(By.CSS_SELECTOR, ".result-count").text).group(1)) == int(count)
    cards = d.find_elements(By.CSS_SELECTOR, ".card")
    assert len(cards) == int(count) and all(label in c.text for c in cards)
    shoot(d, "06-system-chip")
