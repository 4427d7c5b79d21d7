"""Stored text is plain text (issue 21, item 4): a property test over random mixes of
markup and escaped text.

``clean_text`` decoded entities twice (``&amp;lt;script&amp;gt;`` came out as ``<script>``),
let escaped markup through as live tags when the text had a stray ``<`` elsewhere, and
stripped a legitimate ``&lt;nick&gt;`` as a tag. Stored text now is exactly the text the source
shows — entities decoded once, markup, comments and scripts gone, whitespace collapsed — with
one change: a ``<`` that would open a tag becomes ``‹``, so no stored text reads as a tag in a
calendar client, a spreadsheet or a page that forgets to escape it.

The documents are generated as tokens: *text* (any characters, escaped in the several ways
feeds escape them) and *markup* (tags with attributes, comments, declarations, processing
instructions, scripts and styles with their content). The property: the cleaned text is the
texts' concatenation (nothing lost, nothing decoded twice), and it holds no markup at all.
"""

from __future__ import annotations

import html
import re
from html.parser import HTMLParser

from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from pipeline.normalize import clean_text

TAG_OPEN = re.compile(r"<(?=[A-Za-z/!?])")
#: Elements whose content is not markup in HTML (or is hidden): never generated as plain tags.
SPECIAL = {"script", "style", "noscript", "textarea", "title", "xmp", "iframe", "noembed", "noframes",
           "plaintext", "template", "svg", "math"}

SNIPPETS = ["<b>", "</p>", "<img src=x onerror=alert(1)>", "&lt;", "&amp;lt;", "<!--", "-->", "<script>",
            "</script>", "<nick>", "<3", "1 < 2", "AT&T", "&#60;", "<?php", "<!DOCTYPE html>", "&", ";", "&amp;",
            "<![CDATA[x]]>", "a<b", "</", "<", ">", "caf\u00e9", "\u2013", "\u00a0"]
text_piece = st.one_of(st.text(alphabet="abcXYZ019 \n\t<>&;#=\"'/!?-\u00e9\u2013\u00a0", max_size=12),
                       st.sampled_from(SNIPPETS))
texts = st.lists(text_piece, min_size=1, max_size=4).map("".join)

NAMED = {"<": ["&lt;", "&#60;", "&#x3C;", "&#X3c;"], "&": ["&amp;", "&#38;", "&#x26;"], ">": ["&gt;", ">"],
         "\u00e9": ["&eacute;", "\u00e9"], "\u2013": ["&ndash;", "&#8211;", "\u2013"], "\u00a0": ["&nbsp;", "\u00a0"],
         '"': ["&quot;", '"'], "'": ["&#39;", "'"]}


@st.composite
def escaped(draw, text: str) -> str:
    """``text`` as HTML, each special character escaped one of the ways feeds do it; a ``<``
    before a space or a digit sometimes left as it is (browsers read it as text)."""
    out = []
    for i, c in enumerate(text):
        nxt = text[i + 1] if i + 1 < len(text) else ""
        if c == "<" and (nxt == " " or nxt.isdigit()) and draw(st.booleans()):
            out.append(c)
        elif c in NAMED:
            out.append(draw(st.sampled_from(NAMED[c])))
        elif c.isalnum() and c.isascii() and draw(st.integers(0, 9)) == 0:
            out.append(f"&#{ord(c)};")
        else:
            out.append(c)
    return "".join(out)


names = st.one_of(st.sampled_from(["b", "p", "a", "img", "div", "span", "br", "li", "h2", "em", "nick", "x-y"]),
                  st.from_regex(r"[a-z][a-z0-9]{0,5}", fullmatch=True)).filter(lambda n: n not in SPECIAL)
attribute_values = st.text(alphabet="ab <>&\"'=/x1", max_size=8)


@st.composite
def start_tag(draw) -> str:
    attributes = []
    for _ in range(draw(st.integers(0, 3))):
        name = draw(st.sampled_from(["src", "href", "onerror", "class", "data-x", "title"]))
        value = draw(attribute_values)
        quote = draw(st.sampled_from(['"', "'"]))
        attributes.append(f' {name}={quote}{html.escape(value, quote=True)}{quote}')
    close = draw(st.sampled_from([">", " >", "/>", " />"]))
    return f"<{draw(names)}{''.join(attributes)}{close}"


hidden_content = st.text(alphabet="ab <>&;=()'\"x1", max_size=20).filter(lambda t: "</" not in t)
markup = st.one_of(
    start_tag(),
    names.map(lambda n: f"</{n}>"),
    st.text(alphabet="ab <>&;x1", max_size=10).filter(lambda t: "--" not in t and not t.startswith(">")
                                                      and not t.endswith("-")).map(lambda t: f"<!--{t}-->"),
    st.sampled_from(["<!DOCTYPE html>", "<?xml version=\"1.0\"?>", "<br>", "<hr/>"]),
    st.tuples(st.sampled_from(["script", "style"]), hidden_content).map(lambda p: f"<{p[0]}>{p[1]}</{p[0]}>"),
    texts.map(lambda t: f"<noscript>{html.escape(t)}</noscript>"),
)


@st.composite
def documents(draw) -> tuple[str, str]:
    """(the HTML, the text it shows)."""
    source, shown = [], []
    for _ in range(draw(st.integers(1, 8))):
        if draw(st.booleans()):
            text = draw(texts)
            source.append(draw(escaped(text)))
            shown.append(text)
        else:
            source.append(draw(markup))
    return "".join(source), "".join(shown)


class _Markup(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.found: list[str] = []

    def handle_starttag(self, tag, attrs):
        self.found.append(f"<{tag}>")

    def handle_endtag(self, tag):
        self.found.append(f"</{tag}>")

    def handle_comment(self, data):
        self.found.append("<!--")

    def handle_decl(self, decl):
        self.found.append("<!")

    def handle_pi(self, data):
        self.found.append("<?")

    def unknown_decl(self, data):
        self.found.append("<![")


def markup_in(text: str) -> list[str]:
    parser = _Markup()
    parser.feed(text)
    parser.close()
    return parser.found


def expected(shown: str) -> str:
    return TAG_OPEN.sub("\u2039", re.sub(r"\s+", " ", shown).strip())


@settings(max_examples=600, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(documents())
@example(("&lt;img src=x onerror=alert(1)&gt;", "<img src=x onerror=alert(1)>"))
@example(("&amp;lt;script&amp;gt;", "&lt;script&gt;"))
@example(("x < y &lt;script&gt;alert(1)&lt;/script&gt;", "x < y <script>alert(1)</script>"))
@example(("<p>Reply to &lt;nick&gt;</p>", "Reply to <nick>"))
def test_stored_text_is_the_source_text_and_holds_no_markup(document):
    source, shown = document
    cleaned = clean_text(source)
    assert cleaned == expected(shown)  # nothing lost, decoded exactly once
    assert markup_in(cleaned) == []  # no tag, comment or declaration: not from the markup, not from the text
    assert not TAG_OPEN.search(cleaned)  # "<" then a letter, "/", "!" or "?": where a parser starts markup


@settings(max_examples=300, deadline=None)
@given(documents(), st.integers(5, 60))
def test_capped_text_holds_no_markup_either(document, limit):
    source, _ = document
    cleaned = clean_text(source, limit)
    assert len(cleaned) <= limit and markup_in(cleaned) == []
