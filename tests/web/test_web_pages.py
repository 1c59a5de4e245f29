"""The HTML pages and JSON digest: LATEST UPDATES, entry pages, index, media, health."""

from __future__ import annotations

import re
from typing import Any

import pytest

from feedsvc.scan.scanner import Scanner

from conftest import NotesDir


@pytest.fixture
def many(notes: NotesDir, scanner: Scanner) -> None:
    for i in range(14):
        cat = "NLP" if i % 2 else "Large Model"
        notes.write(f"{cat}/n{i:02}.md", f"第 {i} 篇的正文。", title=f"标题 {i:02}",
                    date=f"2025-02-{i + 1:02}T12:00:00+08:00")
    notes.write("NLP/same-a.md", "tie", title="tie a", date="2025-01-01T00:00:00+08:00")
    notes.write("NLP/same-b.md", "tie", title="tie b", date="2025-01-01T00:00:00+08:00")
    notes.write_bytes("NLP/img/fig.png", b"\x89PNG\r\n\x1a\nfake")
    scanner.run()


def test_updates_json_pages_in_stable_order(client: Any, many: None) -> None:
    first = client.get("/updates.json").get_json()
    assert (first["page"], first["pages"], first["total"]) == (1, 2, 16)
    assert [i["title"] for i in first["items"]] == [f"标题 {i:02}" for i in range(13, 1, -1)]
    item = first["items"][0]
    assert item == {
        "id": "tag:feeds.example.org,2024:notes/NLP/n13.md", "title": "标题 13",
        "url": "http://feeds.example.org/entries/nlp/n13", "excerpt": "第 13 篇的正文。",
        "category": "NLP", "category_slug": "nlp", "date": "2025-02-14",
        "published": "2025-02-14T04:00:00+00:00", "updated": "2025-02-14T04:00:00+00:00",
        "tags": []}
    assert first["next"] == "http://feeds.example.org/updates.json?page=2"
    assert first["prev"] is None
    second = client.get("/updates.json?page=2").get_json()
    assert [i["title"] for i in second["items"]] == ["标题 01", "标题 00", "tie a", "tie b"]
    assert second["prev"] == "http://feeds.example.org/updates.json"
    for _ in range(3):
        assert client.get("/updates.json?page=2").get_json() == second


def test_updates_filters(client: Any, many: None) -> None:
    nlp = client.get("/updates.json?category=nlp").get_json()
    assert nlp["total"] == 9 and {i["category_slug"] for i in nlp["items"]} == {"nlp"}
    since = client.get("/updates.json?since=2025-02-13").get_json()
    assert [i["date"] for i in since["items"]] == ["2025-02-14", "2025-02-13"]


def test_updates_html(client: Any, many: None) -> None:
    response = client.get("/updates")
    html = response.get_data(as_text=True)
    assert response.status_code == 200
    assert "INCOMING TRANSMISSION" in html and "LATEST UPDATES" in html
    titles = re.findall(r'<h3><a href="http://feeds.example.org/entries/[^"]+">([^<]+)</a></h3>', html)
    assert titles == [f"标题 {i:02}" for i in range(13, 1, -1)]
    assert html.count('<p class="excerpt">') == 12
    assert '<time datetime="2025-02-14T04:00:00+00:00">2025-02-14</time>' in html
    assert re.findall(r'<nav class="pages">.*?</nav>', html, re.S)[0].count("<a ") == 1
    assert 'rel="alternate" type="application/atom+xml"' in html
    assert response.headers["Content-Security-Policy"].startswith("default-src 'none'")
    assert "script-src" not in response.headers["Content-Security-Policy"]


def test_category_page_autodiscovers_its_feeds(client: Any, many: None) -> None:
    html = client.get("/updates?category=nlp").get_data(as_text=True)
    assert 'href="http://feeds.example.org/feeds/nlp.atom"' in html.split("</head>")[0]
    assert 'href="http://feeds.example.org/feeds/nlp.json"' in html.split("</head>")[0]


@pytest.mark.parametrize("url", ["/updates?page=3", "/updates?page=0", "/updates?page=x",
                                 "/updates?category=nope", "/updates?since=yesterday",
                                 "/updates.json?page=9", "/entries/nlp/nope", "/entries/x/y",
                                 "/nope", "/updates/page/3/", "/updates/page/0/",
                                 "/updates/page/x/", "/updates/page/99999999999999999999/",
                                 "/updates/category/nope/", "/updates/category/all/page/2/"])
def test_unknown_things_are_404_with_a_message(client: Any, many: None, url: str) -> None:
    response = client.get(url)
    assert response.status_code == 404
    assert len(response.data) < 4000


def test_entry_page(client: Any, many: None) -> None:
    response = client.get("/entries/nlp/n13")
    html = response.get_data(as_text=True)
    assert response.status_code == 200
    assert "<h1>标题 13</h1>" in html and "第 13 篇的正文。" in html
    assert 'href="http://feeds.example.org/updates/category/nlp/">NLP</a>' in html


def test_index(client: Any, many: None) -> None:
    html = client.get("/").get_data(as_text=True)
    assert re.findall(r'<td><a href="[^"]+">([^<]+)</a></td>\s*<td class="num">(\d+)</td>', html) == \
        [("Large Model", "7"), ("NLP", "9")]
    assert "LATEST UPDATES" in html


def test_media_serves_files_and_refuses_escapes(client: Any, many: None, notes: NotesDir,
                                                tmp_path: Any) -> None:
    ok = client.get("/media/notes/NLP/img/fig.png")
    assert ok.status_code == 200 and ok.data == b"\x89PNG\r\n\x1a\nfake"
    assert ok.headers["Content-Type"] == "image/png"
    assert ok.headers["Cache-Control"] == "public, max-age=3600"
    ok.close()
    (tmp_path / "secret.txt").write_text("secret")
    (notes.root / "NLP" / "link.png").symlink_to(tmp_path / "secret.txt")
    for url in ["/media/notes/../secret.txt", "/media/notes/%2e%2e/secret.txt",
                "/media/notes/NLP/%2e%2e/%2e%2e/secret.txt", "/media/notes/NLP\\..\\..\\secret.txt",
                "/media/notes//etc/passwd", "/media/notes/%2Fetc%2Fpasswd", "/media/notes/NLP/link.png",
                "/media/notes/NLP/n01.md", "/media/nosource/x.png", "/media/notes/NLP/none.png"]:
        response = client.get(url)
        assert response.status_code == 404, url
        assert b"secret" not in response.data


def test_healthz(client: Any, many: None) -> None:
    data = client.get("/healthz").get_json()
    assert data["status"] == "ok"
    assert data["last_scan"]["added"] == 16
    assert data["sources"] == [{"name": "notes", "ok": True, "errors": [], "problems": []}]


def test_path_urls_serve_the_same_pages_as_query_urls(client: Any, many: None) -> None:
    """Pages link to path URLs (files in a static mirror); the query forms stay valid."""
    pairs = [("/updates/page/2/", "/updates?page=2"), ("/updates/page/1/", "/updates"),
             ("/updates/category/nlp/", "/updates?category=nlp"),
             ("/updates/category/nlp/page/1/", "/updates?category=nlp&page=1")]
    for path_url, query_url in pairs:
        assert client.get(path_url).status_code == 200, path_url
        assert client.get(path_url).data == client.get(query_url).data, path_url
    html = client.get("/").get_data(as_text=True)
    assert 'href="http://feeds.example.org/updates/page/2/"' in html
    assert 'href="http://feeds.example.org/updates/category/nlp/"' in html
    pages = client.get("/updates/page/2/").get_data(as_text=True)
    assert 'href="http://feeds.example.org/updates"' in pages  # page 1 of the digest
    assert "?" not in "".join(re.findall(r'href="([^"]*)"', pages))
