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

from feedsvc.content.links import keys_for_note
from feedsvc.model import EntryRef
from feedsvc.model import is_note_path
from feedsvc.scan.plan import SourcePlan
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


def _all(value: T | list[T] | None) -> list[T]:
    if value is None:
        return []
    return value if isinstance(value, list) else [value]


def _stem_key(rel_path: str) -> str:
    return _last(rel_path.rsplit(".", 1)[0]).casefold()


def _last(key: str) -> str:
    return key.rsplit("/", 1)[-1]


class SiteIndex:
    """A LinkResolver over a set of entries and media files (add and remove freely)."""

    def __init__(self, urls: Urls) -> None:
        self.urls = urls
        # one key per entry (its stem) and per media file (its name), casefolded; a look-up
        # by path goes through the last part of the path and filters the few found
        self._by_name: dict[str, Where | list[Where]] = {}
        self._media: dict[str, dict[str, str | list[str]]] = {}

    def add_entry(self, source: str, rel_path: str, category_slug: str, slug: str) -> None:
        where = (sys.intern(source), rel_path, sys.intern(category_slug), slug)
        _put(self._by_name, _stem_key(rel_path), where, 2)

    def remove_entry(self, source: str, rel_path: str) -> None:
        _drop(self._by_name, _stem_key(rel_path), (source, rel_path), 2)

    def add_media(self, source: str, rel_paths: Iterable[str]) -> None:
        names = self._media.setdefault(sys.intern(source), {})
        for rel in rel_paths:
            if not is_note_path(rel):
                _put(names, _last(rel).casefold(), rel, 0)

    def remove_media(self, source: str, rel_paths: Iterable[str]) -> None:
        names = self._media.get(source, {})
        for rel in rel_paths:
            _drop(names, _last(rel).casefold(), rel, 0)

    def media_of(self, source: str) -> set[str]:
        """Every media rel path known for a source."""
        out: set[str] = set()
        for value in self._media.get(source, {}).values():
            out.update(value if isinstance(value, list) else [value])
        return out

    def entry_url_for_path(self, source: str, rel_path: str) -> str | None:
        for where in _all(self._by_name.get(_stem_key(rel_path))):
            if where[0] == source and where[1] == rel_path:
                return self.urls.entry(where[2], where[3])
        return None

    def entry_url_for_name(self, name: str) -> str | None:
        """By stem (`[[note]]`) or by path from the source root without extension
        (`[[folder/note]]`), ignoring case."""
        key = name.strip().casefold()
        if key.endswith((".md", ".markdown")):
            key = key.rsplit(".", 1)[0]
        found = [w for w in _all(self._by_name.get(_last(key)))
                 if "/" not in key or w[1].rsplit(".", 1)[0].casefold() == key]
        where = min(found) if found else None
        return self.urls.entry(where[2], where[3]) if where else None

    def media_path_for_name(self, source: str, name: str) -> str | None:
        """By file name (`![[fig.png]]`) or by path from the source root, ignoring case."""
        key = name.strip().casefold()
        found = [rel for rel in _all(self._media.get(source, {}).get(_last(key)))
                 if "/" not in key or rel.casefold() == key]
        return min(found) if found else None

    def media_url(self, source: str, rel_path: str) -> str:
        return self.urls.media(source, rel_path)


def move_to_plan(index: SiteIndex, refs: dict[str, EntryRef], plans: list[SourcePlan]) -> SiteIndex:
    """The kept index, moved to where a scan's plan puts every entry (which is where the
    store will have them once the scan is applied)."""
    for plan in plans:
        for entry_id in plan.delete_entries:
            if entry_id in refs:
                index.remove_entry(refs[entry_id].source, refs[entry_id].rel_path)
        for planned in plan.entries:
            if planned.id in refs:
                index.remove_entry(refs[planned.id].source, refs[planned.id].rel_path)
    for plan in plans:
        for planned in plan.entries:
            index.add_entry(planned.note.source, planned.note.rel_path,
                            planned.category.slug, planned.slug)
    return index


def moved_link_keys(plans: list[SourcePlan], refs: dict[str, EntryRef]) -> set[str]:
    """The link keys of every note a scan adds, renames or removes: the notes that link by
    any of them are rendered again."""
    keys: set[str] = set()
    for plan in plans:
        for planned in plan.entries:
            if planned.kind in ("added", "renamed"):
                keys.update(keys_for_note(planned.note.source, planned.note.rel_path,
                                          planned.note.stem))
        for rel in plan.removed_paths:
            keys.update(keys_for_note(plan.source, rel, _stem(rel)))
    for entry_id in [i for plan in plans for i in plan.delete_entries]:
        ref = refs.get(entry_id)
        if ref is not None:
            keys.update(keys_for_note(ref.source, ref.rel_path, _stem(ref.rel_path)))
    return keys


def _stem(rel_path: str) -> str:
    return rel_path.rsplit("/", 1)[-1].rsplit(".", 1)[0]
