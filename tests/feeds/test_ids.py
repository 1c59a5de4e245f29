"""Entry ids survive a domain move (issue 10 item 8): the tag: authority is fixed once per
store, from the first base_url or site.id_authority before first use."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import feedparser
import pytest

from feedsvc.config import load_config
from feedsvc.errors import ConfigError
from feedsvc.scan.scanner import Scanner
from feedsvc.store import open_store
from feedsvc.web import create_app

from conftest import NotesDir
from conftest import write_config


def ids_and_links(tmp_path: Path, notes: NotesDir, *, base_url: str,
                  authority: str = "") -> tuple[list[str], list[str], list[str]]:
    extra = f'id_authority = "{authority}"\n' if authority else ""
    path = write_config(tmp_path, notes.root)
    text = path.read_text().replace('base_url = "http://feeds.example.org/"',
                                    f'base_url = "{base_url}"\n{extra}')
    path.write_text(text)
    config = load_config(path, env={})
    store = open_store(config.store_url)
    try:
        scanner = Scanner(config, store)
        app = create_app(config, store=store, scanner=scanner)
        scanner.run()
        client = app.test_client()
        atom = feedparser.parse(client.get("/feeds/all.atom").data)
        rss = feedparser.parse(client.get("/feeds/all.rss").data)
        as_json: Any = client.get("/feeds/all.json").get_json()
        updates: Any = client.get("/updates.json").get_json()
        ids = [e.id for e in atom.entries]
        assert [e.id for e in rss.entries] == ids
        assert [i["id"] for i in as_json["items"]] == ids
        assert sorted(i["id"] for i in updates["items"]) == sorted(ids)
        return ids, [e.link for e in atom.entries], [atom.feed.id]
    finally:
        store.close()


def test_changing_base_url_changes_no_id(tmp_path: Path, notes: NotesDir) -> None:
    notes.write("NLP/a b.md", "a", date="2025-01-01")
    notes.write("NLP/中文.md", "b", date="2025-01-02")
    ids, links, feed_id = ids_and_links(tmp_path, notes, base_url="http://localhost:8080/")
    assert all(i.startswith("tag:localhost,2024:") for i in ids)
    moved_ids, moved_links, moved_feed_id = ids_and_links(
        tmp_path, notes, base_url="https://notes.example.com/")
    assert moved_ids == ids and moved_feed_id == feed_id
    assert all(link.startswith("https://notes.example.com/") for link in moved_links)
    assert moved_links != links


def test_id_authority_before_first_use_wins(tmp_path: Path, notes: NotesDir) -> None:
    notes.write("NLP/a.md", "a", date="2025-01-01")
    ids, _, _ = ids_and_links(tmp_path, notes, base_url="http://localhost:8080/",
                              authority="notes.example.com")
    assert ids == ["tag:notes.example.com,2024:notes/NLP/a.md"]


def test_a_later_id_authority_is_ignored_with_a_warning(tmp_path: Path, notes: NotesDir,
                                                        caplog: pytest.LogCaptureFixture) -> None:
    notes.write("NLP/a.md", "a", date="2025-01-01")
    ids, _, _ = ids_and_links(tmp_path, notes, base_url="http://localhost:8080/")
    with caplog.at_level(logging.WARNING):
        again, _, _ = ids_and_links(tmp_path, notes, base_url="https://x.example.com/",
                                    authority="x.example.com")
    assert again == ids == ["tag:localhost,2024:notes/NLP/a.md"]
    assert any("site.id_authority" in r.getMessage() and "'localhost'" in r.getMessage()
               for r in caplog.records)


@pytest.mark.parametrize("value", ["not a host", "http://x.example/", "x..y", "-x.example"])
def test_bad_id_authority_is_a_config_error(tmp_path: Path, notes: NotesDir, value: str) -> None:
    path = write_config(tmp_path, notes.root)
    path.write_text(path.read_text().replace("[site]\n", f'[site]\nid_authority = "{value}"\n'))
    with pytest.raises(ConfigError, match="site.id_authority"):
        load_config(path, env={})


def test_email_authority_is_accepted(tmp_path: Path, notes: NotesDir) -> None:
    path = write_config(tmp_path, notes.root)
    path.write_text(path.read_text().replace("[site]\n", '[site]\nid_authority = "me@example.org"\n'))
    assert load_config(path, env={}).site.id_authority == "me@example.org"
