"""`watch = true` sources (DESIGN.md "Scheduler"): file-system events (watchfiles: inotify, or
polling where inotify is not available) become targeted scan requests, so a saved note is in its
feed within a second without any webhook.

One thread per watched source, in the process that scans, and only while that process holds the
scanner lease (a standby starts watching when it takes over; the takeover scan covers whatever
changed before). A batch of events (grouped for `STEP_MS`, at most `DEBOUNCE_MS`) becomes one
`request(source, paths=(rel paths...), reason="watch")`. Hidden paths (.git, .obsidian, editor
swap files) are ignored, as in a walk. A source root that is missing or vanishes is logged with
the source name and waited for (the watch resumes, with a whole-source request, when it is
back); an inotify limit hit is logged and that source falls back to polling. Nothing here ever
raises into the process."""

from __future__ import annotations

import logging
import os
import re
import threading
from collections.abc import Callable
from collections.abc import Iterable
from collections.abc import Iterator
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from feedsvc.model import ScanRequest
from feedsvc.model import Source

logger = logging.getLogger(__name__)
STEP_MS = 30  # a batch ends after this long without a new event
DEBOUNCE_MS = 300  # ...or after this long in all (a save shows well under a second)
TIMEOUT_MS = 500  # how often a watching thread checks the lease, the stop flag and the root
POLL_DELAY_MS = 300  # the polling fallback's pace
ROOT_RECHECK_SECONDS = 2.0  # a missing root is looked for again this often
_SWAP = re.compile(r"(~|\.sw[a-p]|\.swx|\.tmp|\.part)$|^#.*#$|^4913$")  # editors' own files

Request = Callable[[ScanRequest], str]  # Scanner.request: "started" | "queued"
WatchFn = Callable[..., Iterable[set[tuple[Any, str]]]]


def relevant(rel_path: str) -> bool:
    """False for a path the scan never reads: hidden (a dot part) or an editor's swap file."""
    parts = rel_path.split("/")
    return bool(rel_path) and not any(p.startswith(".") for p in parts) \
        and not _SWAP.search(parts[-1])


def relative_paths(root: Path, changed: Iterable[str]) -> tuple[str, ...]:
    """The changed paths that lie inside `root`, relative to it (POSIX), relevant ones only,
    sorted (the root itself is not among them)."""
    bases = {str(root), os.path.realpath(root)}
    out: set[str] = set()
    for path in changed:
        for base in bases:
            rel = os.path.relpath(path, base)
            if rel != "." and not rel.startswith(".." + os.sep) and rel != "..":
                rel = rel.replace(os.sep, "/")
                if relevant(rel):
                    out.add(rel)
                break
    return tuple(sorted(out))


def _default_watch() -> WatchFn:
    from watchfiles import watch
    fn: WatchFn = watch
    return fn


class SourceWatcher:
    """Watches every `watch = true` source while `is_leader()` says so; see the module
    docstring. start() and stop() are idempotent; stop() returns once every thread is gone."""

    def __init__(self, sources: Sequence[Source], request: Request, *,
                 is_leader: Callable[[], bool] = lambda: True,
                 watch: WatchFn | None = None, force_polling: bool = False) -> None:
        self.sources = [s for s in sources if s.watch]
        self.request = request
        self.is_leader = is_leader
        self._watch = watch
        self.force_polling = force_polling
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self.batches = 0  # batches handed to request() (tests, logs)
        self.polling: set[str] = set()  # sources that fell back to polling

    def start(self) -> None:
        if self._threads:
            return
        for source in self.sources:
            thread = threading.Thread(target=self._run, args=(source,), daemon=True,
                                      name=f"feedsvc-watch-{source.name}")
            self._threads.append(thread)
            thread.start()
        if self.sources:
            logger.info("watching sources: %s", ",".join(s.name for s in self.sources))

    def stop(self, timeout: float = 5.0) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout)
        self._threads = []

    # -- one source -----------------------------------------------------------------------

    def _run(self, source: Source) -> None:
        polling = self.force_polling
        missing_logged = False
        while not self._stop.is_set():
            if not self.is_leader():
                self._stop.wait(TIMEOUT_MS / 1000)
                continue
            if not source.root.is_dir():
                if not missing_logged:
                    logger.warning("watch: source root is missing, waiting for it: source=%s "
                                   "root=%s", source.name, source.root)
                    missing_logged = True
                self._stop.wait(ROOT_RECHECK_SECONDS)
                continue
            if missing_logged:  # back: what changed while it was gone is unknown
                logger.info("watch: source root is back: source=%s", source.name)
                missing_logged = False
                self._hand(source, None)
            try:
                self._watch_until_interrupted(source, polling)
            except FileNotFoundError:
                continue  # the root went between the check and the watch: the loop waits
            except OSError as e:  # the inotify limit (max_user_watches/instances) and kin
                if polling:
                    logger.error("watch: polling failed, retrying: source=%s error=%s",
                                 source.name, e)
                    self._stop.wait(ROOT_RECHECK_SECONDS)
                else:
                    logger.warning("watch: file-system events unavailable, polling instead: "
                                   "source=%s error=%s", source.name, e)
                    polling = True
                    self.polling.add(source.name)
                    self._hand(source, None)  # events may have been missed meanwhile
            except Exception:  # never take the scanner down: log, pause, watch again
                logger.exception("watch: watcher failed, restarting it: source=%s", source.name)
                self._stop.wait(ROOT_RECHECK_SECONDS)

    def _watch_until_interrupted(self, source: Source, polling: bool) -> None:
        """Hand each batch on; return when the lease is lost, the root vanished or stop()."""
        watch = self._watch or _default_watch()
        batches: Iterator[set[tuple[Any, str]]] = iter(watch(
            source.root, watch_filter=None, debounce=DEBOUNCE_MS, step=STEP_MS,
            stop_event=self._stop, rust_timeout=TIMEOUT_MS, yield_on_timeout=True,
            raise_interrupt=False, force_polling=polling, poll_delay_ms=POLL_DELAY_MS,
            ignore_permission_denied=True))
        for changes in batches:
            if self._stop.is_set():
                return
            if not source.root.is_dir():  # vanished (unmounted?): never a mass removal
                return
            if changes:
                paths = relative_paths(source.root, (path for _, path in changes))
                if paths:
                    self._hand(source, paths)
            if not self.is_leader():
                return

    def _hand(self, source: Source, paths: tuple[str, ...] | None) -> None:
        try:
            if paths is None:
                self.request(ScanRequest(source=source.name, reason="watch"))
            else:
                self.request(ScanRequest(source=source.name, paths=paths, reason="watch"))
            self.batches += 1
            logger.debug("watch: source=%s paths=%s", source.name, paths)
        except Exception:  # a failing request must not end the watch
            logger.exception("watch: scan request failed: source=%s", source.name)
