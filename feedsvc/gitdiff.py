"""`git pull` for `pull = "git"` sources, and which files a pull changed (old..new HEAD), so
a webhook scan of a git source reads just those files."""

from __future__ import annotations

import os
import subprocess
from dataclasses import dataclass

from feedsvc.model import Problem
from feedsvc.model import Source

GIT_TIMEOUT_SECONDS = 120


def _git(source: Source, *args: str) -> tuple[str | None, str]:
    """Run git in the source folder: (stdout, "") or (None, the reason it failed)."""
    try:
        result = subprocess.run(
            ["git", "-C", str(source.root), *args], capture_output=True, text=True,
            timeout=GIT_TIMEOUT_SECONDS, env={**os.environ, "GIT_TERMINAL_PROMPT": "0"})
    except (OSError, subprocess.TimeoutExpired) as e:
        return None, str(e)
    if result.returncode != 0:
        message = (result.stderr or result.stdout).strip().splitlines()
        return None, message[-1] if message else f"exit status {result.returncode}"
    return result.stdout, ""


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
    """pull_git, plus which files it changed: `git diff --name-only -z --no-renames old new`
    (a rename is a delete and an add), repository paths mapped into the source (which may
    be a sub-folder of the work tree: `git rev-parse --show-prefix`), the rest dropped.
    The paths are as git names them: the caller still drops unsafe or hidden ones."""
    def failed(reason: str) -> Pulled:
        return Pulled(None, Problem(source=source.name, path=None,
                                    reason=f"{reason}; the source is walked instead"))

    old, failure = _git(source, "rev-parse", "--verify", "-q", "HEAD")
    problem = pull_git(source)
    if problem is not None:
        return Pulled(None, problem)
    if old is None:
        return failed(f"git cannot tell the HEAD before the pull: {failure or 'no commit'}")
    # one git for both: the HEAD after the pull, and where the source sits in the work tree
    after, failure = _git(source, "rev-parse", "--show-prefix", "--verify", "-q", "HEAD")
    lines = (after or "").split("\n")
    if after is None or len(lines) < 2:
        return failed(f"git cannot tell the HEAD after the pull: {failure or 'no commit'}")
    prefix, new, old = lines[0].strip(), lines[1].strip(), old.strip()
    if old == new:
        return Pulled(())
    listing, failure = _git(source, "diff", "--name-only", "-z", "--no-renames",
                            "--no-relative", "--no-ext-diff", old, new)
    if listing is None:
        return failed(f"git diff {old[:12]}..{new[:12]} failed: {failure}")
    changed = set()
    for path in listing.split("\0"):
        if not path or not path.startswith(prefix):
            continue
        rel = path[len(prefix):]
        changed.add(rel)
    return Pulled(tuple(sorted(changed)))
