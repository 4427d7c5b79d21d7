"""A resource's facet values as words of the full-text index (issue 22, migration m2201).

``resources_fts`` has a fourth column, ``facets``, holding one token for each value a
resource can be narrowed by: its type, organization and source, and each of its topics and
systems. A token is ``ih``, a letter for the column (:data:`FACET_CODES`), the value's UTF-8
bytes in hexadecimal and a final ``0``: one token whatever the value holds (the tokenizer
splits words at anything but letters and digits, and folds case, which hexadecimal digits
survive), which the porter stemmer leaves alone (no English suffix ends in a digit) and no
word of a title or description is. A search narrowed by such values (``?_search=ill&
_topic=borrowing``) is then one full-text query, ``("ill") AND "iht…0"``, whose count and
rows the index answers by itself (catalog/narrow.py), as it does for a plain search.

The triggers and the view the index reads its content from (``resources_fts_content``, for
snippets, ``rebuild`` and ``integrity-check``) compute the same tokens (:func:`facets_sql`),
so the index always agrees with its content. FTS5 refuses a content table or view that
reads a virtual table, so the view walks the arrays by position (``json_extract``); the
triggers, which run on every write, read them with ``json_each``, about twice as fast
(tests/test_search_narrow.py checks that both give the same text). This module is part of migration m2201's schema: change what it produces
only together with a new migration that rebuilds the index.
"""

from __future__ import annotations

#: The columns whose values are indexed, and the letter that marks each one's tokens.
FACET_CODES = {"content_type": "c", "organization": "o", "source_id": "r", "topics": "t", "systems": "s"}
#: Those that hold a JSON array of values (one token for each).
ARRAY_COLUMNS = ("topics", "systems")
#: The view the index reads its content from.
CONTENT_VIEW = "resources_fts_content"
#: FTS5 keeps only a token's first 32,768 bytes: the token of a longer value (over 16,382
#: bytes) may stand for other values too (:func:`exact`).
MAX_TOKEN_BYTES = 32768


def token(column: str, value: str) -> str:
    """The token that stands for ``column`` holding ``value``."""
    return f"ih{FACET_CODES[column]}{value.encode('utf-8').hex()}0"


def exact(column: str, value: str) -> bool:
    """Whether :func:`token` of ``value`` finds only the resources holding ``value`` (FTS5
    does not truncate it)."""
    return len(token(column, value)) <= MAX_TOKEN_BYTES


def token_sql(column: str, value_sql: str) -> str:
    """SQL for :func:`token` of the text value ``value_sql`` (a parameter, a column)."""
    return f"'ih{FACET_CODES[column]}' || lower(hex({value_sql})) || '0'"


def _array_sql(column: str, item: str, json_each: bool) -> str:
    """One space-led token for each value of the JSON array ``item`` (none when empty), in
    the array's order: read by ``json_each``, or by position."""
    if json_each:
        return (f"(select group_concat(case when value is not null then ' ' || {token_sql(column, 'value')} end, '') "
                f"from json_each({item}))")
    value = f"json_extract({item}, '$[' || n || ']')"
    return (f"(with recursive i(n) as (select 0 where json_array_length({item}) > 0 union all "
            f"select n + 1 from i where n + 1 < json_array_length({item})) "
            f"select group_concat(case when {value} is not null then ' ' || {token_sql(column, value)} end, '') "
            f"from i)")


def facets_sql(row: str, *, json_each: bool = True) -> str:
    """SQL for the ``facets`` text of the resource ``row`` (``new``, ``old``, a table alias):
    its tokens separated by spaces, nothing for a value that is NULL. ``json_each=False``:
    without a virtual table, as the content view must be."""
    parts = []
    for column in FACET_CODES:
        item = f"{row}.{column}"
        if column in ARRAY_COLUMNS:
            parts.append(_array_sql(column, item, json_each))
        else:
            parts.append(f"case when {item} is not null then ' ' || {token_sql(column, item)} end")
    return "ltrim(" + " || ".join(f"coalesce({p}, '')" for p in parts) + ")"


#: The index's columns.
COLUMNS = "title, description, excerpt, facets"
#: The columns of a resource the index reads, directly or as facet tokens.
WATCHED = ("title", "description", "excerpt", *FACET_CODES)


def _values(row: str) -> str:
    """What the index holds for the resource ``row`` (``new``, ``old``): its rowid and columns."""
    return f"{row}.rowid, {row}.title, {row}.description, {row}.excerpt, {facets_sql(row)}"


def schema_sql() -> str:
    """The index with its ``facets`` column, the view it reads, and the triggers that keep it
    (built empty: ``rebuild`` fills it)."""
    cols, old, new = COLUMNS, _values("old"), _values("new")
    return f"""
CREATE VIEW {CONTENT_VIEW} AS
    SELECT r.rowid AS rowid, r.title AS title, r.description AS description, r.excerpt AS excerpt,
        {facets_sql('r', json_each=False)} AS facets
    FROM resources r;
CREATE VIRTUAL TABLE resources_fts USING fts5(
    {cols},
    content="{CONTENT_VIEW}", content_rowid="rowid", tokenize="porter unicode61"
);
CREATE TRIGGER resources_ai AFTER INSERT ON resources BEGIN
    INSERT INTO resources_fts(rowid, {cols}) VALUES ({new});
END;
CREATE TRIGGER resources_ad AFTER DELETE ON resources BEGIN
    INSERT INTO resources_fts(resources_fts, rowid, {cols}) VALUES ('delete', {old});
END;
{update_trigger_sql(only_on_change=False)}"""


def update_trigger_sql(only_on_change: bool = True) -> str:
    """The trigger that keeps the index in step when a resource is updated: only when one of
    the values it reads changed (migration m2202: an update that rewrites the same title,
    topics, ... beside a new date or hash leaves the index as it is); on every update of those
    columns as migration m2201 made it (``only_on_change=False``)."""
    cols, old, new = COLUMNS, _values("old"), _values("new")
    changed = " OR ".join(f"old.{c} IS NOT new.{c}" for c in ("rowid", *WATCHED))
    when = f"\nWHEN {changed}" if only_on_change else ""
    return f"""CREATE TRIGGER resources_au AFTER UPDATE OF {", ".join(WATCHED)} ON resources{when} BEGIN
    INSERT INTO resources_fts(resources_fts, rowid, {cols}) VALUES ('delete', {old});
    INSERT INTO resources_fts(rowid, {cols}) VALUES ({new});
END;
"""
