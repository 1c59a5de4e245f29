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

CHUNK = 400  # files per bulk write (and per IN list)


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


def old_hash(conn: Connection, source: str, rel_path: str) -> str | None:
    value: str | None = conn.execute(select(media.c.hash).where(
        media.c.source == source, media.c.rel_path == rel_path)).scalar()
    return value


def put_many(conn: Connection, items: Sequence[tuple[MediaInfo, bytes]]) -> dict[str, str]:
    """Record files of one source (each blob too unless already there), a few statements
    per chunk rather than several per file. Returns rel_path -> the hash each replaced."""
    replaced: dict[str, str] = {}
    if not items:
        return replaced
    source = items[0][0].source
    for start in range(0, len(items), CHUNK):
        chunk = items[start:start + CHUNK]
        digests = sorted({info.hash for info, _ in chunk})
        known = set(conn.execute(select(media_blobs.c.hash)
                                 .where(media_blobs.c.hash.in_(digests))).scalars())
        blobs: dict[str, dict[str, object]] = {}
        for info, data in chunk:
            if info.hash not in known and info.hash not in blobs:
                blobs[info.hash] = {"hash": info.hash, "data": data, "size": info.size}
        if blobs:
            conn.execute(insert(media_blobs), list(blobs.values()))
        paths = [info.rel_path for info, _ in chunk]
        where = (media.c.source == source, media.c.rel_path.in_(paths))
        replaced.update((path, digest) for path, digest in
                        conn.execute(select(media.c.rel_path, media.c.hash).where(*where)))
        conn.execute(delete(media).where(*where))
        conn.execute(insert(media), [
            {"source": info.source, "rel_path": info.rel_path, "hash": info.hash,
             "size": info.size, "mtime_ns": info.mtime_ns, "media_type": info.media_type,
             "last_modified": info.last_modified} for info, _ in chunk])
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
    """One source's media changes inside one store transaction (Store.media_batch). Puts
    are buffered (up to FLUSH_FILES files or FLUSH_BYTES bytes) and written in bulk."""

    FLUSH_FILES = 400
    FLUSH_BYTES = 8 * 1024 * 1024

    def __init__(self, conn: Connection, source: str) -> None:
        self._conn = conn
        self.source = source
        self._released: set[str] = set()
        self._pending: dict[str, tuple[MediaInfo, bytes]] = {}
        self._pending_bytes = 0

    def put(self, info: MediaInfo, data: bytes) -> None:
        if info.source != self.source:
            raise ValueError(f"media of source {info.source!r} in the batch of {self.source!r}")
        self._pending[info.rel_path] = (info, data)
        self._pending_bytes += len(data)
        if len(self._pending) >= self.FLUSH_FILES or self._pending_bytes >= self.FLUSH_BYTES:
            self.flush()

    def remove(self, rel_path: str) -> None:
        self.flush()
        replaced = remove(self._conn, self.source, rel_path)
        if replaced is not None:
            self._released.add(replaced)

    def flush(self) -> None:
        items = list(self._pending.values())
        self._pending.clear()
        self._pending_bytes = 0
        new_hashes = {info.rel_path: info.hash for info, _ in items}
        for rel_path, old in put_many(self._conn, items).items():
            if old != new_hashes[rel_path]:
                self._released.add(old)

    def finish(self) -> int:
        """Write what is buffered, then drop the blobs this batch left unnamed; the number
        dropped."""
        self.flush()
        return drop_unused_blobs(self._conn, self._released)
