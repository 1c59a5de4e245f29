"""The JSON Feed items of entries kept between renders, by entry id and digest (the hash of
everything a feed shows of the entry, entries.digest): a feed re-rendered after a one-note
edit encodes one item and reuses the rest, and reads only that one row's html."""

from __future__ import annotations

from collections import OrderedDict

from feedsvc.model import Category

ITEM_CACHE_BYTES = 4 * 1024 * 1024  # per process: the items of a few hundred entries


class ItemCache:
    """Least recently used items dropped beyond `max_bytes`. Not thread-safe: the publisher
    uses it under its lock."""

    def __init__(self, max_bytes: int = ITEM_CACHE_BYTES) -> None:
        self.max_bytes = max_bytes
        self._items: OrderedDict[tuple[str, str], tuple[bytes, Category]] = OrderedDict()
        self._bytes = 0

    def has(self, entry_id: str, digest: str) -> bool:
        return (entry_id, digest) in self._items

    def get(self, entry_id: str, digest: str) -> tuple[bytes, Category] | None:
        key = (entry_id, digest)
        found = self._items.get(key)
        if found is not None:
            self._items.move_to_end(key)
        return found

    def put(self, entry_id: str, digest: str, item: bytes, category: Category) -> None:
        key = (entry_id, digest)
        old = self._items.pop(key, None)
        if old is not None:
            self._bytes -= len(old[0])
        self._items[key] = (item, category)
        self._bytes += len(item)
        while self._bytes > self.max_bytes and len(self._items) > 1:
            _, (dropped, _) = self._items.popitem(last=False)
            self._bytes -= len(dropped)

    @property
    def size(self) -> int:
        return self._bytes
