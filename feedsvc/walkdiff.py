"""A walk of a whole source, narrowed to what it found changed.

A bare webhook, a schedule tick or `feedsvc scan` walks every folder: the only way to
see an edit when nothing says which file it was. Comparing each note and media file's
(size, mtime_ns) with the kept stats of the store (filestats.py) takes a few ms; what differs, came or went becomes the scope of a targeted snapshot,
and the scan then costs what a webhook naming those files costs. Without this, a
one-edit walk at 10k notes built 10,000 NoteFile objects and planned over them all.

A walk is narrowed only when it is plain: no symlink met (a followed link's media has no
lstat to compare) and every folder listed (notes below an unlisted one are kept, not
removed). Over NARROW_UP_TO changed paths it stays a whole snapshot: a big change goes the
way of a first scan (parallel render, a bulk read of stored rows). The deletion guard
counts against the source's stored entries either way."""

from __future__ import annotations

from feedsvc.model import Source
from feedsvc.sources import Snapshot
from feedsvc.sources import SourceWalk
from feedsvc.sources import Stats

NARROW_UP_TO = 200  # changed paths; a scope's stored rows are matched path by path


def narrowed(source: Source, walk: SourceWalk, notes: Stats, media: Stats) -> Snapshot | None:
    """The targeted snapshot of what `walk` saw differ from the stored `notes` and `media`
    stats, or None when the walk is not plain or found too much."""
    limit = NARROW_UP_TO
    if walk.unlisted or walk.links:
        return None
    if len(walk.notes) + len(walk.media_stats) - len(notes) - len(media) > limit:
        return None  # cheap early out: that many more files than stored
    stored_note, stored_media = notes.get, media.get  # (a set difference of the items
    # hashes every (path, (size, mtime)) pair: ten times slower than these lookups)
    new_notes = {rel for rel, seen in walk.notes.items() if stored_note(rel) != seen}
    new_media = {rel for rel, seen in walk.media_stats.items() if stored_media(rel) != seen}
    if len(new_notes) + len(new_media) > limit:
        return None
    gone = (notes.keys() - walk.notes.keys()) | (media.keys() - walk.media_stats.keys())
    if len(new_notes) + len(new_media) + len(gone) > limit:
        return None
    changed_notes = sorted(new_notes)
    changed_media = sorted(new_media)
    scope = new_notes | new_media | gone
    return Snapshot(
        source=source.name,
        notes=tuple(walk.note_files(source.name, str(source.root), changed_notes)),
        media=tuple(changed_media), problems=(), unlisted=(),
        scope=tuple(sorted(scope)),
        media_stats={rel: walk.media_stats[rel] for rel in changed_media},
        unchanged=len(walk.notes) - len(changed_notes),
        stored_media={rel: media[rel] for rel in scope if rel in media})
