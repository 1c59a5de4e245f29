"""A walk of a whole source is narrowed to what it found changed (scan/scope.py): the scan
that follows speaks for those paths only. Whatever the changes, the store ends exactly
where a scan of the whole snapshot leaves it; a walk that met a symlink, could not list a
folder or found too much is not narrowed; the deletion guard still stops a mass delete.
Real files, real SQLite and PostgreSQL."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from feedsvc.scan import scope
from feedsvc.config import Config
from feedsvc.model import Problem
from feedsvc.model import Source
from feedsvc.scan.scanner import Scanner
from feedsvc.sources.walk import SourceWalk
from feedsvc.sources.walk import Snapshot
from feedsvc.store import Store
from feedsvc.store import open_store

from conftest import Clock
from conftest import NotesDir

PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 32


@pytest.fixture
def store(backend_store: Store) -> Store:
    """Every test here runs on SQLite and on a real PostgreSQL (conftest.store_url)."""
    return backend_store


def seed(notes: NotesDir, count: int = 3) -> None:
    for i in range(count):
        notes.write(f"NLP/n{i}.md", f"正文 {i} ![[fig.png]] [[n{(i + 1) % count}]]",
                    title=f"N{i}", date=f"2025-01-{i + 1:02d}", tags=["t"])
    notes.write_bytes("NLP/img/fig.png", PNG)
    notes.write_bytes("Python/other.png", PNG + b"2")


def capture_snapshots(monkeypatch: pytest.MonkeyPatch) -> list[Snapshot]:
    """The snapshot each walk hands the scan."""
    seen: list[Snapshot] = []
    real = scope.snapshot_source

    def snapshot(source: Source, *args: Any) -> Snapshot:
        snap = real(source, *args)
        seen.append(snap)
        return snap
    monkeypatch.setattr("feedsvc.scan.scope.snapshot_source", snapshot)
    return seen


def store_state(store: Store, clock: Clock) -> dict[str, Any]:
    """Everything a scan leaves in the store that readers or later scans see."""
    now = clock()
    refs = sorted(store.entry_refs(), key=lambda r: r.id)
    return {
        "notes": store.note_stats("notes"),
        "rows": dict(sorted(store.load_notes("notes").items())),
        "media": {p: (store.media_info("notes", p) or p) for p in sorted(store.media_stats("notes"))},
        "refs": refs,
        "entries": [store.entry(r.category_slug, r.slug, now) for r in refs],
        "problems": sorted(store.note_problems(), key=lambda p: (p.path or "", p.reason)),
        "tags": store.tags(now),
        "categories": store.categories(now),
    }


def test_a_one_edit_walk_scans_just_that_note(
        notes: NotesDir, scanner: Scanner, store: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    seed(notes, 5)
    scanner.run()
    seen = capture_snapshots(monkeypatch)
    notes.write("NLP/n2.md", "改过 ![[fig.png]]", title="N2 edited", date="2025-01-03")
    report = scanner.run()
    assert report.updated == ("notes/NLP/n2.md",)
    assert report.unchanged == 4  # the walk saw them; they are not in the snapshot
    assert [s.scope for s in seen] == [("NLP/n2.md",)]
    assert [n.rel_path for n in seen[0].notes] == ["NLP/n2.md"]
    seen.clear()
    report = scanner.run()  # nothing changed: an empty scope, nothing read
    assert [s.scope for s in seen] == [()]
    assert report.unchanged == 5 and report.updated == () and report.added == ()


def test_narrowed_walks_leave_the_store_as_whole_walks_do(
        tmp_path: Path, notes: NotesDir, config: Config, scanner: Scanner, store: Store,
        clock: Clock, monkeypatch: pytest.MonkeyPatch) -> None:
    """Two stores follow the same folder, one through narrowed walks, the other through
    walks that are never narrowed; after each change both hold the same."""
    whole_store = open_store(f"sqlite:///{tmp_path / 'whole.db'}",
                             keep_per_category=config.store.keep_per_category,
                             tombstone_days=config.feeds.tombstone_days)
    whole = Scanner(config, whole_store, clock=clock)
    seen = capture_snapshots(monkeypatch)

    def run_both() -> None:
        seen.clear()
        narrow_report = scanner.run()
        assert seen[0].scope is not None, "the walk was not narrowed"
        with monkeypatch.context() as m:
            m.setattr(scope, "NARROW_UP_TO", -1)
            whole_report = whole.run()
        assert seen[1].scope is None
        for field in ("added", "updated", "removed", "renamed", "unchanged"):
            assert getattr(narrow_report, field) == getattr(whole_report, field), field
        assert sorted(narrow_report.problems, key=str) == sorted(whole_report.problems, key=str)
        assert store_state(store, clock) == store_state(whole_store, clock)

    steps: list[Callable[[], Any]] = [
        lambda: seed(notes, 4),  # the first scan of an empty store
        lambda: notes.write("NLP/n1.md", "改 [[n3]]", title="N1b", date="2025-01-02"),
        lambda: notes.write("Python/new.md", "新 ![[other.png]]", title="New", date="2025-02-01"),
        lambda: notes.remove("NLP/n3.md"),  # n2 links to it
        lambda: notes.write_bytes("NLP/bad.md", b"---\ntitle: [unclosed\n---\nx"),
        lambda: notes.rename("NLP/n0.md", "NLP/moved/n0.md"),
        lambda: notes.write_bytes("NLP/img/fig.png", PNG + b"changed"),
        lambda: notes.remove("Python/other.png"),
        lambda: notes.write_bytes("NLP/img/late.png", PNG + b"late"),
        lambda: notes.write_bytes("NLP/bad.md", b"---\ntitle: Fixed\n---\nfixed ![[late.png]]"),
        lambda: None,  # nothing: the old problems are still reported
    ]
    try:
        for step in steps:
            step()
            clock.advance(minutes=1)
            run_both()
    finally:
        whole_store.close()


def test_a_walk_that_meets_a_symlink_is_not_narrowed(
        notes: NotesDir, scanner: Scanner, store: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    seed(notes)
    (notes.root / "NLP" / "alias.md").symlink_to("n1.md")
    scanner.run()
    seen = capture_snapshots(monkeypatch)
    notes.write("NLP/n0.md", "改", title="N0b", date="2025-01-01")
    report = scanner.run()
    assert seen[0].scope is None and len(seen[0].notes) == 4
    assert report.updated == ("notes/NLP/n0.md",)


def test_a_walk_with_an_unlisted_folder_or_too_many_changes_is_not_narrowed() -> None:
    source = Source(name="notes", root=Path("/nonexistent"))
    stored = {f"a/{i}.md": (i, i) for i in range(5)}
    walk = SourceWalk(notes=dict(stored))
    assert scope.narrowed(source, walk, stored, {}) is not None
    unlisted = SourceWalk(notes=dict(stored), unlisted=["b"], problems=[
        Problem(source="notes", path="b", reason="folder cannot be listed: Permission denied")])
    assert scope.narrowed(source, unlisted, stored, {}) is None
    moved = SourceWalk(notes={p: (9, 9) for p in stored})
    narrowed = scope.narrowed(source, moved, stored, {})
    assert narrowed is not None and narrowed.scope == tuple(sorted(stored))
    old, scope.NARROW_UP_TO = scope.NARROW_UP_TO, 4
    try:
        assert scope.narrowed(source, moved, stored, {}) is None  # 5 changed, over 4
        assert scope.narrowed(source, SourceWalk(), stored, {}) is None  # 5 gone
    finally:
        scope.NARROW_UP_TO = old


def test_an_emptied_source_is_stopped_by_the_deletion_guard(
        notes: NotesDir, scanner: Scanner, store: Store, clock: Clock,
        monkeypatch: pytest.MonkeyPatch) -> None:
    """An unmounted disk leaves an empty mount point: the narrowed walk names every note
    as gone, and the guard refuses it as it refuses a whole walk's."""
    seed(notes, 10)
    scanner.run()
    before = store.note_stats("notes")
    seen = capture_snapshots(monkeypatch)
    for entry in os.listdir(notes.root):
        os.rename(notes.root / entry, notes.root.parent / f"away-{entry}")
    report = scanner.run()
    assert seen[0].scope is not None and len(seen[0].scope) == 12
    assert report.removed == ()
    assert any("max_delete_fraction" in p.reason for p in report.source_errors)
    assert store.note_stats("notes") == before
    assert len(store.media_stats("notes")) == 2  # media kept too
