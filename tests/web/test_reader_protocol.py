"""Feeds as real readers poll them: the `reader` library over HTTP (its second update is a
304), per-feed validators over HTTP, and WebSub pings to a stand-in hub on 127.0.0.1."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest
import requests
from reader import make_reader

from feedsvc.config import load_config
from feedsvc.store import open_store
from feedsvc.web import create_app

from conftest import Hub
from conftest import LiveServer
from conftest import NotesDir
from conftest import write_config


def test_reader_library_gets_304_on_its_second_update(live_server: LiveServer, notes: NotesDir,
                                                      tmp_path: Path) -> None:
    notes.write("NLP/a.md", "正文 a", title="A", date="2025-01-01")
    notes.write("NLP/b.md", "正文 b", title="B", date="2025-01-02")
    live_server.app.extensions["feedsvc"].scanner.run()
    url = f"{live_server.url}/feeds/nlp.atom"
    reader = make_reader(str(tmp_path / "reader.sqlite"))
    try:
        reader.add_feed(url)
        reader.update_feeds(scheduled=False)
        titles = sorted(e.title for e in reader.get_entries())
        assert titles == ["A", "B"]
        feed = reader.get_feed(url)
        assert feed.last_exception is None
        reader.update_feeds(scheduled=False)
        assert reader.get_feed(url).last_exception is None
    finally:
        reader.close()
    statuses = [status for method, path, status in live_server.log if path == "/feeds/nlp.atom"]
    assert statuses == [200, 304]


def test_change_in_one_category_over_http(live_server: LiveServer, notes: NotesDir) -> None:
    notes.write("NLP/a.md", "a", date="2025-01-01")
    notes.write("Python/b.md", "b", date="2025-01-02")
    scanner = live_server.app.extensions["feedsvc"].scanner
    scanner.run()
    base = live_server.url
    old = {slug: requests.get(f"{base}/feeds/{slug}.rss", timeout=10).headers
           for slug in ("nlp", "python")}
    notes.write("Python/c.md", "c", title="New in Python", date="2025-01-03")
    scanner.run()
    for slug, expected in (("nlp", 304), ("python", 200)):
        for validator in ({"If-None-Match": old[slug]["ETag"]},
                          {"If-Modified-Since": old[slug]["Last-Modified"]}):
            response = requests.get(f"{base}/feeds/{slug}.rss", headers=validator, timeout=10)
            assert response.status_code == expected, (slug, validator)
    assert b"New in Python" in requests.get(f"{base}/feeds/python.rss", timeout=10).content


def app_with_hubs(tmp_path: Path, notes: NotesDir, hubs: list[str]) -> Any:
    extra = "[websub]\nhubs = [" + ", ".join(f'"{h}"' for h in hubs) + "]\n"
    config = load_config(write_config(tmp_path, notes.root, extra=extra), env={})
    app = create_app(config, store=open_store(config.store_url))
    services = app.extensions["feedsvc"]
    services.websub.backoff = 0.05
    services.websub.timeout = 1.0
    return app


def test_websub_pings_once_per_changed_feed(tmp_path: Path, notes: NotesDir) -> None:
    with Hub() as hub:
        app = app_with_hubs(tmp_path, notes, [hub.url])
        services = app.extensions["feedsvc"]
        notes.write("NLP/a.md", "a", date="2025-01-01")
        notes.write("Python/b.md", "b", date="2025-01-02")
        services.scanner.run()
        assert services.websub.join(10)
        base = "http://feeds.example.org/feeds/"
        first = sorted(p["hub.url"] for p in hub.pings)
        assert first == sorted(f"{base}{slug}.{fmt}" for slug in ("all", "nlp", "python")
                               for fmt in ("atom", "json", "rss"))
        assert {p["hub.mode"] for p in hub.pings} == {"publish"}
        hub.pings.clear()
        services.scanner.run()  # nothing changed: no pings
        assert services.websub.join(10) and hub.pings == []
        notes.write("Python/c.md", "c", date="2025-01-03")
        services.scanner.run()
        assert services.websub.join(10)
        assert sorted(p["hub.url"] for p in hub.pings) == sorted(
            f"{base}{slug}.{fmt}" for slug in ("all", "python") for fmt in ("atom", "json", "rss"))
        assert services.websub.stats.sent == 15 and services.websub.stats.failed == 0


@pytest.mark.parametrize("status, delay", [(500, 0.0), (204, 3.0)])
def test_failing_or_hanging_hub_delays_nothing(tmp_path: Path, notes: NotesDir, status: int,
                                               delay: float) -> None:
    with Hub(status=status, delay=delay) as hub:
        app = app_with_hubs(tmp_path, notes, [hub.url])
        services = app.extensions["feedsvc"]
        services.websub.attempts = 4 if status == 500 else 1  # a hanging hub: one try, 1 s each
        notes.write("NLP/a.md", "a", date="2025-01-01")
        start = time.perf_counter()
        services.scanner.run()
        client = app.test_client()
        assert client.get("/feeds/nlp.atom").status_code == 200
        assert time.perf_counter() - start < 1.5
        if status == 500:
            assert services.websub.join(20)
            assert services.websub.stats.failed == 6  # (nlp, all) x 3 formats, 4 tries each
            assert len(hub.pings) == 24
            health = client.get("/healthz").get_json()["websub"]
            assert health["failed"] == 6 and health["last_error"] == "HTTP 500"
        # every ping ends before the hub goes: none may still retry in a later test, whose
        # process-wide metrics it would bump
        assert services.websub.join(60)
