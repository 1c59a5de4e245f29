"""The one module that runs git: `git pull --ff-only` for `pull = "git"` sources and the files
a pull changed (`git diff --name-only old new`), the work tree a folder is in, and the log
that dates a first import.

git decides everything a pull may do: a pull git refuses (local changes in the way, an
untracked file or a symlink where the push writes, a sparse checkout, an unfinished merge or
cherry-pick, an unsigned commit under `merge.verifySignatures`, a history that does not
fast-forward) changes nothing, and its message becomes the source's problem."""

from __future__ import annotations

import datetime as dt
import functools
import logging
import os
import subprocess
from dataclasses import dataclass
from pathlib import Path

from feedsvc.model import Problem
from feedsvc.model import Source

logger = logging.getLogger(__name__)
GIT_TIMEOUT_SECONDS = 120
UTC = dt.timezone.utc


@dataclass(frozen=True, slots=True)
class GitRun:
    """One git command's outcome: `ok` with its stdout, or git's own message why not."""

    ok: bool
    out: str = ""
    failure: str = ""


def run_git(root: Path, *args: str, read_only: bool = False) -> GitRun:
    """Run git in `root`, never prompting (a webhook has nobody to answer). `read_only`
    commands take no optional locks, so they never contend with the user's own git."""
    env = {**os.environ, "GIT_TERMINAL_PROMPT": "0"}
    if read_only:
        env["GIT_OPTIONAL_LOCKS"] = "0"
    try:
        result = subprocess.run(["git", *args], cwd=root, capture_output=True, env=env,
                                stdin=subprocess.DEVNULL, timeout=GIT_TIMEOUT_SECONDS)
    except (OSError, subprocess.TimeoutExpired) as e:
        return GitRun(False, failure=str(e))
    if result.returncode != 0:
        message = result.stderr.decode("utf-8", "replace").strip()
        return GitRun(False, failure=" ".join(message.split()) or f"exit {result.returncode}")
    return GitRun(True, out=result.stdout.decode("utf-8", "surrogateescape"))


@functools.lru_cache(maxsize=64)
def work_tree_root(folder: Path) -> Path | None:
    """The root of the git work tree holding `folder` (cached), or None outside git."""
    run = run_git(folder, "rev-parse", "--show-toplevel", read_only=True)
    top = run.out.strip()
    return Path(top).resolve() if run.ok and top else None


@dataclass(frozen=True, slots=True)
class Pulled:
    """What a pull did to a source: `changed` are the paths (relative to the source) that
    differ between HEAD before and after, () when HEAD did not move, None when git cannot
    say (then the source is walked, and `problem` says why)."""

    changed: tuple[str, ...] | None
    problem: Problem | None = None


def pull(source: Source) -> Pulled:
    """`git pull --ff-only` in the source folder, and the files it changed.

    The paths come from `git diff --name-only -z --no-renames old new` (a rename is a delete
    and an add), repository paths mapped into the source, which may be a sub-folder of the
    work tree (`git rev-parse --show-prefix`); paths outside it are dropped. They are as git
    names them: the caller still drops unsafe or hidden ones."""
    before = run_git(source.root, "rev-parse", "--show-prefix", "--verify", "-q", "HEAD",
                     read_only=True)
    pulled = run_git(source.root, "pull", "--ff-only", "--no-rebase", "--quiet")
    if not pulled.ok:
        logger.warning("git pull refused: source=%s reason=%s", source.name, pulled.failure)
        return Pulled(None, _problem(source, f"git pull failed: {pulled.failure}"))
    lines = before.out.split("\n")
    if not before.ok or len(lines) < 2:
        return Pulled(None, _problem(source, "git cannot tell the HEAD before the pull "
                                     f"({before.failure or 'no commit'}); the source is walked"))
    prefix, old = lines[0].strip(), lines[1].strip()
    after = run_git(source.root, "rev-parse", "--verify", "-q", "HEAD", read_only=True)
    new = after.out.strip()
    if not after.ok or not new:
        return Pulled(None, _problem(source, "git cannot tell the HEAD after the pull "
                                     f"({after.failure or 'no commit'}); the source is walked"))
    if new == old:
        return Pulled(())
    listing = run_git(source.root, "diff", "--name-only", "-z", "--no-renames", "--no-relative",
                      "--no-ext-diff", old, new, read_only=True)
    if not listing.ok:
        return Pulled(None, _problem(source, f"git diff {old[:12]}..{new[:12]} failed "
                                     f"({listing.failure}); the source is walked"))
    changed = {path[len(prefix):] for path in listing.out.split("\0")
               if path and path.startswith(prefix)}
    return Pulled(tuple(sorted(changed)))


def _problem(source: Source, reason: str) -> Problem:
    return Problem(source=source.name, path=None, reason=reason)


def added_dates(root: Path) -> dict[str, dt.datetime]:
    """Paths (relative to `root`) -> author date of the commit that added them, from one
    `git log` over the history of the work tree `root` is in, renames followed; {} when it
    is not in one (or git is missing or fails: the caller falls back to mtimes)."""
    where = run_git(root, "rev-parse", "--is-inside-work-tree", "--show-prefix", read_only=True)
    lines = where.out.split("\n")
    if not where.ok or lines[0].strip() != "true":
        if not where.ok:
            logger.debug("git not used for dates: path=%s reason=%s", root, where.failure)
        return {}
    prefix = lines[1] if len(lines) > 1 else ""
    log = run_git(root, "-c", "core.quotepath=false", "log", "--format=%x01%at", "--name-status",
                  "-z", "--diff-filter=AR", "-M", "--reverse", "--", ".", read_only=True)
    if not log.ok:
        return {}
    return {path[len(prefix):]: moment for path, moment in parse_added_log(log.out).items()
            if path.startswith(prefix)}


def parse_added_log(log: str) -> dict[str, dt.datetime]:
    """Parse `git log --format=%x01%at --name-status -z --diff-filter=AR --reverse`: oldest
    commit first; an `A` sets a path's date (a later re-add wins, being the file now there),
    an `R` carries the old path's date to the new one."""
    dates: dict[str, dt.datetime] = {}
    for chunk in log.split("\x01"):
        if not chunk:
            continue
        fields = chunk.split("\x00")
        try:
            moment = dt.datetime.fromtimestamp(int(fields[0].strip()), UTC)
        except (ValueError, OverflowError, OSError):
            continue
        i = 1
        while i < len(fields):
            status = fields[i].strip()
            if status.startswith("A") and i + 1 < len(fields):
                dates[fields[i + 1]] = moment
                i += 2
            elif status.startswith("R") and i + 2 < len(fields):
                old, new = fields[i + 1], fields[i + 2]
                dates[new] = dates.pop(old, moment)
                i += 3
            else:
                i += 1
    return dates
