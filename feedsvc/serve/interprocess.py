"""State shared by the processes of one `feedsvc serve` (its scanner child and its server
workers), made before they fork: a change counter the scanner bumps after every store write
(so each worker serves a committed change at once, without polling), whether this serve holds
the scanner lease, the serve's WebSub ping counts (sent by the scanner, reported by /healthz
in every worker), and a datagram channel that hands webhooks from the workers to the scanner."""

from __future__ import annotations

import json
import mmap
import select
import socket
import struct
import threading
import time

from feedsvc.model import ScanRequest
from feedsvc.web.websub import PingOutcome
from feedsvc.web.websub import WebSubStats

_COUNTER = struct.Struct("q")
_CHANGES, _LEADER = 0, 8
_PINGS = {"sent": 16, "failed": 24, "dropped": 32}
_ERROR_SEQUENCE, _ERROR_LENGTH, _ERROR = 40, 48, 56
ERROR_BYTES = 200  # "HTTP 503", "ConnectTimeout": the notifier's errors are short
SHARED_BYTES = _ERROR + ERROR_BYTES  # the shared memory a ServeState maps
_READ_TRIES = 100  # a reader waits at most about 0.1 s for a writer


class SharedPingTally:
    """A WebSub PingTally (web/websub.py) in a serve's shared memory, so every process reads
    the serve's counts. The scanner process is the only writer: workers hand scans to it (their
    relay), so their notifiers never ping. The last error is written under a sequence number,
    odd while it changes, and a reader retries until it reads one even value on both sides."""

    def __init__(self, mem: mmap.mmap) -> None:
        self._mem = mem
        self._lock = threading.Lock()  # the scan thread drops, the notifier thread sends

    def count(self, outcome: PingOutcome) -> None:
        offset = _PINGS[outcome]
        with self._lock:
            _COUNTER.pack_into(self._mem, offset, _COUNTER.unpack_from(self._mem, offset)[0] + 1)

    def note_error(self, error: str) -> None:
        data = error.encode("utf-8")[:ERROR_BYTES]
        with self._lock:
            sequence = _COUNTER.unpack_from(self._mem, _ERROR_SEQUENCE)[0]
            _COUNTER.pack_into(self._mem, _ERROR_SEQUENCE, sequence + 1)
            _COUNTER.pack_into(self._mem, _ERROR_LENGTH, len(data))
            self._mem[_ERROR:_ERROR + len(data)] = data
            _COUNTER.pack_into(self._mem, _ERROR_SEQUENCE, sequence + 2)

    def read(self) -> WebSubStats:
        sent, failed, dropped = (_COUNTER.unpack_from(self._mem, _PINGS[outcome])[0]
                                 for outcome in ("sent", "failed", "dropped"))
        return WebSubStats(sent=sent, failed=failed, dropped=dropped,
                           last_error=self._read_error())

    def _read_error(self) -> str | None:
        for _ in range(_READ_TRIES):
            before = _COUNTER.unpack_from(self._mem, _ERROR_SEQUENCE)[0]
            if before % 2:  # the writer is mid-way: let it finish
                time.sleep(0.001)
                continue
            length = _COUNTER.unpack_from(self._mem, _ERROR_LENGTH)[0]
            data = self._mem[_ERROR:_ERROR + length]
            if _COUNTER.unpack_from(self._mem, _ERROR_SEQUENCE)[0] == before:
                # a cut inside a character drops that character
                return data.decode("utf-8", "ignore") if before else None
        return None  # the writer kept writing: no error to report this time


class ServeState:
    """Anonymous shared memory plus a socketpair; every process of a serve inherits both."""

    def __init__(self) -> None:
        # MAP_SHARED | MAP_ANONYMOUS: the same pages after fork
        self._mem = mmap.mmap(-1, SHARED_BYTES)
        self.websub = SharedPingTally(self._mem)
        self._rx, self._tx = socket.socketpair(socket.AF_UNIX, socket.SOCK_DGRAM)
        self._tx.setblocking(False)  # a stuck scanner never blocks a worker: it uses the store

    def changes(self) -> int:
        value: int = _COUNTER.unpack_from(self._mem, _CHANGES)[0]
        return value

    def bump(self) -> None:
        """Called by the scanner process (the only writer) after each store write."""
        _COUNTER.pack_into(self._mem, _CHANGES, self.changes() + 1)

    def is_leader(self) -> bool:
        return bool(_COUNTER.unpack_from(self._mem, _LEADER)[0])

    def set_leader(self, leader: bool) -> None:
        _COUNTER.pack_into(self._mem, _LEADER, int(leader))

    def send(self, request: ScanRequest) -> bool:
        """Hand a scan request to this serve's scanner; False if it cannot take it now."""
        data = json.dumps({"source": request.source, "reason": request.reason,
                           "paths": None if request.paths is None else list(request.paths)},
                          ensure_ascii=False).encode()
        try:
            self._tx.send(data)
        except OSError:  # buffer full, or too large for one datagram
            return False
        return True

    def receive(self, timeout: float) -> ScanRequest | None:
        ready, _, _ = select.select([self._rx], [], [], timeout)
        if not ready:
            return None
        raw = json.loads(self._rx.recv(1 << 20))
        paths = raw.get("paths")
        return ScanRequest(source=raw.get("source"), reason=str(raw.get("reason", "webhook")),
                           paths=None if paths is None else tuple(paths))
