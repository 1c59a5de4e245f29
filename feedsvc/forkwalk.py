"""A walk of a big source in two processes. A walk is one lstat per file (22,000 at 10k
notes), and a syscall costs microseconds: most of a bare webhook's scan. Threads do not
help (the loop holds the GIL between stats; two threads walked slower than one here), so
a helper process walks every other top-level folder and sends its part back marshalled
through a pipe, while the scanning process walks the rest and the root's own files.

The helper is started once, as a fresh interpreter (`python -m feedsvc.forkwalk`), when a
source first proves big, and then serves every later walk. A fork per walk cost more than
it saved once the scanner was big: copying the page tables of a 400 MB process and the
copy-on-write faults after it made the split walk of 10k notes slower than one walk
(97 against 79 ms). The helper holds nothing but the walk, leaves when its pipe closes (so
it never outlives the scanner) and ignores the terminal's ^C.

The split is an optimisation and never changes what a walk sees: the serial walk is used
for a small source (the helper costs more than it saves), when the helper fails (it is
started again for the next walk), and when a symlink was met (which folder a link's
target is walked under depends on the order the one walk meets them; such a source is
walked serially from then on)."""

from __future__ import annotations

import marshal
import os
import pickle
import signal
import struct
import subprocess
import sys
import weakref
from typing import IO
from typing import Any

from feedsvc.model import Problem
from feedsvc.model import Source
from feedsvc.process import trim_heap
from feedsvc.sources import SourceWalk
from feedsvc.sources import walk_source

SPLIT_FROM = 4000  # files the source's last walk saw; below that a split costs more than it saves
_HEADER = struct.Struct(">I")  # each message: its length, then its bytes


class SplitWalker:
    """walk_source, split over two processes once a source is big (see the module docstring).
    One per pipeline: it remembers how big each source's last walk was."""

    def __init__(self, split_from: int = SPLIT_FROM) -> None:
        self.split_from = split_from
        self.splits = 0  # walks done in two processes
        self.helper = WalkHelper()
        self._last: dict[str, int] = {}  # source -> files seen; -1: walk it serially

    def walk(self, source: Source) -> SourceWalk:
        walk = None
        if self._last.get(source.name, 0) >= self.split_from and os.cpu_count() != 1:
            walk = self.helper.walk_in_two(source)
            if walk is not None:
                self.splits += 1
        if walk is None:
            walk = walk_source(source)
        files = -1 if walk.links else len(walk.notes) + len(walk.media_stats)
        self._last[source.name] = files
        if files >= self.split_from and os.cpu_count() != 1:
            self.helper.start()  # it boots while this scan goes on: ready for the next walk
        return walk

    def close(self) -> None:
        self.helper.close()


class WalkHelper:
    """The helper process of the module docstring, started on demand, restarted after a
    failure. Not thread-safe (the scanner serialises its walks)."""

    def __init__(self) -> None:
        self._proc: subprocess.Popen[bytes] | None = None
        self._finalizer: weakref.finalize[[subprocess.Popen[bytes]], WalkHelper] | None = None

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc is not None else None

    def start(self) -> bool:
        """Start the helper unless it runs; False when it cannot be started."""
        if self._proc is not None and self._proc.poll() is None:
            return True
        self.close()
        if not sys.executable:
            return False
        package_parent = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
        path = os.environ.get("PYTHONPATH")
        env = {**os.environ, "PYTHONPATH": package_parent + (os.pathsep + path if path else "")}
        try:
            proc = subprocess.Popen([sys.executable, "-m", "feedsvc.forkwalk"],
                                    stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                    stderr=subprocess.DEVNULL, env=env)
        except OSError:
            return False
        self._proc = proc
        self._finalizer = weakref.finalize(self, _stop, proc)
        return True

    def walk_in_two(self, source: Source) -> SourceWalk | None:
        """The walk of `source`, its top-level folders shared with the helper; None when it
        should be walked serially instead (the helper failed, or a symlink was met).
        SourceUnavailableError as walk_source raises it."""
        if not self.start():
            return None
        proc = self._proc
        assert proc is not None and proc.stdin is not None and proc.stdout is not None
        try:
            _send(proc.stdin, pickle.dumps((source, (1, 2))))
        except OSError:
            self.close()
            return None
        try:
            mine = walk_source(source, part=(0, 2))
        except BaseException:
            self.close()  # its answer would be read as the next walk's
            raise
        answer: Any = (False, None)
        try:
            data = _receive(proc.stdout)
            if data is not None:
                answer = marshal.loads(data)
        except (OSError, EOFError, ValueError, TypeError):
            pass
        ok, part = answer
        if not ok:
            self.close()
            return None
        notes, media_stats, media_followed, problems, unlisted, links = part
        if links or mine.links:
            return None
        mine.notes.update(notes)
        mine.media_stats.update(media_stats)
        mine.media_followed.extend(media_followed)
        mine.problems.extend(Problem(source=s, path=p, reason=r) for s, p, r in problems)
        mine.unlisted.extend(unlisted)
        return mine

    def close(self) -> None:
        """Stop the helper (it leaves once its pipe is closed)."""
        if self._finalizer is not None:
            self._finalizer()
        self._proc = self._finalizer = None


def _stop(proc: subprocess.Popen[bytes]) -> None:
    for stream in (proc.stdin, proc.stdout):
        if stream is not None:
            try:
                stream.close()
            except OSError:
                pass
    try:
        proc.wait(timeout=2)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def _send(stream: IO[bytes], data: bytes) -> None:
    stream.write(_HEADER.pack(len(data)) + data)
    stream.flush()


def _receive(stream: IO[bytes]) -> bytes | None:
    """One message, or None when the other side has gone."""
    head = stream.read(_HEADER.size)
    if len(head) < _HEADER.size:
        return None
    (size,) = _HEADER.unpack(head)
    data = stream.read(size)
    return data if len(data) == size else None


def serve(requests: IO[bytes], answers: IO[bytes]) -> None:
    """The helper's loop: a pickled (Source, part) in, its walk marshalled out, until the
    scanner closes the pipe."""
    while True:
        data = _receive(requests)
        if data is None:
            return
        answer = _answer(data)
        try:
            _send(answers, answer)
        except OSError:
            return  # the scanner has gone
        del answer
        trim_heap()  # the walk's 100,000 stats are garbage now: back to the OS, not kept


def _answer(request: bytes) -> bytes:
    """The walk a request asks for, marshalled; (False, None) when it fails."""
    try:
        source, part = pickle.loads(request)
        walk = walk_source(source, part=part)
        return marshal.dumps((True, (
            walk.notes, walk.media_stats, walk.media_followed,
            [(p.source, p.path, p.reason) for p in walk.problems], walk.unlisted,
            walk.links)))
    except Exception:  # noqa: BLE001 - the scanner walks serially instead
        return marshal.dumps((False, None))


if __name__ == "__main__":
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the terminal's ^C is the scanner's
    serve(sys.stdin.buffer, sys.stdout.buffer)
