"""Scan requests handed from any process to the scanner through the store: a row per webhook
taken by a process that does not hold the scanner lease. On PostgreSQL the insert also sends a
NOTIFY, so the scanner (LISTENing) acts at once; on SQLite it polls the table briefly."""

from __future__ import annotations

import datetime as dt
import json

from sqlalchemy import Connection
from sqlalchemy import delete
from sqlalchemy import insert
from sqlalchemy import select
from sqlalchemy import text

from feedsvc.model import ScanRequest
from feedsvc.store.schema import scan_requests

CHANNEL = "feedsvc_scan_requests"


def add(conn: Connection, request: ScanRequest, now: dt.datetime) -> None:
    paths = None if request.paths is None else json.dumps(list(request.paths), ensure_ascii=False)
    conn.execute(insert(scan_requests).values(source=request.source, paths=paths,
                                              reason=request.reason, created=now))
    if conn.dialect.name == "postgresql":
        conn.execute(text("SELECT pg_notify(:channel, '')"), {"channel": CHANNEL})


def pending(conn: Connection) -> bool:
    return conn.execute(select(scan_requests.c.id).limit(1)).first() is not None


def take(conn: Connection) -> list[ScanRequest]:
    """Every waiting request, removed in the same transaction (so exactly one scanner acts)."""
    rows = conn.execute(select(scan_requests).order_by(scan_requests.c.id)).all()
    if not rows:
        return []
    conn.execute(delete(scan_requests).where(scan_requests.c.id <= rows[-1].id))
    return [ScanRequest(source=r.source, reason=r.reason,
                        paths=None if r.paths is None else tuple(json.loads(r.paths)))
            for r in rows]
