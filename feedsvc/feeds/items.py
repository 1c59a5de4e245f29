"""The JSON Feed items of entries kept between renders, by entry id and digest (the hash of
everything a feed shows of the entry, entries.digest): a feed re-rendered after a one-note
edit encodes one item and reuses the rest, and reads only that one row's html."""

from __future__ import annotations

from feedsvc.lru import ByteLRU
from feedsvc.model import Category

ITEM_CACHE_BYTES = 4 * 1024 * 1024  # per process: the items of a few hundred entries


class ItemCache:
    """Encoded items by (entry id, digest), least recently used dropped beyond `max_bytes`.
    Not thread-safe: the publisher uses it under its lock."""

    def __init__(self, max_bytes: int = ITEM_CACHE_BYTES) -> None:
        self._items: ByteLRU[tuple[str, str], tuple[bytes, Category]] = ByteLRU(
            max_bytes, lambda kept: len(kept[0]))

    def has(self, entry_id: str, digest: str) -> bool:
        return (entry_id, digest) in self._items

    def get(self, entry_id: str, digest: str) -> tuple[bytes, Category] | None:
        return self._items.get((entry_id, digest))

    def put(self, entry_id: str, digest: str, item: bytes, category: Category) -> None:
        self._items.put((entry_id, digest), (item, category))

    @property
    def size(self) -> int:
        return self._items.bytes

    @property
    def max_bytes(self) -> int:
        return self._items.max_bytes

    @max_bytes.setter
    def max_bytes(self, value: int) -> None:
        self._items.max_bytes = value

    def __len__(self) -> int:
        return len(self._items)
