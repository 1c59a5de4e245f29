"""Revision 0005: entries.digest (every column a feed shows moves it) and the order columns of
entry_tags are written by a scan; the migration fills both for the rows a store already holds,
on SQLite and PostgreSQL, with the very values a scan writes; feed validators follow the
digests; a tag row an older release wrote without order columns is filled by the next write."""

from __future__ import annotations

import datetime as dt

from alembic import command
from sqlalchemy import select

from feedsvc.config import Config
from feedsvc.scan.scanner import Scanner
from feedsvc.store import open_store
from feedsvc.store.digest import DIGEST_FIELDS
from feedsvc.store.digest import entry_digest
from feedsvc.store.migrator import alembic_config
from feedsvc.store.schema import entries
from feedsvc.store.schema import entry_tags

from conftest import Clock
from conftest import NotesDir

ROW = {"published": dt.datetime(2025, 1, 1, tzinfo=dt.timezone.utc),
       "updated": dt.datetime(2025, 1, 2, tzinfo=dt.timezone.utc), "title": "T",
       "category_name": "NLP", "category_slug": "nlp", "slug": "t", "tags": '["a"]', "excerpt": "e", "html": "<p>x</p>",
       "author": None}


def test_every_shown_column_moves_the_digest() -> None:
    base = entry_digest(ROW)
    assert len(base) == 32
    for name in DIGEST_FIELDS:
        value = ROW[name]
        changed = value + dt.timedelta(seconds=1) if isinstance(value, dt.datetime) else \
            (value or "") + "x"
        assert entry_digest({**ROW, name: changed}) != base, name
    # naive datetimes read back from the database are UTC: the same digest
    naive = {**ROW, "published": ROW["published"].replace(tzinfo=None)}  # type: ignore[union-attr]
    assert entry_digest(naive) == base


def stored_digests(store_url: str) -> dict[str, object]:
    """entry id -> its digest, and (entry id, tag) -> the order columns entry_tags holds."""
    store = open_store(store_url)
    try:
        with store.engine.connect() as conn:
            found: dict[str, object] = dict(conn.execute(select(entries.c.id, entries.c.digest)).all())
            for entry_id, tag, published, updated, digest in conn.execute(select(
                    entry_tags.c.entry_id, entry_tags.c.tag_slug, entry_tags.c.published,
                    entry_tags.c.updated, entry_tags.c.digest)):
                found[f"{entry_id} #{tag}"] = (published, updated, digest)
            return found
    finally:
        store.close()


def test_migration_0005_fills_the_digest_a_scan_writes(store_url: str, notes: NotesDir,
                                                        config: Config, clock: Clock) -> None:
    for i in range(3):
        notes.write(f"NLP/n{i}.md", f"正文 {i} `code`", title=f"N{i}", date=f"2025-01-0{i + 1}",
                    tags=["x"] if i else [])
    store = open_store(store_url)
    Scanner(config, store, clock=clock).run()
    slug_state = store.feed_state("nlp")
    store.close()
    written = stored_digests(store_url)
    assert len(written) == 3 + 2 and all(written.values())
    store = open_store(store_url)
    with store.engine.begin() as conn:
        command.downgrade(alembic_config(conn), "0004")
    with store.engine.begin() as conn:
        command.upgrade(alembic_config(conn), "head")
    store.close()
    assert stored_digests(store_url) == written
    # the next scan of the unchanged notes changes no validator
    store = open_store(store_url)
    Scanner(config, store, clock=clock).run()
    assert store.feed_state("nlp") == slug_state
    store.close()


def test_an_edit_moves_its_feeds_validator_and_only_its_feeds(
        notes: NotesDir, scanner: Scanner, clock: Clock) -> None:
    notes.write("NLP/a.md", "a", title="A", date="2025-01-01")
    notes.write("CV/b.md", "b", title="B", date="2025-01-02")
    scanner.run()
    store = scanner.store
    before = {slug: store.feed_state(slug) for slug in ("nlp", "cv", "all")}
    notes.write("NLP/a.md", "a, edited", title="A", date="2025-01-01")
    clock.advance(seconds=60)
    scanner.run()
    after = {slug: store.feed_state(slug) for slug in ("nlp", "cv", "all")}
    assert after["cv"] == before["cv"]
    assert after["nlp"].signature != before["nlp"].signature  # type: ignore[union-attr]
    assert after["all"].signature != before["all"].signature  # type: ignore[union-attr]


def test_a_tag_row_without_order_columns_is_filled_by_the_next_write(
        notes: NotesDir, scanner: Scanner, clock: Clock) -> None:
    from sqlalchemy import update
    notes.write("NLP/a.md", "a", title="A", date="2025-01-01", tags=["x"])
    notes.write("NLP/b.md", "b", title="B", date="2025-01-02", tags=["x"])
    scanner.run()
    store = scanner.store
    with store.engine.begin() as conn:  # what an older release leaves behind
        conn.execute(update(entry_tags).where(entry_tags.c.entry_id.like("%a.md"))
                     .values(published=None, updated=None, digest=None))
    assert [e.title for e in store.latest_entries("tag:x", clock())] == ["B"]
    notes.write("NLP/b.md", "b, edited", title="B", date="2025-01-02", tags=["x"])
    scanner.run()
    assert [e.title for e in store.latest_entries("tag:x", clock())] == ["B", "A"]
    with store.engine.connect() as conn:
        tagged = conn.execute(select(entry_tags.c.entry_id, entry_tags.c.digest)).all()
        digests = dict(conn.execute(select(entries.c.id, entries.c.digest)).all())
    assert tagged and all(digest == digests[entry_id] for entry_id, digest in tagged)
