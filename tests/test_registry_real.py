"""The real registry.yaml: valid, and every source says what it is."""

from __future__ import annotations

import re

from illhub.registry import load_registry
from tests.conftest import ROOT


def test_real_registry_validates():
    registry = load_registry(ROOT / "registry.yaml")
    assert len(registry.sources) >= 7


def test_registry_covers_the_field():
    """Issue 19's floors, from the registry and the taxonomy themselves: at least 80 sources and
    60 curated entries; every topic has 3 sources or curated references, every system 2."""
    from illhub.coverage import SYSTEM_FLOOR, TOPIC_FLOOR, coverage
    from pipeline.taxonomy import default_taxonomy

    registry = load_registry(ROOT / "registry.yaml")
    cov = coverage(registry, default_taxonomy())
    assert len(registry.sources) >= 80
    assert cov.entries >= 60
    thin = {r.id: r.total for r in cov.thin}
    assert not thin, f"below the floor ({TOPIC_FLOOR} per topic, {SYSTEM_FLOOR} per system): {thin}"
    assert len(cov.topics) == len(default_taxonomy().topics) and len(cov.systems) == len(default_taxonomy().systems)


def test_registry_has_ten_youtube_channels():
    """Issue 19: at least 10 YouTube channels or playlists, each a distinct channel, enabled, and
    given as an id or an address the youtube kind resolves to a feed."""
    registry = load_registry(ROOT / "registry.yaml")
    channels = {(s.channel_id or s.playlist_id or s.url.rstrip("/").lower())
                for s in registry.sources if s.kind == "youtube" and s.enabled}
    assert len(channels) >= 10, f"{len(channels)} YouTube channels or playlists: {sorted(channels)}"


def test_every_source_and_entry_says_how_its_url_is_known():
    """An "evidence:" line in the comment above each source and each curated entry."""
    lines = (ROOT / "registry.yaml").read_text(encoding="utf-8").splitlines()
    for i, line in enumerate(lines):
        if line.startswith("  - id: "):
            j = i - 1
            block = []
            while j >= 0 and lines[j].startswith("  #"):
                block.append(lines[j])
                j -= 1
            assert any("evidence:" in b for b in block), f"registry.yaml:{i + 1}: no evidence comment above {line.strip()}"
        elif line.startswith("      - url: "):
            assert lines[i - 1].strip().startswith("# evidence:"), \
                f"registry.yaml:{i + 1}: no '# evidence:' comment above {line.strip()}"


def _own_comment(lines: list[str], i: int) -> list[str]:
    """The comment lines directly above line i, without a section heading ("# --- … ---") that
    the block may start with."""
    j = i - 1
    while j >= 0 and lines[j].startswith("  #"):
        j -= 1
    block = lines[j + 1:i]
    ends = [k for k, line in enumerate(block) if line.rstrip().endswith("---")]
    return block[ends[-1] + 1:] if ends else block


def test_crawls_say_why_no_sturdier_kind_fits():
    """A crawl is the most fragile kind: every crawl's own comment (not its section's heading) has a
    "why crawled:" line that names the sturdier kinds it rules out (feed, WordPress or Zendesk API,
    sitemap)."""
    lines = (ROOT / "registry.yaml").read_text(encoding="utf-8").splitlines()
    registry = load_registry(ROOT / "registry.yaml")
    crawls = {s.id for s in registry.sources if s.kind == "crawl"}
    seen = set()
    for i, line in enumerate(lines):
        m = re.match(r"^  - id: (\S+)$", line)
        if not m or m.group(1) not in crawls:
            continue
        seen.add(m.group(1))
        own = " ".join(c.removeprefix("  #").strip() for c in _own_comment(lines, i))
        why = own.split("why crawled:", 1)[1].split("evidence:", 1)[0] if "why crawled:" in own else ""
        assert why.strip(), f"registry.yaml:{i + 1}: {m.group(1)} has no 'why crawled:' in its own comment"
        assert re.search(r"\b(feeds?|RSS|sitemap|API|WordPress|Zendesk)\b", why), \
            f"registry.yaml:{i + 1}: {m.group(1)}: say which sturdier kind does not fit ({why.strip()!r})"
    assert seen == crawls, f"crawls not found as '  - id:' lines: {crawls - seen}"


def test_every_source_has_a_comment_saying_what_it_is():
    lines = (ROOT / "registry.yaml").read_text(encoding="utf-8").splitlines()
    for i, line in enumerate(lines):
        if re.match(r"^\s*- id: ", line) and line.startswith("  - "):
            above = lines[i - 1].strip()
            assert above.startswith("#") and len(above) > 10, f"registry.yaml:{i + 1}: add a comment above {line.strip()}"


#: Every real source and curated reference of the project's source list (SOURCES.md), by URL,
#: with the kind it is harvested with.
REAL_SOURCES = {
    "https://help.oclc.org/Resource_Sharing/WorldShare_Interlibrary_Loan": "crawl",
    "https://help.oclc.org/Resource_Sharing/Tipasa": "crawl",
    "https://help.oclc.org/Resource_Sharing/Relais_D2D": "crawl",
    "https://help.oclc.org/Librarian_Toolbox/OCLC_training/Watch_self-paced_training/"
    "WorldShare_Interlibrary_Loan_self-paced_training": "crawl",
    "https://www.oclc.org/research/activities/shares.html": "crawl",
    "https://hangingtogether.org/feed/": "feed",
    "https://blog.oclc.org/next/": "wordpress",
    "https://www.ala.org/rusa/sections/stars/resources": "crawl",
    "https://www.ala.org/rusa/interlibrary-loan-code-united-states-explanatory-text": "manual",
    "https://rusaupdate.org/feed/": "feed",
    "https://idsproject.org/": "crawl",
    "https://rethinkingresourcesharing.org/": "wordpress",
    "https://support.atlas-sys.com/hc/en-us": "zendesk",
    "https://docs.atlas-sys.com/docs/illiad/": "crawl",
    "https://knowledge.exlibrisgroup.com/Alma/Product_Documentation/010Alma_Online_Help_(English)/"
    "030Fulfillment/050Resource_Sharing": "crawl",
    "https://knowledge.exlibrisgroup.com/Rapido/Product_Documentation": "crawl",
    "https://projectreshare.org/": "crawl",
    "https://nwill.org/2020-conference-program": "conference",
    "https://nwill2020.sched.com/all.ics": "ical",
    "http://glrsc.org/past-conferences/": "conference",
    "https://sites.google.com/view/sers-sc-conference/schedule": "conference",
    "https://libguides.senylrc.org/ILL-Resources/toolbox": "crawl",
    "https://www.tenn-share.org/firefly/best-practices-and-resources-for-interlibrary-loan-in-tennessee": "crawl",
    "http://www.ncip.info/": "manual",
    "http://illtransactions.org/opencode": "manual",
    # curated references
    "https://www.copyright.gov/circs/circ21.pdf": "manual",
    "https://www.law.cornell.edu/uscode/text/17/108": "manual",
    "https://www.copyright.gov/policy/section108": "manual",
    "https://web.archive.org/web/20170511220010/http://old.cni.org/docs/infopols/CONTU.html": "manual",
    "https://guides.himmelfarb.gwu.edu/copyright/ill": "manual",
    "https://publications.arl.org/rli275/17": "manual",
    "https://hangingtogether.org/the-international-ill-toolkit-a-classic-community-working-together-story/": "manual",
    "https://www.youtube.com/watch?v=Rh7QRjlltdY": "manual",
    "https://www.youtube.com/watch?v=7X2u2WVNq9k": "manual",
    "https://www.youtube.com/watch?v=zJUc5LX4Mpk": "manual",
    # issue 19: the seed's named places through a sturdier kind than a crawl where the site offers one
    "https://docs.atlas-sys.com/sitemap.xml": "sitemap",
    "https://projectreshare.org/feed/": "feed",
    "https://blogs.loc.gov/copyright/feed/": "feed",
    "https://www.youtube.com/user/ExLibrisLtd": "youtube",
    "https://www.youtube.com/user/NLMNIH": "youtube",
    "https://nwill.org/2021-conference-program": "conference",
    "https://ilds2019.org/program/": "conference",
    "https://www.ifla.org/publications/model-national-interlibrary-loan-code/": "manual",
    "https://www.ala.org/rusa/rusa-model-interlibrary-loan-license-clause": "manual",
}


def test_registry_carries_every_real_source_with_its_kind():
    registry = load_registry(ROOT / "registry.yaml")
    found: dict[str, str] = {}
    for s in registry.sources:
        if s.url:
            found[s.url] = s.kind
        for e in getattr(s, "entries", None) or []:
            found[e.url] = "manual"
    missing = {u: k for u, k in REAL_SOURCES.items() if found.get(u) != k}
    assert not missing, f"registry.yaml lacks (or has the wrong kind for): {missing}"


def test_real_sources_have_organization_and_topics():
    registry = load_registry(ROOT / "registry.yaml")
    for s in registry.sources:
        assert s.organization, f"{s.id}: organization"
        entries = getattr(s, "entries", None) or []
        assert s.topics or all(e.topics for e in entries), f"{s.id}: topics"
