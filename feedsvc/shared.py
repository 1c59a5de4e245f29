"""State shared by the processes of one `feedsvc serve` (its scanner child and its server
workers), made before they fork: a change counter the scanner bumps after every store write
(so each worker serves a committed change at once, without polling), whether this serve holds
the scanner lease, and a datagram channel that hands webhooks from the workers to the scanner."""

from __future__ import annotations

import json
import mmap
import select
import socket
import struct

from feedsvc.model import ScanRequest

_COUNTER = struct.Struct("q")
_CHANGES, _LEADER = 0, 8


class ServeState:
    """Anonymous shared memory plus a socketpair; every process of a serve inherits both."""

    def __init__(self) -> None:
        self._mem = mmap.mmap(-1, 16)  # MAP_SHARED | MAP_ANONYMOUS: the same pages after fork
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
