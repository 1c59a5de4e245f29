"""What one scan tells ActivityPub followers: which planned and removed entries become a
CREATE, an UPDATE or a DELETE in the store's change log. A pure function of the plan, the
entries as they were before the scan and `now`; no disk, no database, no clock. Entries
that come due later (future-dated) are the store's to record (Store.refresh_due)."""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Collection
from collections.abc import Iterable
from collections.abc import Mapping
from collections.abc import Sequence

from feedsvc.model import EntryRef
from feedsvc.model import Publication
from feedsvc.model import PublicationKind
from feedsvc.scan.plan import PlannedEntry

logger = logging.getLogger(__name__)


def publications(planned: Sequence[PlannedEntry], removed_ids: Iterable[str],
                 refs_before: Mapping[str, EntryRef], *, now: dt.datetime,
                 skip_sources: Collection[str]) -> tuple[Publication, ...]:
    """The publications of one scan, all `at` now: planned entries first, in plan order,
    then the removed ones.

    Visible means published <= now. A planned entry not visible before (new, or
    future-dated until this edit) and visible now is a CREATE; one visible before and
    now is an UPDATE when its `updated` moved (a rename or a re-render for links alone
    moves nothing, so says nothing); one visible before and now future-dated again is a
    DELETE (it comes back as a CREATE when due). A removed entry that was visible is a
    DELETE. Nothing for the entries of `skip_sources` (a source's first import: already
    published, in the outbox, not pushed)."""
    out: list[Publication] = []
    for entry in planned:
        if entry.note.source in skip_sources:
            continue
        before = refs_before.get(entry.id)
        kind = _change(before, entry, now)
        if kind is not None:
            out.append(Publication(entry_id=entry.id, kind=kind, at=now))
    for entry_id in removed_ids:
        before = refs_before.get(entry_id)
        if before is not None and before.source not in skip_sources \
                and before.published <= now:
            out.append(Publication(entry_id=entry_id, kind=PublicationKind.DELETE, at=now))
    for publication in out:
        logger.debug("publication: entry=%s kind=%s", publication.entry_id, publication.kind)
    return tuple(out)


def _change(before: EntryRef | None, entry: PlannedEntry,
            now: dt.datetime) -> PublicationKind | None:
    was_visible = before is not None and before.published <= now
    is_visible = entry.published <= now
    if is_visible and not was_visible:
        return PublicationKind.CREATE
    if was_visible and not is_visible:
        return PublicationKind.DELETE
    if is_visible and before is not None and entry.updated != before.updated:
        return PublicationKind.UPDATE
    return None
