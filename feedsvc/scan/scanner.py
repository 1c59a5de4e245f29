"""The one door every trigger goes through (poll, webhook, CLI, start-up, check): scans
never overlap; requests that arrive while one runs are merged into at most one more scan.
The scan itself is pipeline.py."""

from __future__ import annotations

import datetime as dt
import logging
import threading
import time
from collections.abc import Callable
from collections.abc import Sequence
from dataclasses import dataclass
from dataclasses import field

from feedsvc import metrics
from feedsvc.config import Config
from feedsvc.content import ContentSettings
from feedsvc.content.excerpt import ExcerptSettings
from feedsvc.feeds.info import feed_context
from feedsvc.model import Clock
from feedsvc.model import ScanJob
from feedsvc.model import ScanReport
from feedsvc.model import ScanRequest
from feedsvc.scan.pipeline import Progress
from feedsvc.scan.pipeline import ScanPipeline
from feedsvc.memory import release_memory
from feedsvc.store import Store
from feedsvc.urls import Urls

logger = logging.getLogger(__name__)


def utc_now() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)


def content_settings(config: Config) -> ContentSettings:
    ex = config.excerpt
    return ContentSettings(tz=config.site.tz, excerpt=ExcerptSettings(
        length=ex.length, code=ex.code_placeholder, display_math=ex.display_math_placeholder,
        inline_math=ex.inline_math_placeholder))


WALK_REASONS = {"startup", "takeover", "poll"}  # the safety net: always walk every file


@dataclass
class PendingRequests:
    """What the next scan looks at, merged from every request since the last one started:
    per source the union of the paths asked for; a request without paths (a walk) wins over
    paths for its source, and one for every source (source None) wins over all."""

    sources: set[str] = field(default_factory=set)  # walked
    paths: dict[str, set[str]] = field(default_factory=dict)  # looked at just there
    everything: bool = False
    reasons: set[str] = field(default_factory=set)

    def add(self, request: ScanRequest) -> None:
        source, paths = request.source, request.paths
        if source is None:
            self.everything = True
        elif paths is None:
            self.sources.add(source)
            self.paths.pop(source, None)
        elif source not in self.sources:
            self.paths.setdefault(source, set()).update(paths)
        self.reasons.add(request.reason)

    def job(self) -> ScanJob:
        """The one scan these requests merge into. Start-up and poll scans walk every file
        (the safety net); otherwise a git source without paths reads what its pull changed."""
        return ScanJob(
            reason="+".join(sorted(self.reasons)),
            sources=None if self.everything else tuple(sorted(self.sources | set(self.paths))),
            paths={} if self.everything else {n: tuple(sorted(p)) for n, p in self.paths.items()},
            pull=True, git_targets=not self.reasons & WALK_REASONS)

    def __bool__(self) -> bool:
        return self.everything or bool(self.sources) or bool(self.paths)



class Scanner:
    """Runs scans for every trigger; see the module docstring."""

    def __init__(self, config: Config, store: Store, *, clock: Clock = utc_now,
                 on_feeds_changed: Callable[[tuple[str, ...]], None] | None = None) -> None:
        self.config = config
        self.store = store
        store.feed_context = feed_context(config)
        store.record_publications = config.activitypub.enabled
        self.clock = clock
        self.urls = Urls(config.site.base_url)
        self.settings = content_settings(config)
        self.pipeline = ScanPipeline(config, store, clock, self.settings)
        self.on_feeds_changed = on_feeds_changed
        self.listeners: list[Callable[[ScanReport], None]] = []  # called after every applied scan
        self.store_listeners: list[Callable[[], None]] = []  # called after any store write
        # called once the start-up scan's kept state is built (serve's scanner process:
        # memory.settle_heap; not in-process scanners, whose heap is someone else's)
        self.after_warm: Callable[[], None] | None = None
        self.scans_run = 0
        self._run_lock = threading.Lock()
        self._pending_lock = threading.Lock()
        self._pending = PendingRequests()
        self._worker: threading.Thread | None = None
        self.min_interval = config.webhook.min_interval_seconds
        self._last_requested_start = -float("inf")

    # -- triggers -----------------------------------------------------------------------

    def request(self, request: ScanRequest) -> str:
        """Ask for a scan in the background. Returns "started" or "queued" (merged into the
        scan that follows the running one: a burst yields at most one more scan).
        `request.paths` (clean, relative to the source; needs a source) limits the scan of
        that source to those paths (a folder is walked, a path that is gone is removed);
        None walks it. A `pull = "git"` source requested without paths is scanned at the
        files its pull changed, unless a start-up or poll scan is merged in (those walk)."""
        if request.paths is not None and request.source is None:
            raise ValueError("paths need a source: they are relative to it")
        with self._pending_lock:
            self._pending.add(request)
            if self._worker is not None and self._worker.is_alive():
                return "queued"
            self._worker = threading.Thread(target=self._drain, name="feedsvc-scan", daemon=True)
            self._worker.start()
            return "started"

    def _drain(self) -> None:
        while True:
            # requested scans start at least min_interval apart: a storm of webhooks merges
            # into the scan under way plus one more, however long the storm lasts
            # leading edge: start-up and poll scans do not count toward the interval
            with self._pending_lock:
                counts = bool(self._pending.reasons - {"startup", "poll"})
            wait = self._last_requested_start + self.min_interval - time.monotonic()
            if counts and wait > 0:
                time.sleep(wait)
            with self._pending_lock:
                pending, self._pending = self._pending, PendingRequests()
                if not pending:
                    self._worker = None
                    return
            if pending.reasons - {"startup", "poll"}:
                self._last_requested_start = time.monotonic()
            try:
                self.run(pending.job())
                if pending.reasons & {"startup", "takeover"}:
                    with self._run_lock:  # what targeted scans keep, ready for the first one
                        self.pipeline.kept.warm()
                        if self.after_warm is not None:
                            self.after_warm()
                    release_memory()  # the build's temporaries (every entry ref) go back
            except Exception:  # the worker must survive anything a scan throws
                logger.exception("background scan failed")

    def wait_idle(self, timeout: float = 30.0) -> bool:
        """Block until no scan is running or queued (tests, shutdown)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self._pending_lock:
                idle = (self._worker is None or not self._worker.is_alive()) and not self._pending
            if idle and not self._run_lock.locked():
                return True
            time.sleep(0.02)
        return False

    def run(self, job: ScanJob = ScanJob(), progress: Progress | None = None) -> ScanReport:
        """One scan, now, in this thread; never overlaps another."""
        with self._run_lock:
            wall = time.perf_counter()
            try:
                report = self.pipeline.scan(job, progress)
            except Exception:  # counted, then re-raised untouched
                metrics.record_scan_failure(job.reason)
                raise
            if not job.dry_run:
                self.scans_run += 1
                metrics.record_scan(report, time.perf_counter() - wall)
        if job.dry_run:
            return report
        for notify in self.store_listeners:
            notify()
        if report.changed_feeds and self.on_feeds_changed is not None:
            self.on_feeds_changed(report.changed_feeds)
        for listener in self.listeners:
            listener(report)
        return report

    def publish_due(self) -> tuple[str, ...]:
        """Refresh feeds whose future-dated entries have come due."""
        with self._run_lock:
            changed = self.store.refresh_due(self.clock())  # validators only: kept state holds
        for notify in self.store_listeners:
            notify()
        if changed:
            logger.info("entries came due: feeds=%s", ",".join(changed))
            if self.on_feeds_changed is not None:
                self.on_feeds_changed(changed)
        return changed

    def next_due(self) -> dt.datetime | None:
        return self.store.next_due(self.clock())

    # -- the scan -----------------------------------------------------------------------
