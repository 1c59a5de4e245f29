"""Queries over the notes table (what each scan saw of each file), whole or for a scope:
the paths a targeted scan names and what lies below them."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import ColumnElement
from sqlalchemy import Connection
from sqlalchemy import and_
from sqlalchemy import false
from sqlalchemy import or_
from sqlalchemy import select

from feedsvc.model import StoredNote
from feedsvc.store.schema import notes


def in_scope(rel_path: str, scope: Sequence[str]) -> bool:
    """Whether a rel path is one of the scope's paths or lies below one of them."""
    return any(rel_path == p or rel_path.startswith(p + "/") for p in scope)


def scope_clause(conn: Connection, column: ColumnElement[str],
                 scope: Sequence[str]) -> ColumnElement[bool]:
    """SQL for in_scope(): each path itself or below it, on the (source, rel_path) index.
    SQLite compares BINARY, so "p/" <= x < "p0" is exactly "below p"; PostgreSQL's
    collation may not sort by code point, so it gets LIKE 'p/%' (escaped). Callers filter
    with in_scope() as well."""
    parts: list[ColumnElement[bool]] = []
    for path in scope:
        parts.append(column == path)
        if conn.dialect.name == "sqlite":
            parts.append(and_(column >= path + "/", column < path + "0"))
        else:
            parts.append(column.startswith(path + "/", autoescape=True))
    return or_(*parts) if parts else false()


def note_stats(conn: Connection, source: str,
               scope: Sequence[str] | None) -> dict[str, tuple[int, int]]:
    query = select(notes.c.rel_path, notes.c.size, notes.c.mtime_ns).where(notes.c.source == source)
    if scope is not None:
        query = query.where(scope_clause(conn, notes.c.rel_path, scope))
    return {path: (size, mtime) for path, size, mtime in conn.execute(query)
            if scope is None or in_scope(path, scope)}


def load_notes(conn: Connection, source: str,
               scope: Sequence[str] | None) -> dict[str, StoredNote]:
    query = select(notes).where(notes.c.source == source)
    if scope is not None:
        query = query.where(scope_clause(conn, notes.c.rel_path, scope))
    return {r.rel_path: StoredNote(source=r.source, rel_path=r.rel_path, size=r.size,
                                   mtime_ns=r.mtime_ns, file_hash=r.file_hash,
                                   problem=r.problem, entry_id=r.entry_id)
            for r in conn.execute(query) if scope is None or in_scope(r.rel_path, scope)}
