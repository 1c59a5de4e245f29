"""The row-level writes of Store.apply: rows from model objects, chunked deletes and the
RFC 6721 tombstones an entry leaves in the feeds it leaves. Private to feedsvc.store."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Sequence
from typing import Any

from sqlalchemy import Connection
from sqlalchemy import delete
from sqlalchemy import insert
from sqlalchemy import select
from sqlalchemy import update

from feedsvc.model import Entry
from feedsvc.model import EntryChange
from feedsvc.model import StoredNote
from feedsvc.store import entries as entry_queries
from feedsvc.store import state
from feedsvc.store.digest import entry_digest
from feedsvc.store.entries import ALL
from feedsvc.store.entries import TAG_PREFIX
from feedsvc.store.schema import entries
from feedsvc.store.schema import entry_tags
from feedsvc.store.schema import links
from feedsvc.store.schema import tombstones

CHUNK = 400


def delete_in(conn: Connection, column: Any, values: Sequence[str]) -> None:
    for start in range(0, len(values), CHUNK):
        conn.execute(delete(column.table).where(column.in_(values[start:start + CHUNK])))


def write_entries(conn: Connection, upserts: Sequence[EntryChange], gone: Sequence[str],
                  now: dt.datetime) -> tuple[set[str], bool]:
    """Replace the rows of these entries (links, tags, tombstones too); the feeds touched,
    and whether the OPML's list of categories surely stays (state.categories_kept)."""
    touched = [c.entry.id for c in upserts]
    ids = touched + list(gone)
    if not ids:
        return set(), True
    old = {e.id: e for e in entry_queries.entries_by_ids(conn, ids)}
    old_tags = entry_queries.tag_keys_of(conn, ids)
    affected = {e.category.slug for e in old.values()}
    affected.update(c.entry.category.slug for c in upserts)
    affected.update(key for keys in old_tags.values() for key in keys)
    affected.update(TAG_PREFIX + slug for c in upserts for slug, _ in c.tags)
    delete_in(conn, links.c.entry_id, ids)
    delete_in(conn, entry_tags.c.entry_id, ids)
    delete_in(conn, entries.c.id, ids)
    if upserts:
        rows = [entry_row(c.entry) for c in upserts]
        conn.execute(insert(entries), rows)
        digests = {row["id"]: row["digest"] for row in rows}
        link_rows = [{"entry_id": c.entry.id, "target": t} for c in upserts for t in c.links]
        if link_rows:
            conn.execute(insert(links), link_rows)
        tag_rows = [{"entry_id": c.entry.id, "tag_slug": slug, "tag_name": name,
                     "published": c.entry.published, "updated": c.entry.updated,
                     "digest": digests[c.entry.id]}
                    for c in upserts for slug, name in c.tags]
        if tag_rows:
            conn.execute(insert(entry_tags), tag_rows)
    fill_tag_order(conn)
    write_tombstones(conn, now, upserts, old, old_tags)
    return affected, state.categories_kept(old, [c.entry for c in upserts], gone, now)


def write_tombstones(conn: Connection, now: dt.datetime, upserts: Sequence[EntryChange],
                     old: dict[str, Entry], old_tags: dict[str, set[str]]) -> None:
    """RFC 6721: an entry that leaves a feed (deleted, moved to another category, a tag
    dropped) is announced there as deleted; one that comes back loses its tombstone."""
    new_keys = {c.entry.id: {c.entry.category.slug, ALL} | {TAG_PREFIX + slug for slug, _ in c.tags}
                for c in upserts}
    for entry_id, before in old.items():
        if before.published > now:
            continue  # never shown, so nothing to retract
        path = f"{before.category.slug}/{before.slug}"
        was_in = {before.category.slug, ALL} | old_tags.get(entry_id, set())
        for key in sorted(was_in - new_keys.get(entry_id, set())):
            state.add_tombstone(conn, entry_id=entry_id, category_slug=key,
                                title=before.title, entry_path=path, deleted=now)
    by_key: dict[str, list[str]] = {}
    for entry_id, keys in new_keys.items():
        for key in keys:
            by_key.setdefault(key, []).append(entry_id)
    for key, ids in by_key.items():
        for start in range(0, len(ids), CHUNK):
            conn.execute(delete(tombstones).where(
                tombstones.c.entry_id.in_(ids[start:start + CHUNK]),
                tombstones.c.category_slug == key))


def fill_tag_order(conn: Connection) -> None:
    """Give the entry_tags rows an older release wrote during a rolling upgrade (no order
    columns) their entry's order columns and digest: found on a partial index, so this costs
    nothing when there are none."""
    unordered = entry_tags.c.published.is_(None)
    if conn.execute(select(entry_tags.c.entry_id).where(unordered).limit(1)).first() is None:
        return
    of_entry = entries.c.id == entry_tags.c.entry_id
    conn.execute(update(entry_tags).where(unordered).values(
        published=select(entries.c.published).where(of_entry).scalar_subquery(),
        updated=select(entries.c.updated).where(of_entry).scalar_subquery(),
        digest=select(entries.c.digest).where(of_entry).scalar_subquery()))


def entry_row(entry: Entry) -> dict[str, Any]:
    row = {
        "id": entry.id, "source": entry.source, "rel_path": entry.rel_path,
        "category_name": entry.category.name, "category_slug": entry.category.slug,
        "slug": entry.slug, "title": entry.title, "published": entry.published,
        "updated": entry.updated, "html": entry.html, "excerpt": entry.excerpt,
        "content_hash": entry.content_hash, "tags": json.dumps(list(entry.tags), ensure_ascii=False),
        "author": entry.author,
    }
    row["digest"] = entry_digest(row)
    return row


def note_row(note: StoredNote) -> dict[str, Any]:
    return {"source": note.source, "rel_path": note.rel_path, "size": note.size,
            "mtime_ns": note.mtime_ns, "file_hash": note.file_hash, "problem": note.problem,
            "entry_id": note.entry_id}

