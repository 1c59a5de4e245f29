"""The scan's decisions, as pure functions of data: which notes changed, which were
renamed, what each entry's identity, category, slug and dates are, and whether a source's
removals trip the deletion guard. No disk, no database, no clock (now is passed in)."""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Callable
from collections.abc import Mapping
from dataclasses import dataclass
from dataclasses import field

from feedsvc.content import NoteText
from feedsvc.content import content_hash
from feedsvc.content.slugs import slugify
from feedsvc.errors import NoteError
from feedsvc.model import Category
from feedsvc.model import EntryRef
from feedsvc.model import NoteFile
from feedsvc.model import Problem
from feedsvc.model import Source
from feedsvc.model import StoredNote
from feedsvc.sources.walk import Snapshot

UNCATEGORIZED = "Uncategorized"
RESERVED_SLUGS = {"all"}


@dataclass(frozen=True, slots=True)
class ReadResult:
    """One changed file after reading: its text, or the reason it was skipped."""

    note: NoteFile
    file_hash: str
    text: NoteText | None = None
    error: NoteError | None = None


@dataclass(frozen=True, slots=True)
class PlannedEntry:
    """An entry to (re)render: everything but the HTML, excerpt and links."""

    note: NoteFile
    text: NoteText
    id: str
    category: Category
    slug: str
    published: dt.datetime
    updated: dt.datetime
    kind: str  # "added", "updated", "renamed", "relinked"


@dataclass
class SourcePlan:
    source: str
    entries: list[PlannedEntry] = field(default_factory=list)
    upsert_notes: list[StoredNote] = field(default_factory=list)
    delete_notes: list[tuple[str, str]] = field(default_factory=list)
    delete_entries: list[str] = field(default_factory=list)
    first_seen: list[tuple[str, dt.datetime]] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)
    removed_paths: list[str] = field(default_factory=list)


def changed_notes(snapshot_notes: tuple[NoteFile, ...],
                  stats: Mapping[str, tuple[int, int]]) -> list[NoteFile]:
    """Notes that are new or whose size or mtime moved: only these are read."""
    return [note for note in snapshot_notes
            if stats.get(note.rel_path) != (note.size, note.mtime_ns)]


def missing_notes(snapshot: Snapshot, stats: Mapping[str, tuple[int, int]]) -> list[str]:
    """Stored notes the snapshot did not see (those below a folder it could not list are
    not missing: they are kept)."""
    seen = {n.rel_path for n in snapshot.notes}
    return [p for p in stats if p not in seen and not snapshot.is_unseen(p)]


def category_for(note: NoteFile, text: NoteText, source: Source,
                 slug_overrides: Mapping[str, str]) -> Category:
    """Front matter wins, then the first-level folder, then the source default."""
    name = (text.header.category_name or note.top_folder or source.default_category
            or UNCATEGORIZED)
    return Category(name=name, slug=category_slug(name, slug_overrides))


def category_slug(name: str, overrides: Mapping[str, str]) -> str:
    if overrides.get(name):
        return overrides[name]
    slug = slugify(name, fallback="uncategorized")
    return f"{slug}-notes" if slug in RESERVED_SLUGS else slug


def derived_id(source: str, rel_path: str) -> str:
    return f"{source}/{rel_path}"


class SlugRegistry:
    """Entry slugs are unique per category; a clash gets a short hash of the id appended.

    Knows who owns each (category slug, slug) from every entry's ref, from a ready map, or
    by asking `lookup` the first time a slug comes up (a scan of a few notes, which then
    asks the store about those slugs only)."""

    def __init__(self, refs: Mapping[str, EntryRef], *,
                 owners: Mapping[tuple[str, str], str] | None = None,
                 lookup: Callable[[str, str], str | None] | None = None) -> None:
        self._owner: dict[tuple[str, str], str | None] = dict(owners) if owners is not None \
            else {(r.category_slug, r.slug): r.id for r in refs.values()}
        self._lookup = lookup

    def _get(self, key: tuple[str, str]) -> str | None:
        if key in self._owner or self._lookup is None:
            return self._owner.get(key)
        owner = self._owner[key] = self._lookup(*key)
        return owner

    def release(self, category_slug: str, slug: str, entry_id: str) -> None:
        if self._get((category_slug, slug)) == entry_id:
            self._owner[(category_slug, slug)] = None

    def claim(self, category_slug: str, stem: str, entry_id: str,
              current: EntryRef | None) -> str:
        base = slugify(stem)
        if current is not None and current.category_slug == category_slug and \
                current.slug in (base, f"{base}-{_short_hash(entry_id)}"):
            self._owner[(category_slug, current.slug)] = entry_id
            return current.slug
        slug = base
        owner = self._get((category_slug, slug))
        if owner is not None and owner != entry_id:
            slug = f"{base}-{_short_hash(entry_id)}"
        self._owner[(category_slug, slug)] = entry_id
        return slug


def _short_hash(text: str) -> str:
    return hashlib.sha1(text.encode()).hexdigest()[:6]


def plan_source(
    *,
    source: Source,
    reads: list[ReadResult],
    missing: list[StoredNote],
    stored: Mapping[str, StoredNote],
    refs: dict[str, EntryRef],
    first_seen: Mapping[str, dt.datetime],
    claimed_ids: dict[str, str],
    slugs: SlugRegistry,
    slug_overrides: Mapping[str, str],
    now: dt.datetime,
    kind_override: str | None = None,
    import_dates: Mapping[str, dt.datetime] | None = None,
) -> SourcePlan:
    """Decide what happens to every changed and missing note of one source.

    Rename rule: a new path whose bytes hash equal to a path that vanished in this same scan
    keeps the vanished entry's identity, dates and first-seen time. A note that fails to read
    keeps its previous entry (nothing is lost) and is reported as a Problem.

    First sight: an entry with no first-seen time gets the evidence in `import_dates`
    (rel_path -> git author date or mtime, gathered on a source's first import) or else `now`,
    and that time is kept (first_seen) as the published date of an undated note."""
    evidence = import_dates or {}
    plan = SourcePlan(source=source.name)
    by_hash: dict[str, StoredNote] = {}
    for old in missing:
        if old.entry_id and old.file_hash:
            by_hash.setdefault(old.file_hash, old)
    renamed_from: set[str] = set()
    missing_paths = {m.rel_path for m in missing}

    for read in reads:
        note = read.note
        old_row = stored.get(note.rel_path)
        if read.error is not None or read.text is None:
            reason = read.error.reason if read.error is not None else "unreadable"
            plan.problems.append(Problem(source=source.name, path=note.rel_path, reason=reason))
            plan.upsert_notes.append(StoredNote(
                source=source.name, rel_path=note.rel_path, size=note.size,
                mtime_ns=note.mtime_ns, file_hash=read.file_hash, problem=reason,
                entry_id=old_row.entry_id if old_row else None))
            continue
        text = read.text
        header = text.header
        kind = kind_override or ("updated" if old_row is not None and old_row.entry_id else "added")
        entry_id = header.note_id
        rename_source: StoredNote | None = None
        if entry_id is None and old_row is not None and old_row.entry_id:
            entry_id = old_row.entry_id
        if entry_id is None and old_row is None:
            rename_source = by_hash.pop(read.file_hash, None)
            if rename_source is not None and rename_source.entry_id:
                entry_id = rename_source.entry_id
                renamed_from.add(rename_source.rel_path)
                kind = "renamed"
        if entry_id is None:
            entry_id = derived_id(source.name, note.rel_path)
        elif rename_source is None and old_row is None and entry_id in refs and \
                refs[entry_id].source == source.name and \
                refs[entry_id].rel_path in missing_paths:
            renamed_from.add(refs[entry_id].rel_path)  # front-matter id moved with the file
            kind = "renamed"

        owner = claimed_ids.get(entry_id)
        here = f"{source.name}:{note.rel_path}"
        if owner is not None and owner != here:
            reason = f"duplicate id {entry_id!r}, already used by {owner}"
            plan.problems.append(Problem(source=source.name, path=note.rel_path, reason=reason))
            plan.upsert_notes.append(StoredNote(
                source=source.name, rel_path=note.rel_path, size=note.size,
                mtime_ns=note.mtime_ns, file_hash=read.file_hash, problem=reason, entry_id=None))
            continue
        claimed_ids[entry_id] = here

        # an old row whose entry id changed (front-matter id added/removed) loses that entry
        if old_row is not None and old_row.entry_id and old_row.entry_id != entry_id:
            _drop_entry(plan, refs, slugs, old_row.entry_id)

        seen = first_seen.get(entry_id)
        if seen is None:
            seen = min(evidence.get(note.rel_path, now), now)
            plan.first_seen.append((entry_id, seen))
        warning = "; ".join(text.warnings) or None
        if warning:
            plan.problems.append(Problem(source=source.name, path=note.rel_path, reason=warning))
        plan.upsert_notes.append(StoredNote(
            source=source.name, rel_path=note.rel_path, size=note.size, mtime_ns=note.mtime_ns,
            file_hash=read.file_hash, problem=warning, entry_id=entry_id))

        current = refs.get(entry_id)
        if header.is_draft:
            if current is not None:
                _drop_entry(plan, refs, slugs, entry_id)
            continue

        if current is None and kind_override is None:
            kind = "added"  # no entry yet: a draft published now, or a row whose entry went
        category = category_for(note, text, source, slug_overrides)
        if current is not None:
            slugs.release(current.category_slug, current.slug, entry_id)
        slug = slugs.claim(category.slug, note.stem, entry_id, current)
        published = header.published or seen
        updated = _updated(header.updated, published, current, text, note, now)
        plan.entries.append(PlannedEntry(note=note, text=text, id=entry_id, category=category,
                                         slug=slug, published=published, updated=updated,
                                         kind=kind))

    for old in missing:
        plan.delete_notes.append((source.name, old.rel_path))
        if old.rel_path in renamed_from:
            continue
        plan.removed_paths.append(old.rel_path)
        if old.entry_id and old.entry_id in refs and refs[old.entry_id].rel_path == old.rel_path \
                and refs[old.entry_id].source == source.name:
            _drop_entry(plan, refs, slugs, old.entry_id)
    return plan


def _drop_entry(plan: SourcePlan, refs: dict[str, EntryRef], slugs: SlugRegistry,
                entry_id: str) -> None:
    ref = refs.get(entry_id)
    if ref is not None:
        slugs.release(ref.category_slug, ref.slug, entry_id)
    if entry_id not in plan.delete_entries:
        plan.delete_entries.append(entry_id)


def _updated(declared: dt.datetime | None, published: dt.datetime, current: EntryRef | None,
             text: NoteText, note: NoteFile, now: dt.datetime) -> dt.datetime:
    """Front matter `updated` wins; else an edit of title or body moves it to the edit time
    (the file's mtime, never in the future); otherwise it stays where it was."""
    if declared is not None:
        return max(declared, published)
    if current is None:
        return published
    if current.content_hash == (text.digest or content_hash(text.header.title, text.body)):
        return max(current.updated, published)
    edited = min(dt.datetime.fromtimestamp(note.mtime_ns / 1e9, dt.timezone.utc), now)
    return max(edited, current.updated, published)


def guard_deletions(*, source: str, removed: int, existing: int, max_fraction: float,
                    allowed: bool) -> Problem | None:
    """The deletion guard: refuse a scan that removes more than max_fraction of a source's
    entries (an unmounted or emptied folder looks exactly like that). Removing a single
    entry is never a mass deletion."""
    if allowed or removed <= 1 or existing == 0:
        return None
    if removed / existing > max_fraction:
        return Problem(source=source, path=None,
                       reason=f"scan would remove {removed} of {existing} entries "
                              f"(over store.max_delete_fraction={max_fraction}); nothing applied "
                              f"for this source; run `feedsvc scan --allow-mass-delete` if "
                              f"this is intended")
    return None


def ids_in_play(source: str, reads: list[ReadResult], stored: dict[str, StoredNote],
                 missing: list[StoredNote]) -> set[str]:
    """Every entry id plan_source may look up for these reads and vanished notes: the
    front-matter id, the stored row's id and the derived id of each read note, the ids of
    the vanished ones."""
    ids = {m.entry_id for m in missing if m.entry_id}
    for read in reads:
        row = stored.get(read.note.rel_path)
        if row is not None and row.entry_id:
            ids.add(row.entry_id)
        if read.text is not None and read.text.header.note_id:
            ids.add(read.text.header.note_id)
        ids.add(derived_id(source, read.note.rel_path))
    return ids


def candidate_id(source: str, read: ReadResult, stored: dict[str, StoredNote]) -> str:
    assert read.text is not None
    row = stored.get(read.note.rel_path)
    return (read.text.header.note_id or (row.entry_id if row and row.entry_id else None)
            or f"{source}/{read.note.rel_path}")


def candidate_ids(source: str, reads: list[ReadResult], stored: dict[str, StoredNote],
                   missing: list[StoredNote]) -> set[str]:
    """Ids whose first-seen time the plan may need: each read note's likely id and the
    ids of vanished notes (a rename carries theirs over)."""
    ids = {m.entry_id for m in missing if m.entry_id}
    for read in reads:
        if read.text is None:
            continue
        ids.add(candidate_id(source, read, stored))
    return ids
