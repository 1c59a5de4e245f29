"""A big scan renders and writes in batches inside its one transaction: the result equals an
unbatched scan, nothing is visible to other connections before the commit, a SIGKILL between
batches leaves the previous state whole, and a note edited while the scan runs is read again
by the next scan."""

from __future__ import annotations

import datetime as dt
import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func
from sqlalchemy import select

from feedsvc.config import Config
from feedsvc.config import load_config
from feedsvc.scan.pipeline import ScanPipeline
from feedsvc.scan.workers import PARALLEL_THRESHOLD
from feedsvc.scan.scanner import Scanner
from feedsvc.model import ScanJob
from feedsvc.store import Store
from feedsvc.store import open_store
from feedsvc.store import writes
from feedsvc.store.schema import entries
from feedsvc.store.schema import entry_tags
from feedsvc.store.schema import feed_states
from feedsvc.store.schema import links
from feedsvc.store.schema import notes as notes_table

from conftest import REPO
from conftest import Clock
from conftest import NotesDir
from conftest import write_config

NOTES = PARALLEL_THRESHOLD + 60  # big enough for the render pool and the on-disk spill
BATCH = 37
FOLDERS = ("Python", "NLP", "Vision")


def make_notes(notes: NotesDir, count: int = NOTES, *, version: int = 1) -> None:
    for i in range(count):
        folder = FOLDERS[i % len(FOLDERS)]
        body = textwrap.dedent(f"""\
            # Note {i}

            Version {version}. See [[note-{(i + 1) % count}]] and [the next](note-{(i + 2) % count}.md).

            ```python
            def f{i}(x):
                return x * {i}
            ```

            $$a_{i} = b$$
            """)
        notes.write(f"{folder}/note-{i}.md", body, date=f"2024-01-{1 + i % 28:02d}T10:00:00+08:00",
                    tags=[f"t{i % 5}", "all-notes"], mtime=1_700_000_000 + i)
    notes.write("Python/broken.md", "---\ntitle: [unclosed\n---\nbody\n")
    notes.write("Python/draft.md", "draft body", title="Draft", draft=True)


def dump(store: Store) -> dict[str, list[tuple[Any, ...]]]:
    with store.engine.connect() as conn:
        return {
            "entries": [tuple(r) for r in conn.execute(select(entries).order_by(entries.c.id))],
            "links": sorted(tuple(r) for r in conn.execute(select(links))),
            "tags": sorted(tuple(r) for r in conn.execute(select(entry_tags))),
            "notes": sorted(tuple(r) for r in conn.execute(select(notes_table))),
            "feeds": sorted(tuple(r) for r in conn.execute(select(feed_states))),
        }


def fresh_store(url: str, config: Config) -> Store:
    return open_store(url, keep_per_category=config.store.keep_per_category,
                      tombstone_days=config.feeds.tombstone_days)


def scan_with_batch(config: Config, url: str, clock: Clock, batch: int) -> dict[str, Any]:
    store = fresh_store(url, config)
    try:
        scanner = Scanner(config, store, clock=clock)
        scanner.pipeline.batch_size = batch
        report = scanner.run(ScanJob(reason="test"))
        assert len(report.added) == NOTES
        assert [p.path for p in report.problems] == ["Python/broken.md"]
        return dump(store)
    finally:
        store.close()


def test_batched_scan_equals_unbatched(config: Config, notes: NotesDir, clock: Clock,
                                       store_url: str, tmp_path: Path,
                                       monkeypatch: pytest.MonkeyPatch) -> None:
    make_notes(notes)
    batches: list[int] = []
    original = writes.write_entries

    def counting(conn: Any, upserts: Any, gone: Any, now: dt.datetime) -> tuple[set[str], bool]:
        batches.append(len(upserts))
        return original(conn, upserts, gone, now)

    monkeypatch.setattr(writes, "write_entries", counting)
    batched = scan_with_batch(config, store_url, clock, BATCH)
    assert sum(batches) == NOTES and max(batches) <= 2 * BATCH and len(batches) > NOTES // (2 * BATCH)
    one_batch_url = f"sqlite:///{(tmp_path / 'one-batch.db').as_posix()}"
    batches.clear()
    unbatched = scan_with_batch(config, one_batch_url, clock, 10 ** 6)
    assert [b for b in batches if b] == [NOTES]
    assert batched == unbatched
    html = {row[0]: row[9] for row in batched["entries"]}
    assert '/entries/nlp/note-1">' in html["notes/Python/note-0.md"]  # links across batches
    assert "<span" in html["notes/Python/note-0.md"]  # code highlighted in the workers


def test_batches_commit_once(config: Config, notes: NotesDir, clock: Clock, store_url: str,
                             monkeypatch: pytest.MonkeyPatch) -> None:
    make_notes(notes)
    reader = fresh_store(store_url, config)
    seen: list[int] = []
    original = writes.write_entries

    def watching(conn: Any, upserts: Any, gone: Any, now: dt.datetime) -> tuple[set[str], bool]:
        result = original(conn, upserts, gone, now)
        with reader.engine.connect() as other:  # another connection: sees committed rows only
            seen.append(other.execute(select(func.count()).select_from(entries)).scalar_one())
        return result

    monkeypatch.setattr(writes, "write_entries", watching)
    store = fresh_store(store_url, config)
    try:
        scanner = Scanner(config, store, clock=clock)
        scanner.pipeline.batch_size = BATCH
        scanner.run(ScanJob(reason="test"))
        assert len(seen) > 5 and set(seen) == {0}
        with reader.engine.connect() as other:
            assert other.execute(select(func.count()).select_from(entries)).scalar_one() == NOTES
    finally:
        store.close()
        reader.close()


KILLER = """
import os, signal, sys
from feedsvc.config import load_config
from feedsvc.scan.scanner import Scanner
from feedsvc.store import open_store, writes
from feedsvc.model import ScanJob
config = load_config(sys.argv[1])
calls = []
original = writes.write_entries
def killing(conn, upserts, gone, now):
    calls.append(1)
    if len(calls) == int(sys.argv[2]):
        os.kill(os.getpid(), signal.SIGKILL)  # mid-transaction, batches already written
    return original(conn, upserts, gone, now)
writes.write_entries = killing
scanner = Scanner(config, open_store(config.store_url))
scanner.pipeline.batch_size = int(sys.argv[3])
scanner.run(ScanJob(reason="test"))
"""


def test_sigkill_between_batches_keeps_the_previous_state(tmp_path: Path,
                                                          notes: NotesDir) -> None:
    make_notes(notes)
    config_path = write_config(tmp_path, notes.root, name="kill.toml")
    config = load_config(config_path)
    store = open_store(config.store_url)
    Scanner(config, store).run(ScanJob(reason="first"))
    before = dump(store)
    store.close()
    make_notes(notes, version=2)
    for i in range(NOTES):  # every note changed: the rescan rewrites all of them
        os.utime(notes.path(f"{FOLDERS[i % len(FOLDERS)]}/note-{i}.md"),
                 (1_800_000_000 + i, 1_800_000_000 + i))
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    for kill_at in (2, 6):
        run = subprocess.run([sys.executable, "-c", KILLER, str(config_path), str(kill_at),
                              str(BATCH)], env=env, capture_output=True, timeout=300)
        assert run.returncode == -signal.SIGKILL, run.stderr.decode()[-2000:]
        store = open_store(config.store_url)
        try:
            assert dump(store) == before
        finally:
            store.close()
    store = open_store(config.store_url)
    try:
        report = Scanner(config, store).run(ScanJob(reason="after"))
        assert len(report.updated) == NOTES
        assert all("Version 2." in row[9] for row in dump(store)["entries"])
    finally:
        store.close()


def test_note_edited_while_the_scan_runs_is_read_again(config: Config, notes: NotesDir,
                                                       store: Store, clock: Clock,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    make_notes(notes, 30)
    original = ScanPipeline._render
    edit = notes.path("NLP/note-1.md")

    def edit_first(self: ScanPipeline, *args: Any, **kwargs: Any) -> Any:
        if edit.read_text(encoding="utf-8").find("edited meanwhile") < 0:
            edit.write_text(edit.read_text(encoding="utf-8") + "\nedited meanwhile\n",
                            encoding="utf-8")
        return original(self, *args, **kwargs)

    monkeypatch.setattr(ScanPipeline, "_render", edit_first)
    scanner = Scanner(config, store, clock=clock)
    scanner.run(ScanJob(reason="test"))
    monkeypatch.setattr(ScanPipeline, "_render", original)
    row = {r[1]: r for r in dump(store)["notes"]}["NLP/note-1.md"]
    assert row[3] == -1  # mtime_ns: the next scan reads the note again
    entry = {r[0]: r for r in dump(store)["entries"]}["notes/NLP/note-1.md"]
    assert "edited meanwhile" in entry[9] and entry[11] == ""  # html from disk, no content hash
    clock.advance(minutes=1)
    again = scanner.run(ScanJob(reason="test"))
    assert again.updated == ("notes/NLP/note-1.md",)
    entry = {r[0]: r for r in dump(store)["entries"]}["notes/NLP/note-1.md"]
    assert "edited meanwhile" in entry[9] and entry[11] != ""
    assert scanner.run(ScanJob(reason="test")).updated == ()
