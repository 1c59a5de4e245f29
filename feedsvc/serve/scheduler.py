"""APScheduler wiring: the poll job, the publish-when-due job and the lease that makes one
process per store the scheduler. Nothing starts on import; `feedsvc serve` calls start()."""

from __future__ import annotations

import datetime as dt
import logging
import os
import socket
import uuid
from collections.abc import Callable

from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.triggers.date import DateTrigger
from apscheduler.triggers.interval import IntervalTrigger

from feedsvc import metrics
from feedsvc.model import ScanJob
from feedsvc.model import ScanRequest
from feedsvc.scan.scanner import Scanner

logger = logging.getLogger(__name__)
LOCK_NAME = "scheduler"  # the one scanner lease per store (healthz reports its holder)
DEFAULT_LEASE_SECONDS = 30.0  # scheduler.lease_seconds
DUE_RECHECK_SECONDS = 60  # catches future entries added by scans in other processes


def owner_id() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


class FeedScheduler:
    """Runs the jobs only while this process holds the store's scheduler lease."""

    def __init__(self, scanner: Scanner, *, poll_seconds: int, owner: str | None = None,
                 lease_seconds: float = DEFAULT_LEASE_SECONDS, scan_on_lease: bool = False) -> None:
        self.scanner = scanner
        self.store = scanner.store
        self.poll_seconds = poll_seconds
        self.owner = owner or owner_id()
        self.is_leader = False
        self.lease = dt.timedelta(seconds=lease_seconds)
        # renewed three times per lease, so one slow renewal never loses it
        self.heartbeat_seconds = max(0.5, lease_seconds / 3)
        self.scan_on_lease = scan_on_lease  # `serve`: the holder scans when it takes the lease
        self._lease_taken = 0
        self.on_lease: Callable[[bool], None] | None = None  # told after every heartbeat
        self._scheduler = BackgroundScheduler(timezone=dt.timezone.utc, job_defaults={
            "coalesce": True, "max_instances": 1, "misfire_grace_time": 30})

    def start(self) -> None:
        self.scanner.listeners.append(self._after_scan)
        self._scheduler.add_job(self.heartbeat, IntervalTrigger(seconds=self.heartbeat_seconds),
                                id="heartbeat", replace_existing=True,
                                next_run_time=dt.datetime.now(dt.timezone.utc))
        if self.poll_seconds > 0:
            self._scheduler.add_job(self.poll, IntervalTrigger(seconds=self.poll_seconds),
                                    id="poll", replace_existing=True)
        self._scheduler.add_job(self.publish_due, IntervalTrigger(seconds=DUE_RECHECK_SECONDS),
                                id="publish-due-recheck", replace_existing=True)
        self._scheduler.start()

    def _after_scan(self, report: object) -> None:
        """A scan (from any trigger in this process) may have added a future-dated entry."""
        if self.is_leader:
            self.schedule_next_due()

    def shutdown(self) -> None:
        if self._after_scan in self.scanner.listeners:
            self.scanner.listeners.remove(self._after_scan)
        if self._scheduler.running:
            self._scheduler.shutdown(wait=False)
        if self.is_leader:
            self.store.release_lock(LOCK_NAME, self.owner)
            self.is_leader = False
            metrics.set_scanner_lease(False)

    def heartbeat(self) -> bool:
        """Take or renew the lease; only the holder polls and publishes."""
        now = self.scanner.clock()
        was_leader = self.is_leader
        try:
            self.is_leader = self.store.try_lock(LOCK_NAME, self.owner, now=now, ttl=self.lease)
        except Exception:  # a store outage: act as not holding it, retry on the next beat
            logger.exception("scheduler lease renewal failed: owner=%s", self.owner)
            self.is_leader = False
        metrics.set_scanner_lease(self.is_leader)
        if self.is_leader and not was_leader:
            logger.info("scheduler lease taken: owner=%s", self.owner)
            self.schedule_next_due()
            if self.scan_on_lease:
                self.scanner.request(ScanRequest(
                    reason="startup" if not self._lease_taken else "takeover"))
            self._lease_taken += 1
        if self.on_lease is not None:
            self.on_lease(self.is_leader)
        elif was_leader and not self.is_leader:
            logger.warning("scheduler lease lost: owner=%s", self.owner)
        return self.is_leader

    def poll(self) -> None:
        if not self.is_leader:
            return
        try:
            self.scanner.run(ScanJob(reason="poll"))
            self.store.set_meta("scheduler_last_poll", {"owner": self.owner,
                                                        "at": self.scanner.clock().isoformat()})
        except Exception:  # the job must survive anything so polling goes on
            logger.exception("poll scan failed")
        self.schedule_next_due()

    def publish_due(self) -> None:
        if not self.is_leader:
            return
        try:
            self.scanner.publish_due()
        except Exception:  # keep the scheduler alive
            logger.exception("publishing due entries failed")
        self.schedule_next_due()

    def schedule_next_due(self) -> dt.datetime | None:
        """Wake exactly when the next future-dated entry comes due."""
        due = self.scanner.next_due()
        if due is None:
            return None
        self._scheduler.add_job(self.publish_due, DateTrigger(run_date=due + dt.timedelta(
            milliseconds=50)), id="publish-due", replace_existing=True)
        return due
