"""Rendering many notes at once on every core. Rendering is pure (content.render_note), so a
large batch -- a cold scan of a big folder -- is split across worker processes; small batches
stay in-process, where starting workers would cost more than it saves. Workers are spawned, not
forked: the server process has threads, and forking those is unsafe."""

from __future__ import annotations

import multiprocessing
import os
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor

from feedsvc.content import ContentSettings
from feedsvc.content import NoteText
from feedsvc.content import render_note
from feedsvc.content.links import LinkResolver
from feedsvc.errors import NoteError
from feedsvc.model import NoteFile
from feedsvc.model import ParsedNote

PARALLEL_THRESHOLD = 400
CHUNK = 64
Job = tuple[NoteFile, NoteText, str]  # the note, its text, its entry URL
Result = ParsedNote | NoteError

_worker_state: tuple[LinkResolver, ContentSettings] | None = None


def _init_worker(resolver: LinkResolver, settings: ContentSettings) -> None:
    global _worker_state
    _worker_state = (resolver, settings)


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
    chunks = [list(jobs[i:i + CHUNK]) for i in range(0, len(jobs), CHUNK)]
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max_workers=workers, mp_context=context, initializer=_init_worker,
                             initargs=(resolver, settings)) as pool:
        results: list[Result] = []
        for chunk_results in pool.map(_render_chunk, chunks):
            results.extend(chunk_results)
    return results
