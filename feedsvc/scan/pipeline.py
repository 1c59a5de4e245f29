"""The scan pipeline: snapshot each source -> read only changed files -> plan (pure) ->
render -> store.apply() in one transaction. Scanner (scan.py) decides when it runs.

Memory stays bounded however big the scan: planning keeps headers and hashes, not bodies; the
render pool reads each body again and renders in chunks into a Spill (a temporary file for a big
scan) while the media files sync; store.apply then streams the rendered entries back batch by
batch inside its one transaction: the write lock is held for the inserts, not the rendering."""

from __future__ import annotations

import datetime as dt
import logging
import os
import time
from collections.abc import Callable
from collections.abc import Iterator
from collections.abc import Sequence
from concurrent.futures import Future
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace

from feedsvc.config import Config
from feedsvc.content import ContentSettings
from feedsvc.content.slugs import tag_slugs
from feedsvc.sources.dates import import_dates
from feedsvc.errors import NoteError
from feedsvc.model import Changeset
from feedsvc.model import Clock
from feedsvc.model import Entry
from feedsvc.model import EntryChange
from feedsvc.model import EntryRef
from feedsvc.model import NoteFile
from feedsvc.model import ParsedNote
from feedsvc.model import Problem
from feedsvc.model import Publication
from feedsvc.model import ScanJob
from feedsvc.model import ScanReport
from feedsvc.model import Source
from feedsvc.model import StoredNote
from feedsvc.scan.media import sync_all
from feedsvc.scan.plan import PlannedEntry
from feedsvc.scan.plan import ReadResult
from feedsvc.scan.plan import SlugRegistry
from feedsvc.scan.plan import SourcePlan
from feedsvc.scan.plan import candidate_id
from feedsvc.scan.plan import candidate_ids
from feedsvc.scan.plan import category_for
from feedsvc.scan.plan import changed_notes
from feedsvc.scan.plan import guard_deletions
from feedsvc.scan.plan import ids_in_play
from feedsvc.scan.plan import missing_notes
from feedsvc.scan.plan import plan_source
from feedsvc.scan.publications import publications
from feedsvc.scan.workers import CHUNK as RENDER_CHUNK
from feedsvc.scan.workers import PARALLEL_THRESHOLD
from feedsvc.scan.workers import ScanWorkers
from feedsvc.scan.workers import Spill
from feedsvc.scan.workers import StreamJob
from feedsvc.scan.workers import read_one
from feedsvc.scan.workers import read_stream
from feedsvc.scan.workers import render_stream
from feedsvc.scan.workers import start_scan_workers
from feedsvc.scan.workers import unpack
from feedsvc.scan.kept import KeptState
from feedsvc.scan.links import SiteIndex
from feedsvc.scan.links import move_to_plan
from feedsvc.scan.links import moved_link_keys
from feedsvc.sources.walk import Snapshot
from feedsvc.scan.scope import take_snapshots
from feedsvc.store import Store
from feedsvc.urls import Urls

logger = logging.getLogger(__name__)
BATCH_SIZE = 1000
Progress = Callable[[int, int], None]
SLUG_LOOKUPS_UP_TO = 500  # changed notes; above, the scan loads every (category, slug) at once


class ScanPipeline:
    """One scan of some sources, start to finish; not thread-safe (Scanner serialises)."""

    def __init__(self, config: Config, store: Store, clock: Clock, settings: ContentSettings) -> None:
        self.config = config
        self.store = store
        self.clock = clock
        self.urls = Urls(config.site.base_url)
        self.settings = settings
        self.batch_size = BATCH_SIZE  # entries per insert batch (and per spilled batch)
        self.kept = KeptState(store, self.urls, [s.name for s in config.sources])
        self._refs: dict[str, EntryRef] = {}  # refs of the entries the current scan touches
        self._pool: ScanWorkers | None = None  # the current big scan's workers


    def scan(self, job: ScanJob, progress: Progress | None = None) -> ScanReport:
        """Run one scan (see ScanJob); the kept state is dropped if it fails midway."""
        try:
            return self._scan(job, progress)
        except BaseException:
            self.kept.drop()  # it may be half updated
            raise
        finally:
            self._close_pool()

    def _close_pool(self) -> None:
        if self._pool is not None:
            self._pool.close()
            self._pool = None

    def _scan(self, job: ScanJob, progress: Progress | None) -> ScanReport:
        started = self.clock()
        wall = time.perf_counter()
        sources = self._select(job.sources)
        paths, pull, git_targets = job.paths, job.pull, job.git_targets
        reason, dry_run = job.reason, job.dry_run
        source_errors: list[Problem] = []
        self._refs = {}
        self.kept.check(self.store.stamp())
        # the kept stats of the sources about to be walked are read before the walk: read
        # after it, they sat between its freed objects, and the heap it used stayed resident
        kept_stats = {s.name: (self.kept.note_stats(s.name), self.kept.media_stats(s.name))
                      for s in sources if s.name not in paths
                      and not (pull and git_targets and s.pull == "git")}
        snapshots = take_snapshots(sources, paths, pull=pull, git_targets=git_targets,
                                   source_errors=source_errors, kept_stats=kept_stats)
        # compare against (size, mtime) only; full rows are loaded for sources that changed;
        # a targeted snapshot speaks only for the stored notes in its scope (small: loaded whole)
        scoped = {name: self.store.load_notes(name, snap.scope)
                  for name, snap in snapshots.items() if snap.scope is not None}
        stats = {name: {p: (r.size, r.mtime_ns) for p, r in scoped[name].items()}
                 if name in scoped else self.kept.note_stats(name)
                 for name, snap in snapshots.items()}
        changed_by_source: dict[str, list[NoteFile]] = {}
        missing_paths: dict[str, list[str]] = {}
        for name, snap in snapshots.items():
            changed_by_source[name] = changed = changed_notes(snap.notes, stats[name])
            new = sum(1 for n in changed if n.rel_path not in stats[name])
            missing_paths[name] = [] if len(snap.notes) - new == len(stats[name]) else \
                missing_notes(snap, stats[name])  # some stored note was not seen
        unchanged = sum(len(s.notes) + s.unchanged for s in snapshots.values()) - \
            sum(len(c) for c in changed_by_source.values())
        # the stored rows the plan looks at: those of the changed and the missing notes only
        # (a walk that found one edit loads one row, not the source's every note)
        stored = {name: scoped[name] if name in scoped else self._stored_rows(
                      name, [n.rel_path for n in changed_by_source[name]] + missing_paths[name])
                  for name in snapshots if changed_by_source[name] or missing_paths[name]}
        work = {name: (changed_by_source[name], [stored[name][p] for p in missing_paths[name]])
                for name in stored}
        media_in_scope = {name: self.store.media_stats(name, snap.scope)
                          if snap.stored_media is None else snap.stored_media
                          for name, snap in snapshots.items() if snap.scope is not None}
        media_before = {name: dict(stats) for name, stats in media_in_scope.items()}
        self.kept.begin(snapshots, media_in_scope)
        stored_media = {name: media_in_scope[name] if name in media_in_scope
                        else self.kept.media_stats(name) for name in snapshots}

        # a big scan forks its workers now, while this process is small (they never hold
        # the plan), and reads and renders with them
        if sum(len(c) for c, _ in work.values()) >= PARALLEL_THRESHOLD:
            self._pool = start_scan_workers(self.settings, folder=self._spill_folder())

        problems: list[Problem] = [p for s in snapshots.values() for p in s.problems]
        changeset_parts: list[SourcePlan] = []
        planned: list[PlannedEntry] = []
        index = SiteIndex(self.urls)
        if any(c or m for c, m in work.values()):
            changeset_parts, planned, index = self._plan_and_render(
                snapshots, stored, work, now=started, allow_mass_delete=job.allow_mass_delete,
                source_errors=source_errors, progress=progress)
        new_problem_paths = {(p.source, p.path) for part in changeset_parts for p in part.problems}
        problems.extend(p for part in changeset_parts for p in part.problems)
        # unchanged files that failed before are still failing: report them too
        fixed = {(n.source, n.rel_path) for part in changeset_parts for n in part.upsert_notes
                 if n.problem is None}
        gone = {key for part in changeset_parts for key in part.delete_notes}
        for old in self.kept.note_problems():
            key = (old.source, old.path)
            if old.source in snapshots and key not in new_problem_paths and key not in fixed \
                    and key not in gone:
                problems.append(old)

        by_kind: dict[str, list[str]] = {"added": [], "updated": [], "renamed": []}
        for entry in planned:
            if entry.kind in by_kind:
                by_kind[entry.kind].append(entry.id)
        rendered_ids = {p.id for p in planned}
        removed = [i for part in changeset_parts for i in part.delete_entries
                   if i not in rendered_ids]
        # media files go into the store too (own transaction, mediasync.py), while the notes render
        media = None if dry_run else (lambda: sync_all(self.store, sources, snapshots,
                                                       source_errors, stored=stored_media))
        spill, stale, media_problems = self._render(planned, index, changeset_parts, media)
        self._close_pool()  # the workers are gone before the inserts
        for name, before in media_before.items():  # what the sync wrote at each scope
            self.kept.media_synced(name, before, media_in_scope[name])
        problems.extend(media_problems)
        report = ScanReport(
            started=started, finished=self.clock(), reason=reason,
            added=tuple(by_kind["added"]), updated=tuple(by_kind["updated"]),
            removed=tuple(removed), renamed=tuple(by_kind["renamed"]),
            problems=tuple(problems), source_errors=tuple(source_errors),
            unchanged=unchanged, applied=not dry_run)
        if dry_run:
            self.kept.drop()  # moved with a plan that is not applied
            for _ in self._entry_batches(spill, planned):
                pass  # what a real scan would log about notes rendered as text
            spill.close()
            return report
        # a note whose file changed while the scan ran is read again by the next scan
        upsert_notes = tuple(replace(n, mtime_ns=-1) if (n.source, n.rel_path) in stale else n
                             for part in changeset_parts for n in part.upsert_notes)
        changes = Changeset(
            now=started,
            upsert_notes=upsert_notes,
            delete_notes=tuple(k for part in changeset_parts for k in part.delete_notes),
            delete_entries=tuple(removed),
            first_seen=tuple(f for part in changeset_parts for f in part.first_seen),
            report=report,
            imported_sources=tuple(sorted(snapshots)),
            publications=self._publications(planned, removed, snapshots, started),
        )
        try:  # the rendered entries stream in, batch by batch, inside the one transaction
            result = self.store.apply(changes, stream=self._entry_batches(spill, planned))
        finally:
            spill.close()
        self.kept.applied(result, changes, self._refs,
                            upserted=[(p.id, p.note.source) for p in planned])
        report = replace(report, changed_feeds=result.changed_feeds)
        for p in report.problems:
            logger.warning("note skipped: source=%s path=%s reason=%s", p.source, p.path, p.reason)
        logger.info("scan done: reason=%s added=%d updated=%d removed=%d renamed=%d unchanged=%d "
                    "problems=%d source_errors=%d seconds=%.3f", reason, len(report.added),
                    len(report.updated), len(report.removed), len(report.renamed),
                    report.unchanged, len(report.problems), len(report.source_errors),
                    time.perf_counter() - wall)
        return report

    def _publications(self, planned: list[PlannedEntry], removed: list[str],
                      snapshots: dict[str, Snapshot], now: dt.datetime) -> tuple[Publication, ...]:
        """What ActivityPub followers are told of this scan (when federation is on); a
        source's first import tells them nothing (read before apply marks it imported)."""
        if not self.config.activitypub.enabled:
            return ()
        first_import = {name for name in snapshots if not self.kept.source_imported(name)}
        return publications(planned, removed, self._refs, now=now, skip_sources=first_import)

    def _stored_rows(self, source: str, paths: list[str]) -> dict[str, StoredNote]:
        if len(paths) > SLUG_LOOKUPS_UP_TO:  # a big change: one read of them all
            return self.store.load_notes(source)
        wanted = set(paths)
        rows = self.store.load_notes(source, sorted(wanted))
        return {path: row for path, row in rows.items() if path in wanted}

    def _select(self, names: Sequence[str] | None) -> list[Source]:
        if names is None:
            return list(self.config.sources)
        unknown = set(names) - {s.name for s in self.config.sources}
        if unknown:
            raise KeyError(f"unknown source: {', '.join(sorted(unknown))}")
        return [s for s in self.config.sources if s.name in names]

    def _plan_and_render(
        self, snapshots: dict[str, Snapshot], stored: dict[str, dict[str, StoredNote]],
        work: dict[str, tuple[list[NoteFile], list[StoredNote]]], *, now: dt.datetime,
        allow_mass_delete: bool, source_errors: list[Problem], progress: Progress | None,
    ) -> tuple[list[SourcePlan], list[PlannedEntry], SiteIndex]:
        # one `now` for the whole scan (the one the store applies with): a note first seen
        # in this scan is dated no later than the moment its feeds' validators are computed
        cache = self.kept.site(snapshots)
        overrides = self._slug_overrides()
        total = sum(len(c) for c, _ in work.values())
        done = 0
        reads_by_source: dict[str, list[ReadResult]] = {}
        for name, (changed, missing) in work.items():
            source = self.config.source(name)
            reads_by_source[name] = reads = []
            outcomes = read_stream(changed, source.max_file_bytes, self.settings,
                                   parallel=len(changed) >= PARALLEL_THRESHOLD, pool=self._pool)
            for note, (file_hash, text, error) in zip(changed, outcomes):
                reads.append(ReadResult(note=note, file_hash=file_hash, text=text, error=error))
                done += 1
                if progress is not None:
                    progress(done, total)
        # the refs of every entry this scan may touch, looked up by id (not all of them)
        in_play: set[str] = set()
        for name, (_, missing) in work.items():
            in_play |= ids_in_play(name, reads_by_source[name], stored[name], missing)
        refs = self.store.entry_refs_by_ids(in_play)
        self._refs = refs
        # a few notes ask the store about their slugs; a big scan loads them all at once
        slugs = SlugRegistry({}, lookup=self.store.slug_owner) if total < SLUG_LOOKUPS_UP_TO \
            else SlugRegistry({r.id: r for r in self.store.entry_refs()})
        claimed = {r.id: f"{r.source}:{r.rel_path}" for r in refs.values()}
        plans: list[SourcePlan] = []
        for name, (changed, missing) in work.items():
            source = self.config.source(name)
            reads = reads_by_source[name]
            # an entry whose note is changing or vanishing may be claimed again by it
            for old in missing + [stored[name][n.rel_path] for n in changed
                                  if n.rel_path in stored[name]]:
                if old.entry_id and claimed.get(old.entry_id) == f"{name}:{old.rel_path}":
                    del claimed[old.entry_id]
            first_seen = self.store.first_seen_times(candidate_ids(name, reads, stored[name],
                                                                    missing))
            dates = self._import_dates(source, reads, stored[name], first_seen, now)
            plan = plan_source(source=source, reads=reads, missing=missing, stored=stored[name],
                               refs=refs, first_seen=first_seen, claimed_ids=claimed, slugs=slugs,
                               slug_overrides=overrides, now=now, import_dates=dates)
            planned_ids = {p.id for p in plan.entries}  # an id re-planned is not removed
            removed = sum(1 for i in plan.delete_entries if i not in planned_ids)
            guard = guard_deletions(source=name, removed=removed,
                                    existing=cache.counts.get(name, 0),
                                    max_fraction=self.config.store.max_delete_fraction,
                                    allowed=allow_mass_delete)
            if guard is not None:
                logger.error("source not applied: source=%s reason=%s", name, guard.reason)
                source_errors.append(guard)
                continue
            plans.append(plan)

        index = move_to_plan(cache.index, refs, plans)
        relinked = self._relinked(plans, refs, stored, index)
        return plans, [p for plan in plans for p in plan.entries] + relinked, index
    def _render(self, planned: list[PlannedEntry], index: SiteIndex, plans: list[SourcePlan],
                media: Callable[[], list[Problem]] | None,
                ) -> tuple[Spill[bytes], set[tuple[str, str]], list[Problem]]:
        """Render every planned entry, chunk by chunk, into a Spill (in order; compressed by
        the workers), running `media` alongside once the render pool has forked; the set of
        notes found changed on disk since they were planned (rendered from the new bytes,
        read again by the next scan)."""
        hashes = {(n.source, n.rel_path): n.file_hash for plan in plans for n in plan.upsert_notes}
        spill: Spill[bytes] = Spill(on_disk=len(planned) > self.batch_size,
                                    folder=self._spill_folder())
        stale: set[tuple[str, str]] = set()
        media_problems: list[Problem] = []
        try:
            with ThreadPoolExecutor(max_workers=1, thread_name_prefix="mediasync") as side:
                future: Future[list[Problem]] | None = None
                done = 0
                for size, changed, data in render_stream(
                        self._jobs(planned, hashes), index, self.settings,
                        parallel=len(planned) >= PARALLEL_THRESHOLD, pool=self._pool):
                    if media is not None and future is None:  # after the pool forked
                        future = side.submit(media)
                    for i in changed:
                        note = planned[done + i].note
                        stale.add((note.source, note.rel_path))
                    done += size
                    spill.put(data)
                if future is not None:
                    media_problems = future.result()
                elif media is not None:
                    media_problems = media()
        except BaseException:
            spill.close()
            raise
        return spill, stale, media_problems

    def _entry_batches(self, spill: Spill[bytes],
                       planned: list[PlannedEntry]) -> Iterator[list[EntryChange]]:
        """The spilled results as entry changes, batch_size at a time, in planned order."""
        batch: list[EntryChange] = []
        done = 0
        for data in spill:
            for result in unpack(data):
                batch.append(self._entry_change(planned[done], result))
                done += 1
            if len(batch) >= self.batch_size:
                yield batch
                batch = []
        if batch:
            yield batch

    def _jobs(self, planned: list[PlannedEntry],
              hashes: dict[tuple[str, str], str]) -> Iterator[list[StreamJob]]:
        """Render jobs in chunks; a planned note's body was dropped after planning and is
        read again (and checked against its hash) by whoever renders it."""
        limits = {s.name: s.max_file_bytes for s in self.config.sources}
        chunk: list[StreamJob] = []
        for p in planned:
            key = (p.note.source, p.note.rel_path)
            file_hash = None if p.kind == "relinked" else hashes.get(key)
            chunk.append((p.note, p.text, self.urls.entry(p.category.slug, p.slug), file_hash,
                          limits.get(p.note.source, 0)))
            if len(chunk) >= RENDER_CHUNK:
                yield chunk
                chunk = []
        if chunk:
            yield chunk

    def _spill_folder(self) -> str | None:
        folder = self.config.store.data_dir
        return folder if folder and os.path.isdir(folder) else None


    def _import_dates(self, source: Source, reads: list[ReadResult],
                      stored: dict[str, StoredNote], first_seen: dict[str, dt.datetime],
                      now: dt.datetime) -> dict[str, dt.datetime]:
        """On a source's first import only: git author dates (one `git log` pass) or mtimes
        for the undated notes seen for the first time; later new files get their first-seen
        time (an empty mapping here)."""
        if self.kept.source_imported(source.name):
            return {}
        undated = {r.note.rel_path: r.note.mtime_ns for r in reads
                   if r.text is not None and r.text.header.published is None
                   and r.note.rel_path not in stored
                   and candidate_id(source.name, r, stored) not in first_seen}
        return import_dates(source.root, undated, now=now)

    def _slug_overrides(self) -> dict[str, str]:
        return {name: c.slug for name, c in self.config.categories.items() if c.slug}

    def _read(self, source: Source, note: NoteFile) -> ReadResult:
        file_hash, text, error = read_one(note, source.max_file_bytes, self.settings,
                                          keep_body=True)
        return ReadResult(note=note, file_hash=file_hash, text=text, error=error)

    def _relinked(self, plans: list[SourcePlan], refs: dict[str, EntryRef],
                  stored: dict[str, dict[str, StoredNote]], index: SiteIndex) -> list[PlannedEntry]:
        """Notes that link to a note added, renamed or removed in this scan are rendered
        again so their links point at the right page (or become plain text)."""
        keys = moved_link_keys(plans, refs)
        if not keys:
            return []
        busy = {p.id for plan in plans for p in plan.entries} | \
               {i for plan in plans for i in plan.delete_entries}
        out: list[PlannedEntry] = []
        linking = sorted(self.store.entries_linking_to(keys) - busy)
        refs.update(self.store.entry_refs_by_ids(i for i in linking if i not in refs))
        wanted: dict[str, set[str]] = {}
        for known in (refs[i] for i in linking if i in refs):
            if known.rel_path not in stored.get(known.source, {}):
                wanted.setdefault(known.source, set()).add(known.rel_path)
        rows = {name: self.store.load_notes(name, sorted(paths)) for name, paths in wanted.items()}
        for entry_id in linking:
            ref = refs.get(entry_id)
            if ref is None:
                continue
            try:
                source = self.config.source(ref.source)
            except KeyError:
                continue
            row = stored.get(ref.source, {}).get(ref.rel_path) or \
                rows.get(ref.source, {}).get(ref.rel_path)
            note = NoteFile(source=ref.source, rel_path=ref.rel_path,
                            abs_path=str(source.root / ref.rel_path),
                            size=row.size if row else 0, mtime_ns=row.mtime_ns if row else 0)
            read = self._read(source, note)
            if read.text is None:
                continue
            out.append(PlannedEntry(note=note, text=read.text, id=ref.id,
                                    category=category_for(note, read.text, source,
                                                          self._slug_overrides()),
                                    slug=ref.slug,
                                    published=ref.published, updated=ref.updated,
                                    kind="relinked"))
        return out

    def _entry_change(self, planned: PlannedEntry, result: ParsedNote | NoteError) -> EntryChange:
        header = planned.text.header
        if isinstance(result, NoteError):
            logger.warning("note rendered as text: source=%s path=%s reason=%s",
                           planned.note.source, planned.note.rel_path, result.reason)
            parsed = None
        else:
            parsed = result
        entry = Entry(
            id=planned.id, source=planned.note.source, rel_path=planned.note.rel_path,
            category=planned.category, slug=planned.slug, title=header.title,
            published=planned.published, updated=planned.updated,
            html=parsed.html if parsed else "",
            excerpt=parsed.excerpt if parsed else (header.summary or ""),
            content_hash=parsed.content_hash if parsed else "",
            tags=header.tags, author=header.author,
        )
        return EntryChange(entry=entry, links=parsed.links if parsed else (),
                           tags=tag_slugs(entry.tags))
