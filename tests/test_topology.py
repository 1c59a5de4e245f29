"""The multi-node topology for real (deploy/cluster.py): PostgreSQL, a `--role scanner`, two
`--role web` nodes and nginx in front. Webhooks through nginx reach the scanner via the store
(LISTEN/NOTIFY); a SIGKILLed scanner is replaced by a standby within the lease; readers polling
through nginx meanwhile never see an error."""

from __future__ import annotations

import signal
import sys
import threading
import time
from collections import Counter
from pathlib import Path

import feedparser
import pytest
import requests

from conftest import NotesDir

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "deploy"))
from cluster import Cluster  # noqa: E402

LEASE = 3.0


def titles(url: str) -> set[str]:
    return {e.title for e in feedparser.parse(requests.get(url, timeout=5).content).entries}


def visible_on_all(cluster: Cluster, title: str, timeout: float) -> float:
    start = time.monotonic()
    webs = [n for n in cluster.nodes if n.role == "web"]
    while time.monotonic() - start < timeout:
        if all(title in titles(f"{n.url}/feeds/nlp.atom") for n in webs):
            return time.monotonic() - start
        time.sleep(0.05)
    raise AssertionError(f"{title!r} not on every web node within {timeout} s")


class Readers:
    """Conditional GETs through nginx, as feed readers do, counting every answer."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.statuses: Counter[object] = Counter()
        self._stop = threading.Event()
        self._threads = [threading.Thread(target=self._poll, daemon=True) for _ in range(2)]

    def _poll(self) -> None:
        session = requests.Session()
        etag = None
        while not self._stop.is_set():
            try:
                response = session.get(self.url, timeout=5,
                                       headers={"If-None-Match": etag} if etag else {})
                self.statuses[response.status_code] += 1
                etag = response.headers.get("ETag", etag)
            except requests.RequestException as e:
                self.statuses[type(e).__name__] += 1
            time.sleep(0.02)

    def __enter__(self) -> Readers:
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(10)


@pytest.mark.slow
@pytest.mark.timeout(240)
def test_webhook_via_nginx_failover_and_no_reader_errors(notes: NotesDir) -> None:
    notes.write("NLP/a.md", "a", title="First", date="2025-01-01")
    with Cluster(notes=notes.root, lease_seconds=LEASE, poll_seconds=0) as cluster:
        cluster.start()
        scanner = cluster.nodes[0]
        assert scanner.health()["scheduler"]["this_process"] is True  # type: ignore[index]
        for web in cluster.nodes[1:]:
            health = web.health()
            assert health["status"] == "ok" and health["role"] == "web"
            assert health["scheduler"]["this_process"] is False  # type: ignore[index]
        visible_on_all(cluster, "First", 30)  # the scanner's start-up scan
        with Readers(f"{cluster.url}/feeds/nlp.atom") as readers:
            notes.write("NLP/b.md", "b", title="Second", date="2025-01-02")
            assert requests.post(f"{cluster.url}/hooks/refresh", timeout=5).status_code == 202
            visible_on_all(cluster, "Second", 2.0)

            standby = cluster.add_node("standby", "scanner")
            assert standby.health()["scheduler"]["this_process"] is False  # type: ignore[index]
            scanner.kill(signal.SIGKILL)
            killed = time.monotonic()
            while not standby.health()["scheduler"]["this_process"]:  # type: ignore[index]
                assert time.monotonic() - killed < LEASE + 2, "standby did not take over"
                time.sleep(0.1)

            notes.write("NLP/c.md", "c", title="Third", date="2025-01-03")
            assert requests.post(f"{cluster.url}/hooks/refresh", timeout=5).status_code == 202
            visible_on_all(cluster, "Third", 2.0)
            time.sleep(0.5)
        assert readers.statuses[200] >= 1 and readers.statuses[304] >= 1, readers.statuses
        assert set(readers.statuses) <= {200, 304}, readers.statuses
        logs = "".join(n.log.read_text() for n in cluster.nodes)
        assert "Traceback" not in logs
