"""Bookkeeping beside the entries: the revision counter, feed validators (signature and a
Last-Modified that never moves backwards), tombstones, first-seen times, scan results."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from collections.abc import Iterable
from typing import Any

from sqlalchemy import Connection
from sqlalchemy import delete
from sqlalchemy import insert
from sqlalchemy import select
from sqlalchemy import update

from feedsvc.model import Category
from feedsvc.model import Entry
from feedsvc.model import FeedState
from feedsvc.model import Tombstone
from feedsvc.store.digest import DIGEST_FIELDS
from feedsvc.store.digest import entry_digest
from feedsvc.store.entries import ALL
from feedsvc.store.entries import TAG_PREFIX
from feedsvc.store.entries import category_counts
from feedsvc.store.entries import feed_digests
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


IMPORTED_KEY = "imported_sources"
ID_AUTHORITY_KEY = "id_authority"


def imported_sources(conn: Connection) -> set[str]:
    value = get_meta(conn, IMPORTED_KEY)
    return set(json.loads(value)) if value else set()


def mark_imported(conn: Connection, sources: tuple[str, ...]) -> None:
    known = imported_sources(conn)
    if not set(sources) <= known:
        set_meta(conn, IMPORTED_KEY, json.dumps(sorted(known | set(sources)), ensure_ascii=False))


def revision(conn: Connection) -> int:
    return int(get_meta(conn, "revision") or 0)


STAMP_KEY = "scan_stamp"


def stamp(conn: Connection) -> int:
    """Moved by every applied scan, whatever it changed: what a scanner's kept state is
    valid for (scan/kept.py)."""
    return int(get_meta(conn, STAMP_KEY) or 0)


def bump_stamp(conn: Connection) -> tuple[int, int]:
    before = stamp(conn)
    set_meta(conn, STAMP_KEY, str(before + 1))
    return before, before + 1


def bump_revision(conn: Connection) -> int:
    value = revision(conn) + 1
    set_meta(conn, "revision", str(value))
    return value


AS_OF_KEY = "feeds_as_of"
CONTEXT_KEY = "feed_context"


def feeds_as_of(conn: Connection) -> dt.datetime | None:
    """The moment every feed's validators were last computed for: feeds are rendered with the
    entries visible at this moment, never at the clock of the request, so the bytes are exactly
    what the signature covered."""
    value = get_meta(conn, AS_OF_KEY)
    return dt.datetime.fromisoformat(value) if value else None


def set_feeds_as_of(conn: Connection, moment: dt.datetime) -> None:
    set_meta(conn, AS_OF_KEY, moment.astimezone(dt.timezone.utc).isoformat())


def slugs_coming_due(conn: Connection, before: dt.datetime | None,
                     now: dt.datetime) -> set[str]:
    """Categories with an entry whose visibility differs between `before` and `now` (a
    future-dated entry that came due): their feeds must be recomputed too."""
    if before is None or before == now:
        return set()
    low, high = min(before, now), max(before, now)
    query = select(entries.c.category_slug).where(entries.c.published > low,
                                                  entries.c.published <= high).distinct()
    found = set(conn.execute(query).scalars())
    return found | {ALL} if found else found


def feed_signature(conn: Connection, slug: str, limit: int, now: dt.datetime,
                   context: str = "") -> tuple[str, dt.datetime | None]:
    """A hash of everything the feed shows (entries visible at `now` by id and digest, its
    tombstones and the rendering context: config and format version), and its newest
    `updated` or deletion. Reads no html: the digest was made when the row was written."""
    rows = feed_digests(conn, slug, now, limit)
    unhashed = [row.id for row in rows if row.digest is None]
    made = _digests_of(conn, unhashed) if unhashed else {}
    digest = hashlib.sha256(context.encode("utf-8") + b"\x1d")
    newest: dt.datetime | None = None
    for row in rows:
        digest.update(f"{row.id}\x1f{row.digest or made[row.id]}\x1e".encode(
            "utf-8", "surrogatepass"))
        if newest is None or row.updated > newest:
            newest = row.updated
    for stone in list_tombstones(conn, slug):
        digest.update(f"{stone.id}\x1f{stone.deleted.isoformat()}\x1f{stone.title}\x1f"
                      f"{stone.link}\x1e".encode("utf-8", "surrogatepass"))
        if newest is None or stone.deleted > newest:
            newest = stone.deleted
    return digest.hexdigest()[:32], newest


def _digests_of(conn: Connection, ids: list[str]) -> dict[str, str]:
    """Digests of rows written without one (by an older release during a rolling upgrade)."""
    query = select(entries.c.id, *(entries.c[name] for name in DIGEST_FIELDS))
    return {row.id: entry_digest(dict(row._mapping))
            for row in conn.execute(query.where(entries.c.id.in_(ids)))}


def refresh_feed_states(conn: Connection, slugs: set[str], *, limit: int, now: dt.datetime,
                        context: str = "") -> list[str]:
    """Recompute validators of the given feeds; return the slugs whose content changed.

    Last-Modified is the newest `updated` (or deletion) in the feed when that moved forward;
    when the feed changed without anything newer (a back-dated note, a config change) it is
    the time of change. It never moves backwards, and it moves whenever the content does."""
    changed: list[str] = []
    for slug in sorted(slugs):
        signature, newest = feed_signature(conn, slug, limit, now, context)
        if newest is not None and newest > now:
            newest = now  # a front-matter date in the future is no time of change
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


OPML_SIGNATURE_KEY = "opml_signature"
OPML_MODIFIED_KEY = "opml_last_modified"


def categories_kept(old: dict[str, Entry], written: Iterable[Entry], gone: Iterable[str],
                    now: dt.datetime) -> bool:
    """Whether a changeset surely leaves the OPML's list of categories (each category with a
    visible entry, by its first name) as it was: every entry written was there before, in
    the same category (name and slug) and visible at `now` before and after or neither; none
    was removed. (Entries coming due are the caller's to check.)"""
    if any(entry_id in old for entry_id in gone):
        return False
    for entry in written:
        before = old.get(entry.id)
        if before is None or before.category != entry.category or \
                (before.published <= now) != (entry.published <= now):
            return False
    return True


def refresh_opml_state(conn: Connection, now: dt.datetime, context: str = "") -> bool:
    """The OPML's validators: they move only when the list of categories (name, slug) does."""
    digest = hashlib.sha256(context.encode("utf-8") + b"\x1d")
    for category, _ in category_counts(conn, now):
        digest.update(f"{category.slug}\x1f{category.name}\x1e".encode("utf-8", "surrogatepass"))
    signature = digest.hexdigest()[:32]
    old = get_opml_state(conn)
    if old is not None and old.signature == signature:
        return False
    last_modified = now.replace(microsecond=0)
    if old is not None and last_modified <= old.last_modified:
        last_modified = old.last_modified + dt.timedelta(seconds=1)
    set_meta(conn, OPML_SIGNATURE_KEY, signature)
    set_meta(conn, OPML_MODIFIED_KEY, last_modified.isoformat())
    return True


def get_opml_state(conn: Connection) -> FeedState | None:
    signature = get_meta(conn, OPML_SIGNATURE_KEY)
    modified = get_meta(conn, OPML_MODIFIED_KEY)
    if signature is None or modified is None:
        return None
    return FeedState(slug="feeds.opml", signature=signature,
                     last_modified=dt.datetime.fromisoformat(modified))


def get_feed_state(conn: Connection, slug: str) -> FeedState | None:
    row = conn.execute(select(feed_states).where(feed_states.c.slug == slug)).first()
    if row is None:
        return None
    return FeedState(slug=row.slug, signature=row.signature, last_modified=row.last_modified)


def list_tombstones(conn: Connection, slug: str,
                    since: dt.datetime | None = None) -> list[Tombstone]:
    """A feed's tombstones; expired ones are purged by a scan (purge_tombstones), so a feed
    shows exactly what its signature covered, whatever the clock says when it is rendered."""
    query = select(tombstones)
    if since is not None:
        query = query.where(tombstones.c.deleted >= since)
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


def purge_tombstones(conn: Connection, before: dt.datetime) -> set[str]:
    """Drop expired tombstones; return the feeds that showed them (their bytes change)."""
    expired = select(tombstones.c.category_slug).where(tombstones.c.deleted < before).distinct()
    slugs = set(conn.execute(expired).scalars())
    if slugs:
        conn.execute(delete(tombstones).where(tombstones.c.deleted < before))
    return slugs


def load_json(conn: Connection, key: str) -> Any:
    text = get_meta(conn, key)
    return json.loads(text) if text else None
