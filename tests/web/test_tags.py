"""Tag feeds (/feeds/tags/<slug>.rss|.atom|.json) and tag pages (/tags/<slug>), through a real
HTTP server: valid feeds, one order, the keep limit, colliding slugs as one tag, per-tag
validators that move only with that tag's content, tombstones, 404s; and migration 0004."""

from __future__ import annotations

import datetime as dt
import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
import sqlalchemy as sa
from alembic.migration import MigrationContext
from alembic.operations import Operations
from lxml import etree

from feedsvc.config import load_config
from feedsvc.web.export import export_site
from feedsvc.scan.scanner import Scanner
from feedsvc.store import open_store
from feedsvc.store.schema import metadata
from feedsvc.web import create_app

from conftest import LiveServer
from conftest import NotesDir
from conftest import REPO
from conftest import with_base_url
from conftest import write_config
from validators import parse_ok
from validators import validate_atom
from validators import validate_json_feed

TOMBSTONE = "{http://purl.org/atompub/tombstones/1.0}deleted-entry"


@pytest.fixture
def server(tmp_path: Path, notes: NotesDir) -> Iterator[LiveServer]:
    path = write_config(tmp_path, notes.root, name="tags.toml", extra="[updates]\npage_size = 2\n")
    path.write_text(path.read_text().replace("[store]\n", "[store]\nkeep_per_category = 3\n"))
    config = load_config(path, env={})
    store = open_store(config.store_url, keep_per_category=3)
    live = LiveServer()
    live.app = create_app(with_base_url(config, live.url + "/"), store=store)
    with live:
        yield live
    live.app.extensions["feedsvc"].scanner.wait_idle(10)
    store.close()


def scan(server: LiveServer) -> Any:
    scanner: Scanner = server.app.extensions["feedsvc"].scanner
    return scanner.run()


def get(server: LiveServer, path: str, **headers: str) -> requests.Response:
    return requests.get(server.url + path, headers=headers, timeout=10)


@pytest.fixture
def tagged(server: LiveServer, notes: NotesDir) -> LiveServer:
    notes.write("NLP/a.md", "正文 a", title="A", date="2025-01-01", tags=["Machine Learning", "x"])
    notes.write("NLP/b.md", "正文 b", title="B", date="2025-01-03", tags="machine-learning")
    notes.write("Python/c.md", "正文 c <script>alert(1)</script>", title="C", date="2025-01-02",
                tags=["machine_learning", "<b>bold</b>"])
    notes.write("Python/d.md", "正文 d", title="D", date="2025-01-04", updated="2025-01-05",
                tags=["MACHINE LEARNING"])
    notes.write("Python/e.md", "正文 e", title="E", date="2025-01-04", tags=["Machine  Learning"])
    notes.write("Python/untagged.md", "正文 u", title="U", date="2025-01-06")
    notes.write("Python/symbols.md", "正文 s", title="S", date="2025-01-06", tags=["!!!"])
    scan(server)
    return server


def test_tag_feeds_are_valid_ordered_and_limited(tagged: LiveServer) -> None:
    # five notes share the slug machine-learning; the feed keeps the newest three, in the
    # one order: published desc, updated desc, id
    atom = get(tagged, "/feeds/tags/machine-learning.atom")
    assert atom.status_code == 200
    assert atom.headers["Content-Type"] == "application/atom+xml; charset=utf-8"
    validate_atom(atom.content)
    parsed = parse_ok(atom.content)
    assert [e.title for e in parsed.entries] == ["D", "E", "B"]
    assert parsed.feed.title == "#MACHINE LEARNING · INCOMING TRANSMISSION"
    assert parsed.feed.link == f"{tagged.url}/tags/machine-learning"
    rss = parse_ok(get(tagged, "/feeds/tags/machine-learning.rss").content)
    assert [e.title for e in rss.entries] == ["D", "E", "B"]
    data = validate_json_feed(get(tagged, "/feeds/tags/machine-learning.json").content)
    assert [i["title"] for i in data["items"]] == ["D", "E", "B"]
    assert data["feed_url"] == f"{tagged.url}/feeds/tags/machine-learning.json"
    x = parse_ok(get(tagged, "/feeds/tags/x.rss").content)
    assert [e.title for e in x.entries] == ["A"]
    bold = get(tagged, "/feeds/tags/b-bold-b.atom")
    validate_atom(bold.content)
    entry = parse_ok(bold.content).entries[0]
    assert entry.title == "C"
    assert "<script>" not in entry.content[0].value  # sanitised as in every feed
    assert "<b>" not in bold.text.split("<entry>")[0]


def test_tag_feed_validators_and_304(tagged: LiveServer, notes: NotesDir) -> None:
    first = get(tagged, "/feeds/tags/x.atom")
    assert first.headers["Last-Modified"] == "Tue, 31 Dec 2024 16:00:00 GMT"
    assert first.headers["Cache-Control"] == "public, max-age=900"
    assert f'<{tagged.url}/feeds/tags/x.atom>; rel="self"' in first.headers["Link"]
    etag = first.headers["ETag"]
    assert get(tagged, "/feeds/tags/x.atom", **{"If-None-Match": etag}).status_code == 304
    assert get(tagged, "/feeds/tags/x.atom", **{
        "If-Modified-Since": first.headers["Last-Modified"]}).status_code == 304
    def body_tag(response: Any) -> str:  # the coding suffix moves -gz -> -br once br is ready
        return re.sub(r'-(gz|br)"$', '"', response.headers["ETag"])

    before = {slug: body_tag(get(tagged, f"/feeds/tags/{slug}.atom"))
              for slug in ("x", "machine-learning")}
    # a no-change scan and a change to another tag leave this tag's validators alone
    scan(tagged)
    notes.write("NLP/new.md", "新", title="New", date="2025-02-01", tags=["x"])
    scan(tagged)
    assert body_tag(get(tagged, "/feeds/tags/machine-learning.atom")) == \
        before["machine-learning"]
    moved = get(tagged, "/feeds/tags/x.atom")
    assert body_tag(moved) != before["x"]
    assert moved.headers["Last-Modified"] == "Fri, 31 Jan 2025 16:00:00 GMT"
    assert [e.title for e in parse_ok(moved.content).entries] == ["New", "A"]


def test_dropping_a_tag_or_a_note_leaves_a_tombstone(tagged: LiveServer, notes: NotesDir) -> None:
    notes.write("NLP/a.md", "正文 a", title="A", date="2025-01-01", tags=["Machine Learning"])
    notes.touch_forward("NLP/a.md")
    scan(tagged)
    body = get(tagged, "/feeds/tags/x.atom").content
    validate_atom(body)
    assert parse_ok(body).entries == []
    stones = etree.fromstring(body).findall(TOMBSTONE)
    assert [s.get("ref") for s in stones] == ["tag:127.0.0.1,2024:notes/NLP/a.md"]
    assert get(tagged, "/feeds/tags/x.rss").status_code == 200  # still a feed, now empty
    notes.remove("Python/c.md")
    scan(tagged)
    body = get(tagged, "/feeds/tags/b-bold-b.atom").content
    validate_atom(body)
    assert [s.get("ref") for s in etree.fromstring(body).findall(TOMBSTONE)] == \
        ["tag:127.0.0.1,2024:notes/Python/c.md"]
    # tagged again: the tombstone goes
    notes.write("NLP/a.md", "正文 a", title="A", date="2025-01-01", tags=["x"])
    notes.touch_forward("NLP/a.md", 10)
    scan(tagged)
    body = get(tagged, "/feeds/tags/x.atom").content
    assert etree.fromstring(body).findall(TOMBSTONE) == []
    assert [e.title for e in parse_ok(body).entries] == ["A"]


def test_tag_page_is_a_paginated_digest_with_autodiscovery(tagged: LiveServer) -> None:
    first = get(tagged, "/tags/machine-learning")
    assert first.status_code == 200
    html = first.text
    head = html.split("</head>")[0]
    for fmt, media in (("atom", "application/atom+xml"), ("rss", "application/rss+xml"),
                       ("json", "application/feed+json")):
        assert (f'<link rel="alternate" type="{media}" title="'
                f'#MACHINE LEARNING ({"JSON Feed" if fmt == "json" else fmt.upper() if fmt == "rss" else "Atom"})" '
                f'href="{tagged.url}/feeds/tags/machine-learning.{fmt}">') in head
    assert "<h1>#MACHINE LEARNING</h1>" in html
    titles = re.findall(r'<h3><a href="[^"]+">([^<]+)</a></h3>', html)
    assert titles == ["D", "E"]  # page_size = 2
    assert f'<a href="{tagged.url}/tags/machine-learning/page/3/">3</a>' in html
    assert get(tagged, "/tags/machine-learning/page/3/").text == get(
        tagged, "/tags/machine-learning?page=3").text
    third = get(tagged, "/tags/machine-learning?page=3").text
    assert re.findall(r'<h3><a href="[^"]+">([^<]+)</a></h3>', third) == ["A"]
    assert get(tagged, "/tags/machine-learning?page=4").status_code == 404


def test_entry_pages_link_their_tags(tagged: LiveServer) -> None:
    html = get(tagged, "/entries/python/c").text
    assert re.findall(r'<li><a class="tag" href="([^"]+)">([^<]+)</a></li>', html) == [
        (f"{tagged.url}/tags/machine-learning", "machine_learning"),
        (f"{tagged.url}/tags/b-bold-b", "&lt;b&gt;bold&lt;/b&gt;")]
    assert "<li>!!!</li>" in get(tagged, "/entries/python/symbols").text  # no slug, no link
    for link, _ in re.findall(r'<li><a class="tag" href="([^"]+)">([^<]+)</a></li>', html):
        assert requests.get(link, timeout=10).status_code == 200


@pytest.mark.parametrize("path", ["/tags/nope", "/feeds/tags/nope.rss", "/feeds/tags/nope.atom",
                                  "/feeds/tags/nope.json", "/feeds/tags/x.xml", "/tags/untitled",
                                  "/feeds/tag:x.atom", "/updates?category=tag:x",
                                  "/tags/%00", "/feeds/tags/%00.rss"])
def test_unknown_tags_are_404(tagged: LiveServer, path: str) -> None:
    response = get(tagged, path)
    assert response.status_code == 404, path


def test_tag_feeds_are_not_in_the_opml(tagged: LiveServer) -> None:
    opml = get(tagged, "/feeds.opml").text
    assert "/feeds/tags/" not in opml
    assert "/feeds/python.atom" in opml


def test_store_keeps_entry_tags_in_step(tagged: LiveServer, notes: NotesDir) -> None:
    store = tagged.app.extensions["feedsvc"].store
    with store.engine.connect() as conn:
        rows = conn.execute(sa.text("SELECT entry_id, tag_slug, tag_name FROM entry_tags "
                                    "WHERE entry_id = 'notes/Python/c.md' ORDER BY tag_slug")).all()
    assert [tuple(r) for r in rows] == [("notes/Python/c.md", "b-bold-b", "<b>bold</b>"),
                                        ("notes/Python/c.md", "machine-learning", "machine_learning")]
    notes.remove("Python/c.md")
    scan(tagged)
    with store.engine.connect() as conn:
        left = conn.execute(sa.text("SELECT count(*) FROM entry_tags "
                                    "WHERE entry_id = 'notes/Python/c.md'")).scalar_one()
    assert left == 0


def test_migration_0004_creates_and_fills_entry_tags(tmp_path: Path) -> None:
    engine = sa.create_engine(f"sqlite:///{tmp_path / 'old.db'}")
    old_tables = [t for name, t in metadata.tables.items() if name != "entry_tags"]
    metadata.create_all(engine, tables=old_tables)
    now = dt.datetime(2025, 1, 1, tzinfo=dt.timezone.utc)
    with engine.begin() as conn:
        for i, tags in enumerate([["Machine Learning", "machine-learning", "x"], [], ["!!"],
                                  ["注意力"]]):
            conn.execute(metadata.tables["entries"].insert().values(
                id=f"notes/{i}.md", source="notes", rel_path=f"{i}.md", category_name="NLP",
                category_slug="nlp", slug=f"e{i}", title="t", published=now, updated=now,
                html="", excerpt="", content_hash="h", tags=json.dumps(tags, ensure_ascii=False)))
    path = REPO / "feedsvc/store/migrations/versions/0004_entry_tags.py"
    namespace: dict[str, Any] = {"__name__": "migration_0004", "__file__": str(path)}
    exec(compile(path.read_text(encoding="utf-8"), str(path), "exec"), namespace)
    assert (namespace["revision"], namespace["down_revision"]) == ("0004", "0003")
    with engine.begin() as conn:
        with Operations.context(MigrationContext.configure(conn)):
            namespace["upgrade"]()
    with engine.connect() as conn:
        rows = conn.execute(sa.text("SELECT entry_id, tag_slug, tag_name FROM entry_tags "
                                    "ORDER BY entry_id, tag_slug")).all()
        indexes = sa.inspect(conn).get_indexes("entry_tags")
    assert [tuple(r) for r in rows] == [
        ("notes/0.md", "machine-learning", "Machine Learning"), ("notes/0.md", "x", "x"),
        ("notes/3.md", "注意力", "注意力")]
    assert [(i["name"], i["column_names"]) for i in indexes] == [("ix_entry_tags_slug", ["tag_slug"])]
    # the same table create_all makes
    fresh = sa.create_engine(f"sqlite:///{tmp_path / 'new.db'}")
    metadata.create_all(fresh)
    cols = [(c["name"], str(c["type"]), c["primary_key"]) for c in
            sa.inspect(fresh).get_columns("entry_tags")
            if c["name"] not in ("published", "updated", "digest")]  # added by 0005
    with engine.connect() as conn:
        assert [(c["name"], str(c["type"]), c["primary_key"]) for c in
                sa.inspect(conn).get_columns("entry_tags")] == cols
    with engine.begin() as conn:
        with Operations.context(MigrationContext.configure(conn)):
            namespace["downgrade"]()
    assert "entry_tags" not in sa.inspect(engine).get_table_names()
    engine.dispose()
    fresh.dispose()


def test_export_writes_tag_feeds_and_pages(tagged: LiveServer, tmp_path: Path) -> None:
    written = {str(p.relative_to(tmp_path / "out")) for p in
               export_site(tagged.app, tmp_path / "out")}
    assert {"feeds/tags/machine-learning.atom", "feeds/tags/machine-learning.rss",
            "feeds/tags/machine-learning.json", "tags/machine-learning/index.html",
            "tags/machine-learning/page/2/index.html", "tags/x/index.html"} <= written
    validate_atom((tmp_path / "out/feeds/tags/machine-learning.atom").read_bytes())
