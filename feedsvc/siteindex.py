"""Answers content's link questions for one scan: where every entry lives and which media
files exist, from the store's entries plus this scan's plan.

A name shared by several entries (two `index.md` in different folders, or in different
sources) or media files resolves to the first of them by (source, rel_path), whatever order
they were added or removed in: a scan that looks at one note and one that walks everything
resolve every link the same way. The index can be kept across scans (SiteCache) and
updated entry by entry (sitecache.py)."""

from __future__ import annotations

import sys
from collections.abc import Iterable
from typing import TypeVar

from feedsvc.model import is_note_path
from feedsvc.urls import Urls

Where = tuple[str, str, str, str]  # (source, rel_path, category slug, slug)
T = TypeVar("T", Where, str)


def _put(table: dict[str, T | list[T]], key: str, value: T, same: int) -> None:
    """Add a candidate under key, replacing one with the same first `same` fields
    (same=0: the whole value)."""
    current = table.get(key)
    if current is None:
        table[key] = value
        return
    items = current if isinstance(current, list) else [current]
    ident = value[:same] if same else value
    kept = [c for c in items if (c[:same] if same else c) != ident]
    kept.append(value)
    table[key] = kept[0] if len(kept) == 1 else kept


def _drop(table: dict[str, T | list[T]], key: str, ident: object, same: int) -> None:
    current = table.get(key)
    if current is None:
        return
    items = current if isinstance(current, list) else [current]
    kept = [c for c in items if (c[:same] if same else c) != ident]
    if not kept:
        del table[key]
    else:
        table[key] = kept[0] if len(kept) == 1 else kept


def _first(value: T | list[T] | None) -> T | None:
    if isinstance(value, list):
        return min(value)
    return value


def _name_keys(rel_path: str) -> tuple[str, str]:
    no_ext = rel_path.rsplit(".", 1)[0]
    return no_ext.rsplit("/", 1)[-1].casefold(), no_ext.casefold()


def _media_keys(rel_path: str) -> tuple[str, str]:
    return rel_path.rsplit("/", 1)[-1].casefold(), rel_path.casefold()


class SiteIndex:
    """A LinkResolver over a set of entries and media files (add and remove freely)."""

    def __init__(self, urls: Urls) -> None:
        self.urls = urls
        self._by_name: dict[str, Where | list[Where]] = {}  # also finds paths: see below
        self._media: dict[str, dict[str, str | list[str]]] = {}

    def add_entry(self, source: str, rel_path: str, category_slug: str, slug: str) -> None:
        where = (sys.intern(source), rel_path, sys.intern(category_slug), slug)
        for key in set(_name_keys(rel_path)):
            _put(self._by_name, key, where, 2)

    def remove_entry(self, source: str, rel_path: str) -> None:
        for key in set(_name_keys(rel_path)):
            _drop(self._by_name, key, (source, rel_path), 2)

    def add_media(self, source: str, rel_paths: Iterable[str]) -> None:
        names = self._media.setdefault(sys.intern(source), {})
        for rel in rel_paths:
            if not is_note_path(rel):
                for key in set(_media_keys(rel)):
                    _put(names, key, rel, 0)

    def remove_media(self, source: str, rel_paths: Iterable[str]) -> None:
        names = self._media.get(source, {})
        for rel in rel_paths:
            for key in set(_media_keys(rel)):
                _drop(names, key, rel, 0)

    def media_of(self, source: str) -> set[str]:
        """Every media rel path known for a source."""
        out: set[str] = set()
        for value in self._media.get(source, {}).values():
            out.update(value if isinstance(value, list) else [value])
        return out

    def entry_url_for_path(self, source: str, rel_path: str) -> str | None:
        # the rel path without extension, casefolded, is one of the entry's name keys
        value = self._by_name.get(_name_keys(rel_path)[1])
        for where in value if isinstance(value, list) else [value] if value else []:
            if where[0] == source and where[1] == rel_path:
                return self.urls.entry(where[2], where[3])
        return None

    def entry_url_for_name(self, name: str) -> str | None:
        key = name.strip().casefold()
        if key.endswith((".md", ".markdown")):
            key = key.rsplit(".", 1)[0]
        where = _first(self._by_name.get(key))
        return self.urls.entry(where[2], where[3]) if where else None

    def media_path_for_name(self, source: str, name: str) -> str | None:
        return _first(self._media.get(source, {}).get(name.strip().casefold()))

    def media_url(self, source: str, rel_path: str) -> str:
        return self.urls.media(source, rel_path)
