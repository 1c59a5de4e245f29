"""Evidence for the date of an undated note seen for the first time on a source's first import
(DESIGN.md "Sources and entries", dates): in a git work tree, the author date of the commit
that added the file (one `git log` pass per repository, renames followed); else the file's
modification time. This is the scan's only IO about dates; planning gets the result as data."""

from __future__ import annotations

import datetime as dt
import logging
import os
import subprocess
from collections.abc import Mapping
from pathlib import Path

logger = logging.getLogger(__name__)
GIT_TIMEOUT_SECONDS = 120
UTC = dt.timezone.utc


def import_dates(root: Path, mtimes_ns: Mapping[str, int], *,
                 now: dt.datetime) -> dict[str, dt.datetime]:
    """rel_path -> the date an undated note gets at first sight on a first import.

    `mtimes_ns` names the notes that need a date (rel_path -> mtime in ns). A path that git
    knows gets the author date of the commit that added it (a rename in git keeps the date
    the file was first added under its old name); any other path (not a work tree, or not
    committed yet) its mtime. Nothing is ever later than `now`."""
    if not mtimes_ns:
        return {}
    added = git_added_dates(root)
    out: dict[str, dt.datetime] = {}
    for rel_path, mtime_ns in mtimes_ns.items():
        moment = added.get(rel_path)
        if moment is None:
            moment = dt.datetime.fromtimestamp(mtime_ns / 1e9, UTC)
        out[rel_path] = min(moment, now)
    return out


def git_added_dates(root: Path) -> dict[str, dt.datetime]:
    """Paths (relative to `root`) -> author date of the commit that added them, from one
    pass over the history of the work tree `root` is in; {} when it is not in one (or git
    is missing or fails: the caller falls back to mtimes)."""
    prefix = _git(root, "rev-parse", "--is-inside-work-tree", "--show-prefix")
    if prefix is None:
        return {}
    lines = prefix.split("\n")
    if not lines or lines[0].strip() != "true":
        return {}
    show_prefix = lines[1] if len(lines) > 1 else ""
    log = _git(root, "-c", "core.quotepath=false", "log", "--format=%x01%at", "--name-status",
               "-z", "--diff-filter=AR", "-M", "--reverse", "--", ".")
    if log is None:
        return {}
    dates = parse_added_log(log)
    out: dict[str, dt.datetime] = {}
    for path, moment in dates.items():
        if path.startswith(show_prefix):
            out[path[len(show_prefix):]] = moment
    return out


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


def _git(cwd: Path, *args: str) -> str | None:
    try:
        result = subprocess.run(
            ["git", *args], cwd=cwd, capture_output=True, timeout=GIT_TIMEOUT_SECONDS,
            env={**os.environ, "GIT_TERMINAL_PROMPT": "0", "GIT_OPTIONAL_LOCKS": "0"})
    except (OSError, subprocess.TimeoutExpired) as e:
        logger.info("git not used for dates: path=%s reason=%s", cwd, e)
        return None
    if result.returncode != 0:
        return None
    return result.stdout.decode("utf-8", "surrogateescape")
