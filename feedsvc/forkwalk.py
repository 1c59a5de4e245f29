"""A walk of a big source in two processes. A walk is one lstat per file (22,000 at 10k
notes), and a syscall costs microseconds: most of a bare webhook's scan. Threads do not
help (the loop holds the GIL between stats; two threads walked slower than one here), so
the scanner forks a child that walks every other top-level folder and sends its part back
marshalled through a pipe, while the parent walks the rest and the root's own files.

The child runs only the walk (no lock another thread could hold: no database, no logging),
then leaves with os._exit. The split is an optimisation and never changes what a walk sees:
the serial walk is used for a small source (forking costs more than it saves), when the
child fails, and when a symlink was met (which folder a link's target is walked under
depends on the order the one walk meets them; such a source is walked serially from then
on)."""

from __future__ import annotations

import marshal
import os
import signal
import warnings
from typing import NoReturn

from feedsvc.model import Problem
from feedsvc.model import Source
from feedsvc.sources import SourceWalk
from feedsvc.sources import walk_source

SPLIT_FROM = 4000  # files the source's last walk saw; below that a fork costs more than it saves


class SplitWalker:
    """walk_source, split over two processes once a source is big (see the module docstring).
    One per pipeline: it remembers how big each source's last walk was."""

    def __init__(self, split_from: int = SPLIT_FROM) -> None:
        self.split_from = split_from
        self.splits = 0  # walks done in two processes
        self._last: dict[str, int] = {}  # source -> files seen; -1: walk it serially

    def walk(self, source: Source) -> SourceWalk:
        walk = None
        if self._last.get(source.name, 0) >= self.split_from and os.cpu_count() != 1 \
                and hasattr(os, "fork"):
            walk = walk_in_two(source)
            if walk is not None:
                self.splits += 1
        if walk is None:
            walk = walk_source(source)
        self._last[source.name] = -1 if walk.links else len(walk.notes) + len(walk.media_stats)
        return walk


def walk_in_two(source: Source) -> SourceWalk | None:
    """The walk of `source`, its top-level folders shared with a forked child; None when
    it should be walked serially instead (the child failed, or a symlink was met).
    SourceUnavailableError as walk_source raises it."""
    read_end, write_end = os.pipe()
    try:
        with warnings.catch_warnings():  # Python 3.12+ warns about forking with threads
            warnings.simplefilter("ignore", DeprecationWarning)
            pid = os.fork()
    except OSError:
        os.close(read_end)
        os.close(write_end)
        return None
    if pid == 0:
        _child(source, read_end, write_end)
    os.close(write_end)
    try:
        mine = walk_source(source, part=(0, 2))
        with os.fdopen(read_end, "rb") as reader:
            read_end = -1
            data = reader.read()
    finally:
        if read_end != -1:
            os.close(read_end)  # a child still writing gets EPIPE and leaves
        _, status = os.waitpid(pid, 0)
    if status != 0 or not data or mine.links:
        return None
    notes, media_stats, media_followed, problems, unlisted, links = marshal.loads(data)
    if links:
        return None
    mine.notes.update(notes)
    mine.media_stats.update(media_stats)
    mine.media_followed.extend(media_followed)
    mine.problems.extend(Problem(source=s, path=p, reason=r) for s, p, r in problems)
    mine.unlisted.extend(unlisted)
    return mine


def _child(source: Source, read_end: int, write_end: int) -> NoReturn:
    """The forked child: walks its part, writes it, and leaves (never returns)."""
    code = 1
    try:
        os.close(read_end)
        signal.signal(signal.SIGINT, signal.SIG_IGN)  # the terminal's ^C is the parent's
        walk = walk_source(source, part=(1, 2))
        data = marshal.dumps((walk.notes, walk.media_stats, walk.media_followed,
                              [(p.source, p.path, p.reason) for p in walk.problems],
                              walk.unlisted, walk.links))
        with os.fdopen(write_end, "wb") as writer:
            writer.write(data)
        code = 0
    finally:
        os._exit(code)
