"""What a scan needs to know about every entry, kept between scans so that a scan of one
note does not load them all: the link index (siteindex.py), how many entries each source
has (the deletion guard's denominator), the notes that failed and the imported sources.

The cache is valid while the store's stamp (revision and last scan record) is the one it
was built or last updated at.
During a scan the index moves with the plan, which is where the store has the entries once
the scan is applied; the rest follows after apply. On any doubt (a dry run, an error,
another process writing in between) it is thrown away and built afresh next time."""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable
from collections.abc import Iterable
from collections.abc import Mapping

from feedsvc.filestats import FileStats
from feedsvc.model import Changeset
from feedsvc.model import EntryRef
from feedsvc.model import Problem
from feedsvc.model import Source
from feedsvc.siteindex import SiteIndex
from feedsvc.sources import Snapshot
from feedsvc.sources import SourceWalk
from feedsvc.sources import Stats
from feedsvc.store import Store
from feedsvc.urls import Urls
from feedsvc.walkdiff import narrowed

logger = logging.getLogger(__name__)
Stamp = tuple[int, str]  # Store.scan_stamp(): revision, last scan record
Place = tuple[str, str, str, str]  # Store.entry_places(): source, rel_path, category slug, slug


class SiteCache:
    """The kept state itself (see the module docstring)."""

    def __init__(self, urls: Urls, places: Iterable[Place], media: dict[str, Iterable[str]],
                 stamp: Stamp, note_stats: Mapping[str, Stats] | None = None) -> None:
        """`places`: every entry's (source, rel_path, category slug, slug); `note_stats`: the
        kept note stats, whose key strings the index takes for the same paths (one string
        per path in the process, not one per table that holds it)."""
        self.index = SiteIndex(urls)
        self.counts: dict[str, int] = {}
        self.stamp = stamp
        self.problems: dict[tuple[str, str], Problem] | None = None  # notes that failed
        self.imported: set[str] = set()  # sources known to be imported (that never undoes)
        self.walked_media: dict[str, tuple[str, ...]] = {}  # a source's media as in the index
        same = {name: {rel: rel for rel in stats} for name, stats in (note_stats or {}).items()}
        for source, rel_path, category_slug, slug in places:
            known = same.get(source)
            rel_path = known.get(rel_path, rel_path) if known is not None else rel_path
            self.index.add_entry(source, rel_path, category_slug, slug)
            self.counts[source] = self.counts.get(source, 0) + 1
        for source, paths in media.items():
            self.index.add_media(source, paths)


class SiteKeeper:
    """Holds a SiteCache for one pipeline and keeps it in step with the store."""

    def __init__(self, store: Store, urls: Urls, sources: Iterable[str]) -> None:
        self.store = store
        self.urls = urls
        self.sources = tuple(sources)
        self.cache: SiteCache | None = None
        self.stamp_before: Stamp | None = None  # the store's stamp as the scan began
        self.media_in_scope: dict[str, dict[str, tuple[int, int]]] = {}
        self.stats = FileStats(store)

    def note_stats(self, source: str, stamp: Stamp) -> Stats:
        """The stored (size, mtime_ns) of the source's notes, kept between scans (filestats.py)."""
        return self.stats.notes_of(source, stamp)

    def media_stats(self, source: str, stamp: Stamp) -> Stats:
        """The same for its media; the media sync updates it as it writes."""
        return self.stats.media_of(source, stamp)

    def narrower(self, stamp: Stamp, walked: Iterable[str]
                 ) -> Callable[[Source, SourceWalk], Snapshot | None]:
        """walkdiff.narrowed against the kept stats, for take_snapshots. The stats of the
        sources about to be walked are read now, before the walk: read after it, they sat
        between its freed objects, and the heap the walk used stayed resident."""
        for name in walked:
            self.note_stats(name, stamp)
            self.media_stats(name, stamp)
        return lambda source, walk: narrowed(source, walk, self.note_stats(source.name, stamp),
                                             self.media_stats(source.name, stamp))

    def begin(self, snapshots: dict[str, Snapshot], stamp: Stamp,
              media_in_scope: dict[str, dict[str, tuple[int, int]]]) -> None:
        """At the start of a scan: drop a cache the store moved away from, else bring its
        media in line with what the snapshots saw (before anything is rendered).
        `media_in_scope`: the stored media at each targeted snapshot's scope."""
        self.stamp_before = stamp
        self.media_in_scope = media_in_scope
        if self.cache is None or self.cache.stamp != stamp:
            self.cache = None
            return
        index = self.cache.index
        walked = self.cache.walked_media
        for name, snap in snapshots.items():
            if snap.scope is None:
                if walked.get(name) != snap.media:  # one compare when no media came or went
                    known = index.media_of(name)
                    index.remove_media(name, known - set(snap.media))
                    index.add_media(name, [m for m in snap.media if m not in known])
                    walked[name] = snap.media
            else:
                self._scoped_media(snap)

    def get(self, snapshots: dict[str, Snapshot]) -> SiteCache:
        """The kept cache, or one built from every entry's place and every source's media
        (a walked source's from its walk, another's from the kept stats). Only the fields
        the index keeps are read: whole entry refs, read and dropped between the strings
        it keeps, left a serve's scanner with ~120 MiB more resident at 100k notes for
        ~50 MiB of live objects (a heap pymalloc could not give back)."""
        if self.cache is not None:
            return self.cache
        assert self.stamp_before is not None
        started = time.perf_counter()
        stamp = self.stamp_before
        media: dict[str, Iterable[str]] = {}
        for name in self.sources:
            snap = snapshots.get(name)
            media[name] = snap.media if snap is not None and snap.scope is None \
                else self.stats.media_of(name, stamp)
        notes = {name: self.stats.notes_of(name, stamp) for name in self.stats.kept_notes(stamp)}
        self.cache = SiteCache(self.urls, self.store.entry_places(), media, stamp, notes)
        for name, snap in snapshots.items():
            if snap.scope is None:
                self.cache.walked_media[name] = snap.media
        for snap in snapshots.values():
            if snap.scope is not None:
                self._scoped_media(snap)
        logger.info("site cache built: entries=%d seconds=%.3f", sum(self.cache.counts.values()),
                    time.perf_counter() - started)
        return self.cache

    def warm(self) -> None:
        """Build the cache now, from the store, if there is none (a serve's scanner, once its
        start-up scan is done: the first webhook then finds it ready)."""
        if self.cache is None:
            self.stamp_before = self.store.scan_stamp()
            self.get({})

    def _scoped_media(self, snap: Snapshot) -> None:
        """A targeted snapshot's media replace what the index had at its paths and below."""
        assert self.cache is not None and snap.scope is not None
        index = self.cache.index
        self.cache.walked_media.pop(snap.source, None)
        now = set(snap.media)
        stored = set(self.media_in_scope.get(snap.source, {}))
        index.remove_media(snap.source, (stored | set(snap.scope)) - now)
        index.add_media(snap.source, sorted(now))

    def drop(self) -> None:
        self.cache = None
        self.stats.drop()

    def source_imported(self, source: str) -> bool:
        """Store.source_imported(), remembered once true while the cache holds."""
        cache = self.cache
        if cache is not None and source in cache.imported:
            return True
        imported = self.store.source_imported(source)
        if imported and cache is not None and cache.stamp == self.stamp_before:
            cache.imported.add(source)
        return imported

    def note_problems(self) -> list[Problem]:
        """Store.note_problems(), from the cache when it holds (the query reads every note)."""
        cache = self.cache
        if cache is None or cache.stamp != self.stamp_before:
            return self.store.note_problems()
        if cache.problems is None:
            cache.problems = {(p.source, p.path or ""): p for p in self.store.note_problems()}
        return [cache.problems[key] for key in sorted(cache.problems)]

    def applied(self, result_revision: int, changes: Changeset, refs_before: dict[str, EntryRef],
                upserted: Iterable[tuple[str, str]] = ()) -> None:
        """After a scan was applied: entry counts per source, and the stamp it matches
        (unless another process wrote in between). `upserted`: (entry id, source) of the
        entries streamed into apply() besides changes.upsert_entries."""
        cache, before = self.cache, self.stamp_before
        # what apply() wrote (store/__init__.py): a stamp that differs next time means
        # another process wrote in between, and the cache is rebuilt
        after = (result_revision, json.dumps(changes.report.to_dict()) if changes.report
                 else (before[1] if before else ""))
        consistent = before is not None and result_revision in (before[0], before[0] + 1) \
            and after[0] == result_revision
        self.stats.applied(before if consistent else None, after, changes)
        if cache is None or before is None or cache.stamp != before or \
                result_revision not in (before[0], before[0] + 1) or after[0] != result_revision:
            self.cache = None
            return
        pairs = [(c.entry.id, c.entry.source) for c in changes.upsert_entries] + list(upserted)
        for entry_id, source in pairs:
            old = refs_before.get(entry_id)
            if old is None or old.source != source:
                cache.counts[source] = cache.counts.get(source, 0) + 1
            if old is not None and old.source != source:
                cache.counts[old.source] -= 1
        for entry_id in changes.delete_entries:
            if entry_id in refs_before:
                cache.counts[refs_before[entry_id].source] -= 1
        if cache.problems is not None:
            for key in changes.delete_notes:
                cache.problems.pop(key, None)
            for row in changes.upsert_notes:
                if row.problem is None:
                    cache.problems.pop((row.source, row.rel_path), None)
                else:
                    cache.problems[(row.source, row.rel_path)] = Problem(
                        source=row.source, path=row.rel_path, reason=row.problem)
        cache.stamp = after

    def refreshed(self, before: Stamp, after: Stamp) -> None:
        """Feed validators were refreshed (no entry changed): the kept cache still holds."""
        if before[1] == after[1] and after[0] in (before[0], before[0] + 1):
            self.stats.moved(before, after)
        if self.cache is not None and self.cache.stamp == before and before[1] == after[1] \
                and after[0] in (before[0], before[0] + 1):
            self.cache.stamp = after
