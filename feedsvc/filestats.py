"""The stored (size, mtime_ns) of every note and media file of each walked source, kept
between scans. A walk compares what it saw with them; reading them from the store took
20 ms per table at 10k notes, as much as the rest of a one-edit scan.

Like the site cache (sitecache.py) they hold for one store stamp and move with what this
process writes: the notes a scan applies, the media its sync copies or drops. Anything
else (another process's scan, a failed or dry run) drops them, and the next walk reads
them from the store again."""

from __future__ import annotations

from collections.abc import Callable

from feedsvc.model import Changeset
from feedsvc.sources import Stats
from feedsvc.store import Store

Stamp = tuple[int, str]  # Store.scan_stamp(): revision, last scan record


class FileStats:
    """The kept stats of one pipeline's sources (see the module docstring)."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self.stamp: Stamp | None = None
        self._notes: dict[str, Stats] = {}
        self._media: dict[str, Stats] = {}

    def notes_of(self, source: str, stamp: Stamp) -> Stats:
        """Store.note_stats(source), kept while the store is at `stamp`. The caller only reads it."""
        return self._kept(self._notes, source, stamp, self.store.note_stats)

    def media_of(self, source: str, stamp: Stamp) -> Stats:
        """Store.media_stats(source), kept while the store is at `stamp`. The media sync
        updates it as it writes (mediasync.sync_media)."""
        return self._kept(self._media, source, stamp, self.store.media_stats)

    def kept_notes(self, stamp: Stamp) -> list[str]:
        """The sources whose note stats are kept for `stamp`."""
        return list(self._notes) if self.stamp == stamp else []

    def _kept(self, kept: dict[str, Stats], source: str, stamp: Stamp,
              load: Callable[[str], Stats]) -> Stats:
        if self.stamp != stamp:
            self.drop()
            self.stamp = stamp
        stats = kept.get(source)
        if stats is None:
            stats = kept[source] = load(source)
        return stats

    def applied(self, before: Stamp | None, after: Stamp, changes: Changeset) -> None:
        """A scan that began at `before` was applied, leaving the store at `after` (or
        somewhere else, when another process wrote in between: then `after` is not the
        stamp the next scan reads, and the stats are dropped then)."""
        if before is None or self.stamp != before:
            self.drop()
            return
        for source, rel_path in changes.delete_notes:
            if source in self._notes:
                self._notes[source].pop(rel_path, None)
        for row in changes.upsert_notes:
            if row.source in self._notes:
                self._notes[row.source][row.rel_path] = (row.size, row.mtime_ns)
        self.stamp = after

    def media_synced(self, source: str, stamp: Stamp, before: Stats, after: Stats) -> None:
        """A targeted scan begun at `stamp` synced the media at its scope: the store held
        `before` there and holds `after` now."""
        kept = self._media.get(source)
        if kept is None or self.stamp != stamp or before == after:
            return
        for rel in before:
            kept.pop(rel, None)
        kept.update(after)

    def moved(self, before: Stamp, after: Stamp) -> None:
        """The store moved from `before` to `after` without a note or media change (feed
        validators refreshed)."""
        if self.stamp == before:
            self.stamp = after

    def drop(self) -> None:
        self.stamp = None
        self._notes.clear()
        self._media.clear()
