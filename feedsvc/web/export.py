"""`feedsvc export`: the static mirror of DESIGN.md written once; the same code as
`[publish] dir` (feedsvc/web/mirror.py)."""

from __future__ import annotations

from pathlib import Path

from flask import Flask

from feedsvc.web.mirror import SyncReport
from feedsvc.web.mirror import export_tree


def export_site(app: Flask, out_dir: Path) -> list[Path]:
    """Write (or bring up to date) the mirror in out_dir; returns the files written."""
    report: SyncReport = export_tree(app, out_dir)
    return [out_dir / rel for rel in report.written]
