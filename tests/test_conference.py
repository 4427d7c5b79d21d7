"""The conference kind: program pages (tests/fixtures/conference/) read as JSON-LD, with selectors
or automatically; sessions, times, presenters and links."""

from __future__ import annotations

from pathlib import Path

import pytest

from harvesters.parsers.conference import NoSessions, event_name_from, parse_program
from harvesters.parsers.eventtext import (
    zone,
)

FIXTURES = Path(__file__).parent / "fixtures" / "conference"


LA = zone("America/Los_Angeles")


def by_title(resources):
    return {r.title: r for r in resources}


def test_program_lines_time_title_presenters():
    url = "https://cascadia.example.org/2026-conference-program"
    parsed = parse_program((FIXTURES / "nwill-style-program.html").read_bytes(), url, source_id="p")
    assert parsed.method == "automatic"
    s = by_title(parsed.resources)
    assert list(s) == [
        "Pre-conference workshop: ILLiad Addons Hands-On", "Welcome Reception",
        "Keynote: Resource Sharing After the Pandemic", "Lending Workflows in Tipasa", "Lightning Talks",
        "Copyright Corner: Section 108 Questions", "Night Owl Trivia Social", "Social Media for ILL Outreach",
    ]
    keynote = s["Keynote: Resource Sharing After the Pandemic"]
    # the date from the day heading, the year from the page title, Pacific from the top of the page
    assert keynote.extra["starts_at"] == "2026-10-31T16:00:00Z" and keynote.extra["ends_at"] == "2026-10-31T17:00:00Z"
    assert keynote.extra["timezone"] == "America/Los_Angeles"
    assert keynote.extra["event_name"] == "Cascadia ILL Conference 2026"
    assert keynote.extra["session_type"] == "keynote"
    assert keynote.extra["presenters"] == [{"name": "Priya Natarajan", "affiliation": "Cascade Public Library"}]
    assert keynote.description == ("How a decade of change reshaped borrowing and lending in the Northwest.\n"
                                   "Slides: keynote-natarajan.pdf")
    assert keynote.extra["slides_url"] == "https://cascadia.example.org/files/2026/keynote-natarajan.pdf"
    assert keynote.url == url + "?session=2026-10-31-keynote-resource-sharing-after-the-pandemic"
    assert s["Lending Workflows in Tipasa"].extra["recording_url"] == "https://www.youtube.com/watch?v=cAsCaDiA001"
    assert s["Pre-conference workshop: ILLiad Addons Hands-On"].extra["session_type"] == "preconference"
    assert s["Welcome Reception"].extra["starts_at"] == "2026-10-31T00:30:00Z"  # 5:30 pm PDT on the 30th
    assert s["Welcome Reception"].extra["session_type"] == "social"
    # Sunday after the clocks go back: standard time
    assert s["Social Media for ILL Outreach"].extra["starts_at"] == "2026-11-01T17:00:00Z"
    assert s["Social Media for ILL Outreach"].extra["session_type"] == "session"
    # past midnight into the repeated hour
    trivia = s["Night Owl Trivia Social"]
    assert (trivia.extra["starts_at"], trivia.extra["ends_at"]) == ("2026-11-01T06:30:00Z", "2026-11-01T08:30:00Z")
    # malformed times: kept with a warning
    assert s["Copyright Corner: Section 108 Questions"].extra["starts_at"] is None
    assert s["Copyright Corner: Section 108 Questions"].extra["event_year"] == 2026
    assert s["Lightning Talks"].extra["starts_at"] == "2026-10-31T18:00:00Z"
    assert s["Lightning Talks"].extra["ends_at"] is None
    assert any("25:99" in w for w in parsed.warnings)
    assert any("end time" in w and "TBD" in w for w in parsed.warnings)
    assert any("happens twice" in w for w in parsed.warnings)
    # breaks skipped by default, kept on request
    assert parsed.skipped["breaks"] == 3
    kept = parse_program((FIXTURES / "nwill-style-program.html").read_bytes(), url, include_breaks=True)
    assert {r.title for r in kept.resources} >= {"Break", "Lunch on your own", "Registration and Breakfast"}


def test_program_day_grouped_list_with_selectors():
    url = "http://lakes.example.org/past-conferences/"
    parsed = parse_program(
        (FIXTURES / "glrsc-style-past.html").read_bytes(), url, event_name="Lakes Region Resource Sharing Conference",
        selectors={"day": "h2, h3", "session": "ul.talks li", "title": "strong", "time": ".time"},
    )
    assert parsed.method == "selectors" and not parsed.warnings
    s = by_title(parsed.resources)
    assert list(s) == ["Rapido in Practice", "Borrowing 101 for New Staff", "Measuring Turnaround Time",
                       "ISO 18626 Explained"]
    rapido = s["Rapido in Practice"]
    assert rapido.extra["starts_at"] == "2019-06-06T13:00:00Z" and rapido.extra["timezone"] == "America/New_York"
    assert rapido.extra["slides_url"] == "http://lakes.example.org/wp-content/uploads/2019/06/rapido-in-practice.pdf"
    assert rapido.extra["presenters"] == [{"name": "Jane Doe", "affiliation": "Lakeshore State University"}]
    assert [p["name"] for p in s["Borrowing 101 for New Staff"].extra["presenters"]] == ["Ray Chen", "Ana Ruiz"]
    turnaround = s["Measuring Turnaround Time"]
    assert turnaround.extra["slides_url"].startswith("https://docs.google.com/presentation/")
    assert turnaround.extra["recording_url"] == "https://www.youtube.com/watch?v=gLrScTurn01"
    assert s["ISO 18626 Explained"].extra["event_year"] == 2018
    assert s["ISO 18626 Explained"].extra["starts_at"] == "2018-05-10T18:00:00Z"
    assert parsed.skipped["breaks"] == 1  # Lunch


def test_program_json_ld():
    url = "https://piedmont-rsc.example.org/schedule"
    parsed = parse_program((FIXTURES / "jsonld-program.html").read_bytes(), url,
                           selectors={"session": "div.never-used"})
    assert parsed.method == "json-ld"
    s = by_title(parsed.resources)
    keynote = s["Keynote: Sharing Without Borders"]
    assert keynote.url == "https://piedmont-rsc.example.org/sessions/sharing-without-borders"
    assert keynote.extra["event_name"] == "Piedmont Resource Sharing Conference 2027"
    assert keynote.extra["starts_at"] == "2027-03-11T14:00:00Z" and keynote.extra["timezone"] == "America/New_York"
    assert keynote.extra["presenters"] == [{"name": "Grace Okafor", "affiliation": "Coastal Plain University"}]
    assert keynote.extra["recording_url"] == "https://www.youtube.com/watch?v=pIeDmOnT001"
    assert keynote.extra["location"] == "Main Hall" and keynote.extra["session_type"] == "keynote"
    rapido = s["Rapido and Alma Resource Sharing: a Migration Story"]
    assert rapido.extra["starts_at"] == "2027-03-11T15:15:00Z"  # floating, read in the page's Eastern time
    assert rapido.extra["slides_url"] == "https://piedmont-rsc.example.org/slides/rapido-migration.pdf"
    assert rapido.extra["presenters"] == [{"name": "Luis Vega", "affiliation": "Upstate College"},
                                          {"name": "Mei Tanaka", "affiliation": "Foothills Library"}]
    assert s["Evening at the Falls"].extra["session_type"] == "social"
    assert s["Daylight Saving Day Session"].extra["starts_at"] == "2027-03-14T07:30:00Z"
    assert s["Session With A Broken Date"].extra["starts_at"] is None
    assert "Coffee Break" not in s
    assert any("JSON-LD block could not be read" in w for w in parsed.warnings)
    assert any("sometime in March" in w for w in parsed.warnings)


def test_program_table_rows_and_options():
    html = b"""<html><head><title>Spring Workshop</title></head><body>
    <h2>April 9, 2027</h2>
    <table><tr><th>Time</th><th>Session</th><th>Speaker</th></tr>
    <tr><td>9:00-9:50</td><td>Hard Citations</td><td>Ann Lee, River College</td></tr>
    <tr><td>10:00-10:50</td><td>Hard Citations</td><td>Bo Kim</td></tr>
    <tr><td>11:00-11:50</td><td>Hard Citations</td><td>Cy Fox</td></tr></table></body></html>"""
    parsed = parse_program(html, "https://w.example.org/program", timezone="America/Chicago", event_name="Workshop")
    urls = [r.url for r in parsed.resources]
    assert len(set(urls)) == 3  # same title, same day: still three distinct, stable links
    assert urls[0] == "https://w.example.org/program?session=2027-04-09-hard-citations"
    assert parsed.resources[1].extra["starts_at"] == "2027-04-09T15:00:00Z"
    assert parsed.resources[0].extra["presenters"] == [{"name": "Ann Lee", "affiliation": "River College"}]
    # same input, same links: ids are stable across harvests
    again = parse_program(html, "https://w.example.org/program", timezone="America/Chicago", event_name="Workshop")
    assert [r.url for r in again.resources] == urls


def test_program_without_sessions_is_a_clear_error():
    with pytest.raises(NoSessions, match="set selectors"):
        parse_program(b"<html><body><h1>Coming soon</h1></body></html>", "https://x.example.org/p")
    with pytest.raises(NoSessions, match="selectors matched no session"):
        parse_program(b"<html><body><p>9:00 am | A | B</p></body></html>", "https://x.example.org/p",
                      selectors={"session": "div.session"})
    with pytest.raises(NoSessions, match="empty"):
        parse_program(b"", "https://x.example.org/p")
    with pytest.raises(NoSessions, match="could not be applied"):
        parse_program(b"<p>9:00 am | A</p>", "https://x.example.org/p", selectors={"session": "div[["})


def test_program_garbage_never_crashes():
    junk = [b"\x00\xff" * 50, b"<p>12:00 | </p>", b"<li>99:99 | x | y</li><h2>Feb 30, 2026</h2><p>9:00 am | T</p>",
            b"<script type='application/ld+json'>[1, \"x\", {\"@type\": \"Event\"}]</script><p>x</p>"]
    for body in junk:
        try:
            parse_program(body, "https://x.example.org/p")
        except NoSessions:
            pass


def test_event_name_from_page():
    assert event_name_from("Schedule", "Schedule – Piedmont RSC 2027") == "Piedmont RSC 2027"
    assert event_name_from("NWILL 2026 Conference Program", "") == "NWILL 2026"


def test_program_single_event_json_ld_names_the_conference():
    html = b"""<html><head><title>Program</title>
    <script type="application/ld+json">{"@context": "https://schema.org", "@type": "Event",
      "name": "Tri-State ILL Forum 2027", "startDate": "2027-05-06", "location": "Harbor Library"}</script>
    </head><body><h1>Program</h1><p>All times Eastern.</p>
    <h2>Thursday, May 6</h2>
    <p>9:00 - 9:50 am | Hard Citations Clinic | Ann Lee, River College</p>
    <p>10:00 - 10:50 am | ILL Statistics That Matter | Bo Kim</p></body></html>"""
    parsed = parse_program(html, "https://forum.example.org/program")
    assert parsed.method == "automatic"
    assert [r.title for r in parsed.resources] == ["Hard Citations Clinic", "ILL Statistics That Matter"]
    assert {r.extra["event_name"] for r in parsed.resources} == {"Tri-State ILL Forum 2027"}
    assert parsed.resources[0].extra["starts_at"] == "2027-05-06T13:00:00Z"  # the year from the JSON-LD
    # with no sessions in the HTML, the one Event is kept
    only = parse_program(html.replace(b"<p>9:00", b"<p>x").replace(b"<p>10:00", b"<p>y"),
                         "https://forum.example.org/program")
    assert only.method == "json-ld" and [r.title for r in only.resources] == ["Tri-State ILL Forum 2027"]
    assert only.resources[0].extra["location"] == "Harbor Library"


def test_program_time_on_its_own_line_and_date_paragraphs():
    # the shape of a Google Sites schedule: bold date paragraphs, the time on a line of its
    # own, the title and presenters on the lines after it
    html = b"""<html><head><title>Schedule - Southeast RS Conference 2026</title></head><body>
    <p>All times Eastern. Registration closes on October 1, 2026 for everyone.</p>
    <p><strong>Thursday, October 15, 2026</strong></p>
    <p><b>9:00 - 9:50 AM</b></p><p>Interlibrary Loan and Accessibility</p><p>Presented by Ann Lee, River College</p>
    <p><b>10:00 - 10:50 AM</b></p><p>Shipping Costs Without Tears</p>
    <p><strong>Friday, October 16, 2026</strong></p>
    <p><b>9:00 - 9:50 AM</b></p><p>Closing Keynote: What Comes Next</p></body></html>"""
    parsed = parse_program(html, "https://sites.example.org/view/serc/schedule")
    s = by_title(parsed.resources)
    assert list(s) == ["Interlibrary Loan and Accessibility", "Shipping Costs Without Tears",
                       "Closing Keynote: What Comes Next"]
    assert s["Interlibrary Loan and Accessibility"].extra["starts_at"] == "2026-10-15T13:00:00Z"
    assert s["Interlibrary Loan and Accessibility"].description == "Presented by Ann Lee, River College"
    assert s["Interlibrary Loan and Accessibility"].extra["presenters"] == [
        {"name": "Ann Lee", "affiliation": "River College"}]
    assert s["Closing Keynote: What Comes Next"].extra["starts_at"] == "2026-10-16T13:00:00Z"
    assert s["Closing Keynote: What Comes Next"].extra["session_type"] == "keynote"
    assert s["Shipping Costs Without Tears"].extra["event_name"] == "Southeast RS Conference 2026"


def test_microdata_events_are_read_like_json_ld():
    """An older conference site marks its sessions up with schema.org microdata (itemscope /
    itemprop), no JSON-LD: read like JSON-LD Events (extruct parses the microdata)."""
    url = "https://glill-demo.example.org/2026/program"
    parsed = parse_program((FIXTURES / "microdata-program.html").read_bytes(), url, source_id="g",
                           timezone="America/Chicago")
    assert parsed.method == "microdata"
    s = by_title(parsed.resources)
    assert list(s) == ["Opening Keynote: Resource Sharing at Scale", "Document Delivery Without Tears",
                       "Vendor Showcase (all day)", "Copyright Roundtable"]  # the lunch break skipped
    keynote = s["Opening Keynote: Resource Sharing at Scale"]
    assert keynote.url == "https://glill-demo.example.org/2026/sessions/opening-keynote"
    assert (keynote.extra["starts_at"], keynote.extra["ends_at"]) == ("2026-05-04T14:00:00Z", "2026-05-04T15:00:00Z")
    assert keynote.extra["location"] == "Ballroom A, Madison, WI"
    assert keynote.extra["presenters"] == [{"name": "Renee Halvorsen", "affiliation": "Northern Lakes University"}]
    assert keynote.extra["session_type"] == "keynote" and keynote.description.startswith("How a five-state")
    dd = s["Document Delivery Without Tears"]
    assert dd.extra["presenters"] == [{"name": "Tomas Ek", "affiliation": None},
                                      {"name": "Ada Lindqvist", "affiliation": "Superior State College"}]
    assert dd.extra["slides_url"] == "https://glill-demo.example.org/2026/slides/document-delivery.pdf"
    assert dd.url.startswith(url + "?session=2026-05-04-document-delivery-without-tears")
    assert s["Vendor Showcase (all day)"].extra["starts_at"] == "2026-05-05T05:00:00Z"  # local midnight, CDT
    # a time without an offset is read in the source's zone
    assert s["Copyright Roundtable"].extra["starts_at"] == "2026-05-05T19:00:00Z"
    assert parsed.skipped.get("breaks") == 1 and parsed.warnings == []
