"""`feedsvc serve`: N pre-forked granian workers on one port, plus (roles `all` and `scanner`)
one scanner process per serve that competes for the store's scanner lease, scans, polls and
acts on webhooks. Everything shared is made before any fork and before any thread starts: the
ServeState (change counter, lease flag, webhook channel) and the lease owner id, so /healthz
answers for the whole serve whichever worker replies."""

from __future__ import annotations

import functools
import importlib
import logging
import multiprocessing
import os
import signal
import tempfile
import threading
from collections.abc import Callable
from pathlib import Path
from types import FrameType
from typing import Any

from feedsvc.config import Config
from feedsvc.federation.delivery import DeliveryWorker
from feedsvc.memory import die_with_parent
from feedsvc.memory import limit_malloc_arenas
from feedsvc.memory import release_memory
from feedsvc.memory import settle_heap
from feedsvc.memory import share_heap
from feedsvc.serve.relay import Relay
from feedsvc.serve.relay import RequestPump
from feedsvc.scan.scanner import Scanner
from feedsvc.serve.scheduler import FeedScheduler
from feedsvc.serve.scheduler import owner_id
from feedsvc.serve.interprocess import ServeState
from feedsvc.store import open_store
from feedsvc.urls import Urls
from feedsvc.sources.watch import SourceWatcher
from feedsvc.web.websub import WebSubNotifier

logger = logging.getLogger(__name__)
ROLES = ("all", "web", "scanner")
SCANNER_STOP_SECONDS = 10


def _open(config: Config) -> Any:
    return open_store(config.store_url, keep_per_category=config.store.keep_per_category,
                      tombstone_days=config.feeds.tombstone_days)


def serve(config: Config, *, host: str, port: int, workers: int, threads: int, role: str,
          log_level: str = "INFO") -> None:
    """Run until SIGTERM/SIGINT. The caller has opened the store once (schema ready)."""
    from granian.constants import Interfaces
    from granian.log import LogLevels
    from granian.server import Server

    if role not in ROLES:
        raise ValueError(f"unknown role {role!r}")
    limit_malloc_arenas()  # before any thread starts; see feedsvc/memory.py
    if "PROMETHEUS_MULTIPROC_DIR" not in os.environ:  # metrics summed over the workers
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = tempfile.mkdtemp(prefix="feedsvc-metrics-")
    scans = role != "web"
    import feedsvc.serve.app  # noqa: F401  (every worker's imports, made once here: shared)

    share_heap()  # before the first fork: what is imported now is shared by every child
    state = ServeState() if scans else None
    owner = owner_id() if scans else None
    scanner_process = _start_scanner(config, state, owner) if state and owner else None
    server = Server(
        target="feedsvc.serve.server", address=host, port=port, interface=Interfaces.WSGI,
        workers=workers, blocking_threads=threads, respawn_failed_workers=True,
        log_level=LogLevels(log_level.lower() if log_level.upper() != "DEBUG" else "debug"),
        log_dictconfig={"handlers": {
            "console": {"formatter": "generic", "class": "logging.StreamHandler",
                        "stream": "ext://sys.stderr"},
            "access": {"formatter": "access", "class": "logging.StreamHandler",
                       "stream": "ext://sys.stderr"}}},
    )
    exited = _metrics_exit_hook()
    if exited is not None:
        server.on_startup(lambda: _watch_workers(server, exited))
    if scanner_process is not None:
        server.on_shutdown(lambda: _stop_scanner(scanner_process))
        threading.Thread(target=_supervise_scanner, args=(scanner_process,), daemon=True,
                         name="feedsvc-scanner-watch").start()
    logger.info("serving: url=http://%s:%d/ role=%s workers=%d base_url=%s sources=%d", host,
                port, role, workers, config.site.base_url, len(config.sources))
    loader = functools.partial(_worker_app, config, state, owner, role, os.getpid())
    try:
        server.serve(target_loader=loader, wrap_loader=False)
    finally:
        if scanner_process is not None:
            _stop_scanner(scanner_process)


# -- the workers ------------------------------------------------------------------------

def _worker_app(config: Config, state: ServeState | None, owner: str | None, role: str,
                parent: int) -> Any:
    """Runs in each forked worker: its own store connections, the app, the relay."""
    from feedsvc.serve.app import build_app  # imported before the fork (memory.share_heap)

    die_with_parent(parent)
    store = _open(config)
    app = build_app(config, store=store)
    services = app.extensions["feedsvc"]
    services.role = role
    services.scheduler_owner = owner
    services.relay = Relay(store, services.clock, state)
    if state is not None:
        services.publisher.changes = state.changes
        services.websub.tally = state.websub  # the pings the serve's scanner sent
    return app


def _metrics_exit_hook() -> Callable[[int], None] | None:
    try:  # feedsvc.metrics (prometheus multiprocess mode) may not be installed with this build
        metrics = importlib.import_module("feedsvc.metrics")
    except ImportError:
        return None
    hook: Callable[[int], None] | None = getattr(metrics, "worker_exited", None)
    return hook


def _watch_workers(server: Any, exited: Callable[[int], None]) -> None:
    """granian has no child-exit hook: note worker pids that went away, once a second."""
    def watch() -> None:
        known: set[int] = set()
        while True:
            current = {w.inner.pid for w in list(server.wrks) if w.inner.pid}
            for pid in known - {p for p in current if Path(f"/proc/{p}").exists()}:
                try:
                    exited(pid)
                except Exception:  # metrics must never take the server down
                    logger.exception("metrics worker_exited failed: pid=%d", pid)
            known = current
            threading.Event().wait(1.0)
    threading.Thread(target=watch, daemon=True, name="feedsvc-worker-watch").start()


# -- the scanner process ----------------------------------------------------------------

def _start_scanner(config: Config, state: ServeState, owner: str) -> Any:
    context = multiprocessing.get_context("fork")
    process = context.Process(target=_scanner_main, args=(config, state, owner, os.getpid()),
                              name="feedsvc-scanner")
    process.start()
    return process


def _stop_scanner(process: Any) -> None:
    if process.is_alive():
        process.terminate()
        process.join(SCANNER_STOP_SECONDS)
        if process.is_alive():
            process.kill()
            process.join(5)


def _supervise_scanner(process: Any) -> None:
    """A scanner that dies takes its serve down (exit 1), so a supervisor restarts it whole."""
    process.join()
    if process.exitcode is not None and process.exitcode not in (0, -signal.SIGTERM):
        logger.error("scanner process exited unexpectedly: exitcode=%s", process.exitcode)
        os.kill(os.getpid(), signal.SIGTERM)


def _scanner_main(config: Config, state: ServeState, owner: str, parent: int) -> None:
    die_with_parent(parent)
    stop = threading.Event()

    def on_term(signum: int, frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, on_term)
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl+C: the master stops us with SIGTERM
    multiprocessing.current_process().name = "feedsvc-scanner"
    store = _open(config)
    websub = WebSubNotifier(config.websub.hubs, Urls(config.site.base_url), tally=state.websub)
    scanner = Scanner(config, store, on_feeds_changed=websub.notify)
    scanner.after_warm = settle_heap  # this process is the scanner's own
    scanner.store_listeners.append(state.bump)
    scanner.listeners.append(_after_scan)
    mirror = _attach_mirror(config, store, scanner)
    scheduler = FeedScheduler(scanner, poll_seconds=config.scheduler.poll_seconds, owner=owner,
                              lease_seconds=config.scheduler.lease_seconds, scan_on_lease=True)
    scheduler.on_lease = state.set_leader
    pump = RequestPump(scanner, state, lambda: scheduler.is_leader)
    # watch = true sources: events become targeted requests, only while we hold the lease
    watcher = SourceWatcher(config.sources, scanner.request, is_leader=lambda: scheduler.is_leader)
    delivery = None
    if config.activitypub.enabled:  # sends only while this process holds the lease
        delivery = DeliveryWorker.for_store(config, store, scanner.clock)
        scanner.store_listeners.append(delivery.wake)
        delivery.start(lambda: scheduler.is_leader)
    scheduler.start()
    pump.start()
    watcher.start()
    logger.info("scanner started: owner=%s lease_seconds=%s", owner,
                config.scheduler.lease_seconds)
    while not stop.wait(1.0):
        if os.getppid() != parent:
            break
    pump.stop()
    watcher.stop()
    state.set_leader(False)
    scanner.wait_idle(SCANNER_STOP_SECONDS)
    if delivery is not None:
        delivery.stop()  # in-flight sends end; their claims run out for the next holder
    scheduler.shutdown()  # releases the lease: a standby takes it at its next heartbeat
    if mirror is not None:
        mirror.stop()
    store.close()


def _after_scan(report: object) -> None:
    release_memory()  # the scan's high-water mark goes back to the OS


def _attach_mirror(config: Config, store: Any, scanner: Scanner) -> Any:
    """[publish] dir is kept current by the process that scans (cli checked the folder)."""
    if not config.publish.dir:
        return None
    from feedsvc.serve.app import build_app
    from feedsvc.web.mirror import attach_mirror

    return attach_mirror(build_app(config, store=store, scanner=scanner))
