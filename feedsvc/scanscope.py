"""Which files a scan looks at, per source: a walk of everything, or just the paths a
request named (webhook payload, watcher) and, for `pull = "git"` sources, the files the pull
changed (old..new HEAD). A path that is not clean (absolute, `..`, hidden) never reaches
the filesystem."""

from __future__ import annotations

import logging
from collections.abc import Callable
from collections.abc import Mapping

from feedsvc.errors import SourceError
from feedsvc.gitdiff import pull_git_changes
from feedsvc.model import Problem
from feedsvc.model import Source
from feedsvc.sources import Snapshot
from feedsvc.sources import SourceWalk
from feedsvc.sources import is_safe_media_path
from feedsvc.sources import snapshot_paths
from feedsvc.sources import snapshot_source
from feedsvc.sources import walk_source

logger = logging.getLogger(__name__)
Narrow = Callable[[Source, SourceWalk], Snapshot | None]
Walker = Callable[[Source], SourceWalk]


def take_snapshots(sources: list[Source], paths: Mapping[str, tuple[str, ...]], *,
                   pull: bool, git_targets: bool, source_errors: list[Problem],
                   narrow: Narrow | None = None,
                   walker: Walker = walk_source) -> dict[str, Snapshot]:
    """One snapshot per source that has something to look at: a walk, or (a source in
    `paths`, or a git source with `git_targets`) a targeted snapshot of its paths. A git
    source whose pull git cannot account for is walked, its problem reported; one with no
    paths asked for and a HEAD that did not move has nothing to look at (no snapshot).
    `narrow` may turn a walk into a snapshot of what it found changed (walkdiff.py);
    `walker` walks a source (walk_source, or forkwalk.SplitWalker's)."""
    snapshots: dict[str, Snapshot] = {}
    for source in sources:
        scope = paths.get(source.name)
        if pull and source.pull == "git":
            pulled = pull_git_changes(source)
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
            snapshots[source.name] = (snapshot_source(source, narrow, walker) if scope is None
                                      else snapshot_paths(source, scope))
        except SourceError as e:
            logger.error("source not applied: source=%s reason=%s", source.name, e.message)
            source_errors.append(Problem(source=source.name, path=None, reason=e.message))
    return snapshots


def safe_paths(source: str, paths: tuple[str, ...]) -> tuple[str, ...]:
    """The paths a targeted scan may look at: relative, no `..`, nothing hidden."""
    safe = tuple(sorted({p for p in paths if is_safe_media_path(p)}))
    for path in sorted(set(paths) - set(safe)):
        logger.warning("scan path ignored: source=%s path=%r reason=not a clean relative path",
                       source, path[:200])
    return safe
