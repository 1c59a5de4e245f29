"""The store: the only package that knows SQL. Takes and returns model objects.

A scan's Changeset is applied in one transaction, so a crash leaves the previous state whole;
writes are serialised in-process, and SQLite runs in WAL mode with a busy timeout so several
processes can share one file."""

from __future__ import annotations

import datetime as dt
import json
import logging
import threading
import time
from collections.abc import Iterable
from collections.abc import Iterator
from collections.abc import Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import Connection
from sqlalchemy import Engine
from sqlalchemy import create_engine
from sqlalchemy import delete
from sqlalchemy import event
from sqlalchemy import insert
from sqlalchemy import select
from sqlalchemy import tuple_
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError
from sqlalchemy.exc import SQLAlchemyError

from feedsvc.errors import ConfigError
from feedsvc.errors import StoreError
from feedsvc.model import Category
from feedsvc.model import Changeset
from feedsvc.model import Entry
from feedsvc.model import EntryRef
from feedsvc.model import FeedState
from feedsvc.model import Problem
from feedsvc.model import ScanRequest
from feedsvc.model import StoredNote
from feedsvc.model import Tombstone
from feedsvc.store import entries as entry_queries
from feedsvc.store import locks as lock_queries
from feedsvc.store import requests as request_queries
from feedsvc.store import state
from feedsvc.store.entries import ALL
from feedsvc.store.schema import entries
from feedsvc.store.schema import first_seen
from feedsvc.store.schema import links
from feedsvc.store.schema import metadata
from feedsvc.store.schema import notes
from feedsvc.store.schema import tombstones

logger = logging.getLogger(__name__)
CHUNK = 400

__all__ = ["ALL", "Store", "ApplyResult", "open_store"]


@dataclass(frozen=True, slots=True)
class ApplyResult:
    revision: int
    changed_feeds: tuple[str, ...]


def open_store(url: str, *, keep_per_category: int = 50, tombstone_days: int = 30) -> Store:
    """Open (and create if needed) the store at a SQLAlchemy URL."""
    try:
        parsed = make_url(url)
    except ArgumentError as e:
        raise ConfigError("store.url", f"not a database URL: {url!r}") from e
    kwargs: dict[str, Any] = {}
    if parsed.get_backend_name() == "sqlite":
        database = parsed.database
        if database and database != ":memory:":
            Path(database).parent.mkdir(parents=True, exist_ok=True)
        kwargs["connect_args"] = {"check_same_thread": False, "timeout": 30}
    else:
        kwargs["pool_pre_ping"] = True
    try:
        engine = create_engine(url, **kwargs)
    except (ArgumentError, ImportError) as e:
        raise ConfigError("store.url", f"cannot open {parsed.render_as_string()}: {e}") from e
    if parsed.get_backend_name() == "sqlite":
        event.listen(engine, "connect", _sqlite_pragmas)
    store = Store(engine, keep_per_category=keep_per_category, tombstone_days=tombstone_days)
    store.create_schema()
    return store


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.close()


class Store:
    """Facade over the tables; every public method takes and returns model objects."""

    def __init__(self, engine: Engine, *, keep_per_category: int = 50,
                 tombstone_days: int = 30) -> None:
        self.engine = engine
        self.keep_per_category = keep_per_category
        self.tombstone_days = tombstone_days
        self._write_lock = threading.Lock()
        self._listener: Any = None  # PostgreSQL LISTEN connection (scanner side only)

    # -- plumbing -----------------------------------------------------------------------

    @contextmanager
    def _read(self) -> Iterator[Connection]:
        try:
            with self.engine.connect() as conn:
                yield conn
        except SQLAlchemyError as e:
            raise StoreError("store read failed") from e

    @contextmanager
    def _write(self) -> Iterator[Connection]:
        with self._write_lock:
            try:
                with self.engine.begin() as conn:
                    yield conn
            except SQLAlchemyError as e:
                raise StoreError("store write failed") from e

    def create_schema(self) -> None:
        with self._write_lock:
            for attempt in range(3):  # processes started together race on CREATE TABLE:
                try:                  # the loser finds the tables there on its next try
                    metadata.create_all(self.engine)
                    return
                except SQLAlchemyError as e:
                    if attempt == 2:
                        raise StoreError("cannot create the store's tables") from e
                    time.sleep(0.2 * (attempt + 1))

    def close(self) -> None:
        self._drop_listener()
        self.engine.dispose()

    @property
    def dialect(self) -> str:
        return self.engine.dialect.name

    # -- scan side ----------------------------------------------------------------------

    def note_stats(self, source: str) -> dict[str, tuple[int, int]]:
        """rel_path -> (size, mtime_ns): all a no-change rescan needs to compare."""
        with self._read() as conn:
            rows = conn.execute(select(notes.c.rel_path, notes.c.size, notes.c.mtime_ns)
                                .where(notes.c.source == source))
            return {path: (size, mtime) for path, size, mtime in rows}

    def load_notes(self, source: str) -> dict[str, StoredNote]:
        with self._read() as conn:
            rows = conn.execute(select(notes).where(notes.c.source == source))
            return {r.rel_path: StoredNote(source=r.source, rel_path=r.rel_path, size=r.size,
                                           mtime_ns=r.mtime_ns, file_hash=r.file_hash,
                                           problem=r.problem, entry_id=r.entry_id)
                    for r in rows}

    def entry_refs(self, source: str | None = None) -> list[EntryRef]:
        with self._read() as conn:
            return entry_queries.entry_refs(conn, source)

    def first_seen_times(self, ids: Iterable[str]) -> dict[str, dt.datetime]:
        ids = list(ids)
        out: dict[str, dt.datetime] = {}
        with self._read() as conn:
            for start in range(0, len(ids), CHUNK):
                chunk = ids[start:start + CHUNK]
                query = select(first_seen).where(first_seen.c.entry_id.in_(chunk))
                out.update((r.entry_id, r.seen_at) for r in conn.execute(query))
        return out

    def entries_linking_to(self, keys: Iterable[str]) -> set[str]:
        keys = list(keys)
        found: set[str] = set()
        with self._read() as conn:
            for start in range(0, len(keys), CHUNK):
                query = select(links.c.entry_id).where(links.c.target.in_(keys[start:start + CHUNK]))
                found.update(conn.execute(query).scalars())
        return found

    def apply(self, changes: Changeset) -> ApplyResult:
        """Write one scan's changes in a single transaction and refresh feed validators."""
        now = changes.now
        with self._write() as conn:
            touched = [c.entry.id for c in changes.upsert_entries]
            gone = list(changes.delete_entries)
            old = {e.id: e for e in entry_queries.entries_by_ids(conn, touched + gone)}
            affected = {ALL}
            affected.update(e.category.slug for e in old.values())
            affected.update(c.entry.category.slug for c in changes.upsert_entries)

            self._delete_in(conn, links.c.entry_id, touched + gone)
            self._delete_in(conn, entries.c.id, touched + gone)
            if changes.upsert_entries:
                conn.execute(insert(entries), [_entry_row(c.entry) for c in changes.upsert_entries])
                link_rows = [{"entry_id": c.entry.id, "target": t}
                             for c in changes.upsert_entries for t in c.links]
                if link_rows:
                    conn.execute(insert(links), link_rows)

            self._write_tombstones(conn, changes, old)
            note_keys = list(changes.delete_notes) + [(n.source, n.rel_path)
                                                      for n in changes.upsert_notes]
            for start in range(0, len(note_keys), CHUNK):
                chunk = note_keys[start:start + CHUNK]
                conn.execute(delete(notes).where(tuple_(notes.c.source, notes.c.rel_path).in_(chunk)))
            if changes.upsert_notes:
                conn.execute(insert(notes), [_note_row(n) for n in changes.upsert_notes])
            if changes.first_seen:
                known = self._known_first_seen(conn, changes)
                rows = [{"entry_id": i, "seen_at": t} for i, t in changes.first_seen if i not in known]
                if rows:
                    conn.execute(insert(first_seen), rows)

            tombstone_since = now - dt.timedelta(days=self.tombstone_days)
            state.purge_tombstones(conn, tombstone_since)
            changed = state.refresh_feed_states(conn, affected, limit=self.keep_per_category,
                                                now=now, tombstone_since=tombstone_since)
            revision = state.revision(conn)
            if changed or not changes.is_empty:
                revision = state.bump_revision(conn)
            if changes.report is not None:
                state.set_meta(conn, "last_scan", json.dumps(changes.report.to_dict()))
        return ApplyResult(revision=revision, changed_feeds=tuple(changed))

    def _known_first_seen(self, conn: Connection, changes: Changeset) -> set[str]:
        ids = [i for i, _ in changes.first_seen]
        known: set[str] = set()
        for start in range(0, len(ids), CHUNK):
            known.update(conn.execute(select(first_seen.c.entry_id).where(
                first_seen.c.entry_id.in_(ids[start:start + CHUNK]))).scalars())
        return known

    @staticmethod
    def _delete_in(conn: Connection, column: Any, values: Sequence[str]) -> None:
        for start in range(0, len(values), CHUNK):
            conn.execute(delete(column.table).where(column.in_(values[start:start + CHUNK])))

    @staticmethod
    def _write_tombstones(conn: Connection, changes: Changeset, old: dict[str, Entry]) -> None:
        """RFC 6721: an entry that leaves a feed (deleted, or moved to another category)
        is announced there as deleted; one that comes back loses its tombstone."""
        now = changes.now
        new_by_id = {c.entry.id: c.entry for c in changes.upsert_entries}
        for entry_id, before in old.items():
            if before.published > now:
                continue  # never shown, so nothing to retract
            after = new_by_id.get(entry_id)
            path = f"{before.category.slug}/{before.slug}"
            if after is None:
                for slug in (before.category.slug, ALL):
                    state.add_tombstone(conn, entry_id=entry_id, category_slug=slug,
                                        title=before.title, entry_path=path, deleted=now)
            elif after.category.slug != before.category.slug:
                state.add_tombstone(conn, entry_id=entry_id, category_slug=before.category.slug,
                                    title=before.title, entry_path=path, deleted=now)
        by_category: dict[str, list[str]] = {}
        for entry in new_by_id.values():
            by_category.setdefault(entry.category.slug, []).append(entry.id)
        for slug, ids in by_category.items():
            for start in range(0, len(ids), CHUNK):
                conn.execute(delete(tombstones).where(
                    tombstones.c.entry_id.in_(ids[start:start + CHUNK]),
                    tombstones.c.category_slug.in_([slug, ALL])))

    def refresh_due(self, now: dt.datetime) -> tuple[str, ...]:
        """Recompute every feed's validators as of now (future-dated entries coming due)."""
        with self._write() as conn:
            slugs = set(entry_queries.all_category_slugs(conn)) | {ALL}
            tombstone_since = now - dt.timedelta(days=self.tombstone_days)
            changed = state.refresh_feed_states(conn, slugs, limit=self.keep_per_category,
                                                now=now, tombstone_since=tombstone_since)
            if changed:
                state.bump_revision(conn)
        return tuple(changed)

    # -- read side ----------------------------------------------------------------------

    def revision(self) -> int:
        with self._read() as conn:
            return state.revision(conn)

    def latest_entries(self, category_slug: str, now: dt.datetime,
                       limit: int | None = None) -> list[Entry]:
        with self._read() as conn:
            return entry_queries.latest_entries(conn, category_slug,
                                                limit or self.keep_per_category, now)

    def updates_page(self, *, category_slug: str | None, since: dt.datetime | None, page: int,
                     page_size: int, now: dt.datetime) -> tuple[list[Entry], int]:
        with self._read() as conn:
            return entry_queries.updates_page(conn, category_slug=category_slug, since=since,
                                              offset=(page - 1) * page_size, limit=page_size,
                                              now=now)

    def entry(self, category_slug: str, slug: str, now: dt.datetime) -> Entry | None:
        with self._read() as conn:
            return entry_queries.entry_by_slug(conn, category_slug, slug, now)

    def categories(self, now: dt.datetime) -> list[tuple[Category, int]]:
        with self._read() as conn:
            return entry_queries.category_counts(conn, now)

    def feed_state(self, slug: str) -> FeedState | None:
        with self._read() as conn:
            return state.get_feed_state(conn, slug)

    def tombstones(self, slug: str, now: dt.datetime) -> list[Tombstone]:
        with self._read() as conn:
            return state.list_tombstones(conn, slug, now - dt.timedelta(days=self.tombstone_days))

    def next_due(self, now: dt.datetime) -> dt.datetime | None:
        with self._read() as conn:
            return entry_queries.next_due(conn, now)

    def last_scan(self) -> dict[str, Any] | None:
        with self._read() as conn:
            value: dict[str, Any] | None = state.load_json(conn, "last_scan")
            return value

    def note_problems(self) -> list[Problem]:
        """Notes whose last read failed (kept until the file changes or goes away)."""
        with self._read() as conn:
            rows = conn.execute(select(notes.c.source, notes.c.rel_path, notes.c.problem)
                                .where(notes.c.problem.is_not(None))
                                .order_by(notes.c.source, notes.c.rel_path))
            return [Problem(source=s, path=p, reason=r) for s, p, r in rows]

    def set_meta(self, key: str, value: Any) -> None:
        with self._write() as conn:
            state.set_meta(conn, key, json.dumps(value))

    def get_meta(self, key: str) -> Any:
        with self._read() as conn:
            return state.load_json(conn, key)

    # -- leases -------------------------------------------------------------------------

    def try_lock(self, name: str, owner: str, *, now: dt.datetime, ttl: dt.timedelta) -> bool:
        with self._write() as conn:
            return lock_queries.try_acquire(conn, name, owner, now=now, ttl=ttl)

    def release_lock(self, name: str, owner: str) -> None:
        with self._write() as conn:
            lock_queries.release(conn, name, owner)

    def lock_holder(self, name: str, now: dt.datetime) -> str | None:
        with self._read() as conn:
            return lock_queries.holder(conn, name, now)

    # -- scan requests relayed to the scanner -------------------------------------------

    def add_scan_request(self, request: ScanRequest, now: dt.datetime) -> None:
        with self._write() as conn:
            request_queries.add(conn, request, now)

    def take_scan_requests(self) -> list[ScanRequest]:
        """The waiting requests, removed as they are returned (read-only when there are none)."""
        with self._read() as conn:
            if not request_queries.pending(conn):
                return []
        with self._write() as conn:
            return request_queries.take(conn)

    def wait_for_scan_requests(self, timeout: float) -> None:
        """Block up to `timeout` seconds, returning early on PostgreSQL when a request is
        NOTIFYed; elsewhere (SQLite) just wait, so callers poll the table at that pace."""
        if self.dialect != "postgresql":
            time.sleep(timeout)
            return
        try:
            if self._listener is None:
                import psycopg  # the PostgreSQL driver (postgresql+psycopg://)

                url = self.engine.url.set(drivername="postgresql")
                listener = psycopg.connect(url.render_as_string(hide_password=False),
                                           autocommit=True)  # its own, outside the pool
                listener.execute(f"LISTEN {request_queries.CHANNEL}")
                self._listener = listener
            for _ in self._listener.notifies(timeout=timeout, stop_after=1):
                break
        except Exception:  # a dropped connection: poll until a new one LISTENs
            logger.warning("LISTEN for scan requests failed; polling", exc_info=True)
            self._drop_listener()
            time.sleep(timeout)

    def _drop_listener(self) -> None:
        listener, self._listener = self._listener, None
        if listener is not None:
            try:
                listener.close()
            except Exception:  # already broken
                pass


def _entry_row(entry: Entry) -> dict[str, Any]:
    return {
        "id": entry.id, "source": entry.source, "rel_path": entry.rel_path,
        "category_name": entry.category.name, "category_slug": entry.category.slug,
        "slug": entry.slug, "title": entry.title, "published": entry.published,
        "updated": entry.updated, "html": entry.html, "excerpt": entry.excerpt,
        "content_hash": entry.content_hash, "tags": json.dumps(list(entry.tags), ensure_ascii=False),
        "author": entry.author,
    }


def _note_row(note: StoredNote) -> dict[str, Any]:
    return {"source": note.source, "rel_path": note.rel_path, "size": note.size,
            "mtime_ns": note.mtime_ns, "file_hash": note.file_hash, "problem": note.problem,
            "entry_id": note.entry_id}

