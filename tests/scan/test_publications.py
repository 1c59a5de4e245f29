"""scan.publications: what one scan tells ActivityPub followers, as a pure function of the
plan, the entries as they were before it and `now` (no disk, no database)."""

from __future__ import annotations

import datetime as dt

import pytest

from feedsvc.content import NoteText
from feedsvc.model import Category
from feedsvc.model import EntryRef
from feedsvc.model import NoteFile
from feedsvc.model import NoteHeader
from feedsvc.model import Publication
from feedsvc.model import PublicationKind
from feedsvc.scan.plan import PlannedEntry
from feedsvc.scan.publications import publications

UTC = dt.timezone.utc
NOW = dt.datetime(2026, 1, 20, 12, 0, tzinfo=UTC)
PAST = NOW - dt.timedelta(days=3)
LATER = NOW + dt.timedelta(days=3)
CREATE, UPDATE, DELETE = PublicationKind.CREATE, PublicationKind.UPDATE, PublicationKind.DELETE


def minutes(n: float) -> dt.timedelta:
    return dt.timedelta(minutes=n)


def planned(entry_id: str, kind: str, *, published: dt.datetime = PAST,
            updated: dt.datetime | None = None, source: str = "notes",
            rel_path: str | None = None) -> PlannedEntry:
    path = rel_path or f"{entry_id}.md"
    header = NoteHeader(title=entry_id, category_name=None, published=published, updated=None,
                        note_id=None, is_draft=False, tags=(), summary=None, author=None)
    return PlannedEntry(note=NoteFile(source=source, rel_path=path, abs_path=f"/n/{path}",
                                      size=1, mtime_ns=0),
                        text=NoteText(header=header, body="b"), id=entry_id,
                        category=Category(name="NLP", slug="nlp"), slug=entry_id,
                        published=published, updated=updated or published, kind=kind)


def ref(entry_id: str, *, published: dt.datetime = PAST, updated: dt.datetime | None = None,
        source: str = "notes") -> EntryRef:
    return EntryRef(id=entry_id, source=source, rel_path=f"{entry_id}.md", category_slug="nlp",
                    slug=entry_id, content_hash="h", published=published,
                    updated=updated or published)


def run(entries: list[PlannedEntry], removed: list[str] | None = None,
        before: list[EntryRef] | None = None, *,
        skip: frozenset[str] = frozenset()) -> list[tuple[str, PublicationKind]]:
    result = publications(entries, removed or [], {r.id: r for r in before or []}, now=NOW,
                          skip_sources=skip)
    assert all(p.at == NOW for p in result)
    return [(p.entry_id, p.kind) for p in result]


# -- added -----------------------------------------------------------------------------


@pytest.mark.parametrize("published", [PAST, NOW], ids=["past", "exactly-now"])
def test_a_new_visible_entry_is_a_create(published: dt.datetime) -> None:
    result = publications([planned("a", "added", published=published)], [], {}, now=NOW,
                          skip_sources=())
    assert result == (Publication(entry_id="a", kind=CREATE, at=NOW),)


def test_a_new_future_dated_entry_says_nothing_yet() -> None:
    assert run([planned("a", "added", published=NOW + minutes(1))]) == []


# -- updated ---------------------------------------------------------------------------


def test_an_edit_that_moves_updated_is_an_update() -> None:
    entry = planned("a", "updated", updated=PAST + minutes(5))
    assert run([entry], before=[ref("a")]) == [("a", UPDATE)]


def test_an_edit_that_leaves_updated_says_nothing() -> None:
    assert run([planned("a", "updated")], before=[ref("a")]) == []


def test_an_updated_back_in_time_is_an_update_too() -> None:
    entry = planned("a", "updated", updated=PAST)
    assert run([entry], before=[ref("a", updated=PAST + minutes(5))]) == [("a", UPDATE)]


def test_a_future_entry_redated_into_the_past_is_a_create() -> None:
    before = ref("a", published=LATER)
    assert run([planned("a", "updated", published=PAST)], before=[before]) == [("a", CREATE)]


def test_a_future_entry_redated_to_exactly_now_is_a_create() -> None:
    before = ref("a", published=LATER)
    assert run([planned("a", "updated", published=NOW)], before=[before]) == [("a", CREATE)]


def test_a_future_entry_edited_but_still_future_says_nothing() -> None:
    before = ref("a", published=LATER)
    entry = planned("a", "updated", published=LATER + minutes(1), updated=LATER + minutes(9))
    assert run([entry], before=[before]) == []


def test_a_visible_entry_redated_into_the_future_is_a_delete() -> None:
    entry = planned("a", "updated", published=LATER)
    assert run([entry], before=[ref("a")]) == [("a", DELETE)]


def test_an_entry_visible_exactly_at_now_before_counts_as_visible() -> None:
    entry = planned("a", "updated", published=NOW)
    assert run([entry], before=[ref("a", published=NOW)]) == []
    moved = planned("a", "updated", published=NOW, updated=NOW + minutes(1))
    assert run([moved], before=[ref("a", published=NOW)]) == [("a", UPDATE)]


def test_a_planned_entry_without_a_stored_ref_is_new_whatever_its_kind() -> None:
    """A note whose earlier reads failed has a row but no entry yet: its first entry."""
    assert run([planned("a", "updated")]) == [("a", CREATE)]


# -- renamed and relinked --------------------------------------------------------------


@pytest.mark.parametrize("kind", ["renamed", "relinked"])
def test_a_rename_or_relink_alone_says_nothing(kind: str) -> None:
    entry = planned("a", kind, rel_path="elsewhere/a.md")
    assert run([entry], before=[ref("a")]) == []


@pytest.mark.parametrize("kind", ["renamed", "relinked"])
def test_a_rename_or_relink_whose_updated_moved_is_an_update(kind: str) -> None:
    entry = planned("a", kind, updated=PAST + minutes(1))
    assert run([entry], before=[ref("a")]) == [("a", UPDATE)]


def test_a_renamed_future_entry_says_nothing() -> None:
    entry = planned("a", "renamed", published=LATER)
    assert run([entry], before=[ref("a", published=LATER)]) == []


# -- removed ---------------------------------------------------------------------------


def test_a_removed_visible_entry_is_a_delete() -> None:
    assert run([], ["a"], before=[ref("a")]) == [("a", DELETE)]


def test_a_removed_entry_visible_exactly_at_now_is_a_delete() -> None:
    assert run([], ["a"], before=[ref("a", published=NOW)]) == [("a", DELETE)]


def test_a_removed_future_entry_was_never_seen_so_says_nothing() -> None:
    assert run([], ["a"], before=[ref("a", published=NOW + minutes(1))]) == []


def test_a_removed_id_with_no_stored_ref_says_nothing() -> None:
    assert run([], ["ghost"]) == []


# -- first imports and order -----------------------------------------------------------


def test_a_first_import_says_nothing_for_its_source_only() -> None:
    entries = [planned("a", "added", source="new"), planned("b", "added", source="notes"),
               planned("c", "updated", source="new", updated=PAST + minutes(1))]
    before = [ref("c", source="new"), ref("d", source="new"), ref("e", source="notes")]
    assert run(entries, ["d", "e"], before, skip=frozenset({"new"})) == [
        ("b", CREATE), ("e", DELETE)]


def test_planned_entries_come_in_plan_order_then_removals() -> None:
    entries = [planned("z", "added"), planned("m", "updated", updated=PAST + minutes(1)),
               planned("a", "added"), planned("q", "updated"), planned("f", "added",
                                                                        published=LATER)]
    before = [ref("m"), ref("q"), ref("y"), ref("b")]
    assert run(entries, ["y", "b"], before) == [
        ("z", CREATE), ("m", UPDATE), ("a", CREATE), ("y", DELETE), ("b", DELETE)]


def test_nothing_planned_nothing_removed() -> None:
    assert publications([], [], {}, now=NOW, skip_sources=()) == ()


def test_inputs_are_left_untouched() -> None:
    entries = [planned("a", "added")]
    refs = {"b": ref("b")}
    removed = ["b"]
    publications(entries, removed, refs, now=NOW, skip_sources={"other"})
    assert (entries, refs, removed) == ([planned("a", "added")], {"b": ref("b")}, ["b"])
