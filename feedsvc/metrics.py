"""Prometheus metrics: HTTP requests, scans, webhooks, WebSub pings and the scanner lease.

Other modules only report events here (record_request, record_scan, ...); nothing here reads
the store or starts anything. With env PROMETHEUS_MULTIPROC_DIR set, values live in
prometheus_client's per-process mmap files in that folder and /metrics sums every process
(the pre-fork server sets the env before forking and calls worker_exited(pid) for each dead
worker). The env is read on use, not at import: `feedsvc serve` may set it after this module
was imported (cli imports scan, which imports this), so the metric set is rebuilt once when
it appears. Layer 2: imports only prometheus_client and feedsvc.model/errors/config."""

from __future__ import annotations

import hmac
import logging
import os
import threading
from dataclasses import dataclass
from dataclasses import field
from typing import Any

from prometheus_client import CollectorRegistry
from prometheus_client import Counter
from prometheus_client import Gauge
from prometheus_client import Histogram
from prometheus_client import ProcessCollector
from prometheus_client import generate_latest
from prometheus_client import multiprocess
from prometheus_client import values

from feedsvc.errors import FeedsvcError
from feedsvc.errors import PayloadTooLargeError
from feedsvc.errors import WebhookAuthError
from feedsvc.errors import WebhookDisabledError
from feedsvc.model import ScanReport

logger = logging.getLogger(__name__)
MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
# the classic text format, which every Prometheus reads (our names need no UTF-8 escaping)
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
KNOWN_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
UNMATCHED_ROUTE = "unmatched"  # requests no route answers: one label, not one per path
SCAN_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 900.0)


@dataclass(frozen=True, slots=True)
class Metrics:
    """One set of metric objects, for single-process or multiprocess mode."""

    multiproc_dir: str | None
    registry: CollectorRegistry | None  # single-process mode only
    requests: Counter
    not_modified: Counter
    response_bytes: Counter
    request_seconds: Histogram
    scans: Counter
    scan_failures: Counter
    scan_seconds: Histogram
    scan_notes: Counter
    skipped_files: Gauge
    last_scan: Gauge
    source_errors: Counter
    webhooks: Counter
    websub_pings: Counter
    websub_attempt_failures: Counter
    scanner_lease: Gauge
    ap_inbox: Counter
    ap_deliveries: Counter
    ap_queue_depth: Gauge
    ap_oldest_pending: Gauge
    ap_followers: Gauge
    # labelled children of the request metrics by (route, method, status): .labels() takes a
    # lock and builds a tuple per call, which was most of the cost of counting a 304
    request_children: dict[tuple[str, str, int], tuple[Any, ...]] = field(default_factory=dict)


def _build(directory: str | None) -> Metrics:
    # prometheus_client picks its value class when a metric is made; it reads the env only
    # once, at its own import, so the choice is made here instead (its tests do the same)
    values.ValueClass = (values.MultiProcessValue()  # type: ignore[no-untyped-call]
                         if directory else values.MutexValue)
    registry = None if directory else CollectorRegistry()
    if registry is not None:
        ProcessCollector(registry=registry)
    return Metrics(
        multiproc_dir=directory,
        registry=registry,
        requests=Counter("feedsvc_http_requests", "HTTP requests answered, by route, method "
                         "and status", ["route", "method", "status"], registry=registry),
        not_modified=Counter("feedsvc_http_not_modified", "304 Not Modified answers by route "
                             "(also in feedsvc_http_requests_total)", ["route"],
                             registry=registry),
        response_bytes=Counter("feedsvc_http_response_bytes", "Response body bytes sent, by "
                               "route (after compression)", ["route"], registry=registry),
        request_seconds=Histogram("feedsvc_http_request_duration_seconds", "Time to answer "
                                  "a request, by route", ["route"], registry=registry),
        scans=Counter("feedsvc_scans", "Scans run, by trigger (startup, poll, webhook, cli; "
                      "merged requests join theirs with '+')", ["trigger"], registry=registry),
        scan_failures=Counter("feedsvc_scan_failures", "Scans that raised instead of "
                              "finishing, by trigger", ["trigger"], registry=registry),
        scan_seconds=Histogram("feedsvc_scan_duration_seconds", "Duration of scans, by "
                               "trigger", ["trigger"], buckets=SCAN_BUCKETS, registry=registry),
        scan_notes=Counter("feedsvc_scan_notes", "Entries changed by scans: added, updated, "
                           "renamed, removed", ["change"], registry=registry),
        skipped_files=Gauge("feedsvc_skipped_files", "Files skipped (with a problem) in the "
                            "last scan", registry=registry, multiprocess_mode="mostrecent"),
        last_scan=Gauge("feedsvc_last_scan_timestamp_seconds", "When the last scan finished "
                        "(Unix time)", registry=registry, multiprocess_mode="mostrecent"),
        source_errors=Counter("feedsvc_source_errors", "Sources whose changes a scan did not "
                              "apply (unavailable root, deletion guard, failed git pull)",
                              ["source"], registry=registry),
        webhooks=Counter("feedsvc_webhooks", "Webhook calls by outcome: started, queued, "
                         "duplicate, unauthorized, disabled, too_large, unknown_source, "
                         "bad_request", ["outcome"], registry=registry),
        websub_pings=Counter("feedsvc_websub_pings", "WebSub hub pings by outcome: sent, "
                             "failed (every retry failed), dropped (queue full)", ["outcome"],
                             registry=registry),
        websub_attempt_failures=Counter("feedsvc_websub_ping_attempt_failures", "Single "
                                        "WebSub ping attempts that failed (retried)",
                                        registry=registry),
        scanner_lease=Gauge("feedsvc_scanner_lease_held", "1 while this serve holds the "
                            "store's scanner (scheduler) lease, else 0", registry=registry,
                            multiprocess_mode="livemax"),
        ap_inbox=Counter("feedsvc_activitypub_inbox_requests", "ActivityPub inbox POSTs by "
                         "outcome: followed, unfollowed, deleted, ignored, not_found, too_large, "
                         "unsigned, bad_signature, bad_json", ["outcome"], registry=registry),
        ap_deliveries=Counter("feedsvc_activitypub_deliveries", "ActivityPub deliveries by "
                              "outcome: delivered, retry, gone (410), failed (final 4xx), "
                              "dropped (retried for retry_days)", ["outcome"], registry=registry),
        ap_queue_depth=Gauge("feedsvc_activitypub_queue_depth", "Deliveries waiting in the "
                             "store's queue (read from the store at each scrape)",
                             registry=registry, multiprocess_mode="mostrecent"),
        ap_oldest_pending=Gauge("feedsvc_activitypub_oldest_pending_seconds", "Age of the "
                                "oldest waiting delivery (0: none)", registry=registry,
                                multiprocess_mode="mostrecent"),
        ap_followers=Gauge("feedsvc_activitypub_followers", "Followers per actor (read from "
                           "the store at each scrape)", ["actor"], registry=registry,
                           multiprocess_mode="mostrecent"),
    )


_lock = threading.Lock()
_current: Metrics | None = None


def _directory() -> str | None:
    directory = os.environ.get(MULTIPROC_ENV) or None
    if directory is not None and not os.path.isdir(directory):
        return None
    return directory


def current() -> Metrics:
    """The metric set for the mode the environment asks for now."""
    global _current
    directory = _directory()
    found = _current
    if found is not None and found.multiproc_dir == directory:
        return found
    with _lock:
        if _current is None or _current.multiproc_dir != directory:
            if os.environ.get(MULTIPROC_ENV) and directory is None:
                logger.warning("metrics: %s is not a folder; counting in this process only",
                               MULTIPROC_ENV)
            _current = _build(directory)
        return _current


# -- what other modules report -------------------------------------------------------------

def record_request(route: str | None, method: str, status: int, body_bytes: int,
                   seconds: float) -> None:
    m = current()
    label = route or UNMATCHED_ROUTE
    method = method if method in KNOWN_METHODS else "other"  # clients choose method names
    key = (label, method, status)
    children = m.request_children.get(key)
    if children is None:
        children = (m.requests.labels(label, method, str(status)),
                    m.not_modified.labels(label) if status == 304 else None,
                    m.response_bytes.labels(label), m.request_seconds.labels(label))
        m.request_children[key] = children
    requests, not_modified, response_bytes, request_seconds = children
    requests.inc()
    if not_modified is not None:
        not_modified.inc()
    if body_bytes:
        response_bytes.inc(body_bytes)
    request_seconds.observe(seconds)


def record_scan(report: ScanReport, seconds: float) -> None:
    m = current()
    m.scans.labels(report.reason).inc()
    m.scan_seconds.labels(report.reason).observe(seconds)
    for change, ids in (("added", report.added), ("updated", report.updated),
                        ("renamed", report.renamed), ("removed", report.removed)):
        if ids:
            m.scan_notes.labels(change).inc(len(ids))
    m.skipped_files.set(len(report.problems))
    m.last_scan.set(report.finished.timestamp())
    for problem in report.source_errors:
        m.source_errors.labels(problem.source).inc()


def record_scan_failure(trigger: str) -> None:
    current().scan_failures.labels(trigger).inc()


def record_webhook(outcome: str) -> None:
    """started / queued / duplicate, or a refusal (see webhook_refusal)."""
    current().webhooks.labels(outcome).inc()


def webhook_refusal(error: FeedsvcError) -> str:
    if isinstance(error, WebhookAuthError):
        return "unauthorized"
    if isinstance(error, WebhookDisabledError):
        return "disabled"
    if isinstance(error, PayloadTooLargeError):
        return "too_large"
    return "bad_request"


def record_websub_ping(outcome: str) -> None:
    current().websub_pings.labels(outcome).inc()


def record_websub_attempt_failure() -> None:
    current().websub_attempt_failures.inc()


def record_inbox(outcome: str) -> None:
    current().ap_inbox.labels(outcome).inc()


def record_delivery(outcome: str) -> None:
    current().ap_deliveries.labels(outcome).inc()


def set_federation_state(depth: int, oldest_seconds: float,
                         followers: dict[str, int]) -> None:
    """What the store says of the queue and the followers, set right before a scrape."""
    m = current()
    m.ap_queue_depth.set(depth)
    m.ap_oldest_pending.set(oldest_seconds)
    for actor, count in followers.items():
        m.ap_followers.labels(actor).set(count)


def set_scanner_lease(held: bool) -> None:
    current().scanner_lease.set(1 if held else 0)


# -- exposition ----------------------------------------------------------------------------

def exposition() -> bytes:
    """The text exposition of every metric (summed over processes in multiprocess mode)."""
    m = current()
    if m.multiproc_dir is None:
        assert m.registry is not None
        return generate_latest(m.registry)
    registry = CollectorRegistry()
    multiprocess.MultiProcessCollector(registry, path=m.multiproc_dir)  # type: ignore[no-untyped-call]
    return generate_latest(registry)


def worker_exited(pid: int) -> None:
    """Called by the pre-fork server for each worker that ended: its live gauges (the lease)
    stop counting; its counters stay in the sums, as counters must."""
    directory = _directory()
    if directory is not None:
        multiprocess.mark_process_dead(pid, path=directory)  # type: ignore[no-untyped-call]


def is_authorized(authorization: str | None, token: str) -> bool:
    """`Authorization: Bearer <token>`, compared in constant time; no token means open."""
    if not token:
        return True
    scheme, _, given = (authorization or "").partition(" ")
    if scheme.lower() != "bearer":
        return False
    return hmac.compare_digest(given.strip().encode("utf-8"), token.encode("utf-8"))
