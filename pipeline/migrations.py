"""The schema, created and changed only here (sqlite-utils ``Migrations``).

Add a new migration at the end of the file; never edit one that has shipped.
"""

from __future__ import annotations

import sqlite3

from sqlite_utils import Database, Migrations

from pipeline import tagtables

migrations = Migrations("illhub")


def run_script(db: Database, script: str) -> None:
    """Run several statements inside the migration's transaction.

    (``executescript`` would commit first, breaking the all-or-nothing migration.)
    """
    statement = ""
    for line in script.splitlines(keepends=True):
        statement += line
        if sqlite3.complete_statement(statement):
            db.execute(statement)
            statement = ""
    if statement.strip():
        raise ValueError(f"incomplete SQL statement in migration: {statement[:80]!r}")


#: The first schema: sources, resources and their full-text index, provenance, raw entries, runs.
CORE_SCHEMA = """
CREATE TABLE sources (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    kind TEXT NOT NULL,
    url TEXT,
    organization TEXT,
    topics TEXT NOT NULL DEFAULT '[]',
    schedule TEXT,
    enabled INTEGER NOT NULL DEFAULT 1,
    notes TEXT,
    config TEXT NOT NULL DEFAULT '{}',
    updated_at TEXT
);
CREATE TABLE resources (
    id TEXT PRIMARY KEY,
    url TEXT NOT NULL UNIQUE,
    title TEXT NOT NULL,
    description TEXT NOT NULL DEFAULT '',
    content_type TEXT NOT NULL,
    organization TEXT,
    source_id TEXT NOT NULL REFERENCES sources(id),
    published TEXT,
    updated TEXT,
    topics TEXT NOT NULL DEFAULT '[]',
    systems TEXT NOT NULL DEFAULT '[]',
    author TEXT,
    language TEXT,
    thumbnail TEXT,
    excerpt TEXT,
    extra TEXT NOT NULL DEFAULT '{}',
    status TEXT NOT NULL DEFAULT 'active',
    content_hash TEXT NOT NULL,
    first_seen TEXT NOT NULL,
    last_seen TEXT NOT NULL,
    last_changed TEXT NOT NULL
);
CREATE INDEX idx_resources_published ON resources(published);
CREATE INDEX idx_resources_first_seen ON resources(first_seen);
CREATE INDEX idx_resources_content_type ON resources(content_type);
CREATE INDEX idx_resources_source_id ON resources(source_id);
CREATE INDEX idx_resources_organization ON resources(organization);
CREATE TABLE resource_sources (
    resource_id TEXT NOT NULL REFERENCES resources(id),
    source_id TEXT NOT NULL REFERENCES sources(id),
    first_seen TEXT NOT NULL,
    last_seen TEXT NOT NULL,
    last_run_id INTEGER,
    PRIMARY KEY (resource_id, source_id)
);
CREATE INDEX idx_resource_sources_source ON resource_sources(source_id);
CREATE TABLE raw_entries (
    resource_id TEXT NOT NULL,
    source_id TEXT NOT NULL,
    raw TEXT NOT NULL,
    base_url TEXT,
    fetched_at TEXT NOT NULL,
    PRIMARY KEY (resource_id, source_id)
);
CREATE TABLE harvest_runs (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    run_group TEXT NOT NULL,
    source_id TEXT NOT NULL,
    started_at TEXT NOT NULL,
    finished_at TEXT,
    status TEXT NOT NULL,
    items_seen INTEGER NOT NULL DEFAULT 0,
    items_new INTEGER NOT NULL DEFAULT 0,
    items_updated INTEGER NOT NULL DEFAULT 0,
    http_status INTEGER,
    requests INTEGER NOT NULL DEFAULT 0,
    bytes INTEGER NOT NULL DEFAULT 0,
    warning TEXT,
    error TEXT
);
CREATE INDEX idx_harvest_runs_source ON harvest_runs(source_id, started_at);
CREATE VIRTUAL TABLE resources_fts USING fts5(
    title, description, excerpt,
    content="resources", content_rowid="rowid", tokenize="porter unicode61"
);
CREATE TRIGGER resources_ai AFTER INSERT ON resources BEGIN
    INSERT INTO resources_fts(rowid, title, description, excerpt)
    VALUES (new.rowid, new.title, new.description, new.excerpt);
END;
CREATE TRIGGER resources_ad AFTER DELETE ON resources BEGIN
    INSERT INTO resources_fts(resources_fts, rowid, title, description, excerpt)
    VALUES ('delete', old.rowid, old.title, old.description, old.excerpt);
END;
CREATE TRIGGER resources_au AFTER UPDATE OF title, description, excerpt ON resources BEGIN
    INSERT INTO resources_fts(resources_fts, rowid, title, description, excerpt)
    VALUES ('delete', old.rowid, old.title, old.description, old.excerpt);
    INSERT INTO resources_fts(rowid, title, description, excerpt)
    VALUES (new.rowid, new.title, new.description, new.excerpt);
END;
"""


@migrations()
def m001_core(db: Database) -> None:
    run_script(db, CORE_SCHEMA)


@migrations()
def m0701_classified_by(db: Database) -> None:
    """Issue 7: why each topic and system was given (a JSON object per resource), and a
    source's default systems. Reasons kept in ``extra`` by older harvests move over."""
    run_script(
        db,
        """
        ALTER TABLE resources ADD COLUMN classified_by TEXT NOT NULL DEFAULT '{}';
        ALTER TABLE sources ADD COLUMN systems TEXT NOT NULL DEFAULT '[]';
        UPDATE resources
           SET classified_by = coalesce(json_extract(extra, '$.classified_by'), '{}'),
               extra = json_remove(extra, '$.classified_by')
         WHERE json_valid(extra) AND json_type(extra, '$.classified_by') = 'object';
        """,
    )


@migrations()
def m0501_fresh_and_forgiving(db: Database) -> None:
    """Issue 5: conditional GET cache, per-source health and backoff, stale bookkeeping,
    and the ``source_health`` view."""
    run_script(
        db,
        """
        CREATE TABLE fetch_cache (
            source_id TEXT NOT NULL,
            url TEXT NOT NULL,
            etag TEXT,
            last_modified TEXT,
            body_sha256 TEXT,
            fingerprint TEXT,
            follow TEXT NOT NULL DEFAULT '[]',
            fresh_until TEXT,
            http_status INTEGER,
            bytes INTEGER NOT NULL DEFAULT 0,
            checked_at TEXT NOT NULL,
            changed_at TEXT NOT NULL,
            PRIMARY KEY (source_id, url)
        );
        CREATE TABLE source_state (
            source_id TEXT PRIMARY KEY,
            consecutive_failures INTEGER NOT NULL DEFAULT 0,
            last_success TEXT,
            last_failure TEXT,
            last_error TEXT,
            next_attempt TEXT,
            needs_attention INTEGER NOT NULL DEFAULT 0,
            successful_runs INTEGER NOT NULL DEFAULT 0,
            updated_at TEXT
        );
        ALTER TABLE resource_sources ADD COLUMN missed_runs INTEGER NOT NULL DEFAULT 0;
        ALTER TABLE harvest_runs ADD COLUMN documents INTEGER NOT NULL DEFAULT 0;
        ALTER TABLE harvest_runs ADD COLUMN documents_unchanged INTEGER NOT NULL DEFAULT 0;
        ALTER TABLE harvest_runs ADD COLUMN next_attempt TEXT;
        CREATE INDEX idx_resources_status ON resources(status);
        CREATE INDEX idx_resource_sources_run ON resource_sources(source_id, last_run_id);
        CREATE VIEW source_health AS
        SELECT
            s.id AS source_id,
            s.name AS name,
            s.kind AS kind,
            s.enabled AS enabled,
            lr.started_at AS last_run,
            lr.status AS last_status,
            coalesce(st.consecutive_failures, 0) AS consecutive_failures,
            st.last_success AS last_success,
            st.last_error AS last_error,
            (SELECT count(*) FROM resource_sources rs WHERE rs.source_id = s.id) AS items,
            (SELECT count(*) FROM resource_sources rs JOIN resources r ON r.id = rs.resource_id
              WHERE rs.source_id = s.id AND r.status = 'stale') AS stale_items,
            (SELECT max(rs.first_seen) FROM resource_sources rs WHERE rs.source_id = s.id) AS last_new,
            CAST(julianday('now') - julianday(
              (SELECT max(rs.first_seen) FROM resource_sources rs WHERE rs.source_id = s.id)) AS INTEGER
            ) AS days_since_new,
            st.next_attempt AS next_attempt,
            coalesce(st.needs_attention, 0) AS needs_attention
        FROM sources s
        LEFT JOIN source_state st ON st.source_id = s.id
        LEFT JOIN harvest_runs lr ON lr.id = (SELECT max(id) FROM harvest_runs WHERE source_id = s.id);
        """
    )


@migrations()
def m0301_web_pages(db: Database) -> None:
    """Pages fetched by the web kinds (sitemap, crawl): what each gave and the sitemap's
    ``lastmod`` when it was fetched, so that unchanged pages are not fetched again."""
    run_script(
        db,
        """
        CREATE TABLE web_pages (
            source_id TEXT NOT NULL,
            url TEXT NOT NULL,
            resource_id TEXT,
            lastmod TEXT,
            http_status INTEGER,
            first_fetched TEXT NOT NULL,
            last_fetched TEXT NOT NULL,
            last_seen TEXT NOT NULL,
            last_run_id INTEGER,
            PRIMARY KEY (source_id, url)
        );
        CREATE INDEX idx_web_pages_resource ON web_pages(resource_id);
        """
    )


def pending(db: Database) -> list[str]:
    """The names of the migrations this catalog has not had yet (reads only)."""
    return [m.name for m in migrations.pending(db)]


def apply(db: Database) -> None:
    """Apply the pending migrations, each in a transaction of its own that first takes
    SQLite's write lock (``BEGIN IMMEDIATE``) and then checks again that the migration is
    still pending: two processes migrating one catalog at once (without illhub's writer
    lock: an older illhub, a script) wait for each other and apply each migration once."""
    while True:
        db.execute("BEGIN IMMEDIATE")
        try:
            migrations.ensure_migrations_table(db)
            todo = migrations.pending(db)
            if not todo:
                db.execute("COMMIT")
                return
            todo[0].fn(db)
            migrations._record_applied(db, todo[0].name)
            db.execute("COMMIT")
        except BaseException:
            if db.conn.in_transaction:
                db.execute("ROLLBACK")
            raise


@migrations()
def m0401_event_fields(db: Database) -> None:
    """Event columns on resources (filled for content_type 'event'; see pipeline/events.py and harvesters/parsers/eventtext.py), and
    ``session_id``: the session a recording or slide deck found elsewhere belongs to."""
    run_script(
        db,
        """
        ALTER TABLE resources ADD COLUMN starts_at TEXT;
        ALTER TABLE resources ADD COLUMN ends_at TEXT;
        ALTER TABLE resources ADD COLUMN timezone TEXT;
        ALTER TABLE resources ADD COLUMN location TEXT;
        ALTER TABLE resources ADD COLUMN presenters TEXT;
        ALTER TABLE resources ADD COLUMN event_name TEXT;
        ALTER TABLE resources ADD COLUMN event_year INTEGER;
        ALTER TABLE resources ADD COLUMN session_type TEXT;
        ALTER TABLE resources ADD COLUMN slides_url TEXT;
        ALTER TABLE resources ADD COLUMN recording_url TEXT;
        ALTER TABLE resources ADD COLUMN session_id TEXT REFERENCES resources(id);
        CREATE INDEX idx_resources_starts_at ON resources(starts_at);
        CREATE INDEX idx_resources_event ON resources(event_name, event_year);
        CREATE INDEX idx_resources_session_id ON resources(session_id);
        """,
    )


@migrations()
def m0601_link_health(db: Database) -> None:
    """Link health (issue 6): the history of link checks, the check runs, and each
    resource's derived link status with an archived-copy pointer."""
    run_script(
        db,
        """
        CREATE TABLE link_check_runs (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            started_at TEXT NOT NULL,
            finished_at TEXT,
            status TEXT NOT NULL,
            source_id TEXT,
            selected INTEGER NOT NULL DEFAULT 0,
            checked INTEGER NOT NULL DEFAULT 0,
            ok INTEGER NOT NULL DEFAULT 0,
            redirected INTEGER NOT NULL DEFAULT 0,
            blocked INTEGER NOT NULL DEFAULT 0,
            failed INTEGER NOT NULL DEFAULT 0,
            skipped INTEGER NOT NULL DEFAULT 0,
            newly_broken INTEGER NOT NULL DEFAULT 0,
            recovered INTEGER NOT NULL DEFAULT 0,
            requests INTEGER NOT NULL DEFAULT 0,
            error TEXT
        );
        CREATE TABLE link_checks (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            run_id INTEGER NOT NULL REFERENCES link_check_runs(id),
            resource_id TEXT NOT NULL REFERENCES resources(id),
            url TEXT NOT NULL,
            checked_at TEXT NOT NULL,
            method TEXT,
            attempts INTEGER NOT NULL DEFAULT 1,
            http_status INTEGER,
            final_url TEXT,
            outcome TEXT NOT NULL,
            error TEXT,
            elapsed_ms INTEGER,
            link_status TEXT NOT NULL
        );
        CREATE INDEX idx_link_checks_resource ON link_checks(resource_id, id);
        CREATE INDEX idx_link_checks_run ON link_checks(run_id);
        ALTER TABLE resources ADD COLUMN link_status TEXT NOT NULL DEFAULT 'unchecked';
        ALTER TABLE resources ADD COLUMN link_checked_at TEXT;
        ALTER TABLE resources ADD COLUMN link_http_status INTEGER;
        ALTER TABLE resources ADD COLUMN link_final_url TEXT;
        ALTER TABLE resources ADD COLUMN link_failures INTEGER NOT NULL DEFAULT 0;
        ALTER TABLE resources ADD COLUMN link_error TEXT;
        ALTER TABLE resources ADD COLUMN link_recovered_at TEXT;
        ALTER TABLE resources ADD COLUMN archived_url TEXT;
        CREATE INDEX idx_resources_link_status ON resources(link_status);
        CREATE INDEX idx_resources_link_checked_at ON resources(link_checked_at);
        """
    )


@migrations()
def m1001_tag_counts(db: Database) -> None:
    """Issue 10: precomputed counts of every topic and system, kept by triggers, so the
    catalog's unfiltered topics and systems facets cost a lookup instead of a pass over every
    resource's JSON (benchmarks/catalog.py)."""
    run_script(db, tagtables.TAG_COUNTS_SQL)


@migrations()
def m1002_resource_tags(db: Database) -> None:
    """Issue 10: every (topic or system, resource) pair, kept by triggers, so narrowing the
    catalog to a topic or a system (``_topic=``, ``_system=``:
    catalog/facets.py) is an index lookup instead of parsing every resource's JSON."""
    run_script(db, tagtables.RESOURCE_TAGS_SQL)


@migrations()
def m1003_recount_tags(db: Database) -> None:
    """Issue 10: ``illhub merge`` used to copy a shard's ``tag_counts`` over the merged
    catalog's, so the unfiltered topics and systems facets showed one shard's counts; the
    derived tag tables are now left to the triggers (pipeline/merge.py). Count again from the
    resources themselves."""
    run_script(
        db,
        """
        DELETE FROM tag_counts;
        INSERT INTO tag_counts (col, value, n)
            SELECT 'topics', j.value, count(*) FROM resources, json_each(resources.topics) j GROUP BY j.value;
        INSERT INTO tag_counts (col, value, n)
            SELECT 'systems', j.value, count(*) FROM resources, json_each(resources.systems) j GROUP BY j.value;
        """,
    )


@migrations()
def m1501_source_site(db: Database) -> None:
    """Issue 15: the site a source's documents say they belong to (a feed's own link), which
    decides, with its registry URL, whether a resource is the source's own (pipeline/store.py)."""
    run_script(db, "ALTER TABLE sources ADD COLUMN site TEXT;")


@migrations()
def m1601_web_frontier(db: Database) -> None:
    """Issue 16: the pages a ``crawl`` found but its ``max_pages`` left for later, with their
    depth, so the next run starts with them and runs of budget B cover the site B pages at a
    time (pipeline/pages.py, harvesters/web.py)."""
    run_script(
        db,
        """
        CREATE TABLE web_frontier (
            source_id TEXT NOT NULL,
            url TEXT NOT NULL,
            depth INTEGER NOT NULL DEFAULT 0,
            first_found TEXT NOT NULL,
            last_found TEXT NOT NULL,
            PRIMARY KEY (source_id, url)
        );
        """,
    )


@migrations()
def m2101_published_index_with_id(db: Database) -> None:
    """Issue 21: the index on ``published`` is in the whole order of the resources table's
    default sort (``published desc, id``), so that each page after the first, and a CSV
    stream of the whole table, reads a page of the index (catalog/keyset.py)."""
    run_script(db, """
        DROP INDEX IF EXISTS idx_resources_published;
        CREATE INDEX idx_resources_published ON resources(published DESC, id);
    """)


@migrations()
def m2201_fts_facets(db: Database) -> None:
    """Issue 22: the full-text index also holds each resource's type, organization, source,
    topics and systems as tokens (pipeline/ftsfacets.py), so a search narrowed by them is
    answered by the index alone (catalog/narrow.py). The index is rebuilt from the resources."""
    from pipeline import ftsfacets

    run_script(db, "DROP TRIGGER resources_ai;\nDROP TRIGGER resources_ad;\nDROP TRIGGER resources_au;\n"
               "DROP TABLE resources_fts;\n" + ftsfacets.schema_sql()
               + "INSERT INTO resources_fts(resources_fts) VALUES ('rebuild');\n")


@migrations()
def m2202_triggers_on_change(db: Database) -> None:
    """Issue 22: the triggers that keep the full-text index and the tag tables run only when a
    value they read changed. A harvest's update rewrites every column of a changed resource,
    so each one fired on every update, even one that changed only a date or a hash (a nightly
    increment of 5,000 changed resources spends about a third of its SQL in them)."""
    from pipeline import ftsfacets

    run_script(db, "DROP TRIGGER resources_au;\n" + ftsfacets.update_trigger_sql() + tagtables.update_triggers_sql())
