"""WebSub publisher pings (W3C WebSub §7): after a feed changes, POST hub.mode=publish and
hub.url=<feed URL> to every configured hub, from a background thread with retries and
backoff, so neither a scan nor a request ever waits for a hub. Outcomes are counted in a
PingTally: this process's own, or under `feedsvc serve` the serve's shared one."""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass
from dataclasses import replace
from typing import Literal
from typing import Protocol

import requests

from feedsvc import metrics
from feedsvc.model import FeedFormat
from feedsvc.urls import Urls

logger = logging.getLogger(__name__)


PingOutcome = Literal["sent", "failed", "dropped"]


@dataclass
class WebSubStats:
    """What pings came to: sent, failed (every retry failed), dropped (queue full), and the
    error of the last failed attempt."""

    sent: int = 0
    failed: int = 0
    dropped: int = 0
    last_error: str | None = None


class PingTally(Protocol):
    """Where a notifier counts its pings and /healthz reads them. `feedsvc serve` gives every
    process of one serve the same tally in shared memory (serve/interprocess.py): its scanner
    process pings, its workers answer /healthz."""

    def count(self, outcome: PingOutcome) -> None: ...

    def note_error(self, error: str) -> None: ...

    def read(self) -> WebSubStats: ...


class LocalPingTally:
    """The pings of this process's notifier (an app without `feedsvc serve`: tests, export)."""

    def __init__(self) -> None:
        self._stats = WebSubStats()
        self._lock = threading.Lock()  # the scan thread drops, the notifier thread sends

    def count(self, outcome: PingOutcome) -> None:
        with self._lock:
            if outcome == "sent":
                self._stats.sent += 1
            elif outcome == "failed":
                self._stats.failed += 1
            else:
                self._stats.dropped += 1

    def note_error(self, error: str) -> None:
        with self._lock:
            self._stats.last_error = error

    def read(self) -> WebSubStats:
        with self._lock:
            return replace(self._stats)


class WebSubNotifier:
    """Queue of (hub, feed URL) pings, drained by one daemon thread started on first use."""

    def __init__(self, hubs: Iterable[str], urls: Urls, *, timeout: float = 5.0,
                 attempts: int = 4, backoff: float = 1.0, max_queue: int = 1000,
                 tally: PingTally | None = None) -> None:
        self.hubs = tuple(hubs)
        self.urls = urls
        self.timeout = timeout
        self.attempts = attempts
        self.backoff = backoff
        self.tally: PingTally = tally if tally is not None else LocalPingTally()
        self._queue: queue.Queue[tuple[str, str]] = queue.Queue(maxsize=max_queue)
        self._thread: threading.Thread | None = None
        self._start_lock = threading.Lock()
        self._session = requests.Session()

    @property
    def stats(self) -> WebSubStats:
        """The pings counted in this notifier's tally (the whole serve's under `feedsvc serve`)."""
        return self.tally.read()

    def notify(self, changed_slugs: Iterable[str]) -> None:
        """Queue one ping per hub for every format of every changed feed; never blocks."""
        if not self.hubs:
            return
        self._ensure_thread()
        for slug in changed_slugs:
            for fmt in FeedFormat:
                for hub in self.hubs:
                    try:
                        self._queue.put_nowait((hub, self.urls.feed(slug, fmt)))
                    except queue.Full:
                        self.tally.count("dropped")
                        metrics.record_websub_ping("dropped")

    def _ensure_thread(self) -> None:
        with self._start_lock:
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._run, name="feedsvc-websub",
                                                daemon=True)
                self._thread.start()

    def _run(self) -> None:
        while True:
            hub, feed_url = self._queue.get()
            try:
                self._ping(hub, feed_url)
            finally:
                self._queue.task_done()

    def _ping(self, hub: str, feed_url: str) -> None:
        delay = self.backoff
        for attempt in range(1, self.attempts + 1):
            try:
                response = self._session.post(
                    hub, data={"hub.mode": "publish", "hub.url": feed_url}, timeout=self.timeout)
                if response.status_code < 300:
                    self.tally.count("sent")
                    metrics.record_websub_ping("sent")
                    return
                error = f"HTTP {response.status_code}"
            except requests.RequestException as e:
                error = type(e).__name__
            logger.warning("websub ping failed: hub=%s feed=%s attempt=%d error=%s",
                           hub, feed_url, attempt, error)
            self.tally.note_error(error)
            metrics.record_websub_attempt_failure()
            if attempt < self.attempts:
                time.sleep(delay)
                delay *= 2
        self.tally.count("failed")
        metrics.record_websub_ping("failed")

    def join(self, timeout: float = 10.0) -> bool:
        """Wait until queued pings are done (tests)."""
        deadline = time.monotonic() + timeout
        while self._queue.unfinished_tasks and time.monotonic() < deadline:
            time.sleep(0.02)
        return not self._queue.unfinished_tasks
