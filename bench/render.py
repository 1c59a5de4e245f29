"""Render benchmark: Markdown -> sanitized HTML + excerpt for every note of a corpus.

    python bench/render.py --notes 10000
Prints notes/s and MB/s on one core and with the scan's process pool.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import corpus_args  # noqa: E402
from common import make_corpus  # noqa: E402

from feedsvc.content import ContentSettings  # noqa: E402
from feedsvc.content import read_note  # noqa: E402
from feedsvc.errors import NoteError  # noqa: E402
from feedsvc.model import NoteFile  # noqa: E402
from feedsvc.scan.workers import render_batch  # noqa: E402
from feedsvc.scan.workers import worker_count  # noqa: E402
from feedsvc.scan.links import SiteIndex  # noqa: E402
from feedsvc.urls import Urls  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    corpus_args(parser)
    args = parser.parse_args()
    corpus = make_corpus(args)
    settings = ContentSettings()
    index = SiteIndex(Urls("http://127.0.0.1:8080/"))
    paths = sorted(corpus.rglob("*.md"))
    jobs = []
    total_bytes = 0
    start = time.perf_counter()
    for path in paths:
        raw = path.read_bytes()
        total_bytes += len(raw)
        rel = path.relative_to(corpus).as_posix()
        note = NoteFile(source="notes", rel_path=rel, abs_path=str(path), size=len(raw), mtime_ns=0)
        try:
            text = read_note(note, raw, settings)
        except NoteError:
            continue
        index.add_entry("notes", rel, "c", note.stem)
        jobs.append((note, text, f"http://127.0.0.1:8080/entries/c/{note.stem}"))
    read_seconds = time.perf_counter() - start
    mb = total_bytes / 1e6
    print(f"corpus: {corpus} ({len(paths)} notes, {mb:.1f} MB)")
    print(f"read + front matter: {read_seconds:6.2f} s  {len(paths) / read_seconds:7.0f} notes/s")
    for workers in (1, worker_count()):
        start = time.perf_counter()
        results = render_batch(jobs, index, settings, workers=workers)
        seconds = time.perf_counter() - start
        failed = sum(isinstance(r, NoteError) for r in results)
        print(f"render, {workers} process{'es' if workers > 1 else ''}: {seconds:6.2f} s  "
              f"{len(jobs) / seconds:7.0f} notes/s  {mb / seconds:5.2f} MB/s  ({failed} failed)")
        if worker_count() == 1:
            break


if __name__ == "__main__":
    main()
