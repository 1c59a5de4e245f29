"""Domain types shared by every layer: frozen dataclasses and enums, no behaviour beyond
small properties. Named by pipeline stage: NoteFile (seen on disk) -> ParsedNote (content's
output) -> Entry (stored and published) -> ScanReport."""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass
from dataclasses import field
from datetime import datetime
from pathlib import Path
from typing import Literal
from typing import Protocol


NOTE_SUFFIXES = (".md", ".markdown")


def is_note_path(path: str) -> bool:
    """Notes are *.md / *.markdown files; everything else in a source is media."""
    return path.lower().endswith(NOTE_SUFFIXES)


class FeedFormat(enum.StrEnum):
    RSS = "rss"
    ATOM = "atom"
    JSON = "json"


class Clock(Protocol):
    """Anything that tells the current time (timezone-aware, UTC)."""

    def __call__(self) -> datetime: ...


@dataclass(frozen=True, slots=True, kw_only=True)
class Source:
    name: str
    root: Path
    default_category: str | None = None
    max_file_bytes: int = 5 * 1024 * 1024
    pull: Literal["git"] | None = None
    watch: bool = False


@dataclass(frozen=True, slots=True, kw_only=True)
class Category:
    name: str
    slug: str


@dataclass(frozen=True, slots=True, kw_only=True)
class NoteFile:
    """A note as seen on disk, before it is read."""

    source: str
    rel_path: str  # POSIX-style path below the source root
    abs_path: str  # a plain string: building a Path per note costs more than the walk itself
    size: int
    mtime_ns: int

    @property
    def stem(self) -> str:
        name = self.rel_path.rsplit("/", 1)[-1]
        return name.rsplit(".", 1)[0] if "." in name else name

    @property
    def top_folder(self) -> str | None:
        parts = self.rel_path.split("/")
        return parts[0] if len(parts) > 1 else None


@dataclass(frozen=True, slots=True, kw_only=True)
class NoteHeader:
    """What the front matter and first heading say; enough to plan without rendering."""

    title: str
    category_name: str | None  # from front matter only; folder rules are applied by scan
    published: datetime | None
    updated: datetime | None
    note_id: str | None
    is_draft: bool
    tags: tuple[str, ...]
    summary: str | None
    author: str | None


@dataclass(frozen=True, slots=True, kw_only=True)
class ParsedNote:
    """content's output for one note: header plus rendered body."""

    header: NoteHeader
    html: str
    excerpt: str
    content_hash: str  # hash of title + body: a change moves `updated`
    links: tuple[str, ...]  # normalised targets of wikilinks / relative note links


@dataclass(frozen=True, slots=True, kw_only=True)
class Entry:
    """A note as stored and published."""

    id: str
    source: str
    rel_path: str
    category: Category
    slug: str
    title: str
    published: datetime
    updated: datetime
    html: str
    excerpt: str
    content_hash: str
    tags: tuple[str, ...] = ()
    author: str | None = None
    is_draft: bool = False


@dataclass(frozen=True, slots=True, kw_only=True)
class Tombstone:
    """An entry deleted from a feed, announced with RFC 6721 for a while."""

    id: str
    category: Category
    title: str
    link: str
    deleted: datetime


@dataclass(frozen=True, slots=True, kw_only=True)
class Problem:
    source: str
    path: str | None
    reason: str

    def __str__(self) -> str:
        where = f"{self.source}:{self.path}" if self.path else self.source
        return f"{where}: {self.reason}"


@dataclass(frozen=True, slots=True, kw_only=True)
class FeedState:
    """Validators of one category's feed, kept in the store so they survive restarts."""

    slug: str
    signature: str
    last_modified: datetime


@dataclass(frozen=True, slots=True, kw_only=True)
class ScanReport:
    started: datetime
    finished: datetime
    reason: str
    added: tuple[str, ...] = ()
    updated: tuple[str, ...] = ()
    removed: tuple[str, ...] = ()
    renamed: tuple[str, ...] = ()
    problems: tuple[Problem, ...] = ()
    source_errors: tuple[Problem, ...] = ()  # sources whose changes were not applied
    unchanged: int = 0
    applied: bool = True
    changed_feeds: tuple[str, ...] = field(default=())  # category slugs whose feed changed

    @property
    def is_ok(self) -> bool:
        return not self.problems and not self.source_errors

    def to_dict(self) -> dict[str, object]:
        return {
            "started": self.started.isoformat(),
            "finished": self.finished.isoformat(),
            "reason": self.reason,
            "added": list(self.added),
            "updated": list(self.updated),
            "removed": list(self.removed),
            "renamed": list(self.renamed),
            "unchanged": self.unchanged,
            "problems": [
                {"source": p.source, "path": p.path, "reason": p.reason} for p in self.problems
            ],
            "source_errors": [
                {"source": p.source, "path": p.path, "reason": p.reason}
                for p in self.source_errors
            ],
            "applied": self.applied,
            "changed_feeds": list(self.changed_feeds),
        }


@dataclass(frozen=True, slots=True, kw_only=True)
class StoredNote:
    """What the store remembers of one note file from the previous scan."""

    source: str
    rel_path: str
    size: int
    mtime_ns: int
    file_hash: str
    problem: str | None
    entry_id: str | None


@dataclass(frozen=True, slots=True, kw_only=True)
class EntryRef:
    """Where an entry lives: enough to link to it and to plan changes."""

    id: str
    source: str
    rel_path: str
    category_slug: str
    slug: str
    content_hash: str
    published: datetime
    updated: datetime


@dataclass(frozen=True, slots=True, kw_only=True)
class EntryChange:
    """An entry to insert or replace, with the link keys its body refers to."""

    entry: Entry
    links: tuple[str, ...]
    tags: tuple[tuple[str, str], ...] = ()  # (tag slug, tag name), one per slug


class PublicationKind(enum.StrEnum):
    """What happened to an entry, as followers on ActivityPub are told."""

    CREATE = "create"  # newly visible: a new note, or a future-dated one come due
    UPDATE = "update"  # its `updated` moved
    DELETE = "delete"  # removed or unpublished


@dataclass(frozen=True, slots=True, kw_only=True)
class Publication:
    """An entry that became visible, changed or went, recorded with the scan that did it."""

    entry_id: str
    kind: PublicationKind
    at: datetime


@dataclass(frozen=True, slots=True, kw_only=True)
class Follower:
    """A remote actor following one of our actors, and where deliveries to it go."""

    actor: str  # our actor's handle
    follower: str  # the remote actor's id (a URI)
    inbox: str
    shared_inbox: str | None = None
    followed_at: datetime


@dataclass(frozen=True, slots=True, kw_only=True)
class RemoteActor:
    """A remote actor's public key and inboxes, as fetched (and cached in the store)."""

    id: str
    key_id: str
    public_key_pem: str
    inbox: str
    shared_inbox: str | None = None
    fetched_at: datetime


@dataclass(frozen=True, slots=True, kw_only=True)
class Delivery:
    """One signed POST of one activity to one inbox, waiting in the store's queue."""

    id: int
    activity_id: str
    inbox: str
    body: bytes  # the activity's JSON
    signer: str  # handle of our actor whose key signs it
    attempts: int
    created_at: datetime
    next_at: datetime


@dataclass(frozen=True, slots=True, kw_only=True)
class Changeset:
    """Everything one scan writes, applied by the store in one transaction."""

    now: datetime
    upsert_notes: tuple[StoredNote, ...] = ()
    delete_notes: tuple[tuple[str, str], ...] = ()  # (source, rel_path)
    upsert_entries: tuple[EntryChange, ...] = ()
    delete_entries: tuple[str, ...] = ()
    first_seen: tuple[tuple[str, datetime], ...] = ()
    report: ScanReport | None = None
    imported_sources: tuple[str, ...] = ()  # sources walked by this scan: later files are new
    publications: tuple[Publication, ...] = ()  # recorded for ActivityPub when it is enabled

    @property
    def is_empty(self) -> bool:
        return not (self.upsert_notes or self.delete_notes or self.upsert_entries
                    or self.delete_entries or self.first_seen)


@dataclass(frozen=True, slots=True, kw_only=True)
class MediaInfo:
    """A media file (image, PDF...) of a source as the store holds it: its bytes are the blob
    named by `hash` (SHA-256 hex), shared by every file with the same content."""

    source: str
    rel_path: str
    hash: str
    size: int
    mtime_ns: int
    media_type: str
    last_modified: datetime


@dataclass(frozen=True, slots=True, kw_only=True)
class ScanRequest:
    """What one trigger asks for (a webhook, the watcher, the scheduler), handed to the
    Scanner, maybe in another process; requests merge into ScanJobs."""

    source: str | None = None  # None: every source
    paths: tuple[str, ...] | None = None  # relative to the source; None: walk it
    reason: str = "webhook"


@dataclass(frozen=True, slots=True, kw_only=True)
class ScanJob:
    """One scan to run, whoever asked: the sources (None: all), the paths that limit some of
    them (source -> paths; the others are walked), and how. `pull`: run `git pull` in
    `pull = "git"` sources first; `git_targets`: such a source with no paths is scanned at
    the files its pull changed; `dry_run`: plan, apply nothing (`feedsvc check`);
    `allow_mass_delete`: lift the deletion guard."""

    reason: str = "manual"
    sources: tuple[str, ...] | None = None
    paths: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    pull: bool = False
    git_targets: bool = False
    dry_run: bool = False
    allow_mass_delete: bool = False
