"""WebSub publisher pings (W3C WebSub §7): after a feed changes, POST hub.mode=publish and
hub.url=<feed URL> to every configured hub, from a background thread with retries and
backoff, so neither a scan nor a request ever waits for a hub."""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass

import requests

from feedsvc import metrics
from feedsvc.model import FeedFormat
from feedsvc.urls import Urls

logger = logging.getLogger(__name__)


@dataclass
class WebSubStats:
    sent: int = 0
    failed: int = 0
    dropped: int = 0
    last_error: str | None = None


class WebSubNotifier:
    """Queue of (hub, feed URL) pings, drained by one daemon thread started on first use."""

    def __init__(self, hubs: Iterable[str], urls: Urls, *, timeout: float = 5.0,
                 attempts: int = 4, backoff: float = 1.0, max_queue: int = 1000) -> None:
        self.hubs = tuple(hubs)
        self.urls = urls
        self.timeout = timeout
        self.attempts = attempts
        self.backoff = backoff
        self.stats = WebSubStats()
        self._queue: queue.Queue[tuple[str, str]] = queue.Queue(maxsize=max_queue)
        self._thread: threading.Thread | None = None
        self._start_lock = threading.Lock()
        self._session = requests.Session()

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
                        self.stats.dropped += 1
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
                    self.stats.sent += 1
                    metrics.record_websub_ping("sent")
                    return
                error = f"HTTP {response.status_code}"
            except requests.RequestException as e:
                error = type(e).__name__
            logger.warning("websub ping failed: hub=%s feed=%s attempt=%d error=%s",
                           hub, feed_url, attempt, error)
            self.stats.last_error = error
            metrics.record_websub_attempt_failure()
            if attempt < self.attempts:
                time.sleep(delay)
                delay *= 2
        self.stats.failed += 1
        metrics.record_websub_ping("failed")

    def join(self, timeout: float = 10.0) -> bool:
        """Wait until queued pings are done (tests)."""
        deadline = time.monotonic() + timeout
        while self._queue.unfinished_tasks and time.monotonic() < deadline:
            time.sleep(0.02)
        return not self._queue.unfinished_tasks
