"""The scan rules of DESIGN.md: identity, category, dates, drafts, renames, deletions, the
deletion guard, unread unchanged files, link re-rendering. Real files, real SQLite."""

from __future__ import annotations

import datetime as dt
import os
import shutil
import time
from pathlib import Path

import pytest

from feedsvc.config import load_config
from feedsvc.scan.scanner import Scanner
from feedsvc.store import Store
from feedsvc.model import ScanJob
from feedsvc.model import ScanRequest

from conftest import Clock
from conftest import NotesDir
from conftest import write_config


@pytest.fixture
def store(backend_store: Store) -> Store:
    """Every test here runs on SQLite and on a real PostgreSQL (conftest.store_url)."""
    return backend_store


UTC = dt.timezone.utc


def entry_ids(store: Store, clock: Clock, slug: str = "all") -> list[str]:
    return [e.id for e in store.latest_entries(slug, clock())]


def test_add_scan_reports_and_stores(notes: NotesDir, scanner: Scanner, store: Store,
                                     clock: Clock) -> None:
    notes.write("NLP/a.md", "正文 A", title="A", date="2025-01-02T10:00:00+08:00")
    notes.write("Large Model/b.md", "# B 标题\n\n正文 B", date="2025-01-03")
    report = scanner.run()
    assert sorted(report.added) == ["notes/Large Model/b.md", "notes/NLP/a.md"]
    assert report.problems == () and report.source_errors == ()
    [b, a] = store.latest_entries("all", clock())
    assert (a.title, a.category.name, a.category.slug, a.slug) == ("A", "NLP", "nlp", "a")
    assert a.published == dt.datetime(2025, 1, 2, 2, 0, tzinfo=UTC)
    assert (b.title, b.category.slug) == ("B 标题", "large-model")
    assert b.published == dt.datetime(2025, 1, 2, 16, 0, tzinfo=UTC)  # midnight Shanghai
    assert "B 标题" not in b.html  # the opening h1 is the title's


def test_category_rules(notes: NotesDir, tmp_path: Path, clock: Clock) -> None:
    notes.write("3D Model/x.md", "x", date="2025-01-01")
    notes.write("3D Model/y.md", "y", date="2025-01-01", category="Computer Vision")
    notes.write("root.md", "r", date="2025-01-01")
    path = write_config(tmp_path, notes.root, extra='[categories."Computer Vision"]\nslug = "cv"\n')
    text = path.read_text().replace('name = "notes"', 'name = "notes"\ndefault_category = "Inbox"')
    path.write_text(text)
    config = load_config(path, env={})
    from feedsvc.store import open_store
    store = open_store(config.store_url)
    Scanner(config, store, clock=clock).run()
    got = {e.rel_path: (e.category.name, e.category.slug) for e in store.latest_entries("all", clock())}
    assert got == {"3D Model/x.md": ("3D Model", "3d-model"),
                   "3D Model/y.md": ("Computer Vision", "cv"),
                   "root.md": ("Inbox", "inbox")}


def test_uncategorized_when_no_folder_and_no_default(notes: NotesDir, scanner: Scanner,
                                                      store: Store, clock: Clock) -> None:
    notes.write("loose.md", "x", date="2025-01-01")
    scanner.run()
    [entry] = store.latest_entries("all", clock())
    assert (entry.category.name, entry.category.slug) == ("Uncategorized", "uncategorized")


def test_undated_note_keeps_its_first_seen_time(notes: NotesDir, scanner: Scanner,
                                                store: Store, clock: Clock) -> None:
    notes.write("NLP/u.md", "body")
    first = clock()
    scanner.run()
    clock.advance(hours=5)
    notes.write("NLP/u.md", "body changed")
    notes.touch_forward("NLP/u.md")
    scanner.run()
    [entry] = store.latest_entries("all", clock())
    assert entry.published == first
    assert entry.updated > first
    # git checkout: file deleted and re-created later with the same path -> same first-seen
    notes.remove("NLP/u.md")
    scanner.run()
    clock.advance(days=1)
    notes.write("NLP/u.md", "body changed")
    scanner.run()
    [entry] = store.latest_entries("all", clock())
    assert entry.published == first


def test_edit_keeps_id_and_moves_updated_only_for_title_or_body(
        notes: NotesDir, scanner: Scanner, store: Store, clock: Clock) -> None:
    notes.write("NLP/e.md", "v1", title="T", date="2025-01-01", tags=["a"])
    scanner.run()
    [before] = store.latest_entries("all", clock())
    notes.write("NLP/e.md", "v1", title="T", date="2025-01-01", tags=["a", "b"])
    notes.touch_forward("NLP/e.md")
    scanner.run()
    [tags_only] = store.latest_entries("all", clock())
    assert tags_only.tags == ("a", "b") and tags_only.updated == before.updated
    notes.write("NLP/e.md", "v2", title="T", date="2025-01-01", tags=["a", "b"])
    notes.touch_forward("NLP/e.md", 60)
    report = scanner.run()
    [after] = store.latest_entries("all", clock())
    assert report.updated == (before.id,)
    assert after.id == before.id and after.published == before.published
    assert after.updated > before.updated


def test_unchanged_files_are_not_read_again(notes: NotesDir, scanner: Scanner, store: Store,
                                            clock: Clock) -> None:
    path = notes.write("NLP/s.md", "aaaa", title="Same", date="2025-01-01")
    scanner.run()
    st = path.stat()
    path.write_text(path.read_text().replace("aaaa", "bbbb"))  # same size
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))  # same mtime
    report = scanner.run()
    assert report.unchanged == 1 and report.updated == ()
    [entry] = store.latest_entries("all", clock())
    assert "aaaa" in entry.html
    notes.touch_forward("NLP/s.md")
    scanner.run()
    [entry] = store.latest_entries("all", clock())
    assert "bbbb" in entry.html


def test_rename_keeps_identity_and_dates(notes: NotesDir, scanner: Scanner, store: Store,
                                         clock: Clock) -> None:
    notes.write("NLP/old name.md", "内容", title="R")
    notes.write("NLP/other.md", "x", date="2025-01-01")
    scanner.run()
    [before] = [e for e in store.latest_entries("all", clock()) if e.title == "R"]
    clock.advance(hours=3)
    notes.rename("NLP/old name.md", "Python/新名字.md")
    report = scanner.run()
    assert report.renamed == (before.id,) and report.removed == () and report.added == ()
    [after] = [e for e in store.latest_entries("all", clock()) if e.title == "R"]
    assert (after.id, after.published, after.updated) == (before.id, before.published, before.updated)
    assert (after.rel_path, after.category.slug, after.slug) == ("Python/新名字.md", "python", "新名字")


def test_front_matter_id_is_the_identity(notes: NotesDir, scanner: Scanner, store: Store,
                                         clock: Clock) -> None:
    notes.write("NLP/a.md", "x", id="urn:uuid:1234", date="2025-01-01")
    scanner.run()
    notes.rename("NLP/a.md", "NLP/b.md")
    notes.write("NLP/b.md", "x edited", id="urn:uuid:1234", date="2025-01-01")
    report = scanner.run()
    assert entry_ids(store, clock) == ["urn:uuid:1234"]
    assert report.removed == ()


def test_duplicate_front_matter_ids_skip_the_second(notes: NotesDir, scanner: Scanner,
                                                    store: Store, clock: Clock) -> None:
    notes.write("NLP/a.md", "x", id="same", date="2025-01-01")
    notes.write("NLP/b.md", "y", id="same", date="2025-01-02")
    report = scanner.run()
    assert entry_ids(store, clock) == ["same"]
    [problem] = report.problems
    assert problem.path == "NLP/b.md" and "duplicate id 'same'" in problem.reason


def test_drafts_are_never_published(notes: NotesDir, scanner: Scanner, store: Store,
                                    clock: Clock) -> None:
    notes.write("NLP/d.md", "secret", title="D", draft=True)
    scanner.run()
    assert entry_ids(store, clock) == []
    notes.write("NLP/d.md", "public now", title="D", draft=False)
    notes.touch_forward("NLP/d.md")
    scanner.run()
    assert entry_ids(store, clock) == ["notes/NLP/d.md"]
    notes.write("NLP/d.md", "back to draft", title="D", draft=True)
    notes.touch_forward("NLP/d.md", 10)
    report = scanner.run()
    assert entry_ids(store, clock) == [] and report.removed == ("notes/NLP/d.md",)


def test_future_dated_note_appears_when_due(notes: NotesDir, scanner: Scanner, store: Store,
                                            clock: Clock) -> None:
    due = clock() + dt.timedelta(hours=2)
    notes.write("NLP/f.md", "soon", title="F", date=due.isoformat())
    scanner.run()
    assert entry_ids(store, clock) == []
    assert scanner.next_due() == due
    clock.advance(hours=2)
    assert scanner.publish_due() == ("all", "nlp")
    assert entry_ids(store, clock) == ["notes/NLP/f.md"]
    assert scanner.next_due() is None


def test_deletion_removes_and_leaves_a_tombstone(notes: NotesDir, scanner: Scanner,
                                                 store: Store, clock: Clock) -> None:
    for i in range(4):
        notes.write(f"NLP/n{i}.md", f"body {i}", date=f"2025-01-0{i + 1}")
    scanner.run()
    notes.remove("NLP/n2.md")
    report = scanner.run()
    assert report.removed == ("notes/NLP/n2.md",)
    assert "notes/NLP/n2.md" not in entry_ids(store, clock)
    assert [t.id for t in store.tombstones("nlp", clock())] == ["notes/NLP/n2.md"]


def test_deletion_guard_refuses_mass_removal(notes: NotesDir, scanner: Scanner, store: Store,
                                             clock: Clock) -> None:
    for i in range(6):
        notes.write(f"NLP/n{i}.md", f"body {i}", date=f"2025-01-0{i + 1}")
    scanner.run()
    for i in range(4):
        notes.remove(f"NLP/n{i}.md")
    report = scanner.run()
    [error] = report.source_errors
    assert "would remove 4 of 6 entries" in error.reason
    assert len(entry_ids(store, clock)) == 6
    report = scanner.run(ScanJob(allow_mass_delete=True))
    assert len(report.removed) == 4 and len(entry_ids(store, clock)) == 2


def test_entries_that_swap_files_are_not_counted_as_removed(notes: NotesDir, scanner: Scanner,
                                                            store: Store, clock: Clock) -> None:
    """Two notes with front-matter ids swap names: both entries are planned again, so the
    deletion guard must not see two of two entries removed."""
    notes.write("NLP/a.md", "body a", id="id-a", title="A", date="2025-01-01")
    notes.write("NLP/b.md", "body b", id="id-b", title="B", date="2025-01-02")
    scanner.run()
    notes.write("NLP/a.md", "body b", id="id-b", title="B", date="2025-01-02")
    notes.write("NLP/b.md", "body a", id="id-a", title="A", date="2025-01-01")
    report = scanner.run()
    assert report.source_errors == () and report.removed == ()
    assert sorted(entry_ids(store, clock)) == ["id-a", "id-b"]


def test_missing_source_root_applies_nothing(notes: NotesDir, scanner: Scanner, store: Store,
                                             clock: Clock) -> None:
    notes.write("NLP/a.md", "x", date="2025-01-01")
    scanner.run()
    before = store.revision()
    shutil.move(notes.root, notes.root.with_name("moved-away"))
    report = scanner.run()
    [error] = report.source_errors
    assert error.source == "notes" and "missing or unreadable" in error.reason
    assert entry_ids(store, clock) == ["notes/NLP/a.md"]
    assert store.revision() == before


def test_bad_note_keeps_its_last_good_version(notes: NotesDir, scanner: Scanner, store: Store,
                                              clock: Clock) -> None:
    notes.write("NLP/a.md", "good body", title="Good", date="2025-01-01")
    notes.write("NLP/b.md", "other", date="2025-01-02")
    scanner.run()
    notes.write_bytes("NLP/a.md", b"---\ntitle: [broken\n---\nbody")
    notes.touch_forward("NLP/a.md")
    report = scanner.run()
    [problem] = report.problems
    assert problem.path == "NLP/a.md"
    assert problem.reason.startswith("malformed front matter (line 3): expected ',' or ']'")
    titles = sorted(e.title for e in store.latest_entries("all", clock()))
    assert titles == ["Good", "b"]
    # still reported on the next scan, although the file is not read again
    assert [p.path for p in scanner.run().problems] == ["NLP/a.md"]
    assert [p.path for p in store.note_problems()] == ["NLP/a.md"]


def test_links_are_rerendered_when_their_target_appears_or_goes(
        notes: NotesDir, scanner: Scanner, store: Store, clock: Clock) -> None:
    notes.write("NLP/src.md", "见 [[target]] 与 [rel](../Python/target.md)", date="2025-01-01")
    scanner.run()
    [src] = store.latest_entries("all", clock())
    assert "href" not in src.html
    notes.write("Python/target.md", "t", date="2025-01-02")
    scanner.run()
    src = store.entry("nlp", "src", clock())
    assert src is not None
    assert src.html.count('href="http://feeds.example.org/entries/python/target"') == 2
    notes.remove("Python/target.md")
    scanner.run()
    src = store.entry("nlp", "src", clock())
    assert src is not None and "href" not in src.html


def test_links_to_a_draft_are_rerendered_when_it_is_published(
        notes: NotesDir, scanner: Scanner, store: Store, clock: Clock) -> None:
    notes.write("NLP/src.md", "见 [[target]]", date="2025-01-01")
    notes.write("Python/target.md", "t", date="2025-01-02", draft=True)
    scanner.run()
    src = store.entry("nlp", "src", clock())
    assert src is not None and "href" not in src.html
    notes.write("Python/target.md", "t", date="2025-01-02")
    report = scanner.run()
    assert report.added == ("notes/Python/target.md",)
    src = store.entry("nlp", "src", clock())
    assert src is not None
    assert src.html.count('href="http://feeds.example.org/entries/python/target"') == 1


def test_slug_clash_in_one_category_gets_a_suffix(notes: NotesDir, scanner: Scanner,
                                                  store: Store, clock: Clock) -> None:
    notes.write("NLP/readme.md", "a", date="2025-01-01")
    notes.write("Other/readme.md", "b", date="2025-01-02", category="NLP")
    scanner.run()
    slugs = sorted(e.slug for e in store.latest_entries("nlp", clock()))
    assert slugs[0] == "readme" and slugs[1].startswith("readme-") and len(slugs[1]) == 13


def test_scans_do_not_overlap_and_bursts_coalesce(notes: NotesDir, scanner: Scanner) -> None:
    notes.write("NLP/a.md", "x", date="2025-01-01")
    with scanner._run_lock:  # the first request's scan is under way (blocked here)
        assert scanner.request(ScanRequest(reason="webhook")) == "started"
        # the worker has taken the first request (else the burst would merge into it too)
        deadline = time.monotonic() + 10
        while scanner._pending and time.monotonic() < deadline:
            time.sleep(0.01)
        statuses = [scanner.request(ScanRequest(reason="webhook")) for _ in range(49)]
        assert set(statuses) == {"queued"}
    assert scanner.wait_idle(10)
    assert scanner.scans_run == 2  # the running one plus exactly one for the whole burst


@pytest.mark.parametrize("front_matter", ['author: "x\\0y"', 'summary: "s\\0t"',
                                          'category: "C\\0D"', 'tags: ["a\\0b"]'])
def test_nul_escapes_in_front_matter_do_not_break_scans(notes: NotesDir, scanner: Scanner,
                                                        store: Store, clock: Clock,
                                                        front_matter: str) -> None:
    """PostgreSQL text cannot hold NUL (YAML's "\\0" escape makes one): on both backends the
    note is published and later scans go on."""
    notes.write_bytes("NLP/a.md", f"---\n{front_matter}\ndate: 2025-01-01\n---\n\nbody".encode())
    assert len(scanner.run().added) == 1
    notes.touch_forward("NLP/a.md")
    second = scanner.run()
    assert second.added == () and second.source_errors == ()
    assert [e.id for e in store.latest_entries("all", clock())] == ["notes/NLP/a.md"]
