"""Answers content's link questions for one scan: where every entry lives and which media
files exist, from the store's entries plus this scan's plan."""

from __future__ import annotations

from collections.abc import Iterable

from feedsvc.model import is_note_path
from feedsvc.urls import Urls


class SiteIndex:
    """A LinkResolver over a fixed set of entries and media files."""

    def __init__(self, urls: Urls) -> None:
        self.urls = urls
        self._by_path: dict[tuple[str, str], tuple[str, str]] = {}
        self._by_name: dict[str, tuple[str, str]] = {}
        self._media: dict[str, dict[str, str]] = {}

    def add_entry(self, source: str, rel_path: str, category_slug: str, slug: str) -> None:
        where = (category_slug, slug)
        self._by_path[(source, rel_path)] = where
        no_ext = rel_path.rsplit(".", 1)[0]
        stem = no_ext.rsplit("/", 1)[-1]
        self._by_name.setdefault(stem.casefold(), where)
        self._by_name[no_ext.casefold()] = where

    def add_media(self, source: str, rel_paths: Iterable[str]) -> None:
        names = self._media.setdefault(source, {})
        for rel in rel_paths:
            if not is_note_path(rel):
                names.setdefault(rel.rsplit("/", 1)[-1].casefold(), rel)
                names.setdefault(rel.casefold(), rel)

    def entry_url_for_path(self, source: str, rel_path: str) -> str | None:
        where = self._by_path.get((source, rel_path))
        return self.urls.entry(*where) if where else None

    def entry_url_for_name(self, name: str) -> str | None:
        key = name.strip().casefold()
        if key.endswith((".md", ".markdown")):
            key = key.rsplit(".", 1)[0]
        where = self._by_name.get(key)
        return self.urls.entry(*where) if where else None

    def media_path_for_name(self, source: str, name: str) -> str | None:
        return self._media.get(source, {}).get(name.strip().casefold())

    def media_url(self, source: str, rel_path: str) -> str:
        return self.urls.media(source, rel_path)
