"""The tag tables (issues 10 and 22): ``tag_counts``, every topic's and system's number of
resources, and ``resource_tags``, every (topic or system, resource) pair, both kept by triggers
on ``resources``. The SQL of the migrations that made them (pipeline/migrations.py)."""

from __future__ import annotations

#: Migration m1001: ``tag_counts`` and its triggers.
TAG_COUNTS_SQL = """
        CREATE TABLE tag_counts (
            col TEXT NOT NULL,
            value TEXT NOT NULL,
            n INTEGER NOT NULL,
            PRIMARY KEY (col, value)
        );
        INSERT INTO tag_counts (col, value, n)
            SELECT 'topics', j.value, count(*) FROM resources, json_each(resources.topics) j GROUP BY j.value;
        INSERT INTO tag_counts (col, value, n)
            SELECT 'systems', j.value, count(*) FROM resources, json_each(resources.systems) j GROUP BY j.value;
        CREATE TRIGGER tag_counts_ai AFTER INSERT ON resources BEGIN
            INSERT INTO tag_counts (col, value, n) SELECT 'topics', value, 1 FROM json_each(new.topics) WHERE true
                ON CONFLICT (col, value) DO UPDATE SET n = n + 1;
            INSERT INTO tag_counts (col, value, n) SELECT 'systems', value, 1 FROM json_each(new.systems) WHERE true
                ON CONFLICT (col, value) DO UPDATE SET n = n + 1;
        END;
        CREATE TRIGGER tag_counts_ad AFTER DELETE ON resources BEGIN
            UPDATE tag_counts SET n = n - 1 WHERE col = 'topics' AND value IN (SELECT value FROM json_each(old.topics));
            UPDATE tag_counts SET n = n - 1 WHERE col = 'systems' AND value IN (SELECT value FROM json_each(old.systems));
        END;
        CREATE TRIGGER tag_counts_au AFTER UPDATE OF topics, systems ON resources BEGIN
            UPDATE tag_counts SET n = n - 1 WHERE col = 'topics' AND value IN (SELECT value FROM json_each(old.topics));
            UPDATE tag_counts SET n = n - 1 WHERE col = 'systems' AND value IN (SELECT value FROM json_each(old.systems));
            INSERT INTO tag_counts (col, value, n) SELECT 'topics', value, 1 FROM json_each(new.topics) WHERE true
                ON CONFLICT (col, value) DO UPDATE SET n = n + 1;
            INSERT INTO tag_counts (col, value, n) SELECT 'systems', value, 1 FROM json_each(new.systems) WHERE true
                ON CONFLICT (col, value) DO UPDATE SET n = n + 1;
        END;
        """

#: Migration m1002: ``resource_tags`` and its triggers.
RESOURCE_TAGS_SQL = """
        CREATE TABLE resource_tags (
            col TEXT NOT NULL,
            value TEXT NOT NULL,
            resource_id TEXT NOT NULL,
            PRIMARY KEY (col, value, resource_id)
        ) WITHOUT ROWID;
        INSERT OR IGNORE INTO resource_tags (col, value, resource_id)
            SELECT 'topics', j.value, r.id FROM resources r, json_each(r.topics) j;
        INSERT OR IGNORE INTO resource_tags (col, value, resource_id)
            SELECT 'systems', j.value, r.id FROM resources r, json_each(r.systems) j;
        CREATE TRIGGER resource_tags_ai AFTER INSERT ON resources BEGIN
            INSERT OR IGNORE INTO resource_tags (col, value, resource_id)
                SELECT 'topics', value, new.id FROM json_each(new.topics);
            INSERT OR IGNORE INTO resource_tags (col, value, resource_id)
                SELECT 'systems', value, new.id FROM json_each(new.systems);
        END;
        CREATE TRIGGER resource_tags_ad AFTER DELETE ON resources BEGIN
            DELETE FROM resource_tags WHERE col = 'topics' AND resource_id = old.id
                AND value IN (SELECT value FROM json_each(old.topics));
            DELETE FROM resource_tags WHERE col = 'systems' AND resource_id = old.id
                AND value IN (SELECT value FROM json_each(old.systems));
        END;
        CREATE TRIGGER resource_tags_au AFTER UPDATE OF id, topics, systems ON resources BEGIN
            DELETE FROM resource_tags WHERE col = 'topics' AND resource_id = old.id
                AND value IN (SELECT value FROM json_each(old.topics));
            DELETE FROM resource_tags WHERE col = 'systems' AND resource_id = old.id
                AND value IN (SELECT value FROM json_each(old.systems));
            INSERT OR IGNORE INTO resource_tags (col, value, resource_id)
                SELECT 'topics', value, new.id FROM json_each(new.topics);
            INSERT OR IGNORE INTO resource_tags (col, value, resource_id)
                SELECT 'systems', value, new.id FROM json_each(new.systems);
        END;
        """


def update_triggers_sql() -> str:
    """Migration m2202: the two tables' update triggers, run only when a resource's topics or
    systems (or its id) changed."""
    tags = ("topics", "systems")
    delete_tags = "".join(f"""
            DELETE FROM resource_tags WHERE col = '{col}' AND resource_id = old.id
                AND value IN (SELECT value FROM json_each(old.{col}));""" for col in tags)
    insert_tags = "".join(f"""
            INSERT OR IGNORE INTO resource_tags (col, value, resource_id)
                SELECT '{col}', value, new.id FROM json_each(new.{col});""" for col in tags)
    uncount = "".join(f"""
            UPDATE tag_counts SET n = n - 1 WHERE col = '{col}' AND value IN (SELECT value FROM json_each(old.{col}));"""
                      for col in tags)
    count = "".join(f"""
            INSERT INTO tag_counts (col, value, n) SELECT '{col}', value, 1 FROM json_each(new.{col}) WHERE true
                ON CONFLICT (col, value) DO UPDATE SET n = n + 1;""" for col in tags)
    return f"""
        DROP TRIGGER tag_counts_au;
        CREATE TRIGGER tag_counts_au AFTER UPDATE OF topics, systems ON resources
        WHEN old.topics IS NOT new.topics OR old.systems IS NOT new.systems BEGIN{uncount}{count}
        END;
        DROP TRIGGER resource_tags_au;
        CREATE TRIGGER resource_tags_au AFTER UPDATE OF id, topics, systems ON resources
        WHEN old.id IS NOT new.id OR old.topics IS NOT new.topics OR old.systems IS NOT new.systems BEGIN{delete_tags}{insert_tags}
        END;
"""
