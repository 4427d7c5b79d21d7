"""Page metadata extraction (harvesters/parsers/page.py, pure): one page per metadata style
(tests/fixtures/page/), and pages with none."""

from __future__ import annotations

from pathlib import Path

import pytest

from harvesters.parsers.page import extract_links, extract_page
from pipeline.urls import same_site

PAGES = Path(__file__).parent / "fixtures" / "page"


def page(name: str, url: str, **kw) -> dict:
    return extract_page((PAGES / name).read_bytes(), url, http_content_type="text/html", **kw)


def test_opengraph_wins_the_title_and_json_ld_gives_dates_author_publisher():
    url = "https://help.demo-lakeside.example.org/Resource_Sharing/Lakeside_ILL/Borrowing/Borrowing_requests?mt-learningpath=x"
    m = page("mindtouch-article.html", url)
    assert m["title"] == "Borrowing requests" and m["title_from"] == "og"  # not the JSON-LD headline
    assert m["description"] == "Create, edit and track borrowing requests in the Lakeside resource sharing system."
    assert m["description_from"] == "meta"
    assert m["canonical_url"] == ("https://help.demo-lakeside.example.org/Resource_Sharing/Lakeside_ILL/Borrowing/"
                                  "Borrowing_requests")
    assert (m["published"], m["modified"]) == ("2024-02-01T14:30:00Z", "2025-10-14T16:00:00Z")
    assert m["language"] == "en-US"
    assert m["author"] == "Lakeside Documentation Team" and m["publisher"] == "Lakeside Systems (DEMO)"
    assert m["content_type"] == "documentation"  # TechArticle on a help site, despite the embedded video
    assert m["thumbnail"] == "https://help.demo-lakeside.example.org/@api/deki/files/12/borrowing.png"
    # the excerpt is the main content's text: no header, breadcrumbs or footer
    assert m["excerpt"].startswith("Borrowing requests Short intro. Borrowing requests are created")
    assert "Terms of use" not in m["excerpt"] and "Resource Sharing" not in m["excerpt"]
    # same-site PDFs and slides only
    assert [d["url"].rsplit("/", 1)[-1] for d in m["documents"]] == ["borrowing-quick-guide.pdf", "Borrowing_Workflow.pptx"]
    assert m["structured"] == ["json-ld", "opengraph"]


def test_excerpt_is_capped():
    m = page("mindtouch-article.html", "https://help.demo-lakeside.example.org/x", excerpt_chars=80)
    assert len(m["excerpt"]) <= 80 and m["excerpt"].endswith("…")


def test_json_ld_graph_with_references_yoast_style():
    m = page("wordpress-yoast.html", "https://demo-northwind.example.edu/ill/2025/05/five-things/?utm_source=x")
    assert m["title"] == "Five things we learned migrating to a new ILL system" and m["title_from"] == "json-ld"
    assert m["author"] == "Sam Okafor"  # resolved through the @graph's @id
    assert m["publisher"] == "Northwind University Libraries (DEMO)"
    assert (m["published"], m["modified"]) == ("2025-05-20T14:05:00Z", "2025-06-01T08:00:00Z")
    assert m["language"] == "en-GB" and m["content_type"] == "article"
    assert m["tags"] == ["migration", "workflows"]
    assert m["thumbnail"].endswith("/2025/05/boxes.jpg")
    assert m["generator"] == "WordPress 6.6.2"
    assert m["feeds"] == [{"url": "https://demo-northwind.example.edu/ill/feed/", "title": "Northwind ILL Blog » Feed",
                           "type": "application/rss+xml"}]
    # no meta description: the first meaningful paragraph of the main content (not the masthead's)
    assert m["description_from"] == "paragraph"
    assert m["description"].startswith("Last spring our office moved every open request")


def test_microdata_video_page():
    m = page("microdata-video.html", "http://127.0.0.1:9/webinaires/peb-30-minutes")
    assert m["title"] == "Le prêt entre bibliothèques en 30 minutes" and m["title_from"] == "microdata"
    assert m["description"].startswith("Un webinaire d'introduction au PEB")
    assert m["author"] == "Camille Tremblay"
    assert (m["published"], m["modified"]) == ("2024-09-12T00:00:00Z", "2024-10-01T12:00:00Z")
    assert m["language"] == "fr-CA"  # from the Content-Language meta
    assert m["content_type"] == "video"
    assert m["structured"] == ["microdata"]


def test_libguides_visible_last_updated_and_same_site_canonical():
    m = page("libguides-page.html", "https://libguides.demo-council.example.org/c.php?g=123&p=456")
    assert m["canonical_url"] == "https://libguides.demo-council.example.org/ILL-Resources/toolbox"
    assert m["modified"] == "2025-10-03T10:12:00Z" and m["published"] is None
    assert m["title"] == "Toolbox - ILL Resources - LibGuides at Hudson Valley Council (DEMO)" and m["title_from"] == "title"
    assert m["author"] == "Jordan Rivera"
    assert m["description"].startswith("New to interlibrary loan?")  # the empty meta description is skipped
    assert m["video_links"] == ["https://www.youtube.com/watch?v=dEmOvid0101"]
    assert m["content_type"] == "page"
    assert "Skip to Main Content" not in (m["excerpt"] or "")


def test_cross_site_canonical_is_ignored_and_time_and_visible_dates_are_read():
    m = page("cross-site-canonical.html", "http://127.0.0.1:9/policies/lending")
    assert m["canonical_url"] is None
    assert m["title"] == "Lending policies" and m["title_from"] == "title"
    assert m["published"] == "2022-01-05T00:00:00Z"  # the first <time> of the main content
    assert m["modified"] == "2023-03-14T00:00:00Z"  # "Page last updated on 14 March 2023"
    assert m["description"].startswith("Member libraries lend returnables")


def test_page_with_no_metadata_at_all():
    m = page("bare.html", "http://127.0.0.1:9/x")
    assert m["title"] == "" and m["title_from"] is None
    assert m["description"] == "" and m["description_from"] is None
    for key in ("canonical_url", "published", "modified", "language", "author", "publisher", "thumbnail", "generator"):
        assert m[key] is None, key
    assert m["content_type"] == "page" and m["structured"] == [] and m["documents"] == [] and m["feeds"] == []
    assert m["excerpt"] == "Home | About | Contact Welcome."


@pytest.mark.parametrize("body", [b"", b"\x00\x00", "<p>only text</p>", b"<html><head><title>T</title>",
                                  b"\xff\xfe\x00<\x00h\x00t\x00m\x00l\x00>"])
def test_odd_markup_never_raises(body):
    m = extract_page(body, "http://127.0.0.1:9/odd")
    assert set(m) >= {"title", "description", "content_type", "excerpt"}


def test_broken_json_ld_is_ignored_and_the_rest_still_read():
    m = extract_page(b'<html><head><script type="application/ld+json">{not json</script><title>Broken LD</title>'
                     b'<meta property="og:description" content="Still read."></head></html>', "http://127.0.0.1:9/b")
    assert (m["title"], m["description"], m["structured"]) == ("Broken LD", "Still read.", ["opengraph"])


def test_title_falls_back_to_first_h1_and_encoding_comes_from_meta_charset():
    html = ('<html><head><meta charset="windows-1252"></head><body><h1>Pr\xeat entre biblioth\xe8ques</h1>'
            '<p>x</p></body></html>').encode("cp1252")
    m = extract_page(html, "http://127.0.0.1:9/h1")
    assert m["title"] == "Prêt entre bibliothèques" and m["title_from"] == "h1"


def test_content_types_from_urls_and_hosts():
    pdf = extract_page(b"<html><title>x</title></html>", "http://127.0.0.1:9/files/guide.PDF")
    assert pdf["content_type"] == "document"
    docs = extract_page(b"<html><title>x</title></html>", "https://docs.demo.example.org/illiad/start")
    assert docs["content_type"] == "documentation"
    hc = extract_page(b"<html><title>x</title></html>", "https://demo.example.org/hc/en-us/articles/1")
    assert hc["content_type"] == "documentation"
    embedded = extract_page(b'<html><title>x</title><body><iframe src="https://player.vimeo.com/video/1"></iframe>'
                            b"</body></html>", "https://demo.example.org/webinar")
    assert embedded["content_type"] == "video"


def test_links_are_absolute_unique_and_fragment_free():
    html = ('<base href="http://127.0.0.1:9/guide/"><a href="a.html#x">A</a><a href="a.html">A again</a>'
            '<a href="javascript:alert(1)">js</a><a href="mailto:x@y">mail</a><a href="/b"><img alt="B pic"></a>')
    links = extract_links(html, "http://127.0.0.1:9/other/page")
    assert [(lk.url, lk.text) for lk in links] == [("http://127.0.0.1:9/guide/a.html", "A"),
                                                   ("http://127.0.0.1:9/b", "B pic")]


def test_same_site():
    assert same_site("https://www.oclc.org/a", "http://oclc.org/b")
    assert not same_site("https://help.oclc.org/a", "https://www.oclc.org/b")
    assert not same_site("http://127.0.0.1:8000/a", "http://127.0.0.1:8001/a")


@pytest.mark.parametrize(("body", "expected"), [
    # the label in a tail text: its element is the paragraph, not the <b> before it
    ("<p><b>Notes</b> Last updated: 3 March 2025</p>", "2025-03-03T00:00:00Z"),
    # in a nested span, with the date in the parent's text
    ("<div><span>Last\n   Updated</span> on 4 April 2024</div>", "2024-04-04T00:00:00Z"),
    # capitals, and the first holder in document order wins
    ("<footer><p>LAST MODIFIED: 5 May 2023</p><p>Updated: 6 June 2022</p></footer>", "2023-05-05T00:00:00Z"),
    # a label whose text has no date, then one with a date
    ("<p>Last revised: soon</p><p>Last revised: 7 July 2021</p>", "2021-07-07T00:00:00Z"),
    # a comment is not visible text
    ("<p><!-- Last updated: 1 January 2020 -->Hello</p>", None),
    # no label at all
    ("<p>Updated daily</p>", None),
])
def test_visible_last_updated_labels(body, expected):
    from harvesters.parsers.page import extract_page

    m = extract_page(f"<html><head><title>T</title></head><body>{body}</body></html>".encode(), "https://e.org/p")
    assert m["modified"] == expected


# -- titles by agreement, site names, Dublin Core ---------------------------------------------


def test_encyclopedia_page_title_by_agreement_not_the_json_ld_headline():
    """A MediaWiki article whose JSON-LD headline is its one-line description: <title> (minus the
    wiki's name, its JSON-LD publisher) and <h1> agree on the title, and win."""
    m = page("encyclopedia-mediawiki.html", "https://wiki.resourceshare-demo.example.org/wiki/Interlibrary_loan")
    assert (m["title"], m["title_from"]) == ("Interlibrary loan", "title")
    assert m["publisher"] == "ResourceShareWiki (DEMO)"
    assert (m["published"], m["modified"]) == ("2011-04-02T18:20:00Z", "2026-10-19T07:41:00Z")


def test_site_name_suffix_is_stripped_from_og_title_when_it_names_the_site():
    m = page("yoast-site-suffix.html", "https://riverbend-demo.example.org/ill/courier-resumes/")
    assert (m["title"], m["title_from"]) == ("Courier delivery resumes after the holidays", "og")
    assert m["site_name"] == "Riverbend Libraries ILL Blog (DEMO)"


def test_libguides_dublin_core_gives_author_publisher_and_dates():
    m = page("libguides-dublin-core.html", "https://libguides.demo-council.example.org/c.php?g=9&p=1")
    assert m["author"] == "Jordan Rivera" and m["publisher"] == "Hudson Valley Council (DEMO)"
    assert (m["published"], m["modified"]) == ("2021-03-01T10:15:00Z", "2025-10-03T10:12:00Z")
    assert m["language"] == "en"
    # the "LibGuides at <publisher>" part of the <title> names the site: left out
    assert m["title"] == "Borrowing from other libraries - Interlibrary Loan"


@pytest.mark.parametrize("head", [
    '<meta name="dcterms.creator" content="Ana Ruiz"><meta name="DCTERMS.publisher" content="Lakeshore Libraries">'
    '<meta name="dcterms.issued" content="2024-05-06"><meta name="dcterms.title" content="Lending rules">',
    '<meta property="dc:creator" content="Ana Ruiz"><meta property="dc:publisher" content="Lakeshore Libraries">'
    '<meta name="dc.date.created" content="2024-05-06"><meta property="dc:title" content="Lending rules">',
    '<meta name="dc.creator" content="Ana Ruiz"><meta name="dc.publisher" content="Lakeshore Libraries">'
    '<meta name="DC.date.issued" content="2024-05-06"><meta name="DC.TITLE" content="Lending rules">',
])
def test_dublin_core_in_either_spelling_and_any_case(head):
    m = extract_page(f"<html><head>{head}</head><body><p>x</p></body></html>".encode(), "https://e.org/rules")
    assert (m["title"], m["title_from"], m["author"], m["publisher"], m["published"]) == (
        "Lending rules", "dc", "Ana Ruiz", "Lakeshore Libraries", "2024-05-06T00:00:00Z")


@pytest.mark.parametrize(("title", "sites", "expected"), [
    ("Borrowing | Lakeside Help (DEMO)", ["lakeside help (demo)"], "Borrowing"),
    ("Lakeside Help – Borrowing", ["Lakeside Help"], "Borrowing"),
    ("Toolbox - ILL Resources - LibGuides at Hudson Valley", ["Hudson Valley"], "Toolbox - ILL Resources"),
    ("Borrowing | Lakeside Help", ["Northwind"], "Borrowing | Lakeside Help"),  # not this site's name
    ("Lakeside Help", ["Lakeside Help"], "Lakeside Help"),  # nothing would be left
])
def test_strip_site_suffix(title, sites, expected):
    from harvesters.parsers.titles import strip_site_suffix

    assert strip_site_suffix(title, sites) == expected


def test_a_relative_base_href_is_applied_once_to_documents():
    """<base href="docs/"> on /guide/page: the page's document links resolve against
    /guide/docs/, as its links do (they were resolved against the base twice: /guide/docs/docs/)."""
    from harvesters.parsers.page import extract_page

    body = (b'<html><head><base href="docs/"><title>ILL guide</title></head><body>'
            b'<a href="manual.pdf">Manual</a><a href="../slides/intro.pptx">Slides</a></body></html>')
    page = extract_page(body, "https://help.example.org/guide/page", http_content_type="text/html")
    assert [d["url"] for d in page["documents"]] == ["https://help.example.org/guide/docs/manual.pdf",
                                                     "https://help.example.org/guide/slides/intro.pptx"]


# -- the shortcuts of the per-page path (issue 22) give what the libraries they replace give --

TRICKY_MAIN = [
    "<main>a<script>x</script>b<!-- c -->d<?pi x?>e<p>f</p>g</main>",
    "<main><p>one<object>two<param name=x value=y>three</param>four<b>five</b>six</object>seven</p></main>",
    "<main>x<iframe src='v'>in frame</iframe>y<embed src=z>z<applet code=a>gone</applet>w</main>",
    "<main><div>(<span>open</span>)<span>, comma</span> <em>  spaced\n\t out  </em>.</div><param>loose</param>t</main>",
    "<main><nav>menu</nav>text <footer>foot</footer>tail<div hidden>h</div><div class='x breadcrumbs'>bc</div>end</main>",
    "<main><noframes>nf</noframes><frameset><frame src=x></frameset><layer>L</layer>&nbsp;nbsp\u00a0<br>br</main>",
    "<main><object><object>in<b>b</b>c</object>d</object>e<style>s</style>f<link rel=x>g<meta name=y>h</main>",
]


@pytest.mark.parametrize("html", TRICKY_MAIN)
def test_main_text_is_what_html_text_reads(html):
    """The excerpt's text is read from the page without copying it: the same as html_text's
    cleaned copy (its cleaner removes scripts, comments, frames, embedded objects, merging the
    text around them), after the page chrome is dropped."""
    import html_text
    from parsel import Selector

    from harvesters.parsers.maincontent import is_boilerplate
    from harvesters.parsers.maincontent import without_boilerplate as _without_boilerplate
    from harvesters.parsers.text import extracted_text, joined_runs, text_runs

    main = Selector(text=f"<html><body>{html}</body></html>").root.find(".//main")
    expected = html_text.extract_text(_without_boilerplate(main), guess_layout=False)
    assert joined_runs(text_runs(main, skip=is_boilerplate)) == expected
    assert extracted_text(main) == html_text.extract_text(main, guess_layout=False)


@pytest.mark.parametrize("value", ["", "plain", " padded ", "two  spaces", "a\tb", "x &amp; y", "<b>bold</b>",
                                   "nbsp\u00a0here", "zero\u200bwidth", "é accents İ", "a" * 50 + " b" * 20])
@pytest.mark.parametrize("limit", [None, 0, 3, 10, 40])
def test_clean_is_clean_text(value, limit):
    from harvesters.parsers.text import clean
    from pipeline.normalize import clean_text

    assert clean(value, limit) == clean_text(value, limit)


def test_elements_beside_the_root_element_are_read():
    """libxml2 can leave a second top-level <html> beside the first: its links, <meta> tags and
    canonical link count, as XPath's //a found them."""
    body = (b'<html><head><title>T</title></head><body>first</body></html>'
            b'<html><head><meta name="description" content="Said twice."><link rel="canonical" href="/c"></head>'
            b'<body><a href="/x">X</a> Last updated: 2024-05-06</body></html>')
    m = extract_page(body, "https://e.org/p", http_content_type="text/html")
    assert [lk.url for lk in extract_links(body, "https://e.org/p")] == ["https://e.org/x"]
    assert (m["description"], m["canonical_url"]) == ("Said twice.", "https://e.org/c")


@pytest.mark.parametrize("path", sorted(p for d in ("page", "crawl", "conference") for p in
                                        (PAGES.parent / d).rglob("*.html")), ids=lambda p: p.name)
def test_structured_data_is_what_extruct_reads(path):
    """harvesters/parsers/extruct_lite.py reads JSON-LD, OpenGraph and microdata without
    importing all of extruct: on every page fixture, what extruct.extract itself gives."""
    import extruct
    from parsel import Selector

    from harvesters.parsers.extruct_lite import read_structured

    root = Selector(text=path.read_text(errors="replace"), type="html").root
    expected = extruct.extract(root, base_url="https://example.org/p", syntaxes=["json-ld", "opengraph", "microdata"],
                               errors="ignore", uniform=True)
    assert read_structured(root, "https://example.org/p") == expected
