"""First-seen times: when the store first saw each entry id, the published date of an
undated note, kept once written (a rename or a re-import keeps it). Private to
feedsvc.store: the reads and the write Store.apply makes inside its transaction."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

from sqlalchemy import Connection
from sqlalchemy import insert
from sqlalchemy import select

from feedsvc.store.schema import first_seen

CHUNK = 400  # values per IN (...)


def times(conn: Connection, ids: Sequence[str]) -> dict[str, dt.datetime]:
    """entry id -> first-seen time, for the ids that have one."""
    out: dict[str, dt.datetime] = {}
    for start in range(0, len(ids), CHUNK):
        query = select(first_seen).where(first_seen.c.entry_id.in_(ids[start:start + CHUNK]))
        out.update((r.entry_id, r.seen_at) for r in conn.execute(query))
    return out


def record(conn: Connection, seen: Sequence[tuple[str, dt.datetime]]) -> None:
    """Write the first-seen times of the ids that have none yet (a known one never moves)."""
    if not seen:
        return
    known = times(conn, [entry_id for entry_id, _ in seen])
    rows = [{"entry_id": i, "seen_at": t} for i, t in seen if i not in known]
    if rows:
        conn.execute(insert(first_seen), rows)
