"""The dialect-specific corner of the store: everything that differs between SQLite and
PostgreSQL lives here (engine options, SQLite pragmas, the lock migrations run under), so the
rest of the store is portable SQLAlchemy Core."""

from __future__ import annotations

import logging
import time
import zlib
from collections.abc import Iterator
from collections.abc import Mapping
from collections.abc import Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from typing import TypeVar

from sqlalchemy import URL
from sqlalchemy import Connection
from sqlalchemy import Engine
from sqlalchemy import Insert
from sqlalchemy import Select
from sqlalchemy import Table
from sqlalchemy import create_engine
from sqlalchemy import event
from sqlalchemy import text
from sqlalchemy.dialects import postgresql
from sqlalchemy.dialects import sqlite
from sqlalchemy.pool import NullPool

logger = logging.getLogger(__name__)

SQLITE_BUSY_MS = 30_000
# one fixed key for "the schema of this database is being changed" (pg_advisory_xact_lock)
MIGRATION_LOCK_KEY = zlib.crc32(b"feedsvc.migrate")
# and one for "a write transaction of the store is under way" (see serialize_writes)
WRITE_LOCK_KEY = zlib.crc32(b"feedsvc.write")


def engine_options(url: URL) -> dict[str, Any]:
    """create_engine() keyword arguments for this backend."""
    if url.get_backend_name() == "sqlite":
        database = url.database
        if database and database != ":memory:":
            Path(database).parent.mkdir(parents=True, exist_ok=True)
        return {"connect_args": {"check_same_thread": False, "timeout": SQLITE_BUSY_MS / 1000}}
    return {"pool_pre_ping": True}


def prepare_engine(engine: Engine) -> None:
    """Per-connection set-up: WAL and a busy timeout on SQLite (several processes share one
    file; readers never block the writer)."""
    if engine.dialect.name == "sqlite":
        event.listen(engine, "connect", _sqlite_pragmas)
    elif engine.dialect.name == "postgresql":
        event.listen(engine, "before_cursor_execute", _strip_nul, retval=True)


def _strip_nul(conn: Connection, cursor: Any, statement: str, parameters: Any, context: Any,
               executemany: bool) -> tuple[str, Any]:
    """PostgreSQL text cannot hold NUL (SQLite can): a front-matter "\\0" escape would
    fail every scan there. XML forbids the character anyway, so it is dropped from every
    string sent, the same in writes and in the lookups that match them."""
    if executemany and isinstance(parameters, list):
        return statement, [_clean(p) for p in parameters]
    return statement, _clean(parameters)


def _clean(params: Any) -> Any:
    if isinstance(params, dict):
        if any(isinstance(v, str) and "\x00" in v for v in params.values()):
            return {k: v.replace("\x00", "") if isinstance(v, str) else v
                    for k, v in params.items()}
        return params
    if isinstance(params, (list, tuple)):
        if any(isinstance(v, str) and "\x00" in v for v in params):
            return type(params)(v.replace("\x00", "") if isinstance(v, str) else v
                                for v in params)
    return params


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_MS}")
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()


def serialize_writes(conn: Connection) -> None:
    """Called first in every store write transaction: writers go one at a time across all
    processes, and each one's reads see what the previous one committed. Without it, two
    processes applying scans at once both delete-then-insert the same entry (or blob) and
    the second fails on the primary key; serialised, the second replaces the first's rows.
    Released at commit or rollback."""
    if conn.dialect.name == "postgresql":
        conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": WRITE_LOCK_KEY})
    elif conn.dialect.name == "sqlite":
        # pysqlite begins lazily, at the first write: a write that matches no row takes
        # the file's write lock now (waiting out busy_timeout), so the reads that follow
        # in this transaction already see every other writer's committed work
        conn.execute(text("UPDATE meta SET key = key WHERE 1 = 0"))


def insert_ignoring(conn: Connection, table: Table) -> Insert:
    """An INSERT that skips a row whose primary or unique key is already there (ON CONFLICT
    DO NOTHING, which both backends speak): one atomic statement, so it needs no read first
    and no serialize_writes. Its rowcount (a single row) says whether the row was new
    (SQLAlchemy keeps an INSERT's rowcount only when asked: preserve_rowcount)."""
    if conn.dialect.name == "postgresql":
        pg = postgresql.insert(table).on_conflict_do_nothing()
        return pg.execution_options(preserve_rowcount=True)
    lite = sqlite.insert(table).on_conflict_do_nothing()
    return lite.execution_options(preserve_rowcount=True)


def upsert(conn: Connection, table: Table, row: Mapping[str, Any], keys: Sequence[str]) -> None:
    """Insert `row`, or update the row with the same `keys` to it: one atomic statement."""
    changed = {name: value for name, value in row.items() if name not in keys}
    if conn.dialect.name == "postgresql":
        pg = postgresql.insert(table).values(**row)
        conn.execute(pg.on_conflict_do_update(index_elements=list(keys), set_=changed))
        return
    lite = sqlite.insert(table).values(**row)
    conn.execute(lite.on_conflict_do_update(index_elements=list(keys), set_=changed))


Claimed = TypeVar("Claimed", bound=Select[Any])


def claimable(conn: Connection, query: Claimed) -> Claimed:
    """The rows a worker is about to claim (mark as its own, in this same transaction), so
    two claimers never take the same row: on PostgreSQL they are locked FOR UPDATE SKIP
    LOCKED (a concurrent claimer passes over them instead of waiting, and the global write
    lock is not needed); on SQLite the write lock is taken first (serialize_writes), so the
    read already sees every earlier claim."""
    if conn.dialect.name == "postgresql":
        return query.with_for_update(skip_locked=True)
    serialize_writes(conn)
    return query


@contextmanager
def migration_connection(engine: Engine) -> Iterator[Connection]:
    """A connection inside one transaction that holds the store's schema lock until it
    commits: on PostgreSQL a transaction-level advisory lock, on SQLite `BEGIN EXCLUSIVE`.
    Every process that starts on the store goes through here, so N of them started at once
    on an empty or an older store migrate one after the other, and the later ones find the
    work done. Commits on success, rolls back (schema untouched) on error."""
    if engine.dialect.name == "sqlite":
        # pysqlite opens transactions itself (and not before DDL); take control so the
        # whole check-stamp-upgrade runs in one exclusive transaction
        exclusive = create_engine(engine.url, poolclass=NullPool,
                                  **engine_options(engine.url))
        event.listen(exclusive, "connect", _sqlite_pragmas)
        event.listen(exclusive, "connect", _sqlite_manual_transactions)
        event.listen(exclusive, "begin", _sqlite_begin_exclusive)
        try:
            with exclusive.begin() as conn:
                yield conn
        finally:
            exclusive.dispose()
        return
    with engine.begin() as conn:
        if engine.dialect.name == "postgresql":
            conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": MIGRATION_LOCK_KEY})
        yield conn


def _sqlite_manual_transactions(dbapi_connection: Any, _record: Any) -> None:
    dbapi_connection.isolation_level = None


def _sqlite_begin_exclusive(conn: Connection) -> None:
    conn.exec_driver_sql("BEGIN EXCLUSIVE")


class Listener:
    """Waits for a NOTIFY on one channel (PostgreSQL); on SQLite, which has none, just waits.
    The connection is its own, outside the pool, opened on first use and reopened after a
    failure (meanwhile callers poll at the pace of their timeout)."""

    def __init__(self, engine: Engine, channel: str) -> None:
        self.engine = engine
        self.channel = channel
        self._conn: Any = None
        self._closed = False

    def wait(self, timeout: float) -> None:
        if self.engine.dialect.name != "postgresql" or self._closed:
            time.sleep(timeout)
            return
        try:
            if self._conn is None:
                import psycopg  # the PostgreSQL driver (postgresql+psycopg://)

                url = self.engine.url.set(drivername="postgresql")
                conn = psycopg.connect(url.render_as_string(hide_password=False), autocommit=True)
                conn.execute(f"LISTEN {self.channel}")
                self._conn = conn
            for _ in self._conn.notifies(timeout=timeout, stop_after=1):
                break
        except Exception:  # a dropped connection: poll until a new one LISTENs
            if self._closed:
                return  # close() from another thread (shutdown) while this waited
            logger.warning("LISTEN %s failed; polling", self.channel, exc_info=True)
            self._release()
            time.sleep(timeout)

    def close(self) -> None:
        self._closed = True
        self._release()

    def _release(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            try:
                conn.close()
            except Exception:  # already broken
                pass
