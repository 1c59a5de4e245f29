"""Targeted scans (Scanner.request/run with paths): just the named paths are looked at, with
the same result as a full scan restricted to them; other notes and media are left alone;
unsafe paths never reach the disk; requests merge. Real files, SQLite and PostgreSQL."""

from __future__ import annotations

import datetime as dt
import os
from pathlib import Path
from typing import Any

import pytest

from feedsvc.sources import walk as sources_module
from feedsvc.config import Config
from feedsvc.model import Source
from feedsvc.scan.scanner import Scanner
from feedsvc.scan.scanner import PendingRequests
from feedsvc.sources.walk import snapshot_paths
from feedsvc.store import Store
from feedsvc.store import open_store
from feedsvc.model import ScanJob
from feedsvc.model import ScanRequest

from conftest import Clock
from conftest import NotesDir

PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 32


@pytest.fixture
def store(backend_store: Store) -> Store:
    """Every test here runs on SQLite and on a real PostgreSQL (conftest.store_url)."""
    return backend_store


def at(scanner: Scanner, *paths: str) -> Any:
    return scanner.run(ScanJob(sources=("notes",), reason="webhook", paths={"notes": tuple(paths)}))


def titles(store: Store, clock: Clock, slug: str = "all") -> list[str]:
    return sorted(e.title for e in store.latest_entries(slug, clock(), limit=1000))


def seed(notes: NotesDir) -> None:
    notes.write("NLP/a.md", "正文 A", title="A", date="2025-01-01")
    notes.write("NLP/b.md", "正文 B links [[c]]", title="B", date="2025-01-02")
    notes.write("Python/c.md", "正文 C", title="C", date="2025-01-03")
    notes.write_bytes("NLP/img/fig.png", PNG)
    notes.write_bytes("Python/other.png", PNG + b"2")


def test_changed_note_is_updated_and_nothing_else_is_read(
        notes: NotesDir, scanner: Scanner, store: Store, clock: Clock,
        monkeypatch: pytest.MonkeyPatch) -> None:
    seed(notes)
    scanner.run()
    notes.write("NLP/a.md", "正文 A2", title="A2", date="2025-01-01")
    notes.write("Python/c.md", "正文 C2", title="C2", date="2025-01-03")  # not named
    walked: list[str] = []
    real = sources_module._walk
    monkeypatch.setattr(sources_module, "_walk",
                        lambda *a: walked.append(a[3]) or real(*a))  # type: ignore[func-returns-value]
    report = at(scanner, "NLP/a.md")
    assert report.updated == ("notes/NLP/a.md",)
    assert report.unchanged == 0 and walked == []
    assert titles(store, clock) == ["A2", "B", "C"]  # C2 waits for a scan that names it


def test_new_note_deleted_path_and_folder(notes: NotesDir, scanner: Scanner, store: Store,
                                          clock: Clock) -> None:
    seed(notes)
    scanner.run()
    notes.write("NLP/new.md", "新", title="New", date="2025-02-01")
    assert at(scanner, "NLP/new.md").added == ("notes/NLP/new.md",)
    notes.remove("NLP/a.md")
    notes.remove("Python/c.md")  # gone too, but not named: kept
    assert at(scanner, "NLP/a.md").removed == ("notes/NLP/a.md",)
    assert titles(store, clock) == ["B", "C", "New"]
    notes.write("Deep/x/one.md", "1", title="One", date="2025-03-01")
    notes.write("Deep/x/two.md", "2", title="Two", date="2025-03-02")
    report = at(scanner, "Deep")
    assert sorted(report.added) == ["notes/Deep/x/one.md", "notes/Deep/x/two.md"]
    notes.remove("Deep/x/one.md")
    notes.remove("Deep/x/two.md")
    assert sorted(at(scanner, "Deep/x").removed) == ["notes/Deep/x/one.md", "notes/Deep/x/two.md"]
    # a scan that names a file the walk cannot find (and nothing else) changes nothing
    report = at(scanner, "NLP/never-there.md")
    assert (report.added, report.removed, report.updated) == ((), (), ())


def test_rename_with_both_paths_named_keeps_the_entry(notes: NotesDir, scanner: Scanner,
                                                      store: Store, clock: Clock) -> None:
    seed(notes)
    scanner.run()
    before = {e.id: e for e in store.latest_entries("all", clock())}["notes/NLP/a.md"]
    notes.rename("NLP/a.md", "NLP/moved.md")
    report = at(scanner, "NLP/a.md", "NLP/moved.md")
    assert report.renamed == ("notes/NLP/a.md",) and report.removed == ()
    after = {e.id: e for e in store.latest_entries("all", clock())}["notes/NLP/a.md"]
    assert after.rel_path == "NLP/moved.md" and after.published == before.published


def test_note_outside_the_scope_is_left_alone(notes: NotesDir, scanner: Scanner, store: Store,
                                              clock: Clock) -> None:
    seed(notes)
    scanner.run()
    notes.remove("Python/c.md")
    notes.write("NLP/b.md", "changed", title="B2", date="2025-01-02")
    report = at(scanner, "NLP/a.md")
    assert (report.added, report.removed, report.updated) == ((), (), ())
    assert titles(store, clock) == ["A", "B", "C"]
    assert set(store.note_stats("notes")) == {"NLP/a.md", "NLP/b.md", "Python/c.md"}


def test_media_of_other_paths_is_not_deleted(notes: NotesDir, scanner: Scanner,
                                             store: Store) -> None:
    seed(notes)
    scanner.run()
    notes.write("NLP/a.md", "正文 A ![[fig.png]]", title="A2", date="2025-01-01")
    at(scanner, "NLP/a.md")
    assert store.media_info("notes", "NLP/img/fig.png") is not None
    assert store.media_info("notes", "Python/other.png") is not None
    notes.remove("NLP/img/fig.png")
    notes.write_bytes("NLP/img/new.png", PNG + b"3")
    at(scanner, "NLP/img")
    assert store.media_info("notes", "NLP/img/fig.png") is None
    assert store.media_info("notes", "NLP/img/new.png") is not None
    assert store.media_info("notes", "Python/other.png") is not None
    notes.remove("Python/other.png")
    at(scanner, "Python/other.png")
    assert store.media_info("notes", "Python/other.png") is None


def test_unsafe_paths_never_reach_the_disk(notes: NotesDir, scanner: Scanner, store: Store,
                                           clock: Clock, tmp_path: Path,
                                           monkeypatch: pytest.MonkeyPatch) -> None:
    seed(notes)
    scanner.run()
    (tmp_path / "outside.md").write_text("---\ntitle: Secret\n---\nsecret\n")
    notes.write(".hidden/h.md", "h", title="Hidden")
    looked: list[str] = []
    real_stat = os.stat

    def spy(path: Any, *args: Any, **kwargs: Any) -> Any:
        looked.append(str(path))
        return real_stat(path, *args, **kwargs)
    monkeypatch.setattr("feedsvc.sources.walk.os.stat", spy)
    report = at(scanner, "../outside.md", "/etc/passwd", ".hidden/h.md", "NLP/../../outside.md",
                "NLP\\a.md", "NLP/./a.md", "")
    assert (report.added, report.removed, report.updated) == ((), (), ())
    assert [p for p in looked if "outside" in p or "passwd" in p or ".hidden" in p] == []
    assert titles(store, clock) == ["A", "B", "C"]


def test_snapshot_paths_stats_notes_walks_folders_and_skips_the_rest(
        notes: NotesDir, tmp_path: Path) -> None:
    seed(notes)
    (tmp_path / "secret.md").write_text("x")
    (notes.root / "NLP" / "out.md").symlink_to(tmp_path / "secret.md")
    source = Source(name="notes", root=notes.root)
    snap = snapshot_paths(source, ["NLP", "Python/c.md", "gone.md", ".git/x", "../x"])
    assert [n.rel_path for n in snap.notes] == ["NLP/a.md", "NLP/b.md", "Python/c.md"]
    assert snap.media == ("NLP/img/fig.png",)
    assert snap.scope == ("NLP", "Python/c.md", "gone.md")
    assert [(p.path, p.reason) for p in snap.problems] == [
        ("NLP/out.md", "symlink points outside the source")]


def test_targeted_scans_give_the_store_a_full_scan_gives(
        notes: NotesDir, config: Config, store_url: str, tmp_path: Path, clock: Clock) -> None:
    """Same edits, one store scanned at the named paths, one walked: same contents (ids,
    slugs with a collision across folders, wiki-links to notes added later, dates)."""
    seed(notes)
    targeted_store = open_store(store_url)
    full_store = open_store(f"sqlite:///{(tmp_path / 'full.db').as_posix()}")
    targeted, full = Scanner(config, targeted_store, clock=clock), Scanner(config, full_store,
                                                                           clock=clock)
    targeted.run()
    full.run()
    steps: list[tuple[list[str], Any]] = [
        (["NLP/a.md"], lambda: notes.write("NLP/a.md", "A [[later]] [[c]]", title="A2",
                                           date="2025-01-01")),
        (["Python/later.md"], lambda: notes.write("Python/later.md", "L", title="Later")),
        (["Other/c.md"], lambda: notes.write("Other/c.md", "same stem", title="C bis",
                                             category="Python", date="2025-04-01")),
        (["Python/c.md", "Python/c-moved.md"], lambda: notes.rename("Python/c.md",
                                                                    "Python/c-moved.md")),
        (["NLP/b.md"], lambda: notes.remove("NLP/b.md")),
        (["NLP/img", "NLP/a.md"], lambda: (notes.write_bytes("NLP/img/two.png", PNG + b"9"),
                                           notes.write("NLP/a.md", "A ![[two.png]]", title="A3",
                                                       date="2025-01-01"))),
    ]
    for paths, change in steps:
        clock.advance(minutes=5)
        change()
        at(targeted, *paths)
        full.run(ScanJob(sources=("notes",), reason="webhook"))
        assert dump(targeted_store, clock) == dump(full_store, clock), paths
    targeted_store.close()
    full_store.close()


def dump(store: Store, clock: Clock) -> Any:
    entries = sorted((e.id, e.rel_path, e.category.slug, e.slug, e.title, e.published,
                      e.updated, e.html, e.excerpt, e.tags)
                     for e in store.latest_entries("all", clock() + dt.timedelta(days=1),
                                                   limit=1000))
    rows = sorted((n.rel_path, n.size, n.mtime_ns, n.file_hash, n.problem, n.entry_id)
                  for n in store.load_notes("notes").values())
    media = sorted(store.media_stats("notes"))
    return entries, rows, media


def test_pending_requests_merge_into_one_job_and_a_walk_wins() -> None:
    pending = PendingRequests()
    pending.add(ScanRequest(source="notes", paths=("a.md",), reason="webhook"))
    pending.add(ScanRequest(source="notes", paths=("b.md", "a.md"), reason="watch"))
    pending.add(ScanRequest(source="other", paths=("x.md",), reason="webhook"))
    assert pending.job() == ScanJob(reason="watch+webhook", sources=("notes", "other"),
                                    paths={"notes": ("a.md", "b.md"), "other": ("x.md",)},
                                    pull=True, git_targets=True)
    pending.add(ScanRequest(source="notes", reason="webhook"))  # a walk of notes wins over its paths
    pending.add(ScanRequest(source="notes", paths=("c.md",), reason="watch"))  # ...and later paths
    assert pending.job() == ScanJob(reason="watch+webhook", sources=("notes", "other"),
                                    paths={"other": ("x.md",)}, pull=True, git_targets=True)
    pending.add(ScanRequest(reason="poll"))  # every source, walked; a poll walks git sources too
    assert pending.job() == ScanJob(reason="poll+watch+webhook", sources=None, paths={},
                                    pull=True, git_targets=False)


def test_request_with_paths_runs_a_targeted_scan(notes: NotesDir, scanner: Scanner,
                                                 store: Store, clock: Clock) -> None:
    seed(notes)
    scanner.run()
    notes.write("NLP/a.md", "x", title="A2", date="2025-01-01")
    notes.write("Python/c.md", "y", title="C2", date="2025-01-03")
    reports: list[Any] = []
    scanner.listeners.append(reports.append)
    scanner.request(ScanRequest(source="notes", paths=("NLP/a.md",), reason="watch"))
    assert scanner.wait_idle(30)
    assert reports[-1].updated == ("notes/NLP/a.md",) and reports[-1].unchanged == 0
    with pytest.raises(ValueError):
        scanner.request(ScanRequest(source=None, paths=("NLP/a.md",)))


def test_problems_of_other_notes_are_still_reported(notes: NotesDir, scanner: Scanner) -> None:
    seed(notes)
    notes.write_bytes("Python/bad.md", b"---\ntitle: [unclosed\n---\nbody\n")
    first = scanner.run()
    assert [p.path for p in first.problems] == ["Python/bad.md"]
    for _ in range(2):  # the second time from what the scanner keeps
        notes.write("NLP/a.md", "again", title="A again", date="2025-01-01")
        notes.touch_forward("NLP/a.md")
        report = at(scanner, "NLP/a.md")
        assert report.updated == ("notes/NLP/a.md",)
        assert [p.path for p in report.problems] == ["Python/bad.md"]
    notes.write("Python/bad.md", "fixed", title="Fixed", date="2025-01-05")
    fixed = at(scanner, "Python/bad.md")
    assert fixed.problems == () and fixed.added == ("notes/Python/bad.md",)
    notes.touch_forward("NLP/a.md", 10)
    assert at(scanner, "NLP/a.md").problems == ()


def test_warm_targeted_scans_load_no_list_of_every_entry(
        notes: NotesDir, scanner: Scanner, store: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    seed(notes)
    scanner.run()
    notes.write("NLP/a.md", "x", title="A1", date="2025-01-01")
    at(scanner, "NLP/a.md")  # builds what the scanner keeps
    calls: list[str] = []
    for name in ("entry_refs", "note_problems", "note_stats", "source_imported"):
        real = getattr(store, name)
        monkeypatch.setattr(store, name, lambda *a, _n=name, _r=real, **k: calls.append(_n)
                            or _r(*a, **k))
    for i in range(3):
        notes.write("NLP/a.md", f"edit {i}", title=f"A{i + 2}", date="2025-01-01")
        notes.touch_forward("NLP/a.md", 10 * (i + 1))
        assert at(scanner, "NLP/a.md").updated == ("notes/NLP/a.md",)
    notes.write("NLP/fresh.md", "[[a]]", title="Fresh", date="2025-01-09")
    assert at(scanner, "NLP/fresh.md").added == ("notes/NLP/fresh.md",)
    assert calls == []


def test_a_startup_scan_leaves_what_targeted_scans_keep_ready(
        notes: NotesDir, scanner: Scanner, store: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    """The serve's start-up (or takeover) scan walks; after it the scanner builds what the
    targeted scans keep, so the first webhook loads no list of every entry either."""
    seed(notes)
    scanner.run()  # the store is filled; then a serve starts on it
    scanner = Scanner(scanner.config, store, clock=scanner.clock)
    scanner.request(ScanRequest(reason="startup"))
    assert scanner.wait_idle(30)
    assert scanner.pipeline.kept.stamp == store.stamp()
    calls: list[str] = []
    for name in ("entry_refs", "entry_places"):
        real = getattr(store, name)
        monkeypatch.setattr(store, name, lambda *a, _n=name, _r=real, **k: calls.append(_n)
                            or _r(*a, **k))
    notes.write("NLP/a.md", "[[b]]", title="A1", date="2025-01-01")
    assert at(scanner, "NLP/a.md").updated == ("notes/NLP/a.md",)
    assert calls == []


def test_another_process_writing_is_seen_by_the_next_targeted_scan(
        notes: NotesDir, config: Config, store_url: str, clock: Clock) -> None:
    seed(notes)
    mine = Scanner(config, open_store(store_url), clock=clock)
    mine.run()
    notes.write("NLP/a.md", "x", title="A1", date="2025-01-01")
    at(mine, "NLP/a.md")
    other = Scanner(config, open_store(store_url), clock=clock)  # e.g. `feedsvc scan`
    notes.write("Python/target.md", "t", title="Target", date="2025-01-05")
    notes.write_bytes("Python/pic.png", PNG + b"p")
    assert other.run().added == ("notes/Python/target.md",)
    notes.write("NLP/linker.md", "see [[target]] ![[pic.png]]", title="Linker", date="2025-01-06")
    at(mine, "NLP/linker.md")
    entry = {e.title: e for e in mine.store.latest_entries("all", clock())}["Linker"]
    assert "/entries/python/target" in entry.html
    assert "/media/notes/Python/pic.png" in entry.html
    notes.write_bytes("Python/only-media.png", PNG + b"m")  # a scan that moves no revision
    revision = mine.store.revision()
    other.run()
    assert mine.store.revision() == revision
    notes.write("NLP/linker2.md", "![[only-media.png]]", title="Linker 2", date="2025-01-07")
    at(mine, "NLP/linker2.md")
    entry = {e.title: e for e in mine.store.latest_entries("all", clock())}["Linker 2"]
    assert "/media/notes/Python/only-media.png" in entry.html
    mine.store.close()
    other.store.close()


def test_tag_feed_signature_is_that_of_its_first_entries(notes: NotesDir, scanner: Scanner,
                                                         store: Store, clock: Clock) -> None:
    """feed_signature picks a tag's entries in two steps: same result as reading them all
    (ids and digests, in feed order); a row without a digest (written by an older release
    during a rolling upgrade) gets the one its columns give."""
    import hashlib
    from sqlalchemy import select
    from sqlalchemy import update
    from feedsvc.store import state
    from feedsvc.store.entries import ORDER
    from feedsvc.store.entries import in_feed
    from feedsvc.store.schema import entries
    for i in range(8):
        notes.write(f"NLP/t{i}.md", f"body {i}", title=f"T{i}", date=f"2025-01-0{i + 1}",
                    tags=["shared"] if i % 2 else ["shared", "odd"])
    scanner.run()
    with store.engine.begin() as conn:
        for key in ("tag:shared", "tag:odd"):
            got, newest = state.feed_signature(conn, key, 3, clock(), "ctx")
            digest = hashlib.sha256(b"ctx\x1d")
            query = in_feed(select(entries.c.id, entries.c.digest)
                            .where(entries.c.published <= clock()), key)
            rows = conn.execute(query.order_by(*ORDER).limit(3)).all()
            assert len(rows) == 3 and all(row.digest for row in rows)
            for entry_id, entry_digest in rows:
                digest.update(f"{entry_id}\x1f{entry_digest}\x1e".encode())
            assert got == digest.hexdigest()[:32] and newest is not None
        conn.execute(update(entries).values(digest=None))
        assert state.feed_signature(conn, "tag:odd", 3, clock(), "ctx")[0] == got


def test_opml_follows_category_changes_even_when_its_recount_is_skipped(
        notes: NotesDir, scanner: Scanner, store: Store, clock: Clock) -> None:
    """An edit in place leaves the OPML's list alone (not recounted); a new category, a
    renamed one and the last entry of one going away still move it."""
    seed(notes)
    scanner.run()
    first = store.opml_state()
    clock.advance(minutes=1)
    notes.write("NLP/a.md", "edited", title="A2", date="2025-01-01")
    at(scanner, "NLP/a.md")
    assert store.opml_state() == first
    for step, change, paths in [
            ("new", lambda: notes.write("Fresh/x.md", "x", title="X", date="2025-01-04"),
             ["Fresh/x.md"]),
            ("renamed", lambda: notes.write("Fresh/x.md", "x", title="X", category="Fresh Two",
                                            date="2025-01-04"), ["Fresh/x.md"]),
            ("gone", lambda: notes.remove("Fresh/x.md"), ["Fresh/x.md"])]:
        before = store.opml_state()
        clock.advance(minutes=1)
        change()
        at(scanner, *paths)
        assert store.opml_state() != before, step
