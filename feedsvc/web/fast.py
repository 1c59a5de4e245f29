"""A small WSGI fast path in front of Flask for the hot URLs (/feeds/<slug>.<ext>, /feeds.opml).

Each feed's answers are prepared once per change of its bytes: the Flask app itself is run,
through its whole WSGI stack (view, before/after_request hooks, error handlers, werkzeug's
finishing of the response), for every content coding and for its 304, and the status, headers
and body it produced are kept. A request then costs a dict lookup, the Accept-Encoding choice
(memoised) and the conditional-GET check, made by the same functions the view uses
(caching.pick_coding, caching.is_not_modified). Anything else (a query string, a method other
than GET/HEAD, a tag feed, an unknown feed, an error) falls through to Flask.

The rule that keeps both paths alike, by construction: this module never writes a header.
Every status line, header and body it sends is one Flask produced; it only picks which of the
recorded answers applies (the coding, 200 or 304) and, for HEAD, sends the GET's answer
without its body. So an after_request hook applies to both paths or to neither. What this
relies on: for these URLs, the app's answer depends on the request only through its path, the
coding pick_coding chooses and is_not_modified's verdict, and a HEAD is answered as its GET
without the body (RFC 9110 §9.3.2). A header that depends on anything else of the request
(its method, Host, address, cookies, an Origin, a request id, the time) must not come from an
after_request hook, whose value for the preparing request would be replayed to everyone: add
it in a WSGI middleware wrapped around app.wsgi_app, which wraps both paths (as the server's
Date header already is). The INTERNAL environ key marks the preparing requests so that they
are not counted (monitoring.py); it may gate side effects such as counting, never the
response. tests/web/test_fast.py requests every feed, format, coding, conditional and method
both ways and compares the status, every header and the body."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any
from typing import cast

from flask import Flask
from flask import Request
from werkzeug.test import EnvironBuilder

from feedsvc import metrics
from feedsvc.errors import FeedsvcError
from feedsvc.lru import ByteLRU
from feedsvc.model import FeedFormat
from feedsvc.store import TAG_PREFIX
from feedsvc.web.caching import is_not_modified
from feedsvc.web.caching import pick_coding
from feedsvc.web.ext import Services
from feedsvc.web.params import is_plausible_slug

logger = logging.getLogger(__name__)
WSGIApp = Callable[[dict[str, Any], Any], Iterable[bytes]]
CODINGS: dict[str | None, str] = {None: "identity", "gzip": "gzip", "br": "br"}
MEMO_LIMIT = 512
# Per process: the prepared answers kept (their bodies' bytes; least recently used dropped
# first, prepared again on their next request). Their bodies are mostly the very bytes objects
# web/feedcache.py caches, so this rarely adds memory of its own; it bounds it when it would.
PREPARED_BYTES = 12 * 1024 * 1024
OPML_PATH = "/feeds.opml"
FEED_RULE = "/feeds/<slug>.<ext>"  # the Flask rules these answers stand for, in /metrics
INTERNAL = "feedsvc.internal"  # environ key of the requests that prepare answers: not counted


class _Headers:
    """The part of flask.Request the caching helpers read, straight from the environ."""

    __slots__ = ("headers", "method", "_environ")

    def __init__(self, environ: dict[str, Any]) -> None:
        self._environ = environ
        self.headers = self
        self.method = environ["REQUEST_METHOD"]

    def get(self, name: str, default: str | None = None) -> str | None:
        value: str | None = self._environ.get("HTTP_" + name.upper().replace("-", "_"), default)
        return value


@dataclass(frozen=True, slots=True)
class _Prepared:
    key: tuple[object, ...]  # the bytes it was made from (compared by identity)
    etag: str
    last_modified: Any
    has_gzip: bool
    has_br: bool
    ok: dict[str | None, tuple[str, list[tuple[str, str]], bytes]]
    not_modified: dict[str | None, tuple[str, list[tuple[str, str]]]]

    @property
    def size(self) -> int:
        return sum(len(body) for _, _, body in self.ok.values())


class FastPath:
    """Wraps app.wsgi_app; see the module docstring. `inner` is the Flask app's own WSGI
    callable (what app.wsgi_app was before install): every answer sent here comes from it,
    and a request sent to it directly gets the Flask view's answer with this path bypassed."""

    def __init__(self, app: Flask, services: Services) -> None:
        self.app = app
        self.inner: WSGIApp = app.wsgi_app
        self.services = services
        # written under self._lock, read on the hot path without it
        self._prepared: ByteLRU[str, _Prepared] = ByteLRU(PREPARED_BYTES, lambda p: p.size)
        self._routes: dict[str, tuple[str, FeedFormat] | None] = {}
        self._codings: dict[tuple[str, bool], str | None] = {}
        self._lock = threading.Lock()
        self.prepared_count = 0

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
        if environ["REQUEST_METHOD"] in ("GET", "HEAD") and not environ.get("QUERY_STRING"):
            path: str = environ.get("PATH_INFO", "")
            if path.startswith("/feeds"):
                prepared = self._current(path, environ.get("HTTP_ACCEPT_ENCODING", ""))
                if prepared is not None:
                    started = time.perf_counter()
                    rule = OPML_PATH if path == OPML_PATH else FEED_RULE
                    method = environ["REQUEST_METHOD"]
                    status, body = self._answer(prepared, environ, start_response)
                    metrics.record_request(rule, method, status, len(body),
                                           time.perf_counter() - started)
                    return [body] if body else []
        return self.inner(environ, start_response)

    def _answer(self, prepared: _Prepared, environ: dict[str, Any],
                start_response: Any) -> tuple[int, bytes]:
        """Start the response; returns its status code and the body to send."""
        request = cast(Request, _Headers(environ))
        coding = self._coding(environ.get("HTTP_ACCEPT_ENCODING", ""), prepared) \
            if prepared.has_gzip else None
        if is_not_modified(request, prepared.etag, prepared.last_modified):
            status, headers = prepared.not_modified[coding]
            start_response(status, headers)
            return 304, b""
        status, headers, body = prepared.ok[coding]
        start_response(status, headers)
        return int(status[:3]), b"" if environ["REQUEST_METHOD"] == "HEAD" else body

    def _coding(self, accept: str, prepared: _Prepared) -> str | None:
        return self._pick(accept, prepared.has_br)

    def _pick(self, accept: str, has_br: bool) -> str | None:
        memo_key = (accept, has_br)
        try:
            return self._codings[memo_key]
        except KeyError:
            pass
        environ = {"REQUEST_METHOD": "GET", "HTTP_ACCEPT_ENCODING": accept}
        coding = pick_coding(cast(Request, _Headers(environ)), has_br=has_br)
        if len(self._codings) >= MEMO_LIMIT:
            self._codings.clear()
        self._codings[memo_key] = coding
        return coding

    # -- preparing ----------------------------------------------------------------------

    def _route(self, path: str) -> tuple[str, FeedFormat] | None:
        if path in self._routes:
            return self._routes[path]
        route = None
        stem, dot, ext = path[len("/feeds/"):].rpartition(".")
        # the view's own refusals (feeds.feed): those answers are Flask's 404s
        if path.startswith("/feeds/") and dot and "/" not in stem and \
                is_plausible_slug(stem) and not stem.startswith(TAG_PREFIX):
            try:
                route = (stem, FeedFormat(ext))
            except ValueError:
                route = None
        if len(self._routes) >= MEMO_LIMIT:
            self._routes.clear()
        self._routes[path] = route
        return route

    def _current(self, path: str, accept: str) -> _Prepared | None:
        """The prepared answers for `path` as of the store's revision, or None (use Flask).
        A request that takes gzip (or br) has the gzip form made if it is not yet."""
        publisher = self.services.publisher
        try:
            if path == OPML_PATH:
                rendered = publisher.opml()
                key: tuple[object, ...] = (rendered,)
                etag, modified, has_gzip, has_br = (rendered.etag, rendered.last_modified,
                                                    False, False)
            else:
                route = self._route(path)
                if route is None:
                    return None
                served = publisher.feed(*route,
                                        need_gzip=self._pick(accept, False) is not None)
                key = (served.rendered, served.gzip, served.br)
                etag, modified = served.rendered.etag, served.rendered.last_modified
                has_gzip, has_br = served.gzip is not None, served.br is not None
        except FeedsvcError:
            return None  # unknown feed, store down: Flask gives the proper answer
        prepared = self._prepared.get(path)
        if prepared is not None and len(prepared.key) == len(key) and all(
                a is b for a, b in zip(prepared.key, key)):
            return prepared
        # the same body with gzip or brotli now made (feedcache.py makes them in the
        # background, or for a request that asked): keep the answers of the codings whose
        # bytes are the same, prepare the new ones only
        reuse: dict[str | None, bool] = {}
        if prepared is not None and len(key) == len(prepared.key) == 3 and \
                prepared.key[0] is key[0]:
            reuse = {coding: prepared.key[i] is key[i] and coding in prepared.ok
                     for i, coding in enumerate((None, "gzip", "br"))}
        with self._lock:
            return self._prepare(path, key, etag, modified, has_gzip, has_br,
                                 prepared if any(reuse.values()) else None, reuse)

    def _prepare(self, path: str, key: tuple[object, ...], etag: str, modified: Any,
                 has_gzip: bool, has_br: bool, reuse: _Prepared | None = None,
                 reusable: dict[str | None, bool] | None = None) -> _Prepared | None:
        codings = [None] + (["gzip"] if has_gzip else []) + (["br"] if has_br else [])
        ok: dict[str | None, tuple[str, list[tuple[str, str]], bytes]] = {}
        not_modified: dict[str | None, tuple[str, list[tuple[str, str]]]] = {}
        for coding in codings:
            if reuse is not None and reusable and reusable.get(coding):
                ok[coding], not_modified[coding] = reuse.ok[coding], reuse.not_modified[coding]
                continue
            status, headers, body = self._run(path, {"Accept-Encoding": CODINGS[coding]})
            tag = dict(headers).get("ETag")
            if not status.startswith("200") or tag is None:
                return None
            ok[coding] = (status, headers, body)
            status304, headers304, _ = self._run(path, {"Accept-Encoding": CODINGS[coding],
                                                        "If-None-Match": tag})
            if not status304.startswith("304"):
                return None
            not_modified[coding] = (status304, headers304)
        if not all(dict(headers).get("ETag", "").startswith(etag[:-1])
                   for _, headers, _ in ok.values()):
            return None  # the store moved on while preparing: prepare again next time
        prepared = _Prepared(key=key, etag=etag, last_modified=modified, has_gzip=has_gzip,
                             has_br=has_br, ok=ok, not_modified=not_modified)
        self._prepared.put(path, prepared)
        self.prepared_count += 1
        return prepared

    @property
    def prepared_bytes(self) -> int:
        """The most the kept answers' bodies may hold (least recently used dropped beyond)."""
        return self._prepared.max_bytes

    @prepared_bytes.setter
    def prepared_bytes(self, value: int) -> None:
        self._prepared.max_bytes = value

    def kept_bytes(self) -> int:
        """The bytes of the bodies of the answers kept (bounded by prepared_bytes)."""
        return self._prepared.bytes

    def forget(self) -> None:
        """Drop every kept answer: the next request prepares it again (tests, benchmarks)."""
        with self._lock:
            self._prepared.clear()

    def _run(self, path: str, headers: dict[str, str]) -> tuple[str, list[tuple[str, str]], bytes]:
        """One request through Flask itself, captured."""
        environ = EnvironBuilder(path=path, method="GET", headers=list(headers.items())).get_environ()
        environ[INTERNAL] = True
        captured: list[Any] = []

        def start_response(status: str, response_headers: list[tuple[str, str]],
                           exc_info: Any = None) -> Callable[[bytes], None]:
            captured[:] = [status, list(response_headers)]
            return lambda data: None

        chunks = self.inner(environ, start_response)
        try:
            body = b"".join(chunks)
        finally:
            close = getattr(chunks, "close", None)
            if close is not None:
                close()
        return captured[0], captured[1], body


def install(app: Flask, services: Services) -> FastPath:
    fast = FastPath(app, services)
    app.wsgi_app = fast  # type: ignore[method-assign]
    return fast
