"""Webhook abuse and vanished sources against the server production runs, `python -m feedsvc
serve --workers 2` (granian workers plus the scanner process) on a free 127.0.0.1 port: a storm
of concurrent valid and invalid requests, and a source renamed away. What the scanner did is
read over HTTP, as an operator would: scans from /metrics, source problems from /healthz."""

from __future__ import annotations

import shutil
import threading
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import feedparser
import pytest
import requests

from feedsvc.web.webhook import sign

from conftest import BASE_URL
from conftest import NotesDir
from conftest import write_config
from test_live_http import free_port
from test_live_http import health
from test_live_http import start_serve
from test_live_http import stop
from test_live_http import wait_for
from test_metrics import scrape

MIN_INTERVAL = 5  # webhook.min_interval_seconds: a storm's webhooks merge into one more scan
# no scan can still be queued once none has finished for longer than the interval that
# spaces webhook scans (and no poll runs: poll_seconds = 0)
QUIET_SECONDS = MIN_INTERVAL + 3


@pytest.fixture
def served(tmp_path: Path, notes: NotesDir) -> Iterator[str]:
    """A running `feedsvc serve --workers 2` over 40 scanned notes: its base URL."""
    for i in range(20):
        notes.write(f"NLP/n{i}.md", f"正文 {i} $x$", date=f"2025-01-{i + 1:02}")
        notes.write(f"Python/p{i}.md", f"```python\nprint({i})\n```", date=f"2025-02-{i + 1:02}")
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    config_path = write_config(tmp_path, notes.root, min_interval=MIN_INTERVAL,
                               extra="[scheduler]\npoll_seconds = 0\n")
    config_path.write_text(config_path.read_text().replace(BASE_URL, url + "/"))
    log = tmp_path / "serve.log"
    process = start_serve(config_path, port, log)
    try:
        # the start-up scan (serve's scanner process) is done and in the store
        wait_for(lambda: (health(port) or {}).get("last_scan"), timeout=30, interval=0.2)
        yield url
    finally:
        stop(process)
    assert "Traceback" not in log.read_text(errors="replace")


def scans_run(url: str) -> int:
    """Scans the serve's scanner finished, whatever their trigger (feedsvc_scans_total)."""
    return int(sum(v for (name, _), v in scrape(url).items() if name == "feedsvc_scans_total"))


def wait_idle(url: str, timeout: float = 30) -> int:
    """What Scanner.wait_idle tells in-process, over HTTP: wait until no scan has finished for
    QUIET_SECONDS (so none is running or queued); the number of scans run by then."""
    deadline = time.monotonic() + timeout
    count, since = scans_run(url), time.monotonic()
    while time.monotonic() - since < QUIET_SECONDS:
        assert time.monotonic() < deadline, "scans did not settle in time"
        time.sleep(0.25)
        now = scans_run(url)
        if now != count:
            count, since = now, time.monotonic()
    return count


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
        served: str, notes: NotesDir) -> None:
    before = wait_for(lambda: scans_run(served), timeout=10)  # the start-up scan's 1
    notes.write("NLP/during-storm.md", "新", title="During storm", date="2025-03-01")
    kinds = ["valid"] * 200 + ["bearer"] * 20 + ["forged"] * 150 + ["unsigned"] * 50 + \
            ["get"] * 50 + ["oversized"] * 30
    feed_statuses: list[int] = []
    bozos: list[int] = []
    done = threading.Event()

    def reader() -> None:
        while not done.is_set():
            try:
                r = requests.get(f"{served}/feeds/nlp.atom", timeout=20)
            except requests.RequestException:
                feed_statuses.append(-1)
                continue
            feed_statuses.append(r.status_code)
            if r.status_code == 200:
                bozos.append(feedparser.parse(r.content).bozo)
            time.sleep(0.01)
    reader_thread = threading.Thread(target=reader)
    reader_thread.start()
    try:
        with ThreadPoolExecutor(max_workers=100) as pool:
            results = list(pool.map(lambda k: storm_request(served, k), kinds))
    finally:
        done.set()
        reader_thread.join(30)
    assert not reader_thread.is_alive()
    expected = {"valid": {202}, "bearer": {202}, "forged": {401}, "unsigned": {401},
                "get": {405}, "oversized": {413, -1}}
    for kind, status in results:
        assert status in expected[kind], (kind, status)
    assert Counter(s for k, s in results if k == "oversized")[413] >= 1
    assert feed_statuses and set(feed_statuses) == {200}
    assert bozos and set(bozos) == {0}
    assert 1 <= wait_idle(served) - before <= 2
    titles = [e.title for e in feedparser.parse(
        requests.get(f"{served}/feeds/nlp.atom", timeout=10).content).entries]
    assert "During storm" in titles


def test_source_renamed_away_leaves_every_feed_exactly_as_it_was(
        served: str, notes: NotesDir) -> None:
    urls = [f"{served}/feeds/{slug}.{fmt}" for slug in ("all", "nlp", "python")
            for fmt in ("rss", "atom", "json")] + [f"{served}/feeds.opml",
                                                    f"{served}/updates.json"]
    before = {url: requests.get(url, timeout=10).content for url in urls}
    shutil.move(notes.root, notes.root.with_name("unmounted"))
    response = requests.post(f"{served}/hooks/refresh", data=b"{}", timeout=10,
                             headers={"Authorization": "Bearer s3cret"})
    assert response.status_code == 202
    # the one scan this webhook asked for is over once /healthz reports the source gone:
    # its report is the store's last scan
    wait_for(lambda: requests.get(f"{served}/healthz", timeout=10).json()["status"]
             == "degraded", timeout=30, interval=0.1)
    after = {url: requests.get(url, timeout=10).content for url in urls}
    assert after == before
    state = requests.get(f"{served}/healthz", timeout=10).json()
    assert state["status"] == "degraded"
    assert "missing or unreadable" in state["sources"][0]["errors"][0]
