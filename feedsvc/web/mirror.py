"""The static mirror (DESIGN.md "Static mirror"): every public URL of the site as a file, so
nginx or a CDN can serve readers. Used by `[publish] dir` (kept current after every change, in
a background thread of the scanning process) and by `feedsvc export OUT_DIR` (once).

The pages are fetched from the app itself (its test client), so a mirror file holds exactly the
bytes the live server sends. What to fetch: the URL families below (one line each), plus every
link inside the site found in a fetched HTML page (media, and any page family a template links
to). A URL becomes a file by its path: `/feeds/all.rss` -> `feeds/all.rss`, an HTML page
`/entries/nlp/x` -> `entries/nlp/x/index.html`, `/updates/page/2/` -> `updates/page/2/index.html`
(config/nginx.conf: `try_files $uri $uri/index.html`). Text files get `.gz` and `.br`
siblings. A file is rewritten (temp file + rename) only when its bytes change, with its mtime
(and its siblings') set to the response's Last-Modified; files no longer in the site go."""

from __future__ import annotations

import dataclasses
import datetime as dt
import gzip
import hashlib
import html
import logging
import os
import re
import tempfile
import threading
import time
from collections.abc import Callable
from collections.abc import Iterable
from collections.abc import Iterator
from dataclasses import dataclass
from dataclasses import field
from email.utils import parsedate_to_datetime
from pathlib import Path
from urllib.parse import quote
from urllib.parse import unquote
from urllib.parse import urlsplit

from flask import Flask

from feedsvc.errors import ConfigError
from feedsvc.model import FeedFormat
from feedsvc.store import TAG_PREFIX
from feedsvc.web.ext import Services

try:
    import brotli
except ImportError:  # optional, as in publishing.py: .gz siblings alone are fine
    brotli = None

logger = logging.getLogger(__name__)
TMP_GRACE_SECONDS = 600  # a temp file older than this was left by a killed writer
MARKER = ".feedsvc-mirror"  # a folder holding it is ours to write into and to prune
COMPRESSIBLE = {"text/html", "text/css", "text/plain", "text/xml", "text/x-opml", "text/javascript",
                "application/rss+xml", "application/atom+xml", "application/feed+json",
                "application/json", "application/xml", "application/javascript", "image/svg+xml"}
NOT_MIRRORED = ("hooks/", "healthz", "metrics")  # live-only: config/nginx.conf passes them on
_SAFE = "/:@!$&'()*+,;=-._~"  # characters of a path kept as they are when quoting
_LINK = re.compile(r'\s(?:href|src)="([^"]*)"')

# A family yields (path, key) for live URLs (paths from the site root, %-encoded). When key is
# not None and equals the key of the last sync, the page is reused without rendering it again.
Family = Callable[[Services, dt.datetime], Iterable[tuple[str, object]]]


def _fixed(services: Services, now: dt.datetime) -> Iterator[tuple[str, object]]:
    for path in ("/", "/feeds.opml", "/updates.json"):
        yield path, None


def _feeds(services: Services, now: dt.datetime) -> Iterator[tuple[str, object]]:
    for slug in services.publisher.feed_slugs():
        for fmt in FeedFormat:
            yield _site_path(services, services.urls.feed(slug, fmt)), None


def _digest(services: Services, now: dt.datetime) -> Iterator[tuple[str, object]]:
    size = services.config.updates.page_size
    for category in [None] + [c.slug for c, _ in services.store.categories(now)]:
        page, pages = 1, 1
        while page <= pages:  # a page depends on its entries and the page count alone
            entries, total = services.store.updates_page(category_slug=category, since=None,
                                                         page=page, page_size=size, now=now)
            pages = max(1, -(-total // size))
            url = services.urls.digest(page=page, category=category)
            yield _site_path(services, url), hash((tuple(entries), pages))
            page += 1


def _entries(services: Services, now: dt.datetime) -> Iterator[tuple[str, object]]:
    for page in range(1, 10**9):
        entries, _ = services.store.updates_page(category_slug=None, since=None, page=page,
                                                 page_size=500, now=now)
        if not entries:
            return
        for e in entries:  # an entry page depends on its entry alone
            yield _site_path(services, services.urls.entry(e.category.slug, e.slug)), hash(e)


def _tags(services: Services, now: dt.datetime) -> Iterator[tuple[str, object]]:
    size = services.config.updates.page_size
    for slug, _name, count in services.store.tags(now):
        for fmt in FeedFormat:
            yield _site_path(services, services.urls.feed(TAG_PREFIX + slug, fmt)), None
        for page in range(1, max(1, -(-count // size)) + 1):
            yield _site_path(services, services.urls.tag(slug, page=page)), None


# Pages linked from a fetched page (media, pages a template links to) are followed anyway; a
# family makes a page family complete even where nothing links to it.
FAMILIES: list[Family] = [_fixed, _feeds, _digest, _entries, _tags]


def _site_path(services: Services, url: str) -> str:
    """A link of the site as a path from the app's root ("/feeds/all.rss"), or "" when the
    link leads elsewhere or has no file form (a query string)."""
    base = services.urls.base
    base_path = urlsplit(base).path or "/"
    url = url.split("#", 1)[0]
    if url.startswith(base):
        rel = url[len(base):]
    elif url.startswith(base_path) and not url.startswith("//"):
        rel = url[len(base_path):]
    elif url.startswith("/") and not url.startswith("//"):
        rel = url[1:]
    else:
        return ""
    if "?" in rel or rel.startswith(NOT_MIRRORED):
        return ""
    return "/" + rel


def file_for(path: str, mimetype: str) -> str | None:
    """Where a URL path lives in the tree (posix, relative), or None if it cannot be a file
    (empty, dot or dot-dot segments, hidden names)."""
    rel = unquote(path).lstrip("/")
    if rel == "" or rel.endswith("/"):
        rel += "index.html"
    elif mimetype == "text/html" and not rel.endswith((".html", ".htm")):
        rel += "/index.html"
    parts = rel.split("/")
    if any(p == "" or p.startswith(".") or "\\" in p or "\0" in p for p in parts):
        return None
    return rel


@dataclass(frozen=True, slots=True)
class Page:
    path: str
    rel: str
    body: bytes | None  # None: the last sync's page, unchanged (bodies are not kept)
    mimetype: str
    last_modified: float | None
    links: tuple[str, ...]
    key: object = None
    etag: str | None = None


@dataclass(slots=True)
class SyncReport:
    written: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    unchanged: int = 0
    seconds: float = 0.0


def prepare_root(root: Path, *, label: str) -> None:
    """Make the folder, or check that an existing non-empty one is a mirror (never prune a
    folder of someone's other files)."""
    if root.exists() and not root.is_dir():
        raise ConfigError(label, f"{root} is not a folder")
    if root.is_dir() and not (root / MARKER).exists() and any(root.iterdir()):
        raise ConfigError(label, f"{root} is not empty and not a feedsvc mirror (no {MARKER} "
                                 "in it); use an empty or new folder")
    try:
        root.mkdir(parents=True, exist_ok=True)
        if not (root / MARKER).exists():
            (root / MARKER).write_text("written by feedsvc; files here not in the site are removed\n",
                                       encoding="utf-8")
    except OSError as e:
        raise ConfigError(label, f"cannot write to {root}: {e.strerror or e}") from None


class MirrorWriter:
    """Writes the site into one folder; sync() is not re-entrant (one caller at a time)."""

    def __init__(self, app: Flask, root: Path, *, label: str = "publish.dir") -> None:
        self.app = app
        self.services: Services = app.extensions["feedsvc"]
        self.root = root
        prepare_root(root, label=label)
        self._digests: dict[str, bytes] = {}  # rel -> sha256 of the bytes on disk
        self._pages: dict[str, Page] = {}  # path -> page of the last sync, without body
        self._client = app.test_client()
        # nothing waits on a mirror file being written: feeds get their brotli form inline,
        # once, and the .br sibling is the very bytes the app serves
        self.services.publisher.background_br = False

    def pages(self) -> Iterator[Page]:
        """Every page of the site: the families, then the links found in HTML pages."""
        services = self.services
        now = services.clock()
        seen: set[str] = set()
        queue: list[tuple[str, object]] = []
        for family in FAMILIES:
            queue.extend(family(services, now))
        while queue:
            path, key = queue.pop(0)
            if not path or path in seen:
                continue
            seen.add(path)
            cached = self._pages.get(path)
            if key is not None and cached is not None and cached.key == key:
                page: Page | None = cached
            else:
                page = self._fetch(path, key, cached)
            if page is None:
                continue
            yield page
            queue.extend((link, None) for link in page.links if link not in seen)

    def _fetch(self, path: str, key: object, cached: Page | None) -> Page | None:
        """GET the page; conditional when the last sync's copy has an ETag (feeds, OPML,
        media), so an unchanged file is a 304 and is not read again."""
        headers = {"Accept-Encoding": "identity"}
        if cached is not None and cached.etag:
            headers["If-None-Match"] = cached.etag
        response = self._client.get(quote(unquote(path), safe=_SAFE), headers=headers)
        try:
            if response.status_code == 304 and cached is not None:
                return cached
            if response.status_code != 200:
                return None
            mimetype = response.mimetype or "application/octet-stream"
            rel = file_for(path, mimetype)
            if rel is None:
                return None
            body = response.get_data()
        finally:
            response.close()
        last_modified = None
        if response.headers.get("Last-Modified"):
            try:
                last_modified = parsedate_to_datetime(response.headers["Last-Modified"]).timestamp()
            except (TypeError, ValueError):
                last_modified = None
        links: tuple[str, ...] = ()
        if mimetype == "text/html":
            text = body.decode("utf-8", "replace")
            links = tuple(p for m in _LINK.finditer(text)
                          if (p := _site_path(self.services, html.unescape(m.group(1)))))
        return Page(path, rel, body, mimetype, last_modified, links, key,
                    response.headers.get("ETag"))

    def sync(self) -> SyncReport:
        started = time.monotonic()
        report = SyncReport()
        pages: dict[str, Page] = {}
        wanted: set[str] = {MARKER}
        for page in self.pages():
            if page.rel in wanted:  # two URLs, one file ("/updates" and "/updates/")
                continue
            siblings = self._siblings(page)
            files = [page.rel] + [f"{page.rel}{suffix}" for suffix in siblings]
            if page.body is None and not all((self.root / f).is_file() for f in files):
                fresh = self._fetch(page.path, page.key, None)  # a file went missing: rewrite
                if fresh is None:
                    continue
                page = fresh
            wanted.update(files)
            pages[page.path] = dataclasses.replace(page, body=None)
            if page.body is not None and self._write(page, siblings):
                report.written.append(page.rel)
            else:
                report.unchanged += 1
        self._pages = pages
        report.removed = self._prune(wanted)
        report.seconds = time.monotonic() - started
        return report

    def _siblings(self, page: Page) -> dict[str, Callable[[bytes], bytes]]:
        if page.mimetype not in COMPRESSIBLE:
            return {}
        coders: dict[str, Callable[[bytes], bytes]] = {
            ".gz": lambda b: self._encoded(page.path, "gzip", b) or
            gzip.compress(b, compresslevel=9, mtime=0)}
        if brotli is not None:
            coders[".br"] = lambda b: self._encoded(page.path, "br", b) or \
                bytes(brotli.compress(b, quality=5))
        return coders

    def _encoded(self, path: str, coding: str, body: bytes) -> bytes | None:
        """The app's own compressed bytes when it has them ready (feeds: publishing.py makes
        gzip and br once per change), checked to decode to exactly this body."""
        response = self._client.get(quote(unquote(path), safe=_SAFE),
                                    headers={"Accept-Encoding": coding})
        try:
            if response.status_code != 200 or response.headers.get("Content-Encoding") != coding:
                return None
            data = response.get_data()
        finally:
            response.close()
        try:
            plain = gzip.decompress(data) if coding == "gzip" else brotli.decompress(data)
        except Exception:  # any decoding failure: compress here instead
            return None
        return data if plain == body else None

    def _write(self, page: Page, siblings: dict[str, Callable[[bytes], bytes]]) -> bool:
        if page.body is None:
            return False
        target = self.root / page.rel
        digest = hashlib.sha256(page.body).digest()
        old = self._digests.get(page.rel)
        old_mtime: float | None = None
        if target.is_file():
            if old is None:
                old = hashlib.sha256(target.read_bytes()).digest()
            old_mtime = target.stat().st_mtime
        else:
            old = None
        present = all((self.root / f"{page.rel}{s}").is_file() for s in siblings)
        if old == digest and present:
            self._digests[page.rel] = digest
            return False
        mtime = page.last_modified if page.last_modified is not None else float(int(time.time()))
        if old is not None and old != digest and old_mtime is not None and mtime == old_mtime:
            mtime = old_mtime + 1  # new bytes, same Last-Modified: the validators must move
        if old == digest and old_mtime is not None:
            mtime = old_mtime  # only a sibling was missing
        for suffix, encode in siblings.items():
            _atomic_write(self.root / f"{page.rel}{suffix}", encode(page.body), mtime)
        _atomic_write(target, page.body, mtime)
        self._digests[page.rel] = digest
        return True

    def _prune(self, wanted: set[str]) -> list[str]:
        removed = []
        for dirpath, dirnames, filenames in os.walk(self.root, topdown=False):
            here = Path(dirpath)
            for name in filenames:
                rel = (here / name).relative_to(self.root).as_posix()
                if rel in wanted:
                    continue
                if name.startswith(".") and name.endswith(".tmp"):  # ours, unless just made
                    try:
                        if time.time() - (here / name).stat().st_mtime < TMP_GRACE_SECONDS:
                            continue
                    except FileNotFoundError:
                        continue
                (here / name).unlink(missing_ok=True)
                self._digests.pop(rel, None)
                removed.append(rel)
            if here != self.root and not any(here.iterdir()):
                here.rmdir()
        return removed


def _atomic_write(path: Path, data: bytes, mtime: float) -> None:
    """Readers of the folder see the old file or the new one, never a part (rename(2))."""
    if path.parent.is_file():  # the site moved a file out of the way of a folder
        path.parent.unlink()
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.is_dir():
        _remove_tree(path)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.chmod(tmp, 0o644)  # mkstemp makes 0600; the web server's user must read it
        os.utime(tmp, (mtime, mtime))
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _remove_tree(path: Path) -> None:
    for dirpath, dirnames, filenames in os.walk(path, topdown=False):
        for name in filenames:
            os.unlink(os.path.join(dirpath, name))
        os.rmdir(dirpath)


def export_tree(app: Flask, out_dir: Path, *, label: str = "OUT_DIR") -> SyncReport:
    """`feedsvc export`: the same tree, written once."""
    return MirrorWriter(app, out_dir, label=label).sync()


class Mirror:
    """Keeps `[publish] dir` current: every store change (the Scanner's store_listeners)
    wakes one background thread; changes during a sync merge into one more sync."""

    def __init__(self, app: Flask, root: Path) -> None:
        self.writer = MirrorWriter(app, root)
        self.services = self.writer.services
        self._wake = threading.Condition()
        self._requested = 0
        self._done = 0
        self._stopped = False
        self._last_revision: int | None = None
        self.last_report: SyncReport | None = None
        self._thread = threading.Thread(target=self._run, name="feedsvc-mirror", daemon=True)

    def start(self) -> None:
        self._thread.start()
        self.request()

    def request(self) -> None:
        with self._wake:
            self._requested += 1
            self._wake.notify_all()

    def stop(self, timeout: float = 10.0) -> None:
        with self._wake:
            self._stopped = True
            self._wake.notify_all()
        if self._thread.is_alive():
            self._thread.join(timeout)

    def wait_idle(self, timeout: float = 30.0) -> bool:
        """Block until every sync requested so far has run (tests, shutdown)."""
        deadline = time.monotonic() + timeout
        with self._wake:
            target = self._requested
            while self._done < target:
                left = deadline - time.monotonic()
                if left <= 0 or not self._thread.is_alive():
                    return False
                self._wake.wait(left)
        return True

    def _run(self) -> None:
        while True:
            with self._wake:
                while self._done >= self._requested and not self._stopped:
                    self._wake.wait()
                if self._stopped:
                    return
                target = self._requested
            try:
                revision = self.services.store.revision()
                if revision != self._last_revision:
                    report = self.writer.sync()
                    self._last_revision = revision
                    self.last_report = report
                    if report.written or report.removed:
                        logger.info("mirror: wrote=%d removed=%d unchanged=%d in %.3fs dir=%s",
                                    len(report.written), len(report.removed), report.unchanged,
                                    report.seconds, self.writer.root)
            except Exception:  # the thread must survive anything; the next change retries
                logger.exception("mirror sync failed: dir=%s", self.writer.root)
                self._last_revision = None
            with self._wake:
                self._done = target
                self._wake.notify_all()


def attach_mirror(app: Flask) -> Mirror | None:
    """Start keeping `[publish] dir` current in this (the scanning) process, if it is set.
    A folder that cannot be used is a ConfigError naming publish.dir, at start-up."""
    services: Services = app.extensions["feedsvc"]
    if not services.config.publish.dir:
        return None
    mirror = Mirror(app, Path(services.config.publish.dir))
    services.scanner.store_listeners.append(mirror.request)
    mirror.start()
    return mirror
