"""Bookkeeping beside the entries: the revision counter, feed validators (signature and a
Last-Modified that never moves backwards), tombstones, first-seen times, scan results."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from typing import Any

from sqlalchemy import Connection
from sqlalchemy import delete
from sqlalchemy import insert
from sqlalchemy import select
from sqlalchemy import update

from feedsvc.model import Category
from feedsvc.model import FeedState
from feedsvc.model import Tombstone
from feedsvc.store.entries import ALL
from feedsvc.store.entries import ORDER
from feedsvc.store.entries import in_feed
from feedsvc.store.schema import entries
from feedsvc.store.schema import feed_states
from feedsvc.store.schema import meta
from feedsvc.store.schema import tombstones


def get_meta(conn: Connection, key: str) -> str | None:
    value: str | None = conn.execute(select(meta.c.value).where(meta.c.key == key)).scalar()
    return value


def set_meta(conn: Connection, key: str, value: str) -> None:
    changed = conn.execute(update(meta).where(meta.c.key == key).values(value=value)).rowcount
    if not changed:
        conn.execute(insert(meta).values(key=key, value=value))


def revision(conn: Connection) -> int:
    return int(get_meta(conn, "revision") or 0)


def bump_revision(conn: Connection) -> int:
    value = revision(conn) + 1
    set_meta(conn, "revision", str(value))
    return value


def feed_signature(conn: Connection, slug: str, limit: int, now: dt.datetime,
                   tombstone_since: dt.datetime) -> tuple[str, dt.datetime | None]:
    """A hash of everything the feed shows, and its newest `updated`."""
    query = select(entries.c.id, entries.c.published, entries.c.updated, entries.c.title,
                   entries.c.category_name, entries.c.slug, entries.c.tags, entries.c.excerpt,
                   entries.c.html, entries.c.author).where(entries.c.published <= now)
    query = in_feed(query, slug)
    digest = hashlib.sha256()
    newest: dt.datetime | None = None
    for row in conn.execute(query.order_by(*ORDER).limit(limit)):
        for value in row:
            digest.update(str(value).encode("utf-8", "surrogatepass"))
            digest.update(b"\x1f")
        digest.update(b"\x1e")
        updated = row.updated
        if newest is None or updated > newest:
            newest = updated
    for stone in list_tombstones(conn, slug, tombstone_since):
        digest.update(f"{stone.id}\x1f{stone.deleted.isoformat()}\x1e".encode())
    return digest.hexdigest()[:32], newest


def refresh_feed_states(conn: Connection, slugs: set[str], *, limit: int, now: dt.datetime,
                        tombstone_since: dt.datetime) -> list[str]:
    """Recompute validators of the given feeds; return the slugs whose content changed.

    Last-Modified is the newest `updated` in the feed when that moved forward; when the feed
    changed without anything newer (a deletion, a back-dated note) it is the time of change.
    It never moves backwards."""
    changed: list[str] = []
    for slug in sorted(slugs):
        signature, newest = feed_signature(conn, slug, limit, now, tombstone_since)
        old = get_feed_state(conn, slug)
        if old is not None and old.signature == signature:
            continue
        if old is None:
            last_modified = newest or now
        elif newest is not None and newest > old.last_modified:
            last_modified = newest
        else:
            last_modified = max(now, old.last_modified)
        last_modified = last_modified.replace(microsecond=0)
        if old is not None and last_modified <= old.last_modified:
            last_modified = old.last_modified + dt.timedelta(seconds=1)
        conn.execute(delete(feed_states).where(feed_states.c.slug == slug))
        conn.execute(insert(feed_states).values(slug=slug, signature=signature,
                                                last_modified=last_modified))
        changed.append(slug)
    return changed


def get_feed_state(conn: Connection, slug: str) -> FeedState | None:
    row = conn.execute(select(feed_states).where(feed_states.c.slug == slug)).first()
    if row is None:
        return None
    return FeedState(slug=row.slug, signature=row.signature, last_modified=row.last_modified)


def list_tombstones(conn: Connection, slug: str, since: dt.datetime) -> list[Tombstone]:
    query = select(tombstones).where(tombstones.c.deleted >= since)
    if slug != ALL:
        query = query.where(tombstones.c.category_slug == slug)
    else:
        query = query.where(tombstones.c.category_slug == ALL)
    query = query.order_by(tombstones.c.deleted.desc(), tombstones.c.entry_id)
    return [Tombstone(id=r.entry_id, category=Category(name=r.category_slug, slug=r.category_slug),
                      title=r.title, link=r.entry_path, deleted=r.deleted)
            for r in conn.execute(query)]


def add_tombstone(conn: Connection, *, entry_id: str, category_slug: str, title: str,
                  entry_path: str, deleted: dt.datetime) -> None:
    conn.execute(delete(tombstones).where(tombstones.c.entry_id == entry_id,
                                          tombstones.c.category_slug == category_slug))
    conn.execute(insert(tombstones).values(entry_id=entry_id, category_slug=category_slug,
                                           title=title, entry_path=entry_path, deleted=deleted))


def purge_tombstones(conn: Connection, before: dt.datetime) -> None:
    conn.execute(delete(tombstones).where(tombstones.c.deleted < before))


def load_json(conn: Connection, key: str) -> Any:
    text = get_meta(conn, key)
    return json.loads(text) if text else None
