"""Media queries: files of a source copied into the store, content-addressed. A blob is
written once per distinct SHA-256 and dropped when no media row names it any more."""

from __future__ import annotations

from collections.abc import Iterable
from collections.abc import Sequence

from sqlalchemy import Connection
from sqlalchemy import delete
from sqlalchemy import insert
from sqlalchemy import select

from feedsvc.model import MediaInfo
from feedsvc.store.notes import in_scope
from feedsvc.store.notes import scope_clause
from feedsvc.store.schema import media
from feedsvc.store.schema import media_blobs


def media_stats(conn: Connection, source: str,
                scope: Sequence[str] | None = None) -> dict[str, tuple[int, int]]:
    query = select(media.c.rel_path, media.c.size, media.c.mtime_ns).where(media.c.source == source)
    if scope is not None:
        query = query.where(scope_clause(conn, media.c.rel_path, scope))
    return {path: (size, mtime) for path, size, mtime in conn.execute(query)
            if scope is None or in_scope(path, scope)}


def media_info(conn: Connection, source: str, rel_path: str) -> MediaInfo | None:
    row = conn.execute(select(media).where(media.c.source == source,
                                           media.c.rel_path == rel_path)).first()
    if row is None:
        return None
    return MediaInfo(source=row.source, rel_path=row.rel_path, hash=row.hash, size=row.size,
                     mtime_ns=row.mtime_ns, media_type=row.media_type,
                     last_modified=row.last_modified)


def blob(conn: Connection, digest: str) -> bytes | None:
    data = conn.execute(select(media_blobs.c.data).where(media_blobs.c.hash == digest)).scalar()
    return bytes(data) if data is not None else None


def has_blob(conn: Connection, digest: str) -> bool:
    found = conn.execute(select(media_blobs.c.hash).where(media_blobs.c.hash == digest)).first()
    return found is not None


def old_hash(conn: Connection, source: str, rel_path: str) -> str | None:
    value: str | None = conn.execute(select(media.c.hash).where(
        media.c.source == source, media.c.rel_path == rel_path)).scalar()
    return value


def put(conn: Connection, info: MediaInfo, data: bytes | None) -> str | None:
    """Record one file (its blob too unless already there; data may be None only then).
    Returns the hash it replaced, if any."""
    if not has_blob(conn, info.hash):
        if data is None:
            raise ValueError(f"blob {info.hash} is not in the store and no bytes were given")
        conn.execute(insert(media_blobs).values(hash=info.hash, data=data, size=info.size))
    replaced = remove(conn, info.source, info.rel_path)
    conn.execute(insert(media).values(
        source=info.source, rel_path=info.rel_path, hash=info.hash, size=info.size,
        mtime_ns=info.mtime_ns, media_type=info.media_type, last_modified=info.last_modified))
    return replaced


def remove(conn: Connection, source: str, rel_path: str) -> str | None:
    """Forget one file; returns the hash it named."""
    replaced = old_hash(conn, source, rel_path)
    if replaced is not None:
        conn.execute(delete(media).where(media.c.source == source, media.c.rel_path == rel_path))
    return replaced


def drop_unused_blobs(conn: Connection, candidates: Iterable[str]) -> int:
    dropped = 0
    for digest in set(candidates):
        if conn.execute(select(media.c.hash).where(media.c.hash == digest).limit(1)).first():
            continue
        dropped += conn.execute(delete(media_blobs).where(media_blobs.c.hash == digest)).rowcount
    return dropped


class MediaBatch:
    """One source's media changes inside one store transaction (Store.media_batch)."""

    def __init__(self, conn: Connection, source: str) -> None:
        self._conn = conn
        self.source = source
        self._released: set[str] = set()

    def has_blob(self, digest: str) -> bool:
        return has_blob(self._conn, digest)

    def put(self, info: MediaInfo, data: bytes | None) -> None:
        replaced = put(self._conn, info, data)
        if replaced is not None and replaced != info.hash:
            self._released.add(replaced)

    def remove(self, rel_path: str) -> None:
        replaced = remove(self._conn, self.source, rel_path)
        if replaced is not None:
            self._released.add(replaced)

    def finish(self) -> int:
        """Drop the blobs this batch left unnamed; the number dropped."""
        return drop_unused_blobs(self._conn, self._released)
