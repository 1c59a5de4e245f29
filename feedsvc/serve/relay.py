"""Where a scan request goes. A webhook may land on any process of any serve: the process
whose serve holds the scanner lease hands it to its scanner (directly, or over the serve's
datagram channel); any other records it in the store's scan_requests table, which the lease
holder takes within a second (PostgreSQL NOTIFY wakes it at once; on SQLite it polls)."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

from feedsvc.model import Clock
from feedsvc.model import ScanRequest
from feedsvc.scan.scanner import Scanner
from feedsvc.serve.interprocess import ServeState
from feedsvc.store import Store

logger = logging.getLogger(__name__)
SQLITE_POLL_SECONDS = 0.25
LISTEN_TIMEOUT_SECONDS = 1.0


class Relay:
    """The dispatch of a server worker (or a `web` process): this serve's scanner when it
    holds the lease, else the store."""

    def __init__(self, store: Store, clock: Clock, state: ServeState | None) -> None:
        self.store = store
        self.clock = clock
        self.state = state  # None: a `web` serve, which has no scanner

    def __call__(self, request: ScanRequest) -> str:
        if self.state is not None and self.state.is_leader() and self.state.send(request):
            return "queued"
        self.store.add_scan_request(request, self.clock())
        return "queued"


class RequestPump:
    """In the scanner process: acts on requests from this serve's workers and, while it
    holds the lease, on those other processes left in the store."""

    def __init__(self, scanner: Scanner, state: ServeState, is_leader: Callable[[], bool]) -> None:
        self.scanner = scanner
        self.store = scanner.store
        self.state = state
        self.is_leader = is_leader
        self._stop = threading.Event()
        self._threads = [threading.Thread(target=self._from_workers, name="feedsvc-relay",
                                          daemon=True),
                         threading.Thread(target=self._from_store, name="feedsvc-requests",
                                          daemon=True)]

    def start(self) -> None:
        for thread in self._threads:
            thread.start()

    def stop(self) -> None:
        self._stop.set()

    def _from_workers(self) -> None:
        while not self._stop.is_set():
            try:
                request = self.state.receive(0.5)
                if request is None:
                    continue
                if self.is_leader():
                    self.scanner.request(request)
                else:  # lost the lease meanwhile: the new holder will take it from the store
                    self.store.add_scan_request(request, self.scanner.clock())
            except Exception:  # keep relaying whatever one request does
                logger.exception("relaying a scan request failed")

    def _from_store(self) -> None:
        pace = (LISTEN_TIMEOUT_SECONDS if self.store.dialect == "postgresql"
                else SQLITE_POLL_SECONDS)
        while not self._stop.is_set():
            try:
                if self.is_leader():
                    for request in self.store.take_scan_requests():
                        logger.info("scan request from another process: source=%s paths=%s",
                                    request.source, request.paths)
                        self.scanner.request(request)
                self.store.wait_for_scan_requests(pace)
            except Exception:  # a store outage: retry at the same pace
                logger.exception("reading scan requests failed")
                self._stop.wait(pace)
