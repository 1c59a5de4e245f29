"""Memory and process lifetime of long-running processes (glibc malloc, the garbage collector,
prctl); where there is no glibc or Linux a helper does nothing. `feedsvc serve` applies most:
it caps malloc arenas and freezes the imported heap before it forks, and its workers and its
scanner process die with it. release_memory hands freed heap back to the OS after a scan and
after a feed's compression (scan/scanner.py, web/feedcache.py), in serve or not.

Why two arenas: glibc gives each thread that allocates its own arena (up to 8 per core). With
request threads (`serve --threads`) rendering and compressing large feeds, memory stays
fragmented across them and the resident size creeps upward for minutes before it levels off;
two arenas kept it flat (bench/soak.py, on a one-process threaded server: +25% over 10 minutes
with the default, about +6% with two). An operator's own MALLOC_ARENA_MAX wins."""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
import logging
import os
import signal
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
    middle of one. A scan big enough to fork render workers unfreezes (scan/workers.py)."""
    import gc

    gc.collect()
    gc.freeze()
