"""The state a scan keeps between runs, so a scan of one note does not load every entry: the
stored (size, mtime_ns) of each source's notes and media (a walk compares against them), the
link index, how many entries each source has (the deletion guard's denominator), the notes
that failed and the sources already imported.

All of it holds for one store stamp (Store.stamp(), moved by every scan any process
applies). KeptState.check() at the start of a scan is the one place it is invalidated: a
stamp other than the kept one drops everything, loaded again on demand. The scan's own
writes move it along: apply() reports the stamp it moved from and to, and the kept state
follows only when it was at the first. A dry run or an error drops it.

A media sync (its own transaction, before apply) does not move the stamp; should the
process that made it die before its apply, another process's kept media stats lag the
store until the next apply, so its next walk copies or drops those files once more."""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable

from feedsvc.model import Changeset
from feedsvc.model import EntryRef
from feedsvc.model import Problem
from feedsvc.scan.links import SiteIndex
from feedsvc.sources.walk import Snapshot
from feedsvc.sources.walk import Stats
from feedsvc.store import ApplyResult
from feedsvc.store import Store
from feedsvc.urls import Urls

logger = logging.getLogger(__name__)


class Site:
    """What the kept state knows about every entry: built from the store's entry places and
    the sources' media in one pass (KeptState.site)."""

    def __init__(self, urls: Urls) -> None:
        self.index = SiteIndex(urls)
        self.counts: dict[str, int] = {}  # entries per source
        self.problems: dict[tuple[str, str], Problem] | None = None  # notes that failed
        self.imported: set[str] = set()  # sources known to be imported (that never undoes)
        self.walked_media: dict[str, tuple[str, ...]] = {}  # a source's media as indexed


class KeptState:
    """The one object kept between scans of one pipeline (see the module docstring)."""

    def __init__(self, store: Store, urls: Urls, sources: Iterable[str]) -> None:
        self.store = store
        self.urls = urls
        self.sources = tuple(sources)
        self.stamp: int | None = None
        self._notes: dict[str, Stats] = {}
        self._media: dict[str, Stats] = {}
        self._site: Site | None = None
        self._media_in_scope: dict[str, Stats] = {}

    def check(self, stamp: int) -> None:
        """At the start of a scan, with the store's stamp: anything kept for another is
        dropped. This is the only place kept state is judged stale."""
        if stamp != self.stamp:
            self.drop()
            self.stamp = stamp

    def drop(self) -> None:
        self.stamp = None
        self._notes.clear()
        self._media.clear()
        self._site = None

    def note_stats(self, source: str) -> Stats:
        """The stored (size, mtime_ns) of the source's notes. The caller only reads it."""
        stats = self._notes.get(source)
        if stats is None:
            stats = self._notes[source] = self.store.note_stats(source)
        return stats

    def media_stats(self, source: str) -> Stats:
        """The same for its media. The media sync brings it in line as it writes."""
        stats = self._media.get(source)
        if stats is None:
            stats = self._media[source] = self.store.media_stats(source)
        return stats

    def begin(self, snapshots: dict[str, Snapshot], media_in_scope: dict[str, Stats]) -> None:
        """Bring the kept index's media in line with what the snapshots saw, before anything
        is rendered. `media_in_scope`: the stored media at each targeted snapshot's scope."""
        self._media_in_scope = media_in_scope
        site = self._site
        if site is None:
            return
        for name, snap in snapshots.items():
            if snap.scope is None:
                if site.walked_media.get(name) != snap.media:  # one compare when none came or went
                    known = site.index.media_of(name)
                    site.index.remove_media(name, known - set(snap.media))
                    site.index.add_media(name, [m for m in snap.media if m not in known])
                    site.walked_media[name] = snap.media
            else:
                self._scoped_media(site, snap)

    def site(self, snapshots: dict[str, Snapshot]) -> Site:
        """The kept Site, or one built from every entry's place and every source's media (a
        walked source's from its walk, another's from the kept stats). Only the fields the
        index keeps are read, and each path string is the one the kept note stats hold."""
        if self._site is not None:
            return self._site
        started = time.perf_counter()
        site = Site(self.urls)
        same = {name: {rel: rel for rel in stats} for name, stats in self._notes.items()}
        for source, rel_path, category_slug, slug in self.store.entry_places():
            known = same.get(source)
            site.index.add_entry(source, known.get(rel_path, rel_path) if known else rel_path,
                                 category_slug, slug)
            site.counts[source] = site.counts.get(source, 0) + 1
        for name in self.sources:
            snap = snapshots.get(name)
            walked = snap is not None and snap.scope is None
            site.index.add_media(name, snap.media if walked and snap else self.media_stats(name))
            if walked and snap:
                site.walked_media[name] = snap.media
        for snap in snapshots.values():
            if snap.scope is not None:
                self._scoped_media(site, snap)
        self._site = site
        logger.info("site cache built: entries=%d seconds=%.3f", sum(site.counts.values()),
                    time.perf_counter() - started)
        return site

    def warm(self) -> None:
        """Build the Site now if there is none (a serve's scanner, once its start-up scan is
        done: the first webhook then finds it ready)."""
        if self._site is None:
            self.check(self.store.stamp())
            self.site({})

    def _scoped_media(self, site: Site, snap: Snapshot) -> None:
        """A targeted snapshot's media replace what the index had at its paths and below."""
        assert snap.scope is not None
        site.walked_media.pop(snap.source, None)
        now = set(snap.media)
        stored = set(self._media_in_scope.get(snap.source, {}))
        site.index.remove_media(snap.source, (stored | set(snap.scope)) - now)
        site.index.add_media(snap.source, sorted(now))

    def source_imported(self, source: str) -> bool:
        """Store.source_imported(), remembered once true."""
        site = self._site
        if site is not None and source in site.imported:
            return True
        imported = self.store.source_imported(source)
        if imported and site is not None:
            site.imported.add(source)
        return imported

    def note_problems(self) -> list[Problem]:
        """Store.note_problems(), kept with the Site (the query reads every note)."""
        site = self._site
        if site is None:
            return self.store.note_problems()
        if site.problems is None:
            site.problems = {(p.source, p.path or ""): p for p in self.store.note_problems()}
        return [site.problems[key] for key in sorted(site.problems)]

    def media_synced(self, source: str, before: Stats, after: Stats) -> None:
        """A targeted scan synced the media at its scope: the store held `before` there and
        holds `after` now (a walked source's kept stats were updated in place)."""
        kept = self._media.get(source)
        if kept is None or before == after:
            return
        for rel in before:
            kept.pop(rel, None)
        kept.update(after)

    def applied(self, result: ApplyResult, changes: Changeset, refs_before: dict[str, EntryRef],
                upserted: Iterable[tuple[str, str]] = ()) -> None:
        """This pipeline's scan was applied: follow it when the store moved from the kept
        stamp, else (another process wrote in between) drop everything. `upserted`: (entry
        id, source) of the entries streamed into apply() besides changes.upsert_entries."""
        if self.stamp is None or result.stamp_before != self.stamp:
            self.drop()
            return
        for source, rel_path in changes.delete_notes:
            if source in self._notes:
                self._notes[source].pop(rel_path, None)
        for row in changes.upsert_notes:
            if row.source in self._notes:
                self._notes[row.source][row.rel_path] = (row.size, row.mtime_ns)
        site = self._site
        if site is not None:
            self._count(site, changes, refs_before, upserted)
        self.stamp = result.stamp_after

    @staticmethod
    def _count(site: Site, changes: Changeset, refs_before: dict[str, EntryRef],
               upserted: Iterable[tuple[str, str]]) -> None:
        pairs = [(c.entry.id, c.entry.source) for c in changes.upsert_entries] + list(upserted)
        for entry_id, source in pairs:
            old = refs_before.get(entry_id)
            if old is None or old.source != source:
                site.counts[source] = site.counts.get(source, 0) + 1
            if old is not None and old.source != source:
                site.counts[old.source] -= 1
        for entry_id in changes.delete_entries:
            if entry_id in refs_before:
                site.counts[refs_before[entry_id].source] -= 1
        if site.problems is not None:
            for key in changes.delete_notes:
                site.problems.pop(key, None)
            for row in changes.upsert_notes:
                if row.problem is None:
                    site.problems.pop((row.source, row.rel_path), None)
                else:
                    site.problems[(row.source, row.rel_path)] = Problem(
                        source=row.source, path=row.rel_path, reason=row.problem)
