"""Read queries over entries: latest per category, the updates pages, one entry, counts.
Every list uses the one order of DESIGN.md: published desc, updated desc, id."""

from __future__ import annotations

import datetime as dt
import json
import sys
from collections.abc import Callable
from collections.abc import Sequence
from typing import Any

from sqlalchemy import Connection
from sqlalchemy import Row
from sqlalchemy import Select
from sqlalchemy import func
from sqlalchemy import select

from feedsvc.model import Category
from feedsvc.model import Entry
from feedsvc.model import EntryRef
from feedsvc.store.schema import entries
from feedsvc.store.schema import entry_tags

ALL = "all"
TAG_PREFIX = "tag:"  # feed keys of tag feeds are "tag:<tag slug>"; category feeds use the slug
ORDER = (entries.c.published.desc(), entries.c.updated.desc(), entries.c.id)
_FULL = (entries,)
_REF_COLUMNS = (entries.c.id, entries.c.source, entries.c.rel_path, entries.c.category_slug,
                entries.c.slug, entries.c.content_hash, entries.c.published, entries.c.updated)


def row_to_entry(row: Row[Any]) -> Entry:
    m = row._mapping
    return Entry(
        id=m["id"], source=m["source"], rel_path=m["rel_path"],
        category=Category(name=m["category_name"], slug=m["category_slug"]),
        slug=m["slug"], title=m["title"], published=m["published"], updated=m["updated"],
        html=m["html"], excerpt=m["excerpt"], content_hash=m["content_hash"],
        tags=tuple(json.loads(m["tags"] or "[]")), author=m["author"],
    )


def row_to_ref(row: Any) -> EntryRef:
    m = row._mapping
    return EntryRef(id=m["id"], source=m["source"], rel_path=m["rel_path"],
                    category_slug=m["category_slug"], slug=m["slug"],
                    content_hash=m["content_hash"], published=m["published"],
                    updated=m["updated"])


def in_feed(query: Select[Any], key: str | None) -> Select[Any]:
    """Limit a query over entries to one feed: all, a category slug or "tag:<slug>"."""
    if key and key.startswith(TAG_PREFIX):
        tagged = select(entry_tags.c.entry_id).where(entry_tags.c.tag_slug == key[len(TAG_PREFIX):])
        return query.where(entries.c.id.in_(tagged))
    if key and key != ALL:
        return query.where(entries.c.category_slug == key)
    return query


def _visible(query: Select[Any], now: dt.datetime, category_slug: str | None) -> Select[Any]:
    return in_feed(query.where(entries.c.published <= now), category_slug)


TAG_ORDER = (entry_tags.c.published.desc(), entry_tags.c.updated.desc(), entry_tags.c.entry_id)


def _feed_rows(key: str | None, now: dt.datetime, since: dt.datetime | None) -> tuple[Any, Any]:
    """(id column, query) of a feed's visible entries, ready to order: a tag's come off
    entry_tags alone, which carries the order columns and an index on them (revision 0005),
    so a tag of thousands of entries is never sorted through the entries table."""
    if key and key.startswith(TAG_PREFIX):
        query = select(entry_tags.c.entry_id).where(
            entry_tags.c.tag_slug == key[len(TAG_PREFIX):], entry_tags.c.published <= now)
        if since is not None:
            query = query.where(entry_tags.c.published >= since)
        return entry_tags.c.entry_id, query
    query = _visible(select(entries.c.id), now, key)
    if since is not None:
        query = query.where(entries.c.published >= since)
    return entries.c.id, query


def feed_ids(conn: Connection, key: str | None, now: dt.datetime, *, limit: int,
             offset: int = 0, since: dt.datetime | None = None) -> list[str]:
    """The ids of a feed's visible entries in the one order, a page of them."""
    _, query = _feed_rows(key, now, since)
    tagged = bool(key and key.startswith(TAG_PREFIX))
    query = query.order_by(*(TAG_ORDER if tagged else ORDER)).offset(offset).limit(limit)
    return list(conn.execute(query).scalars())


def feed_digests(conn: Connection, key: str | None, now: dt.datetime,
                 limit: int) -> list[Row[Any]]:
    """(id, digest, updated) of a feed's newest `limit` entries in order, off one covering
    index (a tag's off entry_tags alone): no html read, not even its overflow pages."""
    if key and key.startswith(TAG_PREFIX):
        query = (select(entry_tags.c.entry_id.label("id"), entry_tags.c.digest,
                        entry_tags.c.updated)
                 .where(entry_tags.c.tag_slug == key[len(TAG_PREFIX):],
                        entry_tags.c.published <= now).order_by(*TAG_ORDER))
    else:
        query = _visible(select(entries.c.id, entries.c.digest, entries.c.updated), now,
                         key).order_by(*ORDER)
    return list(conn.execute(query.limit(limit)))


def feed_count(conn: Connection, key: str | None, now: dt.datetime,
               since: dt.datetime | None = None) -> int:
    _, query = _feed_rows(key, now, since)
    return int(conn.execute(select(func.count()).select_from(query.subquery())).scalar_one())


def in_order(conn: Connection, ids: Sequence[str]) -> list[Entry]:
    """The whole rows of these entries, in the order of `ids`."""
    if not ids:
        return []
    by_id = {row.id: row_to_entry(row)
             for row in conn.execute(select(entries).where(entries.c.id.in_(list(ids))))}
    return [by_id[i] for i in ids if i in by_id]


def feed_entries(conn: Connection, key: str, now: dt.datetime, limit: int,
                 known: Callable[[str, str], bool]) -> list[tuple[str, str | None, Entry | None]]:
    """(id, digest, whole entry) of a feed's newest `limit` entries in order; the entry is
    None, its html never read, where `known(id, digest)` says the caller has it already."""
    chosen = [(row.id, row.digest) for row in feed_digests(conn, key, now, limit)]
    wanted = [i for i, digest in chosen if not known(i, digest or "")]
    rows = {entry.id: entry for entry in in_order(conn, wanted)}
    return [(i, digest, rows.get(i)) for i, digest in chosen]


def latest_entries(conn: Connection, category_slug: str | None, limit: int,
                   now: dt.datetime) -> list[Entry]:
    """The newest `limit` visible entries. The ids are chosen first on the order columns
    alone, then the few whole rows are read: sorting whole rows (html included) of a tag
    with thousands of entries cost a serve worker hundreds of MiB at 100k notes."""
    return in_order(conn, feed_ids(conn, category_slug, now, limit=limit))


def updates_page(conn: Connection, *, category_slug: str | None, since: dt.datetime | None,
                 offset: int, limit: int, now: dt.datetime) -> tuple[list[Entry], int]:
    ids = feed_ids(conn, category_slug, now, limit=limit, offset=offset, since=since)
    return in_order(conn, ids), feed_count(conn, category_slug, now, since)


def entry_by_slug(conn: Connection, category_slug: str, slug: str,
                  now: dt.datetime) -> Entry | None:
    query = _visible(select(entries), now, category_slug).where(entries.c.slug == slug)
    row = conn.execute(query).first()
    return row_to_entry(row) if row is not None else None


def category_counts(conn: Connection, now: dt.datetime) -> list[tuple[Category, int]]:
    query = (select(entries.c.category_slug, func.min(entries.c.category_name), func.count())
             .where(entries.c.published <= now)
             .group_by(entries.c.category_slug)
             .order_by(entries.c.category_slug))
    return [(Category(name=name, slug=slug), int(n)) for slug, name, n in conn.execute(query)]


def tag_keys_of(conn: Connection, ids: Sequence[str]) -> dict[str, set[str]]:
    """Entry id -> the feed keys ("tag:<slug>") of its tags."""
    out: dict[str, set[str]] = {}
    for start in range(0, len(ids), 500):
        query = select(entry_tags.c.entry_id, entry_tags.c.tag_slug).where(
            entry_tags.c.entry_id.in_(list(ids[start:start + 500])))
        for entry_id, slug in conn.execute(query):
            out.setdefault(entry_id, set()).add(TAG_PREFIX + slug)
    return out


def all_tag_keys(conn: Connection) -> list[str]:
    return [TAG_PREFIX + s for s in conn.execute(select(entry_tags.c.tag_slug).distinct()).scalars()]


def tag_counts(conn: Connection, now: dt.datetime) -> list[tuple[str, str, int]]:
    """(slug, name, visible entries) of every tag, by slug."""
    query = (select(entry_tags.c.tag_slug, func.min(entry_tags.c.tag_name), func.count())
             .where(entry_tags.c.published <= now)
             .group_by(entry_tags.c.tag_slug).order_by(entry_tags.c.tag_slug))
    return [(slug, name, int(n)) for slug, name, n in conn.execute(query)]


def tag_name(conn: Connection, slug: str) -> str | None:
    name: str | None = conn.execute(select(func.min(entry_tags.c.tag_name))
                                    .where(entry_tags.c.tag_slug == slug)).scalar()
    return name


def all_category_slugs(conn: Connection) -> list[str]:
    return list(conn.execute(select(entries.c.category_slug).distinct()).scalars())


def entry_refs(conn: Connection, source: str | None = None) -> list[EntryRef]:
    query = select(*_REF_COLUMNS)
    if source is not None:
        query = query.where(entries.c.source == source)
    return [row_to_ref(r) for r in conn.execute(query)]


def entry_places(conn: Connection) -> list[tuple[str, str, str, str]]:
    """(source, rel_path, category slug, slug) of every entry: what the link index keeps."""
    query = select(entries.c.source, entries.c.rel_path, entries.c.category_slug, entries.c.slug)
    return [(sys.intern(s), rel, sys.intern(c), slug) for s, rel, c, slug in conn.execute(query)]


def slug_owner(conn: Connection, category_slug: str, slug: str) -> str | None:
    """The id of the entry at (category slug, slug): one look-up on their unique index."""
    owner: str | None = conn.execute(select(entries.c.id).where(
        entries.c.category_slug == category_slug, entries.c.slug == slug)).scalar()
    return owner


def refs_by_ids(conn: Connection, ids: Sequence[str]) -> list[EntryRef]:
    out: list[EntryRef] = []
    for start in range(0, len(ids), 500):
        chunk = list(ids[start:start + 500])
        out.extend(row_to_ref(r) for r in conn.execute(select(*_REF_COLUMNS)
                                                       .where(entries.c.id.in_(chunk))))
    return out


def entries_by_ids(conn: Connection, ids: Sequence[str]) -> list[Entry]:
    out: list[Entry] = []
    for start in range(0, len(ids), 500):
        chunk = list(ids[start:start + 500])
        out.extend(row_to_entry(r) for r in conn.execute(select(entries).where(entries.c.id.in_(chunk))))
    return out


def next_due(conn: Connection, now: dt.datetime) -> dt.datetime | None:
    value: dt.datetime | None = conn.execute(
        select(func.min(entries.c.published)).where(entries.c.published > now)).scalar_one()
    return value
