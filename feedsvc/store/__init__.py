"""The store: the only package that knows SQL. Takes and returns model objects.

A scan's Changeset is applied in one transaction, so a crash leaves the previous state whole;
writes are serialised in-process, and SQLite runs in WAL mode with a busy timeout so several
processes can share one file."""

from __future__ import annotations

import datetime as dt
import json
import logging
import threading
from collections.abc import Callable
from collections.abc import Iterable
from collections.abc import Iterator
from collections.abc import Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection
from sqlalchemy import Engine
from sqlalchemy import create_engine
from sqlalchemy import delete
from sqlalchemy import insert
from sqlalchemy import select
from sqlalchemy import tuple_
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError
from sqlalchemy.exc import SQLAlchemyError

from feedsvc.lru import ByteLRU
from feedsvc.errors import ConfigError
from feedsvc.errors import StoreError
from feedsvc.model import Category
from feedsvc.model import Changeset
from feedsvc.model import Entry
from feedsvc.model import EntryChange
from feedsvc.model import EntryRef
from feedsvc.model import FeedState
from feedsvc.model import MediaInfo
from feedsvc.model import Problem
from feedsvc.model import ScanRequest
from feedsvc.model import StoredNote
from feedsvc.model import Tombstone
from feedsvc.store import dialect
from feedsvc.store import entries as entry_queries
from feedsvc.store import federation as federation_queries
from feedsvc.store import first_seen as first_seen_queries
from feedsvc.store import locks as lock_queries
from feedsvc.store import media as media_queries
from feedsvc.store import migrator
from feedsvc.store import notes as note_queries
from feedsvc.store import requests as request_queries
from feedsvc.store import state
from feedsvc.store import writes
from feedsvc.store.entries import ALL
from feedsvc.store.entries import TAG_PREFIX
from feedsvc.store.media import MediaBatch
from feedsvc.store.migrator import SchemaStatus
from feedsvc.store.schema import entries
from feedsvc.store.schema import entry_tags
from feedsvc.store.schema import feed_states
from feedsvc.store.schema import links
from feedsvc.store.schema import notes

logger = logging.getLogger(__name__)
CHUNK = 400
INSERT_CHUNK = 2000  # rows per executemany
BLOB_CACHE_BYTES = 8 * 1024 * 1024  # per process, for /media (see docs/performance.md)

__all__ = ["ALL", "TAG_PREFIX", "Store", "ApplyResult", "MediaBatch", "SchemaStatus", "open_store"]


@dataclass(frozen=True, slots=True)
class ApplyResult:
    """What apply() did: the revision after it, the feeds whose bytes changed, and the
    scan stamp it moved the store from and to (Store.stamp)."""

    revision: int
    changed_feeds: tuple[str, ...]
    stamp_before: int
    stamp_after: int


def open_store(url: str, *, keep_per_category: int = 50, tombstone_days: int = 30,
               migrate: bool = True) -> Store:
    """Open the store at a SQLAlchemy URL and (unless migrate=False) bring its schema to
    the newest revision under the schema lock; see Store.migrate()."""
    try:
        parsed = make_url(url)
    except ArgumentError as e:
        raise ConfigError("store.url", f"not a database URL: {url!r}") from e
    try:
        engine = create_engine(parsed, **dialect.engine_options(parsed))
    except (ArgumentError, ImportError) as e:
        raise ConfigError("store.url", f"cannot open {parsed.render_as_string()}: {e}") from e
    dialect.prepare_engine(engine)
    store = Store(engine, keep_per_category=keep_per_category, tombstone_days=tombstone_days)
    if migrate:
        try:
            store.migrate()
        except BaseException:
            store.close()
            raise
    return store


class Store:
    """Facade over the tables; every public method takes and returns model objects."""

    def __init__(self, engine: Engine, *, keep_per_category: int = 50,
                 tombstone_days: int = 30) -> None:
        self.engine = engine
        self.keep_per_category = keep_per_category
        self.tombstone_days = tombstone_days
        # what else a feed's bytes depend on (config, format version): set by the scanner;
        # when it changes, every feed's validators are recomputed (and Last-Modified moves)
        self.feed_context = ""
        # whether entries coming due are written to the ActivityPub change log: set by the
        # scanner from activitypub.enabled
        self.record_publications = False
        self.federation = federation_queries.FederationStore(self._read, self._write)
        self._write_lock = threading.Lock()
        self._blob_lock = threading.Lock()
        self._blobs: ByteLRU[str, bytes] = ByteLRU(BLOB_CACHE_BYTES, len)
        # PostgreSQL LISTEN connection (scanner side only), opened on first wait
        self._listener = dialect.Listener(engine, request_queries.CHANNEL)

    # -- plumbing -----------------------------------------------------------------------

    @contextmanager
    def _read(self) -> Iterator[Connection]:
        try:
            with self.engine.connect() as conn:
                yield conn
        except SQLAlchemyError as e:
            raise StoreError("store read failed") from e

    @contextmanager
    def _write(self, *, serialized: bool = True) -> Iterator[Connection]:
        """One write transaction; serialized with every other process's writes unless it
        is a single atomic statement that needs no such guard (lease renewals, which must
        not wait behind a long scan)."""
        with self._write_lock:
            try:
                with self.engine.begin() as conn:
                    if serialized:
                        dialect.serialize_writes(conn)
                    yield conn
            except SQLAlchemyError as e:
                raise StoreError("store write failed") from e

    def migrate(self) -> SchemaStatus:
        """`alembic upgrade head` under the schema lock (PostgreSQL advisory lock, SQLite
        BEGIN EXCLUSIVE): N processes starting at once on an empty or older store all come
        up. StoreVersionError when the store is newer than this code (nothing touched)."""
        with self._write_lock:
            try:
                return migrator.migrate(self.engine)
            except SQLAlchemyError as e:
                raise StoreError("cannot migrate the store's schema") from e

    def schema_status(self) -> SchemaStatus | None:
        """The store's schema revision as it is (None: empty or from before versions)."""
        with self._write_lock:
            try:
                return migrator.status(self.engine)
            except SQLAlchemyError as e:
                raise StoreError("cannot read the store's schema revision") from e

    def close(self) -> None:
        self._listener.close()
        self.engine.dispose()

    @property
    def dialect(self) -> str:
        return self.engine.dialect.name

    # -- scan side ----------------------------------------------------------------------

    def note_stats(self, source: str,
                   scope: Sequence[str] | None = None) -> dict[str, tuple[int, int]]:
        """rel_path -> (size, mtime_ns) (with a scope: at those paths and below them)."""
        with self._read() as conn:
            return note_queries.note_stats(conn, source, scope)

    def load_notes(self, source: str, scope: Sequence[str] | None = None) -> dict[str, StoredNote]:
        with self._read() as conn:
            return note_queries.load_notes(conn, source, scope)

    def id_authority(self, default: str, configured: str = "") -> str:
        """The naming authority of entry ids, fixed once per store: the first caller's
        `configured` value (site.id_authority) or else `default` (the host of base_url) is
        kept in the meta table; later a different value configured is ignored, with a
        warning naming site.id_authority, so ids never change (a domain move changes none)."""
        wanted = configured or default
        with self._write_lock:
            try:
                with self.engine.begin() as conn:
                    stored = state.get_meta(conn, state.ID_AUTHORITY_KEY)
                    if stored is None:
                        state.set_meta(conn, state.ID_AUTHORITY_KEY, wanted)
                        stored = wanted
            except SQLAlchemyError:  # another process fixed it at the same moment
                with self._read() as conn:
                    stored = state.get_meta(conn, state.ID_AUTHORITY_KEY)
                if stored is None:
                    raise StoreError("cannot record the id authority") from None
        if configured and configured != stored:
            logger.warning("site.id_authority=%r ignored: this store's entry ids use %r since "
                           "its first use (ids never change); set site.id_authority = %r or "
                           "remove the key", configured, stored, stored)
        return stored

    def source_imported(self, source: str) -> bool:
        """Whether a scan of this source was applied before: then a file never seen is a new
        file (dated when first seen), not part of a first import (dated by git or mtime)."""
        with self._read() as conn:
            if source in state.imported_sources(conn):
                return True
            # a store written before this was recorded: any note row means it was scanned
            return conn.execute(select(notes.c.rel_path).where(notes.c.source == source)
                                .limit(1)).first() is not None

    def entry_refs(self, source: str | None = None) -> list[EntryRef]:
        with self._read() as conn:
            return entry_queries.entry_refs(conn, source)

    def entry_places(self) -> list[tuple[str, str, str, str]]:
        with self._read() as conn:
            return entry_queries.entry_places(conn)

    def slug_owner(self, category_slug: str, slug: str) -> str | None:
        with self._read() as conn:
            return entry_queries.slug_owner(conn, category_slug, slug)

    def entry_refs_by_ids(self, ids: Iterable[str]) -> dict[str, EntryRef]:
        with self._read() as conn:
            return {r.id: r for r in entry_queries.refs_by_ids(conn, sorted(set(ids)))}

    def first_seen_times(self, ids: Iterable[str]) -> dict[str, dt.datetime]:
        with self._read() as conn:
            return first_seen_queries.times(conn, list(ids))

    def entries_linking_to(self, keys: Iterable[str]) -> set[str]:
        keys = list(keys)
        found: set[str] = set()
        with self._read() as conn:
            for start in range(0, len(keys), CHUNK):
                query = select(links.c.entry_id).where(links.c.target.in_(keys[start:start + CHUNK]))
                found.update(conn.execute(query).scalars())
        return found

    def apply(self, changes: Changeset,
              stream: Iterable[Sequence[EntryChange]] = ()) -> ApplyResult:
        """Write one scan's changes in a single transaction and refresh feed validators.

        `stream` yields further entry upserts in batches, written one batch at a time inside
        the same transaction (a big scan never holds all its rendered entries at once); an
        entry id appears at most once across changes.upsert_entries and the batches.
        changes.publications go to the ActivityPub change log, after (record_publications)
        the entries that came due since the last refresh, read before this scan's writes."""
        now = changes.now
        with self._write() as conn:
            if self.record_publications:
                federation_queries.record_coming_due(conn, now)
            federation_queries.record_publications(conn, changes.publications)
            streamed = 0
            affected, categories_kept = writes.write_entries(conn, changes.upsert_entries,
                                                             changes.delete_entries, now)
            affected.add(ALL)
            for batch in stream:
                streamed += len(batch)
                touched, kept = writes.write_entries(conn, batch, (), now)
                affected |= touched
                categories_kept = categories_kept and kept
            note_keys = list(changes.delete_notes) + [(n.source, n.rel_path)
                                                      for n in changes.upsert_notes]
            for start in range(0, len(note_keys), CHUNK):
                chunk = note_keys[start:start + CHUNK]
                conn.execute(delete(notes).where(tuple_(notes.c.source, notes.c.rel_path).in_(chunk)))
            for start in range(0, len(changes.upsert_notes), INSERT_CHUNK):
                conn.execute(insert(notes), [writes.note_row(n) for n in
                                             changes.upsert_notes[start:start + INSERT_CHUNK]])
            first_seen_queries.record(conn, changes.first_seen)

            affected |= state.purge_tombstones(
                conn, now - dt.timedelta(days=self.tombstone_days))
            changed = self._refresh_feeds(conn, affected, now, categories_kept=categories_kept)
            revision = state.revision(conn)
            if changed or streamed or not changes.is_empty:
                revision = state.bump_revision(conn)
            if changes.report is not None:
                state.set_meta(conn, "last_scan", json.dumps(changes.report.to_dict()))
            if changes.imported_sources:
                state.mark_imported(conn, changes.imported_sources)
            before, after = state.bump_stamp(conn)
        return ApplyResult(revision=revision, changed_feeds=tuple(changed),
                           stamp_before=before, stamp_after=after)

    def _refresh_feeds(self, conn: Connection, affected: set[str], now: dt.datetime, *,
                       categories_kept: bool = False) -> list[str]:
        """Recompute the validators of the affected feeds, of the feeds whose entries came due
        since the last refresh and, when the rendering context changed, of every feed; then
        record `now` as the moment feeds are rendered for (feeds_as_of). The OPML's too,
        unless `categories_kept` (its list of categories cannot have moved) holds."""
        slugs = set(affected)
        due = state.slugs_coming_due(conn, state.feeds_as_of(conn), now)
        slugs |= due
        context_moved = state.get_meta(conn, state.CONTEXT_KEY) != self.feed_context
        if context_moved:
            slugs |= set(entry_queries.all_category_slugs(conn)) | {ALL}
            slugs |= set(_feed_state_slugs(conn))
            state.set_meta(conn, state.CONTEXT_KEY, self.feed_context)
        changed = state.refresh_feed_states(conn, slugs, limit=self.keep_per_category, now=now,
                                            context=self.feed_context)
        if changed and not (categories_kept and not due and not context_moved
                            and state.get_opml_state(conn) is not None):
            state.refresh_opml_state(conn, now, self.feed_context)  # reads every entry
        state.set_feeds_as_of(conn, now)
        return changed

    def opml_state(self) -> FeedState | None:
        with self._read() as conn:
            return state.get_opml_state(conn)

    def feeds_as_of(self) -> dt.datetime | None:
        """The moment feeds are rendered for (see state.feeds_as_of); None before any scan."""
        with self._read() as conn:
            return state.feeds_as_of(conn)

    def refresh_due(self, now: dt.datetime) -> tuple[str, ...]:
        """Recompute every feed's validators as of now (future-dated entries coming due,
        written to the change log as CREATEs when record_publications)."""
        with self._write() as conn:
            if self.record_publications:
                federation_queries.record_coming_due(conn, now)
            slugs = set(entry_queries.all_category_slugs(conn)) | {ALL}
            slugs.update(entry_queries.all_tag_keys(conn))
            changed = self._refresh_feeds(conn, slugs, now)
            if changed:
                state.bump_revision(conn)
        return tuple(changed)

    # -- read side ----------------------------------------------------------------------

    def revision(self) -> int:
        with self._read() as conn:
            return state.revision(conn)

    def stamp(self) -> int:
        """The scan stamp: moved by every scan any process applies (state.stamp)."""
        with self._read() as conn:
            return state.stamp(conn)

    def latest_entries(self, category_slug: str, now: dt.datetime,
                       limit: int | None = None) -> list[Entry]:
        with self._read() as conn:
            return entry_queries.latest_entries(conn, category_slug,
                                                limit or self.keep_per_category, now)

    def feed_entries(self, key: str, now: dt.datetime, known: Callable[[str, str], bool]
                     ) -> list[tuple[str, str | None, Entry | None]]:
        with self._read() as conn:
            return entry_queries.feed_entries(conn, key, now, self.keep_per_category, known)

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

    def tags(self, now: dt.datetime) -> list[tuple[str, str, int]]:
        """(slug, name, visible entries) of every tag, by slug."""
        with self._read() as conn:
            return entry_queries.tag_counts(conn, now)

    def tag_name(self, slug: str) -> str | None:
        """The name a tag is shown with (of the names sharing its slug, the first in order)."""
        with self._read() as conn:
            return entry_queries.tag_name(conn, slug)

    def feed_state(self, slug: str) -> FeedState | None:
        with self._read() as conn:
            return state.get_feed_state(conn, slug)

    def tombstones(self, slug: str, now: dt.datetime) -> list[Tombstone]:
        with self._read() as conn:
            return state.list_tombstones(conn, slug)

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

    # -- media --------------------------------------------------------------------------

    def media_stats(self, source: str, scope: Sequence[str] | None = None) -> dict[str, tuple[int, int]]:
        """rel_path -> (size, mtime_ns) of a source's media (a scope: those paths and below)."""
        with self._read() as conn:
            return media_queries.media_stats(conn, source, scope)

    @contextmanager
    def media_batch(self, source: str) -> Iterator[MediaBatch]:
        """Write one source's media changes in one transaction (put/remove on the batch);
        blobs no file names any more are dropped at the end."""
        with self._write() as conn:
            batch = MediaBatch(conn, source)
            yield batch
            batch.finish()

    def media_info(self, source: str, rel_path: str) -> MediaInfo | None:
        with self._read() as conn:
            return media_queries.media_info(conn, source, rel_path)

    def media_bytes(self, digest: str) -> bytes | None:
        """The blob with this SHA-256; content-addressed, so a small in-process cache of
        recent blobs is never stale."""
        cached = self._blobs.get(digest)
        if cached is not None:
            return cached
        with self._read() as conn:
            data = media_queries.blob(conn, digest)
        if data is not None and len(data) <= BLOB_CACHE_BYTES // 8:
            with self._blob_lock:
                self._blobs.put(digest, data)
        return data

    # -- leases -------------------------------------------------------------------------

    def try_lock(self, name: str, owner: str, *, now: dt.datetime, ttl: dt.timedelta) -> bool:
        with self._write(serialized=False) as conn:
            return lock_queries.try_acquire(conn, name, owner, now=now, ttl=ttl)

    def release_lock(self, name: str, owner: str) -> None:
        with self._write(serialized=False) as conn:
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
        self._listener.wait(timeout)


def _feed_state_slugs(conn: Connection) -> list[str]:
    return list(conn.execute(select(feed_states.c.slug)).scalars())
