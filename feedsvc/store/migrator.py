"""Schema versions: run the Alembic migrations shipped in feedsvc/store/migrations/ under
the store's schema lock (see dialect.migration_connection). A store older than the code is
upgraded in place; a store written before schema versions existed (tables, no
alembic_version) is recognised and stamped 0001, then upgraded; a store at a revision this
code does not know raises StoreVersionError with nothing touched."""

from __future__ import annotations

import functools
import logging
import time
from dataclasses import dataclass
from pathlib import Path

from alembic import command
from alembic.config import Config as AlembicConfig
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection
from sqlalchemy import Engine
from sqlalchemy import inspect
from sqlalchemy.exc import OperationalError

from feedsvc.errors import StoreVersionError
from feedsvc.store.dialect import migration_connection

logger = logging.getLogger(__name__)
MIGRATIONS = Path(__file__).resolve().parent / "migrations"
VERSION_TABLE = "alembic_version"
LOCKED_RETRY_SECONDS = 30.0  # as long as a write waits for the lock (SQLITE_BUSY_MS)


@dataclass(frozen=True, slots=True)
class SchemaStatus:
    """Where a store's schema stands after migrate()."""

    revision: str
    head: str
    upgraded_from: str | None  # None: was already at head; "" : was empty; "legacy": pre-0001

    @property
    def is_head(self) -> bool:
        return self.revision == self.head

    def describe(self) -> str:
        return f"store at schema {self.revision}" + (" (head)" if self.is_head else "")


def alembic_config(conn: Connection | None = None) -> AlembicConfig:
    """An Alembic config built in code (no alembic.ini), bound to a connection."""
    cfg = AlembicConfig()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.attributes["connection"] = conn
    return cfg


@functools.cache
def _script() -> ScriptDirectory:
    return ScriptDirectory.from_config(alembic_config())


def head_revision() -> str:
    head = _script().get_current_head()
    assert head is not None, "no migrations shipped"
    return head


def known_revisions() -> set[str]:
    return {s.revision for s in _script().walk_revisions()}


def current_revision(conn: Connection) -> str | None:
    """The store's revision: None when it has no alembic_version (empty, or pre-0001)."""
    heads = MigrationContext.configure(conn).get_current_heads()
    return heads[0] if heads else None


def check_known(revision: str | None) -> None:
    if revision is not None and revision not in known_revisions():
        raise StoreVersionError(revision, head_revision())


def migrate(engine: Engine) -> SchemaStatus:
    """Bring the store to the newest revision, in one transaction under the schema lock.

    SQLite can answer "database is locked" at once, without waiting out busy_timeout (a
    connection opening while another process checkpoints the WAL or recovers its index):
    a serve started beside a busy one then exited at start-up. The transaction rolled back,
    so it is simply tried again, for up to LOCKED_RETRY_SECONDS."""
    deadline = time.monotonic() + LOCKED_RETRY_SECONDS
    pause = 0.05
    while True:
        try:
            return _migrate(engine)
        except OperationalError as e:
            if engine.dialect.name != "sqlite" or "database is locked" not in str(e) \
                    or time.monotonic() + pause > deadline:
                raise
            logger.warning("store busy while migrating; trying again in %.2f s", pause)
            time.sleep(pause)
            pause = min(pause * 2, 1.0)


def _migrate(engine: Engine) -> SchemaStatus:
    head = head_revision()
    with migration_connection(engine) as conn:
        revision = current_revision(conn)
        check_known(revision)
        if revision == head:
            return SchemaStatus(revision=head, head=head, upgraded_from=None)
        tables = set(inspect(conn).get_table_names())
        if revision is None and "entries" in tables:
            origin = "legacy"
            logger.info("store from before schema versions found: stamping 0001 and upgrading")
        else:
            origin = revision or ""
        command.upgrade(alembic_config(conn), "head")
        after = current_revision(conn) or ""
    logger.info("store migrated: from=%s to=%s", origin or "empty", after)
    return SchemaStatus(revision=after, head=head, upgraded_from=origin)


def status(engine: Engine) -> SchemaStatus | None:
    """The store's revision without changing anything (None: not versioned yet)."""
    with engine.connect() as conn:
        revision = current_revision(conn)
    if revision is None:
        return None
    return SchemaStatus(revision=revision, head=head_revision(), upgraded_from=None)
