"""Webhook abuse and vanished sources against the production WSGI server (waitress) on a free
127.0.0.1 port: a storm of concurrent valid and invalid requests, and a source renamed away."""

from __future__ import annotations

import shutil
import threading
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import feedparser
import pytest
import requests
import waitress

from feedsvc.config import load_config
from feedsvc.store import open_store
from feedsvc.web import create_app
from feedsvc.webhook import sign

from conftest import NotesDir
from conftest import with_base_url
from conftest import write_config


class Waitress:
    def __init__(self, app: Any) -> None:
        self.server = waitress.create_server(app, host="127.0.0.1", port=0, threads=8)
        self.url = f"http://127.0.0.1:{self.server.effective_port}"  # type: ignore[union-attr]
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def __enter__(self) -> Waitress:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        # close every socket inside the loop's own thread: closing them from here while the
        # loop sits in select() made it fail now and then with EBADF
        server: Any = self.server

        def close_all() -> None:
            for channel in list(server._map.values()):
                if channel is not server.trigger and channel is not server:
                    channel.close()
            server.close()

        server.trigger.pull_trigger(close_all)
        self.thread.join(10)
        server.task_dispatcher.shutdown()


@pytest.fixture
def served(tmp_path: Path, notes: NotesDir) -> Iterator[tuple[Waitress, Any]]:
    for i in range(20):
        notes.write(f"NLP/n{i}.md", f"正文 {i} $x$", date=f"2025-01-{i + 1:02}")
        notes.write(f"Python/p{i}.md", f"```python\nprint({i})\n```", date=f"2025-02-{i + 1:02}")
    config = load_config(write_config(tmp_path, notes.root, min_interval=5), env={})
    store = open_store(config.store_url)
    app = create_app(config, store=store)
    server = Waitress(app)
    app = create_app(with_base_url(config, server.url + "/"), store=store)
    server.server.application = app  # type: ignore[union-attr]
    app.extensions["feedsvc"].scanner.run()
    with server:
        yield server, app
    app.extensions["feedsvc"].scanner.wait_idle(20)
    store.close()


def storm_request(base: str, kind: str) -> tuple[str, int]:
    url = f"{base}/hooks/refresh"
    body = b'{"ref":"refs/heads/main"}'
    try:
        if kind == "valid":
            r = requests.post(url, data=body, timeout=20, headers={
                "X-Hub-Signature-256": sign("s3cret", body), "X-GitHub-Delivery": str(uuid.uuid4())})
        elif kind == "bearer":
            r = requests.post(url, data=body, timeout=20, headers={"Authorization": "Bearer s3cret"})
        elif kind == "forged":
            r = requests.post(url, data=body, timeout=20,
                              headers={"X-Hub-Signature-256": sign("guess", body)})
        elif kind == "unsigned":
            r = requests.post(url, data=body, timeout=20)
        elif kind == "get":
            r = requests.get(url, timeout=20)
        else:  # oversized
            big = b"x" * (1024 * 1024 + 10)
            r = requests.post(url, data=big, timeout=20, headers={"X-Hub-Signature-256": sign("s3cret", big)})
        return kind, r.status_code
    except requests.ConnectionError:
        return kind, -1  # the server may close a connection whose oversized body it refused


@pytest.mark.slow
def test_webhook_storm_leaves_feeds_answering_with_at_most_two_scans(
        served: tuple[Waitress, Any], notes: NotesDir) -> None:
    server, app = served
    scanner = app.extensions["feedsvc"].scanner
    before = scanner.scans_run
    notes.write("NLP/during-storm.md", "新", title="During storm", date="2025-03-01")
    kinds = ["valid"] * 200 + ["bearer"] * 20 + ["forged"] * 150 + ["unsigned"] * 50 + \
            ["get"] * 50 + ["oversized"] * 30
    feed_statuses: list[int] = []
    stop = threading.Event()

    def reader() -> None:
        while not stop.is_set():
            r = requests.get(f"{server.url}/feeds/nlp.atom", timeout=20)
            feed_statuses.append(r.status_code)
            if r.status_code == 200:
                assert feedparser.parse(r.content).bozo == 0
            time.sleep(0.01)
    reader_thread = threading.Thread(target=reader)
    reader_thread.start()
    with ThreadPoolExecutor(max_workers=100) as pool:
        results = list(pool.map(lambda k: storm_request(server.url, k), kinds))
    stop.set()
    reader_thread.join(30)
    expected = {"valid": {202}, "bearer": {202}, "forged": {401}, "unsigned": {401},
                "get": {405}, "oversized": {413, -1}}
    for kind, status in results:
        assert status in expected[kind], (kind, status)
    assert Counter(s for k, s in results if k == "oversized")[413] >= 1
    assert feed_statuses and set(feed_statuses) == {200}
    assert scanner.wait_idle(30)
    assert 1 <= scanner.scans_run - before <= 2
    titles = [e.title for e in feedparser.parse(
        requests.get(f"{server.url}/feeds/nlp.atom", timeout=10).content).entries]
    assert "During storm" in titles


def test_source_renamed_away_leaves_every_feed_exactly_as_it_was(
        served: tuple[Waitress, Any], notes: NotesDir) -> None:
    server, app = served
    urls = [f"{server.url}/feeds/{slug}.{fmt}" for slug in ("all", "nlp", "python")
            for fmt in ("rss", "atom", "json")] + [f"{server.url}/feeds.opml",
                                                    f"{server.url}/updates.json"]
    before = {url: requests.get(url, timeout=10).content for url in urls}
    shutil.move(notes.root, notes.root.with_name("unmounted"))
    response = requests.post(f"{server.url}/hooks/refresh", data=b"{}", timeout=10,
                             headers={"Authorization": "Bearer s3cret"})
    assert response.status_code == 202
    assert app.extensions["feedsvc"].scanner.wait_idle(30)
    after = {url: requests.get(url, timeout=10).content for url in urls}
    assert after == before
    health = requests.get(f"{server.url}/healthz", timeout=10).json()
    assert health["status"] == "degraded"
    assert "missing or unreadable" in health["sources"][0]["errors"][0]
