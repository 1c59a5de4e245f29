"""Parallel rendering gives exactly what serial rendering gives, errors included."""

from __future__ import annotations

import os
import pickle
import subprocess
import sys
from pathlib import Path

from feedsvc.content import ContentSettings
from feedsvc.content import read_note
from feedsvc.errors import NoteError
from feedsvc.errors import NoteTooLargeError
from feedsvc.model import NoteFile
from feedsvc.scan.workers import PARALLEL_THRESHOLD
from feedsvc.scan.workers import render_batch
from feedsvc.scan.links import SiteIndex
from feedsvc.urls import Urls

from conftest import REPO


def test_parallel_equals_serial() -> None:
    settings = ContentSettings()
    index = SiteIndex(Urls("http://x.example/"))
    index.add_entry("s", "NLP/n3.md", "nlp", "n3")
    jobs = []
    for i in range(24):
        note = NoteFile(source="s", rel_path=f"NLP/n{i}.md", abs_path=str("x"), size=0, mtime_ns=0)
        body = f"# T{i}\n\n正文 {i} $x_{i}$ [[n3]]\n\n```python\nprint({i})\n```\n"
        jobs.append((note, read_note(note, body.encode(), settings), f"http://x.example/entries/nlp/n{i}"))
    serial = render_batch(jobs, index, settings, workers=1)
    parallel = render_batch(jobs * 20, index, settings, workers=2)
    assert parallel == serial * 20
    assert 'href="http://x.example/entries/nlp/n3"' in serial[0].html  # type: ignore[union-attr]


def test_note_errors_survive_pickling() -> None:
    error = NoteTooLargeError("s", "a/b.md", "too big")
    copy = pickle.loads(pickle.dumps(error))
    assert isinstance(copy, NoteError) and type(copy) is NoteTooLargeError
    assert (copy.source, copy.path, copy.reason) == ("s", "a/b.md", "too big")


def test_an_unguarded_host_script_does_not_hang_the_pool(tmp_path: Path) -> None:
    """A script that embeds feedsvc without `if __name__ == "__main__"` (spawned workers
    would re-run it) scans a batch big enough for the process pool, and finishes."""
    notes = tmp_path / "notes" / "NLP"
    notes.mkdir(parents=True)
    for i in range(PARALLEL_THRESHOLD + 50):
        (notes / f"n{i}.md").write_text(f"---\ndate: 2025-01-01\n---\n正文 {i} $x$\n")
    script = tmp_path / "host.py"
    script.write_text(
        "from pathlib import Path\n"
        "from feedsvc.config import build_config\n"
        "from feedsvc.scan.scanner import Scanner\n"
        "from feedsvc.store import open_store\n"
        f"root = Path({str(tmp_path)!r})\n"
        "config = build_config({'sources': [{'name': 'n', 'path': str(root / 'notes')}],\n"
        "                       'store': {'data_dir': str(root / 'data')}}, base_dir=root)\n"
        "report = Scanner(config, open_store(config.store_url)).run()\n"
        "print('added', len(report.added))\n")
    result = subprocess.run([sys.executable, str(script)], capture_output=True, text=True,
                            timeout=120, env={**os.environ, "PYTHONPATH": str(REPO)})
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == f"added {PARALLEL_THRESHOLD + 50}"
    assert "parallel rendering unavailable" not in result.stderr
