"""Classification: which topics and systems of the vocabulary a resource is about, and why.

Classification is explainable: every topic and system a resource gets comes with the rule
that gave it (``classified_by``), for instance ``keyword "fair use" in title``,
``weak words "statistics" + "turnaround" in description``, ``registry topic of source 'x'``
or ``curated``. The vocabulary is ``pipeline.taxonomy``'s; finding its keywords in text is
``pipeline.keywords``' and ``pipeline.keyindex``'.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from pipeline.keywords import FIELDS, lowered_words
from pipeline.resource import Resource
from pipeline.taxonomy import SYSTEMS_TOPIC, Taxonomy, default_taxonomy
from pipeline.topic_evidence import passing_mentions

#: How much of a page's body excerpt classification reads.
EXCERPT_CHARS = 1000


@dataclass
class Classification:
    topics: list[str]
    systems: list[str]
    #: "topic" or "system:id" → why it was given
    reasons: dict[str, str]


def match_text(taxonomy: Taxonomy, texts: dict[str, str]) -> Classification:
    """Topics and systems that the text alone supports, with the rule for each.

    Keywords are found through a word index (:class:`KeywordIndex`): each word of the
    text looks up the few keywords that can start with it, and only those are tried,
    anchored there. The result is the same as :func:`match_text_reference`, which runs
    every term's regular expressions (tests/test_classify_index.py compares the two);
    rare texts the index cannot read (one whose lower-case form changes length) go that
    way. A term whose exclusions occur is looked for again in the masked texts by an index
    of that term alone (:meth:`KeywordIndex.masked`)."""
    index = taxonomy.index
    found = index.find(texts)
    if found is None:
        return match_text_reference(taxonomy, texts)
    reasons: dict[str, str] = {}
    systems: list[str] = []
    topics: list[str] = []
    indexed = {}  # topic -> its occurrences, where they decided it
    lowered_text = None
    # in the terms' order: those with occurrences, and those the index cannot read
    for slot in sorted(found.keys() | index.slow_terms if index.slow_terms else found):
        term = index.terms[slot]
        hits = found.get(slot)
        if hits is not None and hits.excluded and slot not in index.slow_terms:
            # an exclusion masks text before matching: the term's keywords in the masked texts
            hits = index.masked(slot, hits) or hits
        if slot in index.slow_terms or (hits is not None and hits.excluded):
            # what the index cannot read: the term's own expressions decide
            if lowered_text is None:
                lowered_text = lowered_words(texts)
            lowered, words = lowered_text
            if not term.could_match(lowered, words):
                continue
            why = term.match(texts, noun=index.nouns[slot], lowered=lowered, words=words)
        elif hits is None:
            continue
        else:
            why = hits.reason(term, index.nouns[slot])
            if not index.is_system[slot]:
                indexed[term.id] = hits
        if why:
            if index.is_system[slot]:
                systems.append(term.id)
                reasons[f"system:{term.id}"] = why
            else:
                topics.append(term.id)
                reasons[term.id] = why
    return _finish(taxonomy, topics, systems, reasons, texts, indexed)


def match_text_reference(taxonomy: Taxonomy, texts: dict[str, str]) -> Classification:
    """The same as :func:`match_text`, by running each term's regular expressions over
    the texts (after a cheap test that some keyword's longest piece occurs)."""
    reasons: dict[str, str] = {}
    systems: list[str] = []
    lowered, words = lowered_words(texts)
    for term in taxonomy.systems.values():
        if not term.could_match(lowered, words):
            continue
        why = term.match(texts, noun="alias", lowered=lowered, words=words)
        if why:
            systems.append(term.id)
            reasons[f"system:{term.id}"] = why
    topics: list[str] = []
    for term in taxonomy.topics.values():
        if not term.could_match(lowered, words):
            continue
        why = term.match(texts, lowered=lowered, words=words)
        if why:
            topics.append(term.id)
            reasons[term.id] = why
    return _finish(taxonomy, topics, systems, reasons, texts)


def _finish(taxonomy: Taxonomy, topics: list[str], systems: list[str], reasons: dict[str, str],
            texts: dict[str, str], indexed: dict | None = None) -> Classification:
    for tid in passing_mentions(taxonomy.topics, topics, reasons, texts, indexed):
        topics.remove(tid)
        del reasons[tid]
    if systems and SYSTEMS_TOPIC in taxonomy.topics and SYSTEMS_TOPIC not in topics:
        topics.append(SYSTEMS_TOPIC)
        reasons[SYSTEMS_TOPIC] = "names the system " + ", ".join(taxonomy.systems[s].label for s in systems)
    return Classification(topics, systems, reasons)


def classify_text(taxonomy: Taxonomy, resource: Resource) -> tuple[list[str], list[str], dict[str, str]]:
    """Topics, systems and, for each, the rule that matched (the reason)."""
    texts = {f: getattr(resource, f) or "" for f in FIELDS}
    # The body excerpt counts only for its opening: keywords deep in a page are weak
    # evidence, and matching whole excerpts dominated the cost of a crawl.
    texts["excerpt"] = texts["excerpt"][:EXCERPT_CHARS]
    c = match_text(taxonomy, texts)
    return c.topics, c.systems, c.reasons


#: How the reason of a source's registry topic or system reads (group 1: the source's id, when
#: it was known), for pages that tell it in other words.
REGISTRY_REASON = re.compile(r"registry (?:topic|system) of (?:source '([^']+)'|the source)$")


def classify_resource(resource: Resource, source_topics: list[str] | None = None,
                      taxonomy: Taxonomy | None = None, *, source_systems: list[str] | None = None,
                      source_id: str | None = None,
                      matched: tuple[list[str], list[str], dict[str, str]] | None = None) -> Resource:
    """Add topics and systems (in place) and return the resource.

    Topics and systems the resource already carries (curated manual entries) are kept as
    ``curated``; a source's registry topics and systems always apply; the text adds the
    rest. Each one's reason is kept in ``resource.extra["classified_by"]``. ``matched``: what
    :func:`classify_text` found in this resource's text, when the caller already asked.
    """
    taxonomy = taxonomy or default_taxonomy()
    reasons: dict[str, str] = {}
    for t in resource.topics:
        reasons[t] = "curated"
    for s in resource.systems:
        reasons[f"system:{s}"] = "curated"
    who = f"source {source_id!r}" if source_id else "the source"
    for t in source_topics or []:
        reasons.setdefault(t, f"registry topic of {who}")
    for s in source_systems or []:
        reasons.setdefault(f"system:{s}", f"registry system of {who}")
    topics, systems, found = matched or classify_text(taxonomy, resource)
    for k, v in found.items():
        reasons.setdefault(k, v)
    all_systems = set(resource.systems) | set(source_systems or []) | set(systems)
    all_topics = set(resource.topics) | set(source_topics or []) | set(topics)
    if all_systems and SYSTEMS_TOPIC in taxonomy.topics and SYSTEMS_TOPIC not in all_topics:
        all_topics.add(SYSTEMS_TOPIC)
        reasons[SYSTEMS_TOPIC] = "names a system"
    resource.topics = sorted(all_topics)
    resource.systems = sorted(all_systems)
    resource.extra["classified_by"] = {k: reasons[k] for k in sorted(reasons)}
    return resource
