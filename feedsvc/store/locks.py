"""Named leases in the store, so exactly one process acts as scheduler (and one scans) per
store, however many web processes share it. A lease row with an expiry works the same on
SQLite (writes are serialised) and PostgreSQL (the conditional UPDATE is atomic)."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import Connection
from sqlalchemy import delete
from sqlalchemy import insert
from sqlalchemy import select
from sqlalchemy import update
from sqlalchemy.exc import IntegrityError

from feedsvc.store.schema import locks


def try_acquire(conn: Connection, name: str, owner: str, *, now: dt.datetime,
                ttl: dt.timedelta) -> bool:
    """Take or renew the lease; False if another owner holds an unexpired one."""
    row = conn.execute(select(locks).where(locks.c.name == name)).first()
    expires = now + ttl
    if row is None:
        try:
            with conn.begin_nested():
                conn.execute(insert(locks).values(name=name, owner=owner, expires=expires))
        except IntegrityError:
            return False
        return True
    if row.owner != owner and row.expires > now:
        return False
    result = conn.execute(
        update(locks)
        .where(locks.c.name == name, locks.c.owner == row.owner, locks.c.expires == row.expires)
        .values(owner=owner, expires=expires))
    return result.rowcount == 1


def release(conn: Connection, name: str, owner: str) -> None:
    conn.execute(delete(locks).where(locks.c.name == name, locks.c.owner == owner))


def holder(conn: Connection, name: str, now: dt.datetime) -> str | None:
    row = conn.execute(select(locks).where(locks.c.name == name)).first()
    if row is None or row.expires <= now:
        return None
    owner: str = row.owner
    return owner
