"""How feeds are served: per-feed validators, 304s, HEAD, compression, types, caching."""

from __future__ import annotations

import gzip
import threading
from typing import Any

import brotli
import pytest

from feedsvc.scan.scanner import Scanner
from feedsvc.store import Store

from conftest import Clock
from conftest import NotesDir


@pytest.fixture
def store(backend_store: Store) -> Store:
    """Every test here runs on SQLite and on a real PostgreSQL (conftest.store_url)."""
    return backend_store

TYPES = {"rss": "application/rss+xml; charset=utf-8",
         "atom": "application/atom+xml; charset=utf-8",
         "json": "application/feed+json; charset=utf-8"}


@pytest.fixture
def two_categories(notes: NotesDir, scanner: Scanner) -> None:
    notes.write("NLP/a.md", "a", date="2025-01-01")
    notes.write("Python/b.md", "b", date="2025-01-02")
    scanner.run()


@pytest.mark.parametrize("fmt", ["rss", "atom", "json"])
def test_headers_and_conditional_get(client: Any, two_categories: None, fmt: str) -> None:
    first = client.get(f"/feeds/nlp.{fmt}")
    assert first.status_code == 200
    assert first.headers["Content-Type"] == TYPES[fmt]
    assert first.headers["Cache-Control"] == "public, max-age=900"
    assert first.headers["Vary"] == "Accept-Encoding"
    assert first.headers["Last-Modified"] == "Tue, 31 Dec 2024 16:00:00 GMT"
    etag = first.headers["ETag"]
    assert etag.startswith('"') and etag.endswith('"')
    for headers in ({"If-None-Match": etag}, {"If-None-Match": f"W/{etag}"},
                    {"If-None-Match": f'"other", {etag}'}, {"If-None-Match": "*"},
                    {"If-Modified-Since": first.headers["Last-Modified"]},
                    {"If-Modified-Since": "Wed, 01 Jan 2025 00:00:00 GMT"}):
        again = client.get(f"/feeds/nlp.{fmt}", headers=headers)
        assert again.status_code == 304, headers
        assert again.data == b""
        assert again.headers["ETag"] == etag
    for headers in ({"If-None-Match": '"other"'},
                    {"If-Modified-Since": "Mon, 30 Dec 2024 00:00:00 GMT"},
                    {"If-None-Match": '"other"', "If-Modified-Since": first.headers["Last-Modified"]}):
        assert client.get(f"/feeds/nlp.{fmt}", headers=headers).status_code == 200, headers


def test_head_has_headers_and_no_body(client: Any, two_categories: None) -> None:
    get = client.get("/feeds/nlp.atom")
    head = client.head("/feeds/nlp.atom")
    assert head.status_code == 200 and head.data == b""
    assert head.headers["ETag"] == get.headers["ETag"]
    assert head.headers["Content-Length"] == str(len(get.data))


def test_compression_is_negotiated(client: Any, two_categories: None) -> None:
    plain = client.get("/feeds/all.atom")
    gz = client.get("/feeds/all.atom", headers={"Accept-Encoding": "gzip"})
    assert gz.headers["Content-Encoding"] == "gzip"
    assert gzip.decompress(gz.data) == plain.data
    assert gz.headers["ETag"] != plain.headers["ETag"]
    assert client.application.extensions["feedsvc"].publisher.wait_compressed(10)
    br = client.get("/feeds/all.atom", headers={"Accept-Encoding": "gzip, br"})
    assert br.headers["Content-Encoding"] == "br"
    assert brotli.decompress(br.data) == plain.data
    # a validator of either representation answers 304 for both
    assert client.get("/feeds/all.atom", headers={"Accept-Encoding": "gzip",
                      "If-None-Match": plain.headers["ETag"]}).status_code == 304
    assert client.get("/feeds/all.atom", headers={
        "If-None-Match": gz.headers["ETag"]}).status_code == 304
    assert "Content-Encoding" not in client.get(
        "/feeds/all.atom", headers={"Accept-Encoding": "gzip;q=0"}).headers


def test_brotli_is_made_off_the_request_and_served_once_ready(client: Any,
                                                             two_categories: None) -> None:
    publisher = client.application.extensions["feedsvc"].publisher
    release = threading.Event()
    made: list[bytes] = []

    def slow_brotli(body: bytes) -> bytes:
        release.wait(10)
        made.append(brotli.compress(body))
        return made[-1]

    publisher.compress_br = slow_brotli
    asks_br = {"Accept-Encoding": "br, gzip"}
    first = client.get("/feeds/nlp.json", headers=asks_br)  # answered before brotli is done
    assert first.status_code == 200 and first.headers["Content-Encoding"] == "gzip"
    assert first.headers["ETag"].endswith('-gz"') and first.headers["Vary"] == "Accept-Encoding"
    plain = gzip.decompress(first.data)
    release.set()
    assert publisher.wait_compressed(10) and len(made) == 1
    ready = client.get("/feeds/nlp.json", headers=asks_br)
    assert ready.headers["Content-Encoding"] == "br" and ready.headers["ETag"].endswith('-br"')
    assert brotli.decompress(ready.data) == plain and ready.data == made[0]
    assert ready.headers["ETag"][:-4] == first.headers["ETag"][:-4]  # one body, two codings
    # the gzip answer is unchanged, and either validator is a 304 in either coding
    again = client.get("/feeds/nlp.json", headers={"Accept-Encoding": "gzip"})
    assert again.data == first.data and again.headers["ETag"] == first.headers["ETag"]
    for tag in (first.headers["ETag"], ready.headers["ETag"]):
        assert client.get("/feeds/nlp.json", headers={**asks_br, "If-None-Match": tag}
                          ).status_code == 304
    assert len(made) == 1  # once per body


def test_one_category_change_leaves_others_alone(client: Any, notes: NotesDir, scanner: Scanner,
                                                 two_categories: None, clock: Clock) -> None:
    nlp = client.get("/feeds/nlp.atom")
    py = client.get("/feeds/python.atom")
    everything = client.get("/feeds/all.atom")
    clock.advance(minutes=5)
    notes.write("Python/c.md", "new", date="2025-01-05")
    scanner.run()
    assert client.get("/feeds/nlp.atom", headers={"If-None-Match": nlp.headers["ETag"]}).status_code == 304
    assert client.get("/feeds/nlp.atom", headers={
        "If-Modified-Since": nlp.headers["Last-Modified"]}).status_code == 304
    changed = client.get("/feeds/python.atom", headers={"If-None-Match": py.headers["ETag"]})
    assert changed.status_code == 200 and b"Python/c.md" in changed.data
    assert changed.headers["Last-Modified"] == "Sat, 04 Jan 2025 16:00:00 GMT"
    assert client.get("/feeds/all.atom", headers={
        "If-None-Match": everything.headers["ETag"]}).status_code == 200


def test_feeds_are_rendered_once_per_change(client: Any, app: Any, two_categories: None) -> None:
    publisher = app.extensions["feedsvc"].publisher
    for _ in range(5):
        client.get("/feeds/nlp.rss")
        client.get("/feeds/nlp.rss", headers={"Accept-Encoding": "gzip"})
    assert publisher.renders == 1


def test_websub_hub_links(tmp_path: Any, notes: NotesDir, clock: Clock) -> None:
    from feedsvc.config import load_config
    from feedsvc.web import create_app

    from conftest import write_config
    notes.write("NLP/a.md", "a", date="2025-01-01")
    config = load_config(write_config(tmp_path, notes.root,
                                      extra='[websub]\nhubs = ["http://127.0.0.1:9/"]\n'), env={})
    app = create_app(config, clock=clock)
    app.extensions["feedsvc"].scanner.run()
    client = app.test_client()
    response = client.get("/feeds/nlp.atom")
    assert response.headers["Link"] == ('<http://feeds.example.org/feeds/nlp.atom>; rel="self", '
                                        '<http://127.0.0.1:9/>; rel="hub"')
    assert b'<link href="http://127.0.0.1:9/" rel="hub"/>' in response.data
    assert b'"hubs":[{"type":"WebSub","url":"http://127.0.0.1:9/"}]' in client.get("/feeds/nlp.json").data
    # RSS carries the hub inside the document too, right after its rel="self" (issue 10 item 5)
    from lxml import etree

    from validators import parse_ok
    from validators import validate_atom
    rss = client.get("/feeds/nlp.rss").data
    channel = etree.fromstring(rss).find("channel")
    assert channel is not None
    links = [(e.get("rel"), e.get("href")) for e in channel
             if e.tag == "{http://www.w3.org/2005/Atom}link"]
    assert links == [("self", "http://feeds.example.org/feeds/nlp.rss"),
                     ("hub", "http://127.0.0.1:9/")]
    parsed = parse_ok(rss)
    assert {"rel": "hub", "href": "http://127.0.0.1:9/"}.items() <= \
        next(dict(link) for link in parsed.feed.links if link.get("rel") == "hub").items()
    validate_atom(response.data)


def test_opml_is_cached_per_change_and_has_validators(
        client: Any, app: Any, two_categories: None, notes: NotesDir, scanner: Scanner) -> None:
    publisher = app.extensions["feedsvc"].publisher
    first = client.get("/feeds.opml")
    assert publisher.opml() is publisher.opml()  # served from the cache, not rendered again
    assert first.headers["Content-Type"] == "text/x-opml; charset=utf-8"
    assert client.get("/feeds.opml", headers={"If-None-Match": first.headers["ETag"]}).status_code == 304
    notes.write("Go/c.md", "c", date="2025-01-03")
    scanner.run()
    second = client.get("/feeds.opml", headers={"If-None-Match": first.headers["ETag"]})
    assert second.status_code == 200 and b"feeds/go.atom" in second.data


def test_feed_caches_are_bounded_by_bytes_and_a_dropped_feed_renders_alike(
        client: Any, two_categories: None) -> None:
    services = client.application.extensions["feedsvc"]
    publisher, fast = services.publisher, client.application.wsgi_app
    paths = [f"/feeds/{slug}.{fmt}" for slug in ("all", "nlp", "python")
             for fmt in ("rss", "atom", "json")]
    first = {p: client.get(p, headers={"Accept-Encoding": "gzip"}) for p in paths}
    publisher.wait_compressed(10)
    one = max(served.size for served in publisher._cache.values())
    publisher.cache_bytes = fast.prepared_bytes = 2 * one  # room for about two feeds
    publisher.forget()  # the fast path's answers go with the bytes they were made from
    renders = publisher.renders
    for p in paths:
        again = client.get(p, headers={"Accept-Encoding": "gzip"})
        assert again.data == first[p].data and again.headers["ETag"] == first[p].headers["ETag"]
        assert publisher.cached_bytes() <= 3 * one
        assert fast.kept_bytes() <= 3 * one
    # a cached feed was dropped and rendered again, with the same bytes and validators
    for p in paths:
        again = client.get(p, headers={"Accept-Encoding": "gzip"})
        assert again.data == first[p].data and again.headers["ETag"] == first[p].headers["ETag"]
        assert client.get(p, headers={"If-None-Match": first[p].headers["ETag"]}
                          ).status_code == 304
    assert publisher.renders > renders
    assert len(publisher._cache) < len(paths)
