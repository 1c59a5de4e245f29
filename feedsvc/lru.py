"""The one bounded cache every per-process cache uses (served feeds, prepared answers, JSON
Feed items, media blobs): a mapping bounded by the bytes of its values, least recently used
dropped first."""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable
from collections.abc import Hashable
from typing import Generic
from typing import TypeVar

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")


class ByteLRU(Generic[K, V]):
    """Values kept while their sizes add up to at most `max_bytes` (the newest one always
    stays, however big). Writers serialise on a lock of their own; get() may run beside
    them unlocked (each OrderedDict operation is atomic under the GIL), so a hot path can
    read without taking the writers' lock."""

    def __init__(self, max_bytes: int, size: Callable[[V], int]) -> None:
        self.max_bytes = max_bytes
        self._size = size
        self._data: OrderedDict[K, V] = OrderedDict()
        self._bytes = 0

    def get(self, key: K) -> V | None:
        """The value, marked as just used; None when absent."""
        value = self._data.get(key)
        if value is not None:
            try:
                self._data.move_to_end(key)
            except KeyError:
                pass  # dropped by a writer meanwhile: still a valid answer for this read
        return value

    def __contains__(self, key: object) -> bool:
        return key in self._data

    def __len__(self) -> int:
        return len(self._data)

    def values(self) -> list[V]:
        return list(self._data.values())

    @property
    def bytes(self) -> int:
        return self._bytes

    def put(self, key: K, value: V) -> None:
        """Keep `value` as the most recently used, then drop the least recently used others
        beyond max_bytes."""
        old = self._data.pop(key, None)
        if old is not None:
            self._bytes -= self._size(old)
        self._data[key] = value
        self._bytes += self._size(value)
        while self._bytes > self.max_bytes and len(self._data) > 1:
            _, dropped = self._data.popitem(last=False)
            self._bytes -= self._size(dropped)

    def pop(self, key: K) -> V | None:
        value = self._data.pop(key, None)
        if value is not None:
            self._bytes -= self._size(value)
        return value

    def clear(self) -> None:
        self._data.clear()
        self._bytes = 0
