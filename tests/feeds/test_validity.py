"""Every feed of a realistic notes folder is valid: Atom against RFC 4287's RELAX NG and
Schematron rules, JSON Feed against its schema, all of them through feedparser."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
from lxml import etree

from feedsvc.model import FeedFormat
from feedsvc.scan.scanner import Scanner

from conftest import NotesDir
from validators import parse_ok
from validators import validate_atom
from validators import validate_json_feed

FORMATS = [f.value for f in FeedFormat]


@pytest.fixture
def populated(notes: NotesDir, scanner: Scanner) -> NotesDir:
    notes.write("NLP/空格 与 中文.md", "## 小节\n\n正文 $x^2$\n\n```python\nprint(1)\n```\n",
                title="中文 标题 & <b>", date="2025-01-03T10:00:00+08:00", tags=["注意力", "a b"])
    notes.write("NLP/ctrl.md", "bad\x01chars\x0b here\x7f", title="ctl\x08title",
                date="2025-01-02")
    notes.write("Large Model/flash.md", "![i](img.png) [[空格 与 中文]]", date="2025-01-01",
                id="not a uri/with spaces")
    notes.write("Large Model/urn.md", "x", date="2025-01-01", id="urn:uuid:6e8bc430-9c3a-11d9")
    notes.write("Python/]]>cdata.md", "text with ]]> inside", date="2024-12-31",
                title="<script>alert(1)</script>")
    scanner.run()
    return notes


@pytest.mark.parametrize("slug", ["all", "nlp", "large-model", "python"])
@pytest.mark.parametrize("fmt", FORMATS)
def test_every_feed_is_valid(client: Any, populated: NotesDir, slug: str, fmt: str) -> None:
    response = client.get(f"/feeds/{slug}.{fmt}")
    assert response.status_code == 200
    body = response.data
    if fmt == "json":  # feedparser 6.0 does not read JSON Feed: the schema does
        items = [(i["url"], i["id"]) for i in validate_json_feed(body)["items"]]
    else:
        if fmt == "atom":
            validate_atom(body)
        items = [(e.link, e.id) for e in parse_ok(body).entries]
    assert items, "feed has entries"
    for link, item_id in items:
        assert link.startswith("http://feeds.example.org/entries/")
        assert " " not in item_id and all(ord(c) < 128 for c in item_id)


def test_ids_are_uris_and_stable_strings(client: Any, populated: NotesDir) -> None:
    ids = {e.id for e in parse_ok(client.get("/feeds/all.atom").data).entries}
    assert ids == {
        "tag:feeds.example.org,2024:notes/NLP/%E7%A9%BA%E6%A0%BC%20%E4%B8%8E%20%E4%B8%AD%E6%96%87.md",
        "tag:feeds.example.org,2024:notes/NLP/ctrl.md",
        "tag:feeds.example.org,2024:not%20a%20uri/with%20spaces",
        "urn:uuid:6e8bc430-9c3a-11d9",
        "tag:feeds.example.org,2024:notes/Python/%5D%5D%3Ecdata.md",
    }
    rss_guids = {e.id for e in parse_ok(client.get("/feeds/all.rss").data).entries}
    json_ids = {i["id"] for i in json.loads(client.get("/feeds/all.json").data)["items"]}
    assert rss_guids == ids == json_ids


def test_item_fields(client: Any, populated: NotesDir) -> None:
    parsed = parse_ok(client.get("/feeds/nlp.atom").data)
    first = parsed.entries[0]
    assert first.title == "中文 标题 & <b>"
    assert first.published == "2025-01-03T02:00:00+00:00"
    assert first.updated == "2025-01-03T02:00:00+00:00"
    assert first.author == "Test Author"
    assert [t.term for t in first.tags] == ["nlp", "注意力", "a b"]
    assert first.summary == "小节 正文 [Math] [代码]"
    content = first.content[0]
    assert content.type == "text/html" and "<math" in content.value and "<span style=" in content.value
    assert parsed.entries[1].title == "ctltitle"
    assert "badchars here" in parsed.entries[1].summary


def test_feed_metadata(client: Any, populated: NotesDir) -> None:
    atom = etree.fromstring(client.get("/feeds/nlp.atom").data)
    ns = {"a": "http://www.w3.org/2005/Atom"}
    links = {l.get("rel"): l.get("href") for l in atom.findall("a:link", ns)}
    assert links == {"self": "http://feeds.example.org/feeds/nlp.atom",
                     "alternate": "http://feeds.example.org/updates?category=nlp"}
    assert atom.findtext("a:subtitle", namespaces=ns)
    assert atom.findtext("a:updated", namespaces=ns) == "2025-01-03T02:00:00+00:00"
    rss = etree.fromstring(client.get("/feeds/nlp.rss").data)
    channel = rss.find("channel")
    assert channel.findtext("link") == "http://feeds.example.org/updates?category=nlp"
    assert channel.findtext("lastBuildDate") == "Fri, 03 Jan 2025 02:00:00 +0000"
    assert channel.findtext("ttl") == "1"
    self_link = channel.find("{http://www.w3.org/2005/Atom}link")
    assert (self_link.get("rel"), self_link.get("href")) == ("self", "http://feeds.example.org/feeds/nlp.rss")
    guid = channel.find("item/guid")
    assert guid.get("isPermaLink") == "false"
    assert channel.find("item/{http://purl.org/rss/1.0/modules/content/}encoded") is not None
    data = json.loads(client.get("/feeds/nlp.json").data)
    assert data["version"] == "https://jsonfeed.org/version/1.1"
    assert data["feed_url"] == "http://feeds.example.org/feeds/nlp.json"
    assert data["language"] == "zh-CN"
    item = data["items"][0]
    assert set(item) >= {"id", "url", "title", "content_html", "summary", "date_published",
                         "date_modified", "tags", "authors"}


def test_hostile_title_is_text_not_markup(client: Any, populated: NotesDir) -> None:
    body = client.get("/feeds/python.rss").data
    assert b"<script>" not in body
    parsed = parse_ok(body)
    assert parsed.entries[0].title == "<script>alert(1)</script>"


def test_renders_are_deterministic(client: Any, app: Any, populated: NotesDir) -> None:
    first = {fmt: client.get(f"/feeds/all.{fmt}").data for fmt in FORMATS}
    app.extensions["feedsvc"].publisher.forget()
    second = {fmt: client.get(f"/feeds/all.{fmt}").data for fmt in FORMATS}
    assert first == second


def test_keep_per_category_bounds_the_feed(notes: NotesDir, scanner: Scanner, client: Any,
                                           store: Any) -> None:
    store.keep_per_category = 3
    for i in range(5):
        notes.write(f"NLP/n{i}.md", "x", date=f"2025-01-0{i + 1}")
    scanner.run()
    titles = [e.title for e in parse_ok(client.get("/feeds/nlp.atom").data).entries]
    assert titles == ["n4", "n3", "n2"]


def test_atom_tombstones_for_deleted_entries(notes: NotesDir, scanner: Scanner,
                                             client: Any) -> None:
    for i in range(3):
        notes.write(f"NLP/n{i}.md", "x", date=f"2025-01-0{i + 1}")
    scanner.run()
    notes.remove("NLP/n1.md")
    scanner.run()
    body = client.get("/feeds/nlp.atom").data
    validate_atom(body)
    doc = etree.fromstring(body)
    stones = doc.findall("{http://purl.org/atompub/tombstones/1.0}deleted-entry")
    assert [s.get("ref") for s in stones] == ["tag:feeds.example.org,2024:notes/NLP/n1.md"]
    assert stones[0].get("when") == "2026-01-20T12:00:00+00:00"
    assert [e.title for e in parse_ok(body).entries] == ["n2", "n0"]


def test_opml_lists_every_category_feed(client: Any, populated: NotesDir) -> None:
    response = client.get("/feeds.opml")
    assert response.status_code == 200
    doc = etree.fromstring(response.data)
    assert doc.get("version") == "2.0"
    outlines = [(o.get("text"), o.get("xmlUrl"), o.get("htmlUrl")) for o in doc.iter("outline")]
    assert outlines == [  # category feeds only: `all` would subscribe to every entry twice
        ("Large Model", "http://feeds.example.org/feeds/large-model.atom",
         "http://feeds.example.org/updates?category=large-model"),
        ("NLP", "http://feeds.example.org/feeds/nlp.atom",
         "http://feeds.example.org/updates?category=nlp"),
        ("Python", "http://feeds.example.org/feeds/python.atom",
         "http://feeds.example.org/updates?category=python"),
    ]


def test_unknown_feed_is_404(client: Any, populated: NotesDir) -> None:
    assert client.get("/feeds/nope.atom").status_code == 404
    assert client.get("/feeds/nlp.xml").status_code == 404


def test_rss_description_escapes_excerpt_text(notes: NotesDir, scanner: Scanner,
                                              client: Any) -> None:
    notes.write("NLP/code.md", "用 `<script>alert(1)</script>` 举例", title="T", date="2025-01-01")
    scanner.run()
    channel = etree.fromstring(client.get("/feeds/nlp.rss").data).find("channel")
    description = channel.findtext("item/description")
    assert description == "用 &lt;script&gt;alert(1)&lt;/script&gt; 举例"
    atom = parse_ok(client.get("/feeds/nlp.atom").data).entries[0]
    assert atom.summary == "用 <script>alert(1)</script> 举例"
    assert atom.summary_detail.type == "text/plain"


def test_atom_content_is_reader_ready(notes: NotesDir, scanner: Scanner, client: Any) -> None:
    """Code, math, a relative image, an Obsidian embed and a wikilink, as a reader gets them."""
    notes.write_bytes("Large Model/pics/fig.png", b"\x89PNG\r\n\x1a\n")
    notes.write_bytes("Large Model/embed.png", b"\x89PNG\r\n\x1a\n")
    notes.write("Large Model/other.md", "x", date="2025-01-01")
    notes.write("Large Model/rich.md",
                "```python\nimport torch\n```\n\n行内 $a^2$\n\n$$\n\\frac{1}{2}\n$$\n\n"
                "![图](pics/fig.png) ![[embed.png]] 见 [[other]]", title="Rich", date="2025-01-02")
    scanner.run()
    body = client.get("/feeds/large-model.atom").data
    assert parse_ok(body).entries[0].title == "Rich"
    ns = {"a": "http://www.w3.org/2005/Atom"}
    content = etree.fromstring(body).find("a:entry/a:content", ns)
    assert content.get("type") == "html"
    html = content.text  # what a reader gets, before any client-side sanitizing
    assert '<span style="color: #007020; font-weight: bold">import</span>' in html
    assert html.count("<math") == 2
    targets = re.findall(r'(?:src|href)="([^"]*)"', html)
    assert targets == ["http://feeds.example.org/media/notes/Large%20Model/pics/fig.png",
                       "http://feeds.example.org/media/notes/Large%20Model/embed.png",
                       "http://feeds.example.org/entries/large-model/other"]
