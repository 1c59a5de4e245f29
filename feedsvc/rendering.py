"""Rendering many notes at once on every core. Rendering is pure (content.render_note), so a
large batch -- a cold scan of a big folder -- is split across worker processes; small batches
stay in-process, where starting workers would cost more than it saves.

Workers are forked. Spawned workers re-run the host's __main__, and one without an
`if __name__ == "__main__"` guard (any script that embeds feedsvc) makes them scan again and
the pool never start. Forking a process that has threads is safe here because a worker only
runs pure rendering code: it touches no lock another thread could hold (no database, no
logging, no I/O). If the pool cannot start anyway, the batch is rendered in-process."""

from __future__ import annotations

import logging
import multiprocessing
import os
import threading
import warnings
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeoutError
from concurrent.futures.process import BrokenProcessPool

from feedsvc.content import ContentSettings
from feedsvc.content import NoteText
from feedsvc.content import render_note
from feedsvc.content.links import LinkResolver
from feedsvc.errors import NoteError
from feedsvc.model import NoteFile
from feedsvc.model import ParsedNote

logger = logging.getLogger(__name__)
PARALLEL_THRESHOLD = 400
STARTUP_TIMEOUT_SECONDS = 60.0
CHUNK = 64
Job = tuple[NoteFile, NoteText, str]  # the note, its text, its entry URL
Result = ParsedNote | NoteError

_worker_state: tuple[LinkResolver, ContentSettings] | None = None
_pool_lock = threading.Lock()  # one parallel batch at a time: workers fork with _worker_state


def _init_worker(resolver: LinkResolver, settings: ContentSettings) -> None:
    global _worker_state
    _worker_state = (resolver, settings)


def _ping() -> bool:
    return _worker_state is not None


def _render_chunk(jobs: list[Job]) -> list[Result]:
    assert _worker_state is not None
    resolver, settings = _worker_state
    return [_render_one(job, resolver, settings) for job in jobs]


def _render_one(job: Job, resolver: LinkResolver, settings: ContentSettings) -> Result:
    note, text, entry_url = job
    try:
        return render_note(note, text, entry_url=entry_url, resolver=resolver, settings=settings)
    except NoteError as e:
        return e


def worker_count() -> int:
    return max(1, min(os.cpu_count() or 1, 8))


def render_batch(jobs: Sequence[Job], resolver: LinkResolver, settings: ContentSettings,
                 *, workers: int | None = None) -> list[Result]:
    """Render every job, in order; a note that cannot be rendered yields its NoteError."""
    workers = worker_count() if workers is None else workers
    if workers < 2 or len(jobs) < PARALLEL_THRESHOLD:
        return [_render_one(job, resolver, settings) for job in jobs]
    with _pool_lock:
        return _render_in_pool([list(jobs[i:i + CHUNK]) for i in range(0, len(jobs), CHUNK)],
                               jobs, resolver, settings, workers)


def _render_in_pool(chunks: list[list[Job]], jobs: Sequence[Job], resolver: LinkResolver,
                    settings: ContentSettings, workers: int) -> list[Result]:
    _init_worker(resolver, settings)  # forked workers inherit it; nothing is pickled
    context = multiprocessing.get_context("fork")
    pool = ProcessPoolExecutor(max_workers=workers, mp_context=context)
    try:
        with warnings.catch_warnings():
            # Python 3.12+ warns about forking with threads; see the module docstring
            warnings.simplefilter("ignore", DeprecationWarning)
            pool.submit(_ping).result(timeout=STARTUP_TIMEOUT_SECONDS)
        results: list[Result] = []
        for chunk_results in pool.map(_render_chunk, chunks):
            results.extend(chunk_results)
    except (BrokenProcessPool, FutureTimeoutError, OSError) as e:
        logger.warning("parallel rendering unavailable, rendering in-process: %s",
                       type(e).__name__)
        pool.shutdown(wait=False, cancel_futures=True)
        return [_render_one(job, resolver, settings) for job in jobs]
    pool.shutdown(wait=True)
    return results
