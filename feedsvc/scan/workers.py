"""Rendering many notes at once on every core. Rendering is pure (content.render_note), so a
large batch -- a cold scan of a big folder -- is split across worker processes; small batches
stay in-process, where starting workers would cost more than it saves.

Workers are forked. Spawned workers re-run the host's __main__, and one without an
`if __name__ == "__main__"` guard (any script that embeds feedsvc) makes them scan again and
the pool never start. Forking a process that has threads is safe here because a worker only
runs pure rendering code: it touches no lock another thread could hold (no database, no
logging, no I/O but reading the note it renders). If the pool cannot start anyway, the batch
is rendered in-process.

A scan streams (render_stream): the parent keeps no note bodies, each job names the bytes it
was planned from (their hash) and the worker reads the file again; chunks come back in order
with a bounded number in flight, so memory does not grow with the size of the scan. The pool
is forked once per stream with the collector frozen (gc.freeze), so the workers' collections
do not copy the pages of the parent's plan. A big scan forks its pool (ScanWorkers) before it
plans, while the parent is still small, and uses it to read and then to render: the workers'
memory does not hold the plan at all, and the link index reaches them as a file."""

from __future__ import annotations

import functools
import gc
import hashlib
import itertools
import logging
import multiprocessing
import os
import pickle
import tempfile
import threading
import warnings
import zlib
from collections import deque
from collections.abc import Callable
from collections.abc import Iterable
from collections.abc import Iterator
from collections.abc import Sequence
from concurrent.futures import Future
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeoutError
from concurrent.futures.process import BrokenProcessPool
from typing import Generic
from typing import TypeVar

from feedsvc.content import ContentSettings
from feedsvc.content import NoteText
from feedsvc.content import read_body
from feedsvc.content import read_note
from feedsvc.content import render_note
from feedsvc.content.links import LinkResolver
from feedsvc.content.links import NoLinks
from feedsvc.errors import NoteError
from feedsvc.model import NoteFile
from feedsvc.model import ParsedNote
from feedsvc.sources.walk import read_note_bytes

logger = logging.getLogger(__name__)
T = TypeVar("T")
J = TypeVar("J")
R = TypeVar("R")
READ_CHUNK = 128
PARALLEL_THRESHOLD = 400
STARTUP_TIMEOUT_SECONDS = 60.0
CHUNK = 64
Job = tuple[NoteFile, NoteText, str]  # the note, its text, its entry URL
Result = ParsedNote | NoteError
# the note, its text (body dropped), its entry URL, the hash of the bytes it was planned from
# (None: the text still holds its body), the source's max_file_bytes
StreamJob = tuple[NoteFile, NoteText, str, str | None, int]
Rendered = tuple[Result, bool]  # the result; True if the file changed since it was planned
# a rendered chunk as it travels: its size, the indexes (in the chunk) of stale notes, and the
# results pickled and compressed by the worker (the parent only keeps it for the store)
Packed = tuple[int, list[int], bytes]
IN_FLIGHT_PER_WORKER = 3

_worker_state: tuple[LinkResolver, ContentSettings] | None = None
_loaded_resolver: tuple[str, LinkResolver] | None = None  # in a ScanWorkers worker
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


def _render_stream_chunk(jobs: list[StreamJob]) -> Packed:
    assert _worker_state is not None
    resolver, settings = _worker_state
    return pack([render_stream_job(job, resolver, settings) for job in jobs])


def _render_stream_chunk_from(resolver_path: str, jobs: list[StreamJob]) -> Packed:
    """_render_stream_chunk in a ScanWorkers worker: the resolver is read (once per worker
    and scan) from the file the parent pickled it to."""
    global _loaded_resolver
    assert _worker_state is not None
    if _loaded_resolver is None or _loaded_resolver[0] != resolver_path:
        _loaded_resolver = None
        with open(resolver_path, "rb") as f:
            _loaded_resolver = (resolver_path, pickle.load(f))
    return pack([render_stream_job(job, _loaded_resolver[1], _worker_state[1]) for job in jobs])


def pack(rendered: list[Rendered]) -> Packed:
    stale = [i for i, (_, changed) in enumerate(rendered) if changed]
    data = pickle.dumps([result for result, _ in rendered], protocol=pickle.HIGHEST_PROTOCOL)
    return len(rendered), stale, zlib.compress(data, 1)


def unpack(data: bytes) -> list[Result]:
    results: list[Result] = pickle.loads(zlib.decompress(data))
    return results


def render_stream_job(job: StreamJob, resolver: LinkResolver,
                      settings: ContentSettings) -> Rendered:
    """Render one job, reading its body again when the plan dropped it. A file that changed
    (or vanished) since it was planned is rendered from what is on disk now under the
    planned header, flagged stale, with no content hash: the caller marks its note row so
    the next scan reads it again (and moves `updated`)."""
    note, text, entry_url, file_hash, max_bytes = job
    stale = False
    if file_hash is not None:
        body, stale = _reread(note, file_hash, max_bytes, settings)
        text = NoteText(header=text.header, body=body, warnings=text.warnings, digest=text.digest)
    result = _render_one((note, text, entry_url), resolver, settings)
    if stale and isinstance(result, ParsedNote):
        result = ParsedNote(header=result.header, html=result.html, excerpt=result.excerpt,
                            content_hash="", links=result.links)
    return result, stale


def _reread(note: NoteFile, file_hash: str, max_bytes: int,
            settings: ContentSettings) -> tuple[str, bool]:
    try:
        raw = read_note_bytes(note, max_bytes)
    except NoteError:
        return "", True
    if hashlib.sha256(raw).hexdigest()[:32] == file_hash:  # the scan's file hash (pipeline)
        return read_body(note, raw), False
    try:
        return read_note(note, raw, settings).body, True
    except NoteError:
        return "", True


def render_stream(jobs: Iterable[list[StreamJob]], resolver: LinkResolver,
                  settings: ContentSettings, *, parallel: bool,
                  workers: int | None = None,
                  pool: ScanWorkers | None = None) -> Iterator[Packed]:
    """Render chunks of jobs, yielding each chunk's packed results in order. With `parallel`
    (and two cores or more) a forked pool renders them -- `pool` if given, else one forked
    now -- at most IN_FLIGHT_PER_WORKER chunks per worker ahead of the consumer; otherwise,
    or if the pool breaks, in-process."""
    workers = worker_count() if workers is None else workers

    def local(job: StreamJob) -> Rendered:
        return render_stream_job(job, resolver, settings)

    if pool is not None and parallel and pool.usable:
        with tempfile.NamedTemporaryFile(dir=pool.folder, prefix="feedsvc-links-",
                                         suffix=".pickle") as f:
            pickle.dump(resolver, f, protocol=pickle.HIGHEST_PROTOCOL)
            f.flush()
            yield from pool.stream(functools.partial(_render_stream_chunk_from, f.name),
                                   iter(jobs), lambda chunk: pack([local(job) for job in chunk]))
        return
    if not parallel or workers < 2:
        for chunk in jobs:
            yield pack([local(job) for job in chunk])
        return
    with _pool_lock:
        _init_worker(resolver, settings)  # forked workers inherit it; nothing is pickled
        yield from _stream_in_pool(_render_stream_chunk, iter(jobs),
                                   lambda chunk: pack([local(job) for job in chunk]), workers)


ReadOutcome = tuple[str, NoteText | None, NoteError | None]  # file hash, text, or the error
ReadJob = tuple[NoteFile, int]  # the note, its source's max_file_bytes


def read_one(note: NoteFile, max_bytes: int, settings: ContentSettings, *,
             keep_body: bool = False) -> ReadOutcome:
    """Read and hash a note and read its front matter; the body is dropped unless asked for
    (a scan plans from headers and hashes; rendering reads the body again)."""
    try:
        raw = read_note_bytes(note, max_bytes)
    except NoteError as e:
        return "", None, e
    file_hash = hashlib.sha256(raw).hexdigest()[:32]
    try:
        text = read_note(note, raw, settings)
    except NoteError as e:
        return file_hash, None, e
    return file_hash, text if keep_body else text.without_body(), None


def _read_chunk(jobs: list[ReadJob]) -> list[ReadOutcome]:
    assert _worker_state is not None
    _, settings = _worker_state
    return [read_one(note, max_bytes, settings) for note, max_bytes in jobs]


def read_stream(notes: Sequence[NoteFile], max_bytes: int, settings: ContentSettings, *,
                parallel: bool, workers: int | None = None,
                pool: ScanWorkers | None = None) -> Iterator[ReadOutcome]:
    """read_one for every note, in order; spread over a forked pool when `parallel` (`pool`,
    or one forked now: before the scan builds its big structures, so the workers start
    small)."""
    workers = worker_count() if workers is None else workers
    if pool is not None and parallel and pool.usable:
        chunks = ([(n, max_bytes) for n in notes[i:i + READ_CHUNK]]
                  for i in range(0, len(notes), READ_CHUNK))
        for outcomes in pool.stream(_read_chunk, chunks, lambda jobs: [
                read_one(note, max_bytes, settings) for note, max_bytes in jobs]):
            yield from outcomes
        return
    if not parallel or workers < 2:
        for note in notes:
            yield read_one(note, max_bytes, settings)
        return
    chunks = ([(n, max_bytes) for n in notes[i:i + READ_CHUNK]]
              for i in range(0, len(notes), READ_CHUNK))
    with _pool_lock:
        _init_worker(NoLinks(), settings)
        for chunk in _stream_in_pool(_read_chunk, chunks, lambda jobs: [
                read_one(note, max_bytes, settings) for note, max_bytes in jobs], workers):
            yield from chunk


def start_scan_workers(settings: ContentSettings, *, folder: str | None = None,
                       workers: int | None = None) -> ScanWorkers:
    """A ScanWorkers pool forked now, its workers set up to read with these settings and
    to render with the link index each render stream hands them."""
    pool = ScanWorkers(workers=workers, folder=folder)
    if pool.usable:
        with _pool_lock:
            _init_worker(NoLinks(), settings)
            pool.start()
    return pool


def _stream_in_pool(func: Callable[[list[J]], R], chunks: Iterator[list[J]],
                    local: Callable[[list[J]], R], workers: int) -> Iterator[R]:
    """func over chunks in a pool forked now, results in order (ScanWorkers.stream)."""
    pool = ScanWorkers(workers=workers)
    try:
        yield from pool.stream(func, chunks, local)
    finally:
        pool.close()


class ScanWorkers:
    """Render workers forked once (with the collector frozen, so their collections leave
    the parent's pages alone), used by several streams: a big scan forks them before it
    plans and reads, then renders, with them. A pool that fails to start or breaks is not
    used again: the streams run in-process from the first chunk not done.
    Forked with _worker_state = (NoLinks, settings) as it is when they fork."""

    def __init__(self, *, workers: int | None = None, folder: str | None = None) -> None:
        self.workers = worker_count() if workers is None else workers
        self.folder = folder  # for the pickled link index
        self._pool: ProcessPoolExecutor | None = None
        self._broken = False

    @property
    def usable(self) -> bool:
        return not self._broken and self.workers >= 2

    def start(self) -> None:
        if self._pool is not None or not self.usable:
            return
        gc.collect()
        gc.freeze()  # the workers' collector leaves the parent's objects (and their pages) alone
        pool = ProcessPoolExecutor(max_workers=self.workers,
                                   mp_context=multiprocessing.get_context("fork"))
        self._pool = pool
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", DeprecationWarning)  # see the module docstring
                pool.submit(_ping).result(timeout=STARTUP_TIMEOUT_SECONDS)
        except (BrokenProcessPool, FutureTimeoutError, OSError) as e:
            self._fail(e)
        finally:
            gc.unfreeze()

    def stream(self, func: Callable[[list[J]], R], chunks: Iterator[list[J]],
               local: Callable[[list[J]], R]) -> Iterator[R]:
        """func over chunks, results in order, a bounded number in flight; in-process
        (local) from the first chunk not done if the pool cannot start or breaks."""
        self.start()
        pending: deque[tuple[list[J], Future[R]]] = deque()
        unsent: list[J] | None = None
        try:
            if self._pool is None:
                raise BrokenProcessPool("the pool did not start")
            for chunk in chunks:
                unsent = chunk
                pending.append((chunk, self._pool.submit(func, chunk)))
                unsent = None
                if len(pending) >= self.workers * IN_FLIGHT_PER_WORKER:
                    yield _next_done(pending)
            while pending:
                yield _next_done(pending)
        except (BrokenProcessPool, FutureTimeoutError, OSError) as e:
            self._fail(e)
            left = [chunk for chunk, _ in pending] + ([unsent] if unsent is not None else [])
            for chunk in itertools.chain(left, chunks):
                yield local(chunk)
        finally:
            for _, future in pending:  # a consumer that stopped early
                future.cancel()

    def _fail(self, error: BaseException) -> None:
        if not self._broken:
            logger.warning("parallel rendering unavailable, rendering in-process: %s",
                           type(error).__name__)
        self._broken = True
        if self._pool is not None:
            self._pool.shutdown(wait=False, cancel_futures=True)
            self._pool = None

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=not self._broken, cancel_futures=True)
            self._pool = None


def _next_done(pending: deque[tuple[list[J], Future[R]]]) -> R:
    chunk, future = pending[0]
    result = future.result()
    pending.popleft()
    return result


class Spill(Generic[T]):
    """Batches parked until the store's transaction reads them back, in order: in memory for
    a small scan, else pickled into an unlinked temporary file (gone with the process, even
    after a SIGKILL), so a big scan holds one batch at a time and renders outside the write
    transaction (which then lasts only as long as the inserts)."""

    def __init__(self, *, on_disk: bool, folder: str | None = None) -> None:
        self._items: list[T] = []
        self._sizes: list[int] = []
        self._file = tempfile.TemporaryFile(dir=folder) if on_disk else None

    def put(self, item: T) -> None:
        if self._file is None:
            self._items.append(item)
            return
        data = pickle.dumps(item, protocol=pickle.HIGHEST_PROTOCOL)
        self._file.write(data)
        self._sizes.append(len(data))

    def __len__(self) -> int:
        return len(self._items) + len(self._sizes)

    def __iter__(self) -> Iterator[T]:
        if self._file is None:
            yield from self._items
            return
        self._file.flush()
        self._file.seek(0)
        for size in self._sizes:
            item: T = pickle.loads(self._file.read(size))
            yield item

    def close(self) -> None:
        self._items = []
        if self._file is not None:
            self._file.close()
