"""Evidence for the date of an undated note seen for the first time on a source's first import
(DESIGN.md "Sources and entries", dates): in a git work tree, the author date of the commit
that added the file (one `git log` pass per repository, renames followed); else the file's
modification time. This is the scan's only IO about dates; planning gets the result as data."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from pathlib import Path

from feedsvc.sources.git import added_dates

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
    added = added_dates(root)
    out: dict[str, dt.datetime] = {}
    for rel_path, mtime_ns in mtimes_ns.items():
        moment = added.get(rel_path)
        if moment is None:
            moment = dt.datetime.fromtimestamp(mtime_ns / 1e9, UTC)
        out[rel_path] = min(moment, now)
    return out
