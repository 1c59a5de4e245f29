"""Scans fill the ActivityPub change log (ap_publications) only with federation on: a
source's first import tells nobody, then a new note is a CREATE, an edit an UPDATE, a
deletion a DELETE, and a future-dated note a CREATE once it comes due. Real files, a real
store on SQLite and PostgreSQL, the test clock."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from feedsvc.config import load_config
from feedsvc.model import PublicationKind
from feedsvc.scan.scanner import Scanner
from feedsvc.store import Store

from conftest import Clock
from conftest import NotesDir
from conftest import write_config

UTC = dt.timezone.utc
CREATE, UPDATE, DELETE = PublicationKind.CREATE, PublicationKind.UPDATE, PublicationKind.DELETE
Logged = list[tuple[str, PublicationKind, dt.datetime]]


@pytest.fixture
def store(backend_store: Store) -> Store:
    return backend_store


def scanner(tmp_path: Path, notes: NotesDir, store: Store, clock: Clock, *,
            enabled: bool) -> Scanner:
    extra = f"[activitypub]\nenabled = {'true' if enabled else 'false'}\n"
    config = load_config(write_config(tmp_path, notes.root, extra=extra, name="ap.toml"), env={})
    return Scanner(config, store, clock=clock)


def drain(store: Store) -> Logged:
    """The change log, oldest first, emptied (as the fan-out would after queueing)."""
    taken = store.federation.take_publications(100)
    if taken:
        store.federation.enqueue(taken[-1][0], [], taken[-1][1].at)
    return [(p.entry_id, p.kind, p.at) for _, p in taken]


def write(notes: NotesDir, clock: Clock, rel: str, body: str, **front_matter: str) -> None:
    """A note written "now" by the test clock (its mtime is the edit time a scan sees)."""
    notes.write(rel, body, mtime=clock().timestamp(), **front_matter)


def test_scans_log_creates_updates_and_deletes_after_the_first_import(
        tmp_path: Path, notes: NotesDir, store: Store, clock: Clock) -> None:
    scan = scanner(tmp_path, notes, store, clock, enabled=True)
    assert store.record_publications is True
    write(notes, clock, "NLP/a.md", "old A", title="A", date="2025-01-02")
    write(notes, clock, "NLP/b.md", "old B", title="B")
    write(notes, clock, "NLP/soon.md", "S", title="Soon", date="2026-01-20T13:00:00+00:00")
    assert sorted(scan.run().added) == ["notes/NLP/a.md", "notes/NLP/b.md", "notes/NLP/soon.md"]
    assert drain(store) == []  # the first import is already published: not pushed

    clock.advance(minutes=5)
    write(notes, clock, "NLP/c.md", "new C", title="C")
    assert scan.run().added == ("notes/NLP/c.md",)
    t_add = clock()
    assert drain(store) == [("notes/NLP/c.md", CREATE, t_add)]

    clock.advance(minutes=5)
    write(notes, clock, "NLP/c.md", "C, edited", title="C")
    assert scan.run().updated == ("notes/NLP/c.md",)
    [c] = [e for e in store.latest_entries("nlp", clock()) if e.id == "notes/NLP/c.md"]
    assert (c.published, c.updated) == (t_add, clock())
    assert drain(store) == [("notes/NLP/c.md", UPDATE, clock())]

    clock.advance(minutes=5)  # read again, same title and body: updated stays
    notes.touch_forward("NLP/b.md")
    notes.rename("NLP/a.md", "NLP/renamed.md")  # a rename alone says nothing either
    report = scan.run()
    assert (report.updated, report.renamed) == (("notes/NLP/b.md",), ("notes/NLP/a.md",))
    assert drain(store) == []

    clock.advance(minutes=5)
    notes.remove("NLP/c.md")
    notes.remove("NLP/b.md")
    assert sorted(scan.run().removed) == ["notes/NLP/b.md", "notes/NLP/c.md"]
    assert sorted(drain(store)) == [("notes/NLP/b.md", DELETE, clock()),
                                    ("notes/NLP/c.md", DELETE, clock())]

    clock.advance(minutes=5)
    write(notes, clock, "NLP/future.md", "F", title="F", date="2026-01-21T12:00:00+00:00")
    assert scan.run().added == ("notes/NLP/future.md",)
    assert drain(store) == []  # not visible yet
    assert scan.publish_due() == ()
    assert drain(store) == []
    clock.now = dt.datetime(2026, 1, 20, 13, 30, tzinfo=UTC)
    assert scan.publish_due() == ("all", "nlp")  # the first import's "soon" came due
    assert drain(store) == [("notes/NLP/soon.md", CREATE,
                             dt.datetime(2026, 1, 20, 13, 0, tzinfo=UTC))]
    clock.advance(hours=12)
    assert scan.publish_due() == ()
    assert drain(store) == []
    clock.advance(hours=12)
    assert scan.publish_due() == ("all", "nlp")
    assert drain(store) == [("notes/NLP/future.md", CREATE,
                             dt.datetime(2026, 1, 21, 12, 0, tzinfo=UTC))]
    assert scan.publish_due() == ()
    assert drain(store) == []


def test_a_scan_after_an_entry_came_due_logs_it_once(
        tmp_path: Path, notes: NotesDir, store: Store, clock: Clock) -> None:
    """No refresh ran between the moment it came due and the next scan: that scan logs it."""
    scan = scanner(tmp_path, notes, store, clock, enabled=True)
    write(notes, clock, "NLP/a.md", "A", title="A", date="2025-01-02")
    scan.run()
    write(notes, clock, "NLP/soon.md", "S", title="Soon", date="2026-01-20T13:00:00+00:00")
    scan.run()
    assert drain(store) == []
    clock.advance(hours=2)
    write(notes, clock, "NLP/b.md", "B", title="B")
    scan.run()
    assert drain(store) == [
        ("notes/NLP/soon.md", CREATE, dt.datetime(2026, 1, 20, 13, 0, tzinfo=UTC)),
        ("notes/NLP/b.md", CREATE, clock())]
    assert scan.publish_due() == ()
    assert drain(store) == []


def test_with_federation_off_nothing_is_logged(
        tmp_path: Path, notes: NotesDir, store: Store, clock: Clock) -> None:
    scan = scanner(tmp_path, notes, store, clock, enabled=False)
    assert store.record_publications is False
    write(notes, clock, "NLP/a.md", "A", title="A", date="2025-01-02")
    scan.run()
    clock.advance(minutes=5)
    write(notes, clock, "NLP/c.md", "C", title="C")
    write(notes, clock, "NLP/future.md", "F", title="F", date="2026-01-21T12:00:00+00:00")
    assert sorted(scan.run().added) == ["notes/NLP/c.md", "notes/NLP/future.md"]
    clock.advance(minutes=5)
    write(notes, clock, "NLP/a.md", "A, edited", title="A")
    notes.remove("NLP/c.md")
    report = scan.run()
    assert (report.updated, report.removed) == (("notes/NLP/a.md",), ("notes/NLP/c.md",))
    clock.advance(days=2)
    assert scan.publish_due() == ("all", "nlp")
    assert store.federation.take_publications(100) == []
