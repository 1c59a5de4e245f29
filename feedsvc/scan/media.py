"""Copy each source's media files (images, PDFs...) into the store, so any process that has
the store, and not the notes folder, serves /media. Content-addressed and deduplicated by
SHA-256; files over the source's max_file_bytes are skipped with a reason; files gone from
disk are dropped; files with the same size and mtime as stored are not read again. One
transaction per source, one file in memory at a time."""

from __future__ import annotations

import datetime as dt
import hashlib
import logging
import mimetypes
import os
import stat
from collections.abc import Iterable
from collections.abc import Mapping

from feedsvc.model import MediaInfo
from feedsvc.model import Problem
from feedsvc.model import Source
from feedsvc.sources.walk import Snapshot
from feedsvc.sources.walk import in_scope
from feedsvc.sources.walk import read_bounded
from feedsvc.sources.walk import resolve_media_path
from feedsvc.store import MediaBatch
from feedsvc.store import Store

logger = logging.getLogger(__name__)


def guess_media_type(rel_path: str) -> str:
    """The type /media serves a file with (the web layer narrows risky ones further)."""
    return mimetypes.guess_type(rel_path.rsplit("/", 1)[-1])[0] or "application/octet-stream"


def sync_all(store: Store, sources: Iterable[Source], snapshots: dict[str, Snapshot],
             source_errors: Iterable[Problem] = (), *,
             stored: Mapping[str, dict[str, tuple[int, int]]] | None = None) -> list[Problem]:
    """sync_media for every walked source whose notes were applied: one the deletion guard
    stopped keeps its media as stored too (a failed `git pull`, or git unable to say what
    it changed, does not stop it: that scan still applies what is on disk). `stored`: the
    media_stats already read (or kept) for a source, at its snapshot's scope."""
    skip = {p.source for p in source_errors if not p.reason.startswith("git ")}
    problems: list[Problem] = []
    for source in sources:
        snapshot = snapshots.get(source.name)
        if snapshot is not None and source.name not in skip:
            problems.extend(sync_media(store, source, snapshot,
                                       stored=(stored or {}).get(source.name)))
    return problems


def sync_media(store: Store, source: Source, snapshot: Snapshot, *,
               stored: dict[str, tuple[int, int]] | None = None) -> list[Problem]:
    """Bring the store's copy of one source's media in line with the disk.

    A targeted snapshot (its scope: the paths a webhook, a git diff or a watcher named)
    speaks only for those paths and what lies below them: media there are copied or
    dropped, the rest of the source's media is left alone. Without either the
    snapshot's full media list is the truth, and stored files it no longer lists are
    dropped (except below folders that could not be listed).

    `stored` (the store's media stats at the scope, read if not given) is brought in line
    with what was written once it is committed, so a kept copy stays true (filestats.py).
    A file the walk saw with its stored size and mtime is not looked at again."""
    scope = snapshot.scope
    if stored is None:
        stored = store.media_stats(source.name, scope)
    present = snapshot.media if scope is None else \
        [m for m in snapshot.media if in_scope(m, scope)]
    seen = snapshot.media_stats
    if len(stored) == len(present) and all(seen.get(m) == stored.get(m) for m in present):
        return []  # the walk saw every stored file as stored, and no other
    listed = set(present)
    gone = [p for p in stored if p not in listed and not snapshot.is_unseen(p)]
    problems: list[Problem] = []
    written: dict[str, tuple[int, int] | None] = {}  # None: removed
    copied = 0
    with store.media_batch(source.name) as batch:
        for rel in present:
            known = stored.get(rel)
            if known is not None and seen.get(rel) == known:
                continue
            outcome = _copy_one(batch, source, rel, known)
            if isinstance(outcome, Problem):
                problems.append(outcome)
                if rel in stored:
                    batch.remove(rel)
                    written[rel] = None
            elif outcome:
                copied += 1
                written[rel] = outcome
        for rel in gone:
            batch.remove(rel)
            written[rel] = None
    for rel, stats in written.items():
        if stats is None:
            stored.pop(rel, None)
        else:
            stored[rel] = stats
    if copied or gone:
        logger.info("media synced: source=%s copied=%d removed=%d skipped=%d", source.name,
                    copied, len(gone), len(problems))
    return problems


def _copy_one(batch: MediaBatch, source: Source, rel: str,
              stored: tuple[int, int] | None) -> Problem | tuple[int, int] | None:
    """Copy one file: its (size, mtime_ns) as copied, None when unchanged or vanished, a
    Problem when refused."""
    if stored is not None and _unchanged(source, rel, stored):
        return None
    path = resolve_media_path(source, rel)
    if path is None:
        return None  # vanished or turned into a link out of the source since the walk
    try:
        st = os.stat(path)
    except OSError:
        return None
    if stored == (st.st_size, st.st_mtime_ns):
        return None
    limit = source.max_file_bytes
    if st.st_size > limit:
        return Problem(source=source.name, path=rel,
                       reason=f"media file is {st.st_size} bytes, over max_file_bytes={limit}: "
                              f"not copied into the store")
    try:
        with open(path, "rb") as f:
            data = read_bounded(f, st.st_size, limit)
    except OSError as e:
        return Problem(source=source.name, path=rel, reason=f"media file cannot be read: "
                                                            f"{e.strerror}")
    if len(data) > limit:
        return Problem(source=source.name, path=rel,
                       reason=f"media file grew over max_file_bytes={limit}")
    digest = hashlib.sha256(data).hexdigest()
    modified = dt.datetime.fromtimestamp(st.st_mtime_ns / 1e9, dt.timezone.utc)
    info = MediaInfo(source=source.name, rel_path=rel, hash=digest, size=len(data),
                     mtime_ns=st.st_mtime_ns, media_type=guess_media_type(rel),
                     last_modified=modified.replace(microsecond=0))
    batch.put(info, data)
    return (len(data), st.st_mtime_ns)


def _unchanged(source: Source, rel: str, stored: tuple[int, int]) -> bool:
    """A plain file (not a link) with the size and mtime it had when copied: one lstat, no
    realpath (a rescan of a source with many images spent most of its time resolving them).
    Anything else takes the full check of resolve_media_path before it is read."""
    try:
        st = os.lstat(os.path.join(source.root, *rel.split("/")))
    except (OSError, ValueError):
        return False
    return stat.S_ISREG(st.st_mode) and stored == (st.st_size, st.st_mtime_ns)
