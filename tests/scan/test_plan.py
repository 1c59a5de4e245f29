"""The planner's rules (feedsvc/scan/plan.py), tested as data in, data out: notes are built
from bytes in memory and parsed by the pure `feedsvc.content.read_note`, the previous scans'
state is a few dataclasses, and no test touches the disk, the database or a clock."""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Mapping
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest
import yaml

from feedsvc.content import ContentSettings
from feedsvc.content import read_note
from feedsvc.errors import NoteError
from feedsvc.model import Category
from feedsvc.model import EntryRef
from feedsvc.model import NoteFile
from feedsvc.model import Problem
from feedsvc.model import Source
from feedsvc.model import StoredNote
from feedsvc.scan.plan import ReadResult
from feedsvc.scan.plan import SlugRegistry
from feedsvc.scan.plan import SourcePlan
from feedsvc.scan.plan import candidate_id
from feedsvc.scan.plan import candidate_ids
from feedsvc.scan.plan import category_for
from feedsvc.scan.plan import category_slug
from feedsvc.scan.plan import changed_notes
from feedsvc.scan.plan import derived_id
from feedsvc.scan.plan import guard_deletions
from feedsvc.scan.plan import ids_in_play
from feedsvc.scan.plan import missing_notes
from feedsvc.scan.plan import plan_source
from feedsvc.sources.walk import Snapshot

UTC = dt.timezone.utc
SOURCE = Source(name="vault", root=Path("/nonexistent/vault"))
SETTINGS = ContentSettings()


def at(text: str) -> dt.datetime:
    """An aware UTC datetime from 'YYYY-MM-DD HH:MM'."""
    return dt.datetime.fromisoformat(text).replace(tzinfo=UTC)


PUBLISHED = at("2024-01-10 09:00")  # an existing entry's published (first-seen) time
UPDATED = at("2024-02-01 09:00")  # an existing entry's updated time
MTIME = at("2024-05-20 10:00")  # the mtime of the files this scan reads
NOW = at("2024-06-01 12:00")  # the scan's now


def ns(moment: dt.datetime) -> int:
    return int(moment.timestamp()) * 1_000_000_000


def note_bytes(body: str = "Body.", **front_matter: Any) -> bytes:
    """A note's bytes: YAML front matter (if any) and a Markdown body."""
    if not front_matter:
        return body.encode()
    fm = yaml.safe_dump(front_matter, allow_unicode=True, sort_keys=False)
    return f"---\n{fm}---\n\n{body}".encode()


def note_file(rel_path: str, *, size: int = 10, mtime: dt.datetime = MTIME) -> NoteFile:
    return NoteFile(source=SOURCE.name, rel_path=rel_path,
                    abs_path=f"/nonexistent/vault/{rel_path}", size=size, mtime_ns=ns(mtime))


def read(rel_path: str, raw: bytes, *, mtime: dt.datetime = MTIME) -> ReadResult:
    """What the scan's reader makes of these bytes (workers.read_one, without the disk):
    the file hash, and the header with the body dropped, or the NoteError."""
    note = note_file(rel_path, size=len(raw), mtime=mtime)
    file_hash = hashlib.sha256(raw).hexdigest()[:32]
    try:
        text = read_note(note, raw, SETTINGS)
    except NoteError as e:
        return ReadResult(note=note, file_hash=file_hash, error=e)
    return ReadResult(note=note, file_hash=file_hash, text=text.without_body())


class Before:
    """What earlier scans left in the store: note rows, entry refs, first-seen times."""

    def __init__(self) -> None:
        self.stored: dict[str, StoredNote] = {}
        self.refs: dict[str, EntryRef] = {}
        self.first_seen: dict[str, dt.datetime] = {}

    def has(self, old: ReadResult, *, category_slug: str, slug: str,
            published: dt.datetime = PUBLISHED, updated: dt.datetime = UPDATED) -> str:
        """Record `old` as stored and published; its entry id."""
        assert old.text is not None
        note = old.note
        entry_id = old.text.header.note_id or derived_id(SOURCE.name, note.rel_path)
        self.stored[note.rel_path] = StoredNote(
            source=SOURCE.name, rel_path=note.rel_path, size=note.size, mtime_ns=note.mtime_ns,
            file_hash=old.file_hash, problem=None, entry_id=entry_id)
        self.refs[entry_id] = EntryRef(
            id=entry_id, source=SOURCE.name, rel_path=note.rel_path, category_slug=category_slug,
            slug=slug, content_hash=old.text.digest, published=published, updated=updated)
        self.first_seen[entry_id] = published
        return entry_id


def plan(reads: Sequence[ReadResult], before: Before | None = None, *,
         gone: Sequence[str] = (), now: dt.datetime = NOW, source: Source = SOURCE,
         import_dates: Mapping[str, dt.datetime] | None = None,
         overrides: Mapping[str, str] | None = None) -> SourcePlan:
    """plan_source called the way the pipeline calls it: `reads` are the changed files,
    `gone` the stored paths the walk no longer saw."""
    before = before or Before()
    changed = {r.note.rel_path for r in reads}
    missing = [before.stored[p] for p in gone]
    stored = {p: kept for p, kept in before.stored.items() if p in changed or p in gone}
    claimed = {r.id: f"{r.source}:{r.rel_path}" for r in before.refs.values()}
    for old in [*missing, *stored.values()]:  # the changing notes may claim their ids again
        if old.entry_id and claimed.get(old.entry_id) == f"{old.source}:{old.rel_path}":
            del claimed[old.entry_id]
    return plan_source(source=source, reads=list(reads), missing=missing, stored=stored,
                       refs=dict(before.refs), first_seen=dict(before.first_seen),
                       claimed_ids=claimed, slugs=SlugRegistry(before.refs),
                       slug_overrides=overrides or {}, now=now, import_dates=import_dates)


PlannedRow = tuple[str, str, Category, str, dt.datetime, dt.datetime]


def planned(result: SourcePlan) -> list[PlannedRow]:
    """The planned entries as (id, kind, category, slug, published, updated)."""
    return [(e.id, e.kind, e.category, e.slug, e.published, e.updated) for e in result.entries]


def cat(name: str, slug: str) -> Category:
    return Category(name=name, slug=slug)


def row(rel_path: str, raw: bytes, entry_id: str | None,
        problem: str | None = None) -> StoredNote:
    """The note row a plan upserts for these bytes (read at MTIME)."""
    return StoredNote(source="vault", rel_path=rel_path, size=len(raw), mtime_ns=ns(MTIME),
                      file_hash=hashlib.sha256(raw).hexdigest()[:32], problem=problem,
                      entry_id=entry_id)


INBOX = cat("inbox", "inbox")


# --- new notes: identity, category, slug, dates -------------------------------------------------


def test_new_note_is_added_with_derived_id_folder_category_and_first_seen_now() -> None:
    raw = note_bytes("# Hello World\n\nText.")
    result = plan([read("inbox/Hello World.md", raw)])
    assert planned(result) == [
        ("vault/inbox/Hello World.md", "added", INBOX, "hello-world", NOW, NOW)]
    assert result.first_seen == [("vault/inbox/Hello World.md", NOW)]
    assert result.upsert_notes == [row("inbox/Hello World.md", raw, "vault/inbox/Hello World.md")]
    assert (result.delete_entries, result.delete_notes, result.problems) == ([], [], [])


@pytest.mark.parametrize(("front_matter", "entry_id"), [
    ({}, "vault/inbox/idea.md"),
    ({"id": "urn:uuid:6f1c"}, "urn:uuid:6f1c"),
], ids=["derived", "front-matter"])
def test_id_is_front_matter_id_else_source_and_path(front_matter: dict[str, str],
                                                    entry_id: str) -> None:
    result = plan([read("inbox/idea.md", note_bytes(**front_matter))])
    assert planned(result) == [(entry_id, "added", INBOX, "idea", NOW, NOW)]


@pytest.mark.parametrize(("rel_path", "front_matter", "default", "category"), [
    ("inbox/a.md", {"category": "Large Model"}, "Journal", cat("Large Model", "large-model")),
    ("3D Model/a.md", {}, "Journal", cat("3D Model", "3d-model")),
    ("行为识别/a.md", {}, None, cat("行为识别", "行为识别")),
    ("a.md", {}, "Journal", cat("Journal", "journal")),
    ("a.md", {}, None, cat("Uncategorized", "uncategorized")),
    ("a.md", {"category": "All"}, None, cat("All", "all-notes")),
], ids=["front-matter", "first-folder", "unicode-folder", "source-default", "uncategorized",
        "reserved-all"])
def test_category_is_front_matter_then_first_folder_then_default(
        rel_path: str, front_matter: dict[str, str], default: str | None,
        category: Category) -> None:
    source = Source(name="vault", root=SOURCE.root, default_category=default)
    result = plan([read(rel_path, note_bytes(**front_matter))], source=source)
    assert [e.category for e in result.entries] == [category]


@pytest.mark.parametrize(("name", "overrides", "slug"), [
    ("Large Model", {}, "large-model"),
    ("C++ / Rust", {}, "c-rust"),
    ("行为识别", {}, "行为识别"),
    ("!!!", {}, "uncategorized"),
    ("all", {}, "all-notes"),
    ("ALL", {}, "all-notes"),
    ("all things", {}, "all-things"),
    ("Large Model", {"Large Model": "llm"}, "llm"),
    ("Large Model", {"Large Model": ""}, "large-model"),
    ("Large Model", {"large model": "llm"}, "large-model"),
], ids=["words", "punctuation", "unicode", "no-letters", "reserved", "reserved-upper",
        "reserved-prefix-only", "override", "empty-override", "override-exact-name"])
def test_category_slug(name: str, overrides: dict[str, str], slug: str) -> None:
    assert category_slug(name, overrides) == slug


def test_category_override_applies_to_folder_categories() -> None:
    note = note_file("Large Model/a.md")
    text = read_note(note, note_bytes(), SETTINGS)
    assert category_for(note, text, SOURCE, {"Large Model": "llm"}) == cat("Large Model", "llm")


def test_a_future_dated_note_is_planned_with_its_future_date() -> None:
    """plan.py does not hold it back: the store publishes it when it comes due."""
    raw = note_bytes(date="2024-07-01T08:00:00+00:00")
    result = plan([read("inbox/later.md", raw)])
    later = at("2024-07-01 08:00")
    assert planned(result) == [("vault/inbox/later.md", "added", INBOX, "later", later, later)]
    assert result.first_seen == [("vault/inbox/later.md", NOW)]


def test_a_declared_updated_is_never_before_published() -> None:
    raw = note_bytes(date="2024-03-01T00:00:00+00:00", updated="2024-02-01T00:00:00+00:00")
    result = plan([read("inbox/a.md", raw)])
    published = at("2024-03-01 00:00")
    assert planned(result) == [("vault/inbox/a.md", "added", INBOX, "a", published, published)]


# --- first-seen dating --------------------------------------------------------------------------


@pytest.mark.parametrize(("evidence", "known", "published", "recorded"), [
    (None, None, NOW, [("vault/inbox/a.md", NOW)]),
    ({"inbox/a.md": at("2023-11-05 07:30")}, None, at("2023-11-05 07:30"),
     [("vault/inbox/a.md", at("2023-11-05 07:30"))]),
    ({"inbox/other.md": at("2023-11-05 07:30")}, None, NOW, [("vault/inbox/a.md", NOW)]),
    ({"inbox/a.md": at("2024-09-01 00:00")}, None, NOW, [("vault/inbox/a.md", NOW)]),
    ({"inbox/a.md": at("2023-11-05 07:30")}, at("2022-02-02 02:02"), at("2022-02-02 02:02"), []),
], ids=["no-evidence-now", "import-date", "evidence-for-another-path", "import-date-clamped-to-now",
        "kept-first-seen-wins"])
def test_undated_note_is_dated_when_first_seen(
        evidence: dict[str, dt.datetime] | None, known: dt.datetime | None,
        published: dt.datetime, recorded: list[tuple[str, dt.datetime]]) -> None:
    before = Before()
    if known is not None:  # deleted earlier and restored: its first-seen time survived
        before.first_seen["vault/inbox/a.md"] = known
    result = plan([read("inbox/a.md", note_bytes())], before, import_dates=evidence)
    assert planned(result) == [("vault/inbox/a.md", "added", INBOX, "a", published, published)]
    assert result.first_seen == recorded


def test_a_dated_note_keeps_its_date_and_still_records_first_seen() -> None:
    raw = note_bytes(date="2020-05-04")
    result = plan([read("inbox/a.md", raw)], import_dates={"inbox/a.md": at("2023-11-05 07:30")})
    published = at("2020-05-04 00:00")
    assert planned(result) == [("vault/inbox/a.md", "added", INBOX, "a", published, published)]
    assert result.first_seen == [("vault/inbox/a.md", at("2023-11-05 07:30"))]


# --- edits --------------------------------------------------------------------------------------


@pytest.mark.parametrize(("old", "new", "updated"), [
    (note_bytes("One.", title="T"), note_bytes("Two.", title="T"), MTIME),
    (note_bytes("One.", title="T"), note_bytes("One.", title="T2"), MTIME),
    (note_bytes("# T\n\nOne."), note_bytes("# T2\n\nOne."), MTIME),
    (note_bytes("One.", title="T", tags=["a"]), note_bytes("One.", title="T", tags=["a", "b"]),
     UPDATED),
    (note_bytes("One.", title="T"), note_bytes("One.", title="T", summary="S", author="A"),
     UPDATED),
    (b"One.", b"---\ntitle: a\n---\nOne.", UPDATED),
], ids=["body", "front-matter-title", "heading-title", "tags-only", "front-matter-only",
        "title-spelled-out-unchanged"])
def test_an_edit_moves_updated_to_the_mtime_only_if_title_or_body_changed(
        old: bytes, new: bytes, updated: dt.datetime) -> None:
    before = Before()
    entry_id = before.has(read("inbox/a.md", old, mtime=UPDATED), category_slug="inbox", slug="a")
    result = plan([read("inbox/a.md", new)], before)
    assert planned(result) == [(entry_id, "updated", INBOX, "a", PUBLISHED, updated)]
    assert result.upsert_notes == [row("inbox/a.md", new, entry_id)]
    assert (result.first_seen, result.delete_entries, result.delete_notes) == ([], [], [])


@pytest.mark.parametrize(("mtime", "updated"), [
    (at("2024-09-01 00:00"), NOW),
    (at("2023-12-01 00:00"), UPDATED),
], ids=["mtime-in-future-clamped-to-now", "mtime-before-last-update-never-goes-back"])
def test_edit_time_is_clamped_between_last_update_and_now(mtime: dt.datetime,
                                                          updated: dt.datetime) -> None:
    before = Before()
    before.has(read("inbox/a.md", note_bytes("One.")), category_slug="inbox", slug="a")
    result = plan([read("inbox/a.md", note_bytes("Two."), mtime=mtime)], before)
    assert planned(result) == [("vault/inbox/a.md", "updated", INBOX, "a", PUBLISHED, updated)]


def test_a_declared_updated_wins_over_the_edit_time() -> None:
    before = Before()
    before.has(read("inbox/a.md", note_bytes("One.")), category_slug="inbox", slug="a")
    result = plan([read("inbox/a.md", note_bytes("Two.", updated="2024-03-03T03:03:00Z"))],
                  before)
    assert planned(result) == [
        ("vault/inbox/a.md", "updated", INBOX, "a", PUBLISHED, at("2024-03-03 03:03"))]


def test_a_new_category_in_front_matter_moves_the_entry_but_not_its_dates() -> None:
    before = Before()
    before.has(read("inbox/a.md", note_bytes(title="T")), category_slug="inbox", slug="a")
    result = plan([read("inbox/a.md", note_bytes(title="T", category="Ideas"))], before)
    assert planned(result) == [
        ("vault/inbox/a.md", "updated", cat("Ideas", "ideas"), "a", PUBLISHED, UPDATED)]


# --- renames ------------------------------------------------------------------------------------


@pytest.mark.parametrize(("new_path", "category", "slug"), [
    ("inbox/better idea.md", INBOX, "better-idea"),
    ("archive/idea.md", cat("archive", "archive"), "idea"),
], ids=["new-name", "new-folder"])
def test_a_rename_keeps_the_id_and_dates(new_path: str, category: Category, slug: str) -> None:
    raw = note_bytes("Same bytes.", title="Idea")  # a title of its own: not the file name
    before = Before()
    entry_id = before.has(read("inbox/idea.md", raw), category_slug="inbox", slug="idea")
    result = plan([read(new_path, raw)], before, gone=["inbox/idea.md"])
    assert planned(result) == [(entry_id, "renamed", category, slug, PUBLISHED, UPDATED)]
    assert result.upsert_notes == [row(new_path, raw, "vault/inbox/idea.md")]
    assert result.delete_notes == [("vault", "inbox/idea.md")]
    assert (result.delete_entries, result.removed_paths, result.first_seen) == ([], [], [])


def test_a_rename_plus_edit_is_a_new_entry_and_a_removed_one() -> None:
    before = Before()
    before.has(read("inbox/idea.md", note_bytes("One.")), category_slug="inbox", slug="idea")
    result = plan([read("inbox/better.md", note_bytes("Two."))], before, gone=["inbox/idea.md"])
    assert planned(result) == [("vault/inbox/better.md", "added", INBOX, "better", NOW, NOW)]
    assert result.delete_entries == ["vault/inbox/idea.md"]
    assert result.removed_paths == ["inbox/idea.md"]
    assert result.delete_notes == [("vault", "inbox/idea.md")]
    assert result.first_seen == [("vault/inbox/better.md", NOW)]


def test_a_rename_plus_edit_with_a_front_matter_id_keeps_the_id_and_published() -> None:
    before = Before()
    before.has(read("inbox/idea.md", note_bytes("One.", id="idea-1")), category_slug="inbox",
               slug="idea")
    result = plan([read("inbox/better.md", note_bytes("Two.", id="idea-1"))], before,
                  gone=["inbox/idea.md"])
    assert planned(result) == [("idea-1", "renamed", INBOX, "better", PUBLISHED, MTIME)]
    assert result.delete_notes == [("vault", "inbox/idea.md")]
    assert (result.delete_entries, result.removed_paths, result.first_seen) == ([], [], [])


def test_two_notes_swapping_names_keep_their_paths_ids_and_swap_content() -> None:
    """Neither path vanished, so this is no rename: each path's entry is edited."""
    a, b = note_bytes("Alpha."), note_bytes("Beta.")
    before = Before()
    before.has(read("inbox/a.md", a), category_slug="inbox", slug="a")
    before.has(read("inbox/b.md", b), category_slug="inbox", slug="b")
    result = plan([read("inbox/a.md", b), read("inbox/b.md", a)], before)
    assert planned(result) == [
        ("vault/inbox/a.md", "updated", INBOX, "a", PUBLISHED, MTIME),
        ("vault/inbox/b.md", "updated", INBOX, "b", PUBLISHED, MTIME),
    ]
    assert (result.delete_entries, result.delete_notes, result.problems) == ([], [], [])


def test_two_notes_with_front_matter_ids_swapping_names_keep_their_ids() -> None:
    a, b = note_bytes("Alpha.", id="A", title="A"), note_bytes("Beta.", id="B", title="B")
    before = Before()
    before.has(read("inbox/a.md", a), category_slug="inbox", slug="a")
    before.has(read("inbox/b.md", b), category_slug="inbox", slug="b")
    result = plan([read("inbox/a.md", b), read("inbox/b.md", a)], before)
    # the ids follow the content; the slugs follow the file names
    assert planned(result) == [
        ("B", "updated", INBOX, "a", PUBLISHED, UPDATED),
        ("A", "updated", INBOX, "b", PUBLISHED, UPDATED),
    ]
    assert result.upsert_notes == [row("inbox/a.md", b, "B"), row("inbox/b.md", a, "A")]
    assert result.problems == []


# --- removals, drafts, unreadable notes ---------------------------------------------------------


def test_a_removed_note_deletes_its_entry_and_row() -> None:
    before = Before()
    before.has(read("inbox/a.md", note_bytes()), category_slug="inbox", slug="a")
    before.has(read("inbox/b.md", note_bytes("Other.")), category_slug="inbox", slug="b")
    result = plan([], before, gone=["inbox/a.md"])
    assert result.entries == []
    assert result.delete_entries == ["vault/inbox/a.md"]
    assert result.delete_notes == [("vault", "inbox/a.md")]
    assert result.removed_paths == ["inbox/a.md"]


def test_a_vanished_path_whose_entry_lives_elsewhere_deletes_only_the_row() -> None:
    before = Before()
    before.has(read("inbox/a.md", note_bytes(id="X")), category_slug="inbox", slug="a")
    # a stale row of a copy that once carried the same front-matter id
    before.stored["inbox/copy.md"] = row("inbox/copy.md", note_bytes(id="X"), "X")
    result = plan([], before, gone=["inbox/copy.md"])
    assert result.delete_entries == []
    assert result.delete_notes == [("vault", "inbox/copy.md")]
    assert result.removed_paths == ["inbox/copy.md"]


def test_a_note_turned_draft_removes_its_entry_and_keeps_its_row() -> None:
    before = Before()
    before.has(read("inbox/a.md", note_bytes(title="T")), category_slug="inbox", slug="a")
    raw = note_bytes(title="T", draft=True)
    result = plan([read("inbox/a.md", raw)], before)
    assert result.entries == []
    assert result.delete_entries == ["vault/inbox/a.md"]
    assert result.upsert_notes == [row("inbox/a.md", raw, "vault/inbox/a.md")]
    assert (result.delete_notes, result.removed_paths) == ([], [])


def test_a_draft_published_later_is_added_not_updated() -> None:
    """A draft's row keeps its entry id but it has no entry: publishing it adds one (and so
    the notes that link to it are rendered again, as for any added note)."""
    before = Before()
    entry_id = before.has(read("inbox/a.md", note_bytes(title="T", draft=True)),
                          category_slug="inbox", slug="a")
    del before.refs[entry_id]  # a draft has a row, not an entry
    result = plan([read("inbox/a.md", note_bytes(title="T"))], before)
    assert [(e.id, e.kind) for e in result.entries] == [("vault/inbox/a.md", "added")]


def test_a_new_draft_is_not_planned() -> None:
    result = plan([read("inbox/a.md", note_bytes(draft=True))])
    assert (result.entries, result.delete_entries, result.problems) == ([], [], [])


@pytest.mark.parametrize(("raw", "reason"), [
    (b"---\ntitle: [unclosed\n---\nBody.", None),
    (note_bytes(date="not a date"), "front matter 'date': not a date: 'not a date'"),
    (note_bytes(draft="maybe"), "front matter 'draft': expected true or false, got 'maybe'"),
], ids=["bad-yaml", "bad-date", "bad-draft"])
def test_an_unreadable_note_is_a_problem_and_its_entry_is_kept(raw: bytes,
                                                               reason: str | None) -> None:
    before = Before()
    before.has(read("inbox/a.md", note_bytes()), category_slug="inbox", slug="a")
    bad = read("inbox/a.md", raw)
    assert bad.error is not None
    if reason is not None:
        assert bad.error.reason == reason
    result = plan([bad], before)
    assert result.problems == [Problem(source="vault", path="inbox/a.md", reason=bad.error.reason)]
    assert result.upsert_notes == [row("inbox/a.md", raw, "vault/inbox/a.md", bad.error.reason)]
    assert (result.entries, result.delete_entries, result.delete_notes) == ([], [], [])


def test_a_read_without_text_or_error_is_reported_unreadable() -> None:
    result = plan([ReadResult(note=note_file("inbox/a.md"), file_hash="")])
    assert result.problems == [Problem(source="vault", path="inbox/a.md", reason="unreadable")]
    assert result.entries == []


def test_a_note_with_a_warning_is_planned_and_reported() -> None:
    raw = note_bytes("Bad\x01char.")
    result = plan([read("inbox/a.md", raw)])
    warning = "1 control character(s) XML forbids were removed; note published"
    assert planned(result) == [("vault/inbox/a.md", "added", INBOX, "a", NOW, NOW)]
    assert result.problems == [Problem(source="vault", path="inbox/a.md", reason=warning)]
    assert result.upsert_notes == [row("inbox/a.md", raw, "vault/inbox/a.md", warning)]


@pytest.mark.parametrize("owner_is_stored", [False, True], ids=["same-scan", "earlier-scan"])
def test_a_duplicate_front_matter_id_is_a_problem_and_gets_no_entry(owner_is_stored: bool) -> None:
    before = Before()
    first = read("inbox/a.md", note_bytes("A.", id="same"))
    second = read("inbox/b.md", note_bytes("B.", id="same"))
    if owner_is_stored:
        before.has(first, category_slug="inbox", slug="a")
    result = plan([second] if owner_is_stored else [first, second], before)
    reason = "duplicate id 'same', already used by vault:inbox/a.md"
    assert [e.id for e in result.entries] == ([] if owner_is_stored else ["same"])
    assert result.problems == [Problem(source="vault", path="inbox/b.md", reason=reason)]
    assert result.upsert_notes[-1] == row("inbox/b.md", note_bytes("B.", id="same"), None, reason)


# --- slugs --------------------------------------------------------------------------------------

# sha1(entry id)[:6]: the suffix is part of published URLs, so it must never change
SUFFIX_OF_HYPHENATED = "2de7d4"  # sha1("vault/inbox/hello-world.md")


def test_a_slug_clash_in_one_category_gets_a_short_hash_of_the_id() -> None:
    result = plan([read("inbox/Hello World.md", note_bytes("A.")),
                   read("inbox/hello-world.md", note_bytes("B."))])
    assert [(e.id, e.slug) for e in result.entries] == [
        ("vault/inbox/Hello World.md", "hello-world"),
        ("vault/inbox/hello-world.md", f"hello-world-{SUFFIX_OF_HYPHENATED}"),
    ]
    assert hashlib.sha1(b"vault/inbox/hello-world.md").hexdigest()[:6] == SUFFIX_OF_HYPHENATED


def test_the_same_slug_in_two_categories_is_no_clash() -> None:
    result = plan([read("inbox/hello.md", note_bytes("A.")),
                   read("archive/hello.md", note_bytes("B."))])
    assert [(e.category.slug, e.slug) for e in result.entries] == [
        ("inbox", "hello"), ("archive", "hello")]


def test_a_slug_owned_by_a_stored_entry_makes_the_newcomer_yield() -> None:
    before = Before()
    before.has(read("inbox/Hello World.md", note_bytes("A.")), category_slug="inbox",
               slug="hello-world")
    result = plan([read("inbox/hello-world.md", note_bytes("B."))], before)
    assert [e.slug for e in result.entries] == [f"hello-world-{SUFFIX_OF_HYPHENATED}"]


def test_an_edited_entry_keeps_its_suffixed_slug() -> None:
    before = Before()
    before.has(read("inbox/Hello World.md", note_bytes("A.")), category_slug="inbox",
               slug="hello-world")
    before.has(read("inbox/hello-world.md", note_bytes("B.")), category_slug="inbox",
               slug=f"hello-world-{SUFFIX_OF_HYPHENATED}")
    result = plan([read("inbox/hello-world.md", note_bytes("B, edited."))], before)
    assert [e.slug for e in result.entries] == [f"hello-world-{SUFFIX_OF_HYPHENATED}"]


def test_slug_registry_asks_lookup_once_per_slug() -> None:
    asked: list[tuple[str, str]] = []

    def lookup(category: str, slug: str) -> str | None:
        asked.append((category, slug))
        return "someone-else" if slug == "taken" else None

    slugs = SlugRegistry({}, lookup=lookup)
    claims = [slugs.claim("inbox", "Taken", "vault/a.md", None),
              slugs.claim("inbox", "Free", "vault/b.md", None),
              slugs.claim("inbox", "taken", "vault/c.md", None)]
    suffix_a = hashlib.sha1(b"vault/a.md").hexdigest()[:6]
    suffix_c = hashlib.sha1(b"vault/c.md").hexdigest()[:6]
    assert claims == [f"taken-{suffix_a}", "free", f"taken-{suffix_c}"]
    assert asked == [("inbox", "taken"), ("inbox", "free")]


def test_a_released_slug_can_be_claimed_again() -> None:
    slugs = SlugRegistry({}, owners={("inbox", "a"): "vault/old.md"})
    slugs.release("inbox", "a", "vault/someone-else.md")  # not the owner: nothing happens
    assert slugs.claim("inbox", "a", "vault/new.md", None) == \
        "a-" + hashlib.sha1(b"vault/new.md").hexdigest()[:6]
    slugs.release("inbox", "a", "vault/old.md")
    assert slugs.claim("inbox", "a", "vault/newer.md", None) == "a"


# --- the deletion guard -------------------------------------------------------------------------


def guard_reason(removed: int, existing: int) -> str:
    return (f"scan would remove {removed} of {existing} entries (over "
            f"store.max_delete_fraction=0.5); nothing applied for this source; run "
            f"`feedsvc scan --allow-mass-delete` if this is intended")


@pytest.mark.parametrize(("removed", "existing", "allowed", "refused"), [
    (4, 10, False, False),
    (5, 10, False, False),
    (6, 10, False, True),
    (10, 10, False, True),
    (10, 10, True, False),
    (3, 0, False, False),
    (1, 1, False, False),
    (2, 2, False, True),
    (0, 10, False, False),
], ids=["below", "exactly-at", "above", "all", "allowed", "no-existing-entries",
        "single-entry", "two-of-two", "none-removed"])
def test_guard_deletions(removed: int, existing: int, allowed: bool, refused: bool) -> None:
    problem = guard_deletions(source="vault", removed=removed, existing=existing,
                              max_fraction=0.5, allowed=allowed)
    expected = Problem(source="vault", path=None, reason=guard_reason(removed, existing))
    assert problem == (expected if refused else None)


# --- which notes are read, which are missing ----------------------------------------------------


def test_changed_notes_are_new_or_moved_in_size_or_mtime() -> None:
    same = note_file("same.md", size=10, mtime=MTIME)
    grown = note_file("grown.md", size=11, mtime=MTIME)
    touched = note_file("touched.md", size=10, mtime=NOW)
    new = note_file("new.md")
    stats = {p: (10, ns(MTIME)) for p in ("same.md", "grown.md", "touched.md", "gone.md")}
    assert changed_notes((same, grown, touched, new), stats) == [grown, touched, new]


def snapshot(paths: Sequence[str], unlisted: tuple[str, ...] = ()) -> Snapshot:
    return Snapshot(source="vault", notes=tuple(note_file(p) for p in paths), media=(),
                    problems=(), unlisted=unlisted)


@pytest.mark.parametrize(("unlisted", "missing"), [
    ((), ["gone.md", "locked/x.md", "lockedout.md"]),
    (("locked",), ["gone.md", "lockedout.md"]),
    (("",), []),
], ids=["all-listed", "unlisted-folder-is-kept", "unlisted-root-keeps-everything"])
def test_missing_notes_are_stored_notes_the_walk_did_not_see(unlisted: tuple[str, ...],
                                                             missing: list[str]) -> None:
    stats = {p: (10, ns(MTIME)) for p in ("here.md", "gone.md", "locked/x.md", "lockedout.md")}
    assert missing_notes(snapshot(["here.md"], unlisted), stats) == missing


# --- the ids a plan may look up -----------------------------------------------------------------


def test_ids_in_play_and_candidate_ids() -> None:
    before = Before()
    before.has(read("inbox/a.md", note_bytes()), category_slug="inbox", slug="a")
    before.has(read("inbox/gone.md", note_bytes("Gone.")), category_slug="inbox", slug="gone")
    reads = [read("inbox/a.md", note_bytes(id="A")), read("inbox/b.md", note_bytes()),
             read("inbox/c.md", note_bytes(id="C")), read("inbox/bad.md", b"---\nx: [\n---\n")]
    stored = {"inbox/a.md": before.stored["inbox/a.md"]}
    missing = [before.stored["inbox/gone.md"]]
    assert ids_in_play("vault", reads, stored, missing) == {
        "vault/inbox/gone.md", "vault/inbox/a.md", "A", "vault/inbox/b.md", "C",
        "vault/inbox/c.md", "vault/inbox/bad.md"}
    assert candidate_ids("vault", reads, stored, missing) == {
        "vault/inbox/gone.md", "A", "vault/inbox/b.md", "C"}
    assert [candidate_id("vault", r, stored) for r in reads[:3]] == [
        "A", "vault/inbox/b.md", "C"]
    assert candidate_id("vault", read("inbox/a.md", note_bytes("Edited.")), stored) == \
        "vault/inbox/a.md"
