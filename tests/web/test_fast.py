"""The fast path (web/fast.py) answers as the Flask app does: for every feed, format, content
coding, conditional request and method, the full app (fast path on) and the Flask app alone
(the FastPath's `inner`, the path bypassed) give the same status, every header and the same
body; and a header an after_request hook adds is on both paths."""

from __future__ import annotations

import datetime as dt
import itertools
from email.utils import format_datetime
from email.utils import parsedate_to_datetime
from typing import Any

import pytest
from flask import Flask
from flask import Response
from flask import request
from werkzeug.test import EnvironBuilder
from werkzeug.test import run_wsgi_app

from feedsvc.scan.scanner import Scanner
from feedsvc.web.fast import INTERNAL
from feedsvc.web.fast import FastPath

from conftest import NotesDir

FORMATS = ("rss", "atom", "json")
# the paths the fast path answers itself (every category, `all`, the OPML) ...
SERVED = [f"/feeds/{slug}.{fmt}" for slug in ("all", "nlp", "python", "go") for fmt in FORMATS]
SERVED.append("/feeds.opml")
# ... and those it leaves to Flask: tag feeds, unknown feeds and formats, the view's refusals,
# a query string
PASSED = [f"/feeds/tags/{slug}.{fmt}" for slug in ("machine-learning", "go-tools")
          for fmt in FORMATS]
PASSED += ["/feeds/nope.rss", "/feeds/all.xml", "/feeds/tag:go-tools.rss", "/feeds/a%00b.rss",
           "/feeds/.atom", "/feeds/all.rss?limit=1"]
CODINGS = (None, "gzip", "br", "gzip, br", "br;q=1.0, gzip;q=0.5", "identity", "*", "*;q=0",
           "gzip;q=0", "gzip;q=0, br", "GZIP", "deflate, gzip;q=x")
METHODS = ("GET", "HEAD")

Answer = tuple[str, list[tuple[str, str]], bytes]


@pytest.fixture
def site(notes: NotesDir, scanner: Scanner) -> None:
    """Three categories and two tags (one spelled two ways)."""
    notes.write("NLP/a.md", "a", title="A", date="2025-01-01", tags=["Machine Learning"])
    notes.write("NLP/b.md", "b", title="B", date="2025-01-03", tags=["machine-learning", "x"])
    notes.write("Python/c.md", "c", title="C", date="2025-01-02", tags=["Machine Learning"])
    notes.write("Go/d.md", "d", title="D", date="2025-01-04", tags=["Go Tools"])
    notes.write("Go/e.md", "e", title="E", date="2025-01-05")
    scanner.run()


def call(wsgi: Any, path: str, method: str = "GET",
         headers: dict[str, str] | None = None) -> Answer:
    """One request straight through a WSGI callable: status, headers (sorted), body."""
    environ = EnvironBuilder(path=path, method=method,
                             headers=list((headers or {}).items())).get_environ()
    body, status, response_headers = run_wsgi_app(wsgi, environ, buffered=True)
    return status, sorted(response_headers.to_wsgi_list()), b"".join(body)


def conditions(etag: str, last_modified: str) -> list[dict[str, str]]:
    """None, If-None-Match (every form), If-Modified-Since (equal, older, newer, unparsable),
    and both headers (If-None-Match wins)."""
    since = parsedate_to_datetime(last_modified)

    def moved(days: int) -> str:
        return format_datetime(since + dt.timedelta(days=days), usegmt=True)

    gz = etag[:-1] + '-gz"'
    return [{}, {"If-None-Match": etag}, {"If-None-Match": gz}, {"If-None-Match": f"W/{etag}"},
            {"If-None-Match": f'"other", {etag}'}, {"If-None-Match": "*"},
            {"If-None-Match": '"other"'},
            {"If-Modified-Since": last_modified}, {"If-Modified-Since": moved(-1)},
            {"If-Modified-Since": moved(1)}, {"If-Modified-Since": "not a date"},
            {"If-None-Match": '"other"', "If-Modified-Since": last_modified},
            {"If-None-Match": etag, "If-Modified-Since": moved(-1)}]


def count_flask_requests(app: Flask) -> list[str]:
    """The paths of the requests Flask handles for a client (not the fast path preparing)."""
    reached: list[str] = []

    @app.before_request
    def note() -> None:
        if not request.environ.get(INTERNAL):
            reached.append(request.path)

    return reached


def warm(app: Flask, flask_only: Any) -> None:
    """Every feed rendered with its gzip and brotli forms, so no answer changes mid-test."""
    for path in SERVED + PASSED:
        call(flask_only, path, headers={"Accept-Encoding": "gzip"})
    assert app.extensions["feedsvc"].publisher.wait_compressed(10)


def test_every_feed_coding_and_condition_answers_alike(app: Flask, site: None) -> None:
    fast = app.wsgi_app
    assert isinstance(fast, FastPath)
    flask_only = fast.inner
    reached = count_flask_requests(app)
    warm(app, flask_only)
    compared = 0
    statuses: set[int] = set()
    for path in SERVED + PASSED:
        status, headers, _ = call(flask_only, path)
        validators = dict(headers)
        etag = validators.get("ETag", '"none"')
        last_modified = validators.get("Last-Modified", "Tue, 31 Dec 2024 16:00:00 GMT")
        for coding, condition, method in itertools.product(
                CODINGS, conditions(etag, last_modified), METHODS):
            sent = dict(condition)
            if coding is not None:
                sent["Accept-Encoding"] = coding
            before = len(reached)
            through_fast = call(app, path, method, sent)
            by_fast_path = len(reached) == before
            by_flask = call(flask_only, path, method, sent)
            assert through_fast == by_flask, (path, method, sent)
            assert by_fast_path == (path in SERVED), (path, method, sent)
            compared += 1
            statuses.add(int(by_flask[0][:3]))
    assert compared == len(SERVED + PASSED) * len(CODINGS) * 13 * len(METHODS)
    assert statuses == {200, 304, 404}
    assert fast.prepared_count > 0


def test_an_after_request_hook_is_on_both_paths(app: Flask, site: None) -> None:
    @app.after_request
    def stamp(response: Response) -> Response:
        response.headers["X-Stamp"] = f"{response.status_code} {response.mimetype}"
        return response

    fast = app.wsgi_app
    assert isinstance(fast, FastPath)
    reached = count_flask_requests(app)
    warm(app, fast.inner)
    for path in SERVED:
        etag = dict(call(fast.inner, path)[1])["ETag"]
        for method, sent in itertools.product(METHODS, (
                {}, {"Accept-Encoding": "gzip, br"}, {"If-None-Match": etag},
                {"Accept-Encoding": "gzip", "If-None-Match": etag})):
            before = len(reached)
            through_fast = call(app, path, method, sent)
            assert len(reached) == before  # the fast path answered
            assert through_fast == call(fast.inner, path, method, sent)
            stamp_value = dict(through_fast[1])["X-Stamp"]
            assert stamp_value.split()[0] == through_fast[0][:3]
    # the app's own hook (security headers on HTML) applies to neither path's feeds
    for path in SERVED:
        assert "Content-Security-Policy" not in dict(call(app, path)[1])
