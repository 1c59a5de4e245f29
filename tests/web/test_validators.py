"""Validators move only when content moves (issue 10 items 1 and 9): after a cold scan, no-change
rescans and restarts leave every feed's bytes, ETag and Last-Modified alone; whenever a feed's
bytes do change, its Last-Modified moves forward. Real wall clock, real store file, real HTTP."""

from __future__ import annotations

import os
import time
from email.utils import parsedate_to_datetime
from pathlib import Path
from typing import Any

import pytest
import requests

from feedsvc.config import load_config
from feedsvc.model import FeedFormat
from feedsvc.scan.scanner import Scanner
from feedsvc.store import open_store
from feedsvc.web import create_app
from feedsvc.model import ScanJob

from conftest import NotesDir
from conftest import write_config
from test_live_http import free_port
from test_live_http import health
from test_live_http import start_serve
from test_live_http import stop
from test_live_http import wait_for

Snapshot = dict[str, tuple[bytes, str, str]]


def corpus(notes: NotesDir) -> None:
    """Dated and undated notes in three categories, one future-dated, one deleted later."""
    old = time.time() - 86400 * 40
    notes.write("Large Model/a.md", "# A\n\nundated, old mtime", mtime=old)
    notes.write("Large Model/b.md", "# B\n\n$$N \\times N$$", date="2025-03-01")
    notes.write("NLP/c.md", "# C\n\nundated", mtime=old + 3600)
    notes.write("NLP/d.md", "# D\n\n```python\nx = 1\n```", date="2025-04-01T08:00:00")
    notes.write("CV/e.md", "# E\n\nfuture", date="2099-01-01")
    notes.write("CV/f.md", "# F\n\nundated, new")


def feed_urls(slugs: list[str], opml: bool = False) -> list[str]:
    return (["/feeds.opml"] if opml else []) + [f"/feeds/{s}.{f.value}" for s in slugs
                                                for f in FeedFormat]


def snapshot_client(client: Any, slugs: list[str]) -> Snapshot:
    out: Snapshot = {}
    for url in feed_urls(slugs, opml=True):
        response = client.get(url)
        assert response.status_code == 200, url
        out[url] = (response.get_data(), response.headers["ETag"],
                    response.headers["Last-Modified"])
    return out


def test_no_change_rescans_and_a_restart_move_no_validator(tmp_path: Path,
                                                           notes: NotesDir) -> None:
    corpus(notes)
    config = load_config(write_config(tmp_path, notes.root, extra="""
[websub]
hubs = ["https://hub.example.org/"]
"""), env={})
    slugs = ["all", "large-model", "nlp", "cv"]

    def start() -> tuple[Any, Scanner, Any]:
        store = open_store(config.store_url, keep_per_category=config.store.keep_per_category,
                           tombstone_days=config.feeds.tombstone_days)
        scanner = Scanner(config, store)  # the real clock
        app = create_app(config, store=store, scanner=scanner)
        return store, scanner, app

    store, scanner, app = start()
    scanner.run(ScanJob(reason="startup"))
    client = app.test_client()
    cold = snapshot_client(client, slugs)
    for _ in range(3):
        time.sleep(1.1)  # Last-Modified has one-second resolution: let the clock move
        report = scanner.run(ScanJob(reason="poll"))
        assert report.changed_feeds == ()
        assert snapshot_client(client, slugs) == cold
    # a deletion moves the feeds it touches, then they are steady again
    notes.remove("NLP/c.md")
    time.sleep(1.1)
    assert set(scanner.run(ScanJob(reason="poll")).changed_feeds) == {"all", "nlp"}
    after_delete = snapshot_client(client, slugs)
    for url in feed_urls(["cv", "large-model"], opml=True):
        assert after_delete[url] == cold[url], url
    for url in feed_urls(["all", "nlp"]):
        assert after_delete[url][0] != cold[url][0], url
        assert parsedate_to_datetime(after_delete[url][2]) > parsedate_to_datetime(cold[url][2])
    time.sleep(1.1)
    scanner.run(ScanJob(reason="poll"))
    assert snapshot_client(client, slugs) == after_delete
    store.close()

    # a restart: a new store object, scanner, app and publisher on the same file
    store, scanner, app = start()
    assert snapshot_client(app.test_client(), slugs) == after_delete  # before its scan
    time.sleep(1.1)
    scanner.run(ScanJob(reason="startup"))
    assert snapshot_client(app.test_client(), slugs) == after_delete
    store.close()


def test_config_change_moves_last_modified(tmp_path: Path, notes: NotesDir) -> None:
    """Bytes that change for another reason than the entries (a hub added) still move
    Last-Modified, so If-Modified-Since clients see them."""
    notes.write("NLP/a.md", "a", date="2025-01-01")
    path = write_config(tmp_path, notes.root)
    config = load_config(path, env={})
    store = open_store(config.store_url)
    Scanner(config, store).run()
    before = snapshot_client(create_app(config, store=store).test_client(), ["all", "nlp"])
    time.sleep(1.1)
    config = load_config(write_config(tmp_path, notes.root, extra="""
[websub]
hubs = ["https://hub.example.org/"]
"""), env={})
    scanner = Scanner(config, store)
    app = create_app(config, store=store, scanner=scanner)
    scanner.run()
    after = snapshot_client(app.test_client(), ["all", "nlp"])
    for url, (body, etag, modified) in after.items():
        if url == "/feeds.opml":
            continue
        assert body != before[url][0] and etag != before[url][1], url
        assert parsedate_to_datetime(modified) > parsedate_to_datetime(before[url][2]), url
    store.close()


def fetch_all(port: int, slugs: list[str]) -> Snapshot:
    out: Snapshot = {}
    for url in feed_urls(slugs, opml=True):
        # one coding asked for: brotli is made in the background, so a client that accepts br
        # gets gzip (ETag ...-gz) right after a change and br (...-br) once it is ready
        response = requests.get(f"http://127.0.0.1:{port}{url}", timeout=10,
                                headers={"Accept-Encoding": "gzip"})
        assert response.status_code == 200, url
        out[url] = (response.content, response.headers["ETag"], response.headers["Last-Modified"])
    return out


def scans_done(port: int) -> str | None:
    state = health(port)
    if not state or not state.get("last_scan"):
        return None
    return str(state["last_scan"].get("finished"))


@pytest.mark.slow
def test_real_server_restart_keeps_validators_and_moves_them_for_new_notes(
        tmp_path: Path, notes: NotesDir) -> None:
    corpus(notes)
    config_path = write_config(tmp_path, notes.root, extra="[scheduler]\npoll_seconds = 1\n")
    slugs = ["all", "large-model", "nlp", "cv"]
    port = free_port()
    process = start_serve(config_path, port, tmp_path / "serve1.log")
    try:
        seen = wait_for(lambda: scans_done(port), timeout=30, interval=0.2)
        first = fetch_all(port, slugs)
        wait_for(lambda: scans_done(port) not in (None, seen), timeout=20, interval=0.2)
        time.sleep(1.5)  # at least one more poll
        assert fetch_all(port, slugs) == first
        seen = scans_done(port)
    finally:
        stop(process)

    # while the service is down: an undated note with an old mtime appears
    notes.write("NLP/g.md", "# G\n\nadded while down", mtime=time.time() - 86400 * 400)
    port = free_port()
    process = start_serve(config_path, port, tmp_path / "serve2.log")
    try:
        seen = wait_for(lambda: scans_done(port) not in (None, seen) and scans_done(port),
                        timeout=30, interval=0.2)
        second = fetch_all(port, slugs)
        for url in feed_urls(["cv", "large-model"], opml=True):
            assert second[url] == first[url], url
        for url in feed_urls(["all", "nlp"]):
            assert b"added while down" in second[url][0], url
            assert parsedate_to_datetime(second[url][2]) > parsedate_to_datetime(first[url][2])
            # a client that sends only If-Modified-Since gets the new bytes, not a 304
            response = requests.get(f"http://127.0.0.1:{port}{url}", timeout=10,
                                    headers={"If-Modified-Since": first[url][2]})
            assert response.status_code == 200, url
    finally:
        stop(process)
    port = free_port()
    process = start_serve(config_path, port, tmp_path / "serve3.log")
    try:
        wait_for(lambda: scans_done(port) not in (None, seen), timeout=30, interval=0.2)
        assert fetch_all(port, slugs) == second
    finally:
        stop(process)
    logs = "".join((tmp_path / f"serve{i}.log").read_text() for i in (1, 2, 3))
    assert "Traceback" not in logs
    assert os.path.exists(tmp_path / "feedsvc.db")
