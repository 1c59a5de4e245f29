"""`git pull` for `pull = "git"` sources, and which files a pull changed (old..new HEAD), so
a webhook scan of a git source reads just those files."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from feedsvc.gitpull import WorkTree
from feedsvc.gitpull import pull_ff_only
from feedsvc.gitpull import run_git
from feedsvc.model import Problem
from feedsvc.model import Source


def _git(source: Source, *args: str) -> tuple[str | None, str]:
    """Run git in the source folder: (stdout, "") or (None, the reason it failed)."""
    run = run_git(source.root, *args)
    return (os.fsdecode(run.out), "") if run.ok else (None, run.failure)


def pull_git(source: Source) -> Problem | None:
    """`git pull --ff-only` in the source folder before a webhook scan; a failure is a
    problem for that source, and the scan goes on with what is on disk."""
    _, failure = _git(source, "pull", "--ff-only", "--quiet")
    if failure:
        return Problem(source=source.name, path=None, reason=f"git pull failed: {failure}")
    return None


@dataclass(frozen=True, slots=True)
class Pulled:
    """What `git pull` did to a source: `changed` are the paths (relative to the source)
    that differ between HEAD before and after, () when HEAD did not move, None when git
    cannot say (then the source is walked, and `problem` says why)."""

    changed: tuple[str, ...] | None
    problem: Problem | None = None


def pull_git_changes(source: Source) -> Pulled:
    """pull_git, plus which files it changed, repository paths mapped into the source (which
    may be a sub-folder of the work tree: `git rev-parse --show-prefix`), the rest dropped.
    The fast-forward of gitpull.py names the paths it applied; after a git merge they come
    from `git diff --name-only -z --no-renames old new` (a rename is a delete and an add).
    The paths are as git names them: the caller still drops unsafe or hidden ones."""
    def failed(reason: str) -> Pulled:
        return Pulled(None, Problem(source=source.name, path=None,
                                    reason=f"{reason}; the source is walked instead"))

    # one git for all it needs to know before the pull
    before, failure = _git(source, "rev-parse", "--show-prefix", "--show-toplevel", "--git-path",
                           "FETCH_HEAD", "--git-path", "hooks/post-merge", "--verify", "-q", "HEAD")
    lines = (before or "").split("\n")
    if before is None or len(lines) < 5:
        problem = pull_git(source)
        if problem is not None:
            return Pulled(None, problem)
        return failed(f"git cannot tell the HEAD before the pull: {failure or 'no commit'}")
    prefix, top, fetch_head, hook, old = (line.strip() for line in lines[:5])
    tree = WorkTree(top=Path(top), head=old, fetch_head=source.root / fetch_head,
                    post_merge_hook=source.root / hook)
    pulled = pull_ff_only(tree)
    if pulled.failure:
        return Pulled(None, Problem(source=source.name, path=None,
                                    reason=f"git pull failed: {pulled.failure}"))
    paths = pulled.changed
    if paths is None:
        after, failure = _git(source, "rev-parse", "--verify", "-q", "HEAD")
        if after is None:
            return failed(f"git cannot tell the HEAD after the pull: {failure or 'no commit'}")
        new = after.strip()
        if old == new:
            return Pulled(())
        listing, failure = _git(source, "diff", "--name-only", "-z", "--no-renames",
                                "--no-relative", "--no-ext-diff", old, new)
        if listing is None:
            return failed(f"git diff {old[:12]}..{new[:12]} failed: {failure}")
        paths = tuple(listing.split("\0"))
    changed = {path[len(prefix):] for path in paths if path and path.startswith(prefix)}
    return Pulled(tuple(sorted(changed)))
