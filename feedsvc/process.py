"""Process-level tuning for the long-running server, applied by `feedsvc serve` only.

glibc gives each thread that allocates its own malloc arena (up to 8 per core). With waitress's
worker threads rendering and compressing large feeds, memory stays fragmented across those
arenas and the resident size creeps upward for minutes before it levels off. Two arenas keep it
flat (bench/soak.py: +25% over 10 minutes with the default, about +6% with two). An operator's
own MALLOC_ARENA_MAX wins."""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
import logging
import os
import signal
import threading
import time

logger = logging.getLogger(__name__)
M_ARENA_MAX = -8  # from glibc's malloc.h
SERVER_ARENAS = 2


def limit_malloc_arenas(arenas: int = SERVER_ARENAS) -> bool:
    """Cap glibc's malloc arenas; call before any thread starts. False where not glibc."""
    if "MALLOC_ARENA_MAX" in os.environ:
        return False
    name = ctypes.util.find_library("c")
    if name is None:
        return False
    try:
        libc = ctypes.CDLL(name)
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return False  # not glibc (musl, macOS): nothing to tune
    ok = bool(mallopt(M_ARENA_MAX, arenas))
    logger.debug("malloc arenas limited: arenas=%d ok=%s", arenas, ok)
    return ok


PR_SET_PDEATHSIG = 1  # from linux/prctl.h


def die_with_parent(expected_parent: int) -> None:
    """Have the kernel SIGKILL this process when its parent dies (Linux), so a serve killed
    with SIGKILL leaves no scanner still renewing its lease nor a worker holding its port."""
    name = ctypes.util.find_library("c")
    if name is not None:
        try:
            ctypes.CDLL(name).prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
        except (OSError, AttributeError):
            pass  # not Linux: the scanner also checks its parent once a second
    if os.getppid() != expected_parent:  # the parent died before prctl took effect
        os._exit(1)


_TRIM_MIN_SECONDS = 2.0
_last_trim = [0.0]


def release_memory() -> bool:
    """Hand freed heap pages back to the OS (glibc malloc_trim) after a burst of allocations
    (a scan, a feed render), at most every couple of seconds; False where not glibc or skipped.
    The resident size then follows what is live, not the high-water mark of the burst."""
    now = time.monotonic()
    if now - _last_trim[0] < _TRIM_MIN_SECONDS:
        return False
    _last_trim[0] = now
    return trim_heap()


def trim_heap() -> bool:
    """glibc's malloc_trim(0) now; False where there is no glibc."""
    libc = _libc()
    if libc is None:
        return False
    try:
        return bool(libc.malloc_trim(0))
    except AttributeError:
        return False


@functools.cache
def _libc() -> ctypes.CDLL | None:
    name = ctypes.util.find_library("c")  # runs ldconfig: once per process
    if name is None:
        return None
    try:
        return ctypes.CDLL(name)
    except OSError:
        return None


TRIM_CHECK_SECONDS = 1.0
WORK_CPU_SECONDS = 0.02  # CPU time in one check interval that counts as a burst of work
IDLE_CPU_SECONDS = 0.005  # ... and that counts as idle: the burst is over


def trim_after_work(check_seconds: float = TRIM_CHECK_SECONDS) -> threading.Thread | None:
    """Start a daemon thread that hands freed heap back to the OS (malloc_trim) when a burst
    of work is over: the process used CPU since the last pass and then sat idle for a check
    interval. A worker's resident size then falls back after a burst of requests instead of
    staying at its high-water mark (glibc keeps the freed pages of rendered pages and bodies,
    over 512 bytes and so not pymalloc's, until told). A pass walks every free chunk (ms on
    a fragmented heap, the allocator locked meanwhile), so under steady load there is none.
    None where not glibc."""
    name = ctypes.util.find_library("c")
    try:
        trim = ctypes.CDLL(name).malloc_trim if name is not None else None
    except (OSError, AttributeError):
        trim = None
    if trim is None:
        return None

    def run() -> None:
        worked = False
        before = time.process_time()
        while True:
            time.sleep(check_seconds)
            now = time.process_time()
            used, before = now - before, now
            if used >= WORK_CPU_SECONDS:
                worked = True
            elif worked and used < IDLE_CPU_SECONDS:
                trim(0)
                worked = False
                before = time.process_time()  # the pass itself is not work to trim after

    thread = threading.Thread(target=run, daemon=True, name="feedsvc-heap-trim")
    thread.start()
    return thread


def share_heap() -> None:
    """In serve's master, before it forks the scanner and the workers, once it imported what
    they all run: freeze the heap (gc.freeze). A child's collections then never walk those
    objects, so the pages holding them stay shared copy-on-write instead of being copied into
    every process (bench/servemem.py)."""
    import gc

    gc.collect()
    gc.freeze()


def settle_heap() -> None:
    """Collect once and freeze what is left (gc.freeze), after the scanner built what it
    keeps (link index, file stats): later collections skip those objects. A full collection
    over them cost about 50 ms at 10,000 notes, and came every few one-edit scans, in the
    middle of one. A scan big enough to fork render workers unfreezes (rendering.py)."""
    import gc

    gc.collect()
    gc.freeze()
