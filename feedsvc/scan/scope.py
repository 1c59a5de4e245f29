"""Which files a scan looks at, per source: a walk of everything, or just the paths a
request named (webhook payload, watcher) and, for `pull = "git"` sources, the files the pull
changed (old..new HEAD). A path that is not clean (absolute, `..`, hidden) never reaches
the filesystem.

A walk of a whole source (a bare webhook, a poll, `feedsvc scan`) is narrowed to what it
found changed: each note and media file's (size, mtime_ns) is compared with the kept stats
(kept.py), and what differs, came or went becomes the scope of a targeted snapshot, so the
scan then costs what a webhook naming those files costs. A walk is narrowed only when it
is plain: no symlink met (a followed link's media has no lstat to compare) and every folder
listed (notes below an unlisted one are kept, not removed). Over NARROW_UP_TO changed paths
it stays a whole snapshot: a big change goes the way of a first scan (parallel render, a
bulk read of stored rows). The deletion guard counts against the stored entries either way."""

from __future__ import annotations

import logging
from itertools import compress
from operator import ne
from collections.abc import Mapping

from feedsvc.errors import SourceError
from feedsvc.model import Problem
from feedsvc.model import Source
from feedsvc.sources import git
from feedsvc.sources.walk import Snapshot
from feedsvc.sources.walk import SourceWalk
from feedsvc.sources.walk import Stats
from feedsvc.sources.paths import is_clean_rel_path
from feedsvc.sources.walk import snapshot_paths
from feedsvc.sources.walk import walk_source
from feedsvc.sources.walk import walked_snapshot

logger = logging.getLogger(__name__)


def take_snapshots(sources: list[Source], paths: Mapping[str, tuple[str, ...]], *,
                   pull: bool, git_targets: bool, source_errors: list[Problem],
                   kept_stats: Mapping[str, tuple[Stats, Stats]] | None = None
                   ) -> dict[str, Snapshot]:
    """One snapshot per source that has something to look at: a walk, or (a source in
    `paths`, or a git source with `git_targets`) a targeted snapshot of its paths. A git
    source whose pull git cannot account for is walked, its problem reported; one with no
    paths asked for and a HEAD that did not move has nothing to look at (no snapshot).
    A walked source in `kept_stats` (its stored note and media stats) is narrowed to what
    its walk found changed."""
    snapshots: dict[str, Snapshot] = {}
    for source in sources:
        scope = paths.get(source.name)
        if pull and source.pull == "git":
            pulled = git.pull(source)
            if pulled.problem is not None:
                source_errors.append(pulled.problem)
            if pulled.changed is None:
                scope = None  # git cannot say what changed: walk it all
            elif scope is not None:
                scope = tuple(scope) + pulled.changed
            elif git_targets:
                scope = pulled.changed
        if scope is not None:
            scope = safe_paths(source.name, scope)
            if not scope:
                continue  # nothing named, nothing pulled: nothing to look at
        try:
            snapshots[source.name] = (
                snapshot_paths(source, scope) if scope is not None
                else snapshot_source(source, (kept_stats or {}).get(source.name)))
        except SourceError as e:
            logger.error("source not applied: source=%s reason=%s", source.name, e.message)
            source_errors.append(Problem(source=source.name, path=None, reason=e.message))
    return snapshots


def snapshot_source(source: Source, kept_stats: tuple[Stats, Stats] | None = None) -> Snapshot:
    """Walk the whole source; with its kept (notes, media) stats, narrowed to what the walk
    found changed when it can be."""
    walk = walk_source(source)
    narrow = narrowed(source, walk, *kept_stats) if kept_stats is not None else None
    return narrow or walked_snapshot(source, walk)


def safe_paths(source: str, paths: tuple[str, ...]) -> tuple[str, ...]:
    """The paths a targeted scan may look at: relative, no `..`, nothing hidden."""
    safe = tuple(sorted({p for p in paths if is_clean_rel_path(p)}))
    for path in sorted(set(paths) - set(safe)):
        logger.warning("scan path ignored: source=%s path=%r reason=not a clean relative path",
                       source, path[:200])
    return safe


NARROW_UP_TO = 200  # changed paths; a scope's stored rows are matched path by path


def narrowed(source: Source, walk: SourceWalk, notes: Stats, media: Stats) -> Snapshot | None:
    """The targeted snapshot of what `walk` saw differ from the stored `notes` and `media`
    stats, or None when the walk is not plain or found too much."""
    limit = NARROW_UP_TO
    if walk.unlisted or walk.links:
        return None
    if len(walk.notes) + len(walk.media_stats) - len(notes) - len(media) > limit:
        return None  # cheap early out: that many more files than stored
    new_notes = _differing(walk.notes, notes)
    new_media = _differing(walk.media_stats, media)
    if len(new_notes) + len(new_media) > limit:
        return None
    gone = _gone(notes, walk.notes, new_notes) | _gone(media, walk.media_stats, new_media)
    if len(new_notes) + len(new_media) + len(gone) > limit:
        return None
    changed_notes = sorted(new_notes)
    changed_media = sorted(new_media)
    scope = new_notes | new_media | gone
    return Snapshot(
        source=source.name,
        notes=tuple(walk.note_files(source.name, str(source.root), changed_notes)),
        media=tuple(changed_media), problems=(), unlisted=(),
        scope=tuple(sorted(scope)),
        media_stats={rel: walk.media_stats[rel] for rel in changed_media},
        unchanged=len(walk.notes) - len(changed_notes),
        stored_media={rel: media[rel] for rel in scope if rel in media})


def _differing(seen: Stats, stored: Stats) -> set[str]:
    """The paths whose stats differ from the stored ones, or that are not stored. The
    loop runs in C (map, compress); what is left is the lookups themselves, about 0.3 us a
    path at 10k notes: the stored keys and stats lie all over the heap (cache misses)."""
    return set(compress(seen.keys(), map(ne, seen.values(), map(stored.get, seen.keys()))))


def _gone(stored: Stats, seen: Stats, differing: set[str]) -> set[str]:
    """The stored paths the walk did not see. None are gone when every stored path was
    seen, which counting tells without a set difference of 10,000 keys: each seen path
    is stored or is one of the `differing` ones not stored."""
    fresh = sum(1 for rel in differing if rel not in stored)
    if len(seen) - fresh == len(stored):
        return set()
    return stored.keys() - seen.keys()
