"""Feeds as served: rendered once per change and cached with their compressed forms.

The cache is checked against the store's revision (one cheap query); when the revision moves,
a feed is re-rendered only if its own signature changed, so one category's change leaves the
other feeds' bytes and validators untouched. Shared by the web app and `feedsvc export`."""

from __future__ import annotations

import dataclasses
import datetime as dt
import gzip
import logging
import threading
import time
import types
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from feedsvc.config import Config
from feedsvc.errors import CategoryNotFoundError
from feedsvc.errors import TagNotFoundError
from feedsvc.feeds import MEDIA_TYPES
from feedsvc.feeds import OPML_MEDIA_TYPE
from feedsvc.feeds import FeedInfo
from feedsvc.feeds import RenderedFeed
from feedsvc.feeds import etag_for
from feedsvc.feeds import render_feed
from feedsvc.feeds import render_opml
from feedsvc.feeds.info import ttl_minutes
from feedsvc.feeds.items import ItemCache
from feedsvc.feeds.jsonfeed import assemble_json_feed
from feedsvc.feeds.jsonfeed import json_item
from feedsvc.lru import ByteLRU
from feedsvc.model import Category
from feedsvc.model import Clock
from feedsvc.model import FeedFormat
from feedsvc.memory import release_memory
from feedsvc.store import ALL
from feedsvc.store import TAG_PREFIX
from feedsvc.store import Store
from feedsvc.urls import Urls
from feedsvc.urls import default_authority

logger = logging.getLogger(__name__)
EMPTY_OPML_DATE = dt.datetime(1970, 1, 1, tzinfo=dt.timezone.utc)
REVISION_TTL_SECONDS = 1.0  # how stale another process's change may look here
BROTLI_QUALITY = 9
# Per process: the served feeds kept (body + gzip + br bytes, least recently used dropped
# first). Category feeds are few; tag feeds are many and mostly cold: a dropped one is
# rendered again on its next request. Bounds `serve`'s memory at any corpus size.
FEED_CACHE_BYTES = 12 * 1024 * 1024

GZIP_LEVEL = 6

try:
    import brotli
except ImportError:  # brotli is optional: gzip alone is fine
    brotli = None

_gzip: types.ModuleType = gzip
try:
    from zlib_ng import gzip_ng as _gzip
except ImportError:  # zlib-ng is optional: the standard library's zlib makes the same format
    pass


@dataclass(frozen=True, slots=True)
class ServedFeed:
    """A rendered feed plus its compressed variants, made once per change. `gzip` and `br` are
    None until made (see Publisher): a request that asks for gzip makes it if the background
    pass has not yet; until brotli is made, `br` clients get gzip."""

    rendered: RenderedFeed
    gzip: bytes | None
    br: bytes | None
    revision: int
    signature: str

    @property
    def size(self) -> int:
        return len(self.rendered.body) + len(self.gzip or b"") + len(self.br or b"")


def site_urls(config: Config, store: Store) -> Urls:
    """The site's Urls with the id authority this store fixed at first use."""
    site = config.site
    return Urls(site.base_url, store.id_authority(default_authority(site.base_url),
                                                  site.id_authority))


def brotli_compress(body: bytes) -> bytes:
    return bytes(brotli.compress(body, quality=BROTLI_QUALITY))


def gzip_compress(body: bytes) -> bytes:
    """gzip at level 6, through zlib-ng when installed (the same format and ratio in half the
    time of zlib: a 800 KB feed in 6 ms instead of 12)."""
    return bytes(_gzip.compress(body, compresslevel=GZIP_LEVEL, mtime=0))


class Publisher:
    """Renders and caches feeds; thread-safe.

    The request that renders a feed waits for the body only, and for its gzip form if it asked
    for gzip: gzip, then brotli (several times slower at quality 9), are made on one background
    thread and swapped into the cached ServedFeed when done, so each is served from the next
    request on. The ETag is per coding (caching.py), so no validator ever names two bodies."""

    def __init__(self, config: Config, store: Store, clock: Clock,
                 changes: Callable[[], int] | None = None) -> None:
        self.config = config
        self.store = store
        self.clock = clock
        self.urls = site_urls(config, store)
        # written under self._lock, read on the hot path without it
        self._cache: ByteLRU[tuple[str, FeedFormat], ServedFeed] = ByteLRU(
            FEED_CACHE_BYTES, lambda served: served.size)
        self._lock = threading.Lock()
        self.renders = 0
        self._revision = -1
        self._revision_read_at = 0.0
        self._opml: tuple[int, RenderedFeed] | None = None
        # `serve --workers`: a counter the serve's scanner bumps after each write (shared
        # memory), so every worker re-reads the revision at once after a local change
        self.changes = changes
        self._changes_seen = changes() if changes is not None else 0
        self.compress_br: Callable[[bytes], bytes] | None = (
            brotli_compress if brotli is not None else None)
        self.background_br = True  # False (the mirror, export): brotli inline, as it renders
        self._compress_pool: ThreadPoolExecutor | None = None  # made on first use (after any fork)
        self._compressing: set[int] = set()  # id() of the RenderedFeeds being compressed
        self._items = ItemCache()  # JSON items by (entry id, digest), used under self._lock

    def invalidate(self) -> None:
        """This process changed the store: read the revision again on the next request."""
        self._revision_read_at = 0.0

    def revision(self) -> int:
        """The store's revision, re-read at most once a second (one query per request was a
        third of the cost of a 304). In-process writes call invalidate(), so they show at once."""
        now = time.monotonic()
        if self.changes is not None:
            seen = self.changes()
            if seen != self._changes_seen:
                self._changes_seen = seen
                self._revision_read_at = 0.0
        if now - self._revision_read_at > REVISION_TTL_SECONDS:
            self._revision = self.store.revision()
            self._revision_read_at = now
        return self._revision

    def feed(self, slug: str, fmt: FeedFormat, *, need_gzip: bool = False) -> ServedFeed:
        """The feed as of the store's revision; with `need_gzip`, its gzip form made if the
        background pass has not made it yet."""
        served = self._feed(slug, fmt)
        if need_gzip and served.gzip is None:
            return self._with_gzip((slug, fmt), served)
        return served

    def _with_gzip(self, key: tuple[str, FeedFormat], served: ServedFeed) -> ServedFeed:
        compressed = gzip_compress(served.rendered.body)  # zlib releases the GIL meanwhile
        with self._lock:
            cached = self._cache.get(key)
            if cached is not None and cached.rendered is served.rendered:
                if cached.gzip is not None:  # the background pass was first
                    return cached
                cached = dataclasses.replace(cached, gzip=compressed)
                self._cache.put(key, cached)
                return cached
        return dataclasses.replace(served, gzip=compressed)

    def _feed(self, slug: str, fmt: FeedFormat) -> ServedFeed:
        revision = self.revision()
        key = (slug, fmt)
        cached = self._cache.get(key)
        if cached is not None and cached.revision == revision:
            return cached
        with self._lock:
            cached = self._cache.get(key)
            if cached is not None and cached.revision == revision:
                return cached
            state = self.store.feed_state(slug)
            if state is None:
                if slug.startswith(TAG_PREFIX):
                    raise TagNotFoundError(slug[len(TAG_PREFIX):])
                raise CategoryNotFoundError(slug)
            if cached is not None and cached.signature == state.signature:
                served = ServedFeed(cached.rendered, cached.gzip, cached.br, revision,
                                    cached.signature)
            else:
                for _ in range(3):
                    served = self._render(slug, fmt, state.last_modified, revision,
                                          state.signature)
                    # a scan that committed while this rendered: render its state instead, so
                    # bytes and Last-Modified always belong together
                    again = self.store.feed_state(slug)
                    if again is None or again.signature == state.signature:
                        break
                    state = again
            self._cache.put(key, served)
            if served.gzip is None or (served.br is None and self.compress_br is not None):
                self._compress_later(key, served)
            return served

    @property
    def cache_bytes(self) -> int:
        """The most the served feeds may hold (least recently used dropped beyond it)."""
        return self._cache.max_bytes

    @cache_bytes.setter
    def cache_bytes(self, value: int) -> None:
        self._cache.max_bytes = value

    def cached_bytes(self) -> int:
        return self._cache.bytes

    def forget(self) -> None:
        """Drop every kept feed: the next request renders it again (tests, benchmarks)."""
        with self._lock:
            self._cache.clear()

    def _compress_later(self, key: tuple[str, FeedFormat], served: ServedFeed) -> None:
        """Called under self._lock: queue the gzip and brotli pass of `served` (once per body)."""
        if id(served.rendered) in self._compressing:
            return
        if self._compress_pool is None:
            self._compress_pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="feedsvc-compress")
        self._compressing.add(id(served.rendered))
        self._compress_pool.submit(self._compress, key, served.rendered, self.compress_br)

    def _compress(self, key: tuple[str, FeedFormat], rendered: RenderedFeed,
                  compress: Callable[[bytes], bytes] | None) -> None:
        try:
            self._compress_one(key, rendered, "gzip", gzip_compress)
            if compress is not None:
                self._compress_one(key, rendered, "br", compress)
        finally:
            with self._lock:
                self._compressing.discard(id(rendered))
                idle = not self._compressing
            if idle:  # a render's and compression's temporaries go back to the OS
                release_memory()

    def _compress_one(self, key: tuple[str, FeedFormat], rendered: RenderedFeed, coding: str,
                      compress: Callable[[bytes], bytes]) -> None:
        cached = self._cache.get(key)
        if cached is None or cached.rendered is not rendered or getattr(cached, coding) is not None:
            return  # dropped, rendered again since, or made by a request meanwhile
        try:
            made = compress(rendered.body)  # zlib and brotli release the GIL meanwhile
        except Exception:  # identity (or gzip) alone is fine: keep serving it
            logger.exception("%s compression failed: feed=%s.%s", coding, key[0], key[1].value)
            return
        with self._lock:
            cached = self._cache.get(key)
            # only onto the very body it was made from: a newer render keeps its own pass
            if cached is not None and cached.rendered is rendered and \
                    getattr(cached, coding) is None:
                self._cache.put(key, dataclasses.replace(cached, gzip=made) if coding == "gzip"
                                else dataclasses.replace(cached, br=made))

    def wait_compressed(self, timeout: float = 10.0) -> bool:
        """Block until no brotli pass is queued or running (tests, export)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self._lock:
                if not self._compressing:
                    return True
            time.sleep(0.005)
        return False

    def as_of(self) -> dt.datetime:
        """The moment feeds show entries for: the store's last validator refresh, not the
        clock, so every process renders the bytes the signature covered (a future-dated entry
        appears when the scheduler or a scan refreshes the feeds, with a new Last-Modified)."""
        return self.store.feeds_as_of() or self.clock()

    def _render(self, slug: str, fmt: FeedFormat, last_modified: dt.datetime, revision: int,
                signature: str) -> ServedFeed:
        now = self.as_of()
        if fmt is FeedFormat.JSON:
            rendered = self._render_json(slug, now, last_modified)
        else:
            entries = self.store.latest_entries(slug, now)
            tombstones = self.store.tombstones(slug, now) if fmt is FeedFormat.ATOM else []
            rendered = render_feed(fmt, self.feed_info(slug, last_modified, entries_category=(
                entries[0].category if entries else None)), entries, tombstones, self.urls)
        self.renders += 1
        compressed = br = None  # made by _compress in the background, or by a request
        if not self.background_br:  # the mirror and export: every coding as it renders
            compressed = gzip_compress(rendered.body)
            if self.compress_br is not None:
                br = self.compress_br(rendered.body)
        return ServedFeed(rendered, compressed, br, revision, signature)

    def _render_json(self, slug: str, now: dt.datetime, last_modified: dt.datetime) -> RenderedFeed:
        """A JSON feed from the kept items of its unchanged entries (see feeds/items.py): only
        the entries new or changed since the last render are read whole and encoded."""
        item_info = self.feed_info(ALL, last_modified)  # items read only its site author
        items: list[bytes] = []
        first: Category | None = None
        rows = self.store.feed_entries(slug, now, self._items.has)
        # the kept items are taken before any new one is put: a put drops the least recently
        # used item, which may be one this feed shows further down
        kept = {entry_id: self._items.get(entry_id, digest or "")
                for entry_id, digest, entry in rows if entry is None}
        for entry_id, digest, entry in rows:
            if entry is not None:
                item, category = json_item(entry, item_info, self.urls), entry.category
                if digest:
                    self._items.put(entry_id, digest, item, category)
            else:
                found = kept[entry_id]
                assert found is not None  # under self._lock: has() and get() agree
                item, category = found
            first = first or category
            items.append(item)
        # a category feed is titled with its first entry's category name
        body = assemble_json_feed(self.feed_info(slug, last_modified, entries_category=first),
                                  items, self.urls)
        return RenderedFeed(body=body, media_type=MEDIA_TYPES[FeedFormat.JSON],
                            etag=etag_for(body), last_modified=last_modified)

    def feed_info(self, slug: str, last_modified: dt.datetime,
                  entries_category: Category | None = None) -> FeedInfo:
        site = self.config.site
        if slug == ALL:
            title = site.title
        elif slug.startswith(TAG_PREFIX):
            title = f"#{self.tag_name(slug[len(TAG_PREFIX):])} · {site.title}"
        else:
            name = entries_category.name if entries_category else self.category_name(slug)
            title = f"{name} · {site.title}"  # a narrow feed list shows the category first
        return FeedInfo(slug=slug, title=title, description=site.description,
                        language=site.language, author=site.author or site.title,
                        last_modified=last_modified, hubs=self.config.websub.hubs,
                        ttl_minutes=ttl_minutes(self.config))

    def category_name(self, slug: str) -> str:
        for category, _ in self.store.categories(self.as_of()):
            if category.slug == slug:
                return category.name
        return slug

    def tag_name(self, slug: str) -> str:
        return self.store.tag_name(slug) or slug

    def opml(self) -> RenderedFeed:
        """The OPML file, rendered once per store revision like the feeds."""
        revision = self.revision()
        cached = self._opml
        if cached is not None and cached[0] == revision:
            return cached[1]
        now = self.as_of()
        categories = [c for c, _ in self.store.categories(now)]
        state = self.store.opml_state()
        # before the first scan there is no OPML state (and no category): date that empty
        # list at the epoch, so the first real one is always newer (not "now", which a scan in
        # the same second would give again with other bytes)
        modified = state.last_modified if state else EMPTY_OPML_DATE
        body = render_opml(self.config.site.title, categories, self.urls, modified)
        rendered = RenderedFeed(body=body, media_type=OPML_MEDIA_TYPE, etag=etag_for(body),
                                last_modified=modified)
        self._opml = (revision, rendered)
        return rendered

    def feed_slugs(self) -> list[str]:
        return [ALL] + [c.slug for c, _ in self.store.categories(self.as_of())]
