"""The state a scan keeps between runs (scan/kept.py): one object, one stamp. Kept data is
read from the store once per stamp, follows this process's own applied scans, and is
dropped whenever the store moved some other way. A hand-written fake store counts what
is read from it; no disk, no database."""

from __future__ import annotations

import datetime as dt
import pytest

from feedsvc.model import Changeset
from feedsvc.model import EntryRef
from feedsvc.model import Problem
from feedsvc.model import StoredNote
from feedsvc.scan.kept import KeptState
from feedsvc.store import ApplyResult
from feedsvc.urls import Urls

T0 = dt.datetime(2025, 1, 1, tzinfo=dt.timezone.utc)


class FakeStore:
    """The part of Store that KeptState reads, with a counter of every call."""

    def __init__(self) -> None:
        self.current = 7
        self.notes = {"notes": {"NLP/a.md": (10, 1), "NLP/b.md": (20, 2)}}
        self.media = {"notes": {"NLP/img/x.png": (5, 1)}}
        self.places = [("notes", "NLP/a.md", "nlp", "a"), ("notes", "NLP/b.md", "nlp", "b")]
        self.problems = [Problem(source="notes", path="NLP/bad.md", reason="bad front matter")]
        self.imported: set[str] = set()
        self.calls: list[str] = []

    def stamp(self) -> int:
        self.calls.append("stamp")
        return self.current

    def note_stats(self, source: str) -> dict[str, tuple[int, int]]:
        self.calls.append("note_stats")
        return dict(self.notes.get(source, {}))

    def media_stats(self, source: str) -> dict[str, tuple[int, int]]:
        self.calls.append("media_stats")
        return dict(self.media.get(source, {}))

    def entry_places(self) -> list[tuple[str, str, str, str]]:
        self.calls.append("entry_places")
        return list(self.places)

    def source_imported(self, source: str) -> bool:
        self.calls.append("source_imported")
        return source in self.imported

    def note_problems(self) -> list[Problem]:
        self.calls.append("note_problems")
        return list(self.problems)


@pytest.fixture
def store() -> FakeStore:
    return FakeStore()


@pytest.fixture
def kept(store: FakeStore) -> KeptState:
    state = KeptState(store, Urls("https://notes.example/"), ["notes"])  # type: ignore[arg-type]
    state.check(store.current)
    return state


def note_row(rel_path: str, size: int, mtime_ns: int, problem: str | None = None) -> StoredNote:
    return StoredNote(source="notes", rel_path=rel_path, size=size, mtime_ns=mtime_ns,
                      file_hash="h", problem=problem, entry_id=None)


def applied(before: int) -> ApplyResult:
    return ApplyResult(revision=1, changed_feeds=(), stamp_before=before, stamp_after=before + 1)


def ref(entry_id: str, rel_path: str) -> EntryRef:
    return EntryRef(id=entry_id, source="notes", rel_path=rel_path, category_slug="nlp",
                    slug=rel_path, content_hash="h", published=T0, updated=T0)


def test_kept_data_is_read_once_per_stamp(kept: KeptState, store: FakeStore) -> None:
    assert kept.note_stats("notes") == {"NLP/a.md": (10, 1), "NLP/b.md": (20, 2)}
    kept.note_stats("notes")
    kept.media_stats("notes")
    kept.media_stats("notes")
    kept.check(store.current)  # the same stamp: nothing is dropped
    kept.note_stats("notes")
    assert store.calls == ["note_stats", "media_stats"]


def test_a_new_stamp_drops_everything(kept: KeptState, store: FakeStore) -> None:
    kept.note_stats("notes")
    kept.site({})
    store.notes["notes"]["NLP/c.md"] = (30, 3)  # another process's scan
    store.current += 1
    kept.check(store.current)
    assert kept.stamp == store.current
    assert "NLP/c.md" in kept.note_stats("notes")
    kept.site({})
    assert store.calls.count("note_stats") == 2 and store.calls.count("entry_places") == 2


def test_an_applied_scan_from_the_kept_stamp_is_followed(kept: KeptState, store: FakeStore) -> None:
    kept.note_stats("notes")
    site = kept.site({})
    kept.note_problems()
    changes = Changeset(now=T0, upsert_notes=(note_row("NLP/a.md", 11, 5),
                                              note_row("NLP/bad.md", 3, 3)),
                        delete_notes=(("notes", "NLP/b.md"),), delete_entries=("notes/NLP/b.md",))
    kept.applied(applied(before=7), changes, {"notes/NLP/b.md": ref("notes/NLP/b.md", "NLP/b.md")})
    assert kept.stamp == 8
    assert kept.note_stats("notes") == {"NLP/a.md": (11, 5), "NLP/bad.md": (3, 3)}
    assert site.counts == {"notes": 1}
    assert kept.note_problems() == []  # bad.md was written without a problem: fixed
    kept.check(8)  # the next scan finds the store where the kept state is
    kept.note_stats("notes")
    assert store.calls.count("note_stats") == 1 and store.calls.count("note_problems") == 1


def test_an_applied_scan_from_another_stamp_drops_everything(kept: KeptState,
                                                            store: FakeStore) -> None:
    kept.note_stats("notes")
    kept.applied(applied(before=9), Changeset(now=T0), {})  # someone wrote in between
    assert kept.stamp is None
    kept.check(10)
    kept.note_stats("notes")
    assert store.calls.count("note_stats") == 2


def test_counts_follow_new_moved_and_removed_entries(kept: KeptState, store: FakeStore) -> None:
    site = kept.site({})
    assert site.counts == {"notes": 2}
    kept.applied(applied(before=7), Changeset(now=T0), {},
                 upserted=[("notes/NLP/new.md", "notes"), ("notes/NLP/a.md", "notes")])
    assert site.counts == {"notes": 4}  # neither id was known before: both new
    kept.applied(applied(before=8), Changeset(now=T0, delete_entries=("x",)),
                 {"x": ref("x", "NLP/x.md")})
    assert site.counts == {"notes": 3}


def test_problems_are_read_once_and_follow_the_scans(kept: KeptState, store: FakeStore) -> None:
    kept.site({})
    assert kept.note_problems() == store.problems
    changes = Changeset(now=T0, upsert_notes=(note_row("NLP/worse.md", 1, 1, problem="not UTF-8"),))
    kept.applied(applied(before=7), changes, {})
    assert [(p.path, p.reason) for p in kept.note_problems()] == [
        ("NLP/bad.md", "bad front matter"), ("NLP/worse.md", "not UTF-8")]
    assert store.calls.count("note_problems") == 1


def test_an_import_is_remembered_once_true(kept: KeptState, store: FakeStore) -> None:
    kept.site({})
    assert kept.source_imported("notes") is False
    store.imported.add("notes")
    assert kept.source_imported("notes") is True
    assert kept.source_imported("notes") is True
    assert store.calls.count("source_imported") == 2


def test_media_synced_at_a_scope_replaces_what_was_there(kept: KeptState) -> None:
    kept.media_stats("notes")
    kept.media_synced("notes", before={"NLP/img/x.png": (5, 1)},
                      after={"NLP/img/y.png": (6, 2)})
    assert kept.media_stats("notes") == {"NLP/img/y.png": (6, 2)}


def test_drop_forgets_the_stamp(kept: KeptState, store: FakeStore) -> None:
    kept.note_stats("notes")
    kept.drop()
    assert kept.stamp is None
    kept.check(store.current)
    kept.note_stats("notes")
    assert store.calls.count("note_stats") == 2


def test_warm_builds_the_site_at_the_store_stamp(store: FakeStore) -> None:
    state = KeptState(store, Urls("https://notes.example/"), ["notes"])  # type: ignore[arg-type]
    state.warm()
    assert state.stamp == 7
    assert store.calls == ["stamp", "entry_places", "media_stats"]
    state.warm()  # already built
    assert store.calls == ["stamp", "entry_places", "media_stats"]


def test_the_site_indexes_every_place_and_media_file(kept: KeptState) -> None:
    site = kept.site({})
    assert site.index.media_of("notes") == {"NLP/img/x.png"}
    assert site.index.entry_url_for_name("a") is not None
    assert site.index.entry_url_for_name("missing") is None
