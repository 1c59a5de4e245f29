"""How content asks about other notes and media without knowing the store: a resolver
protocol, the link keys recorded per note, and the rules for relative targets."""

from __future__ import annotations

import posixpath
from typing import Protocol
from urllib.parse import unquote




class LinkResolver(Protocol):
    """Answers content's questions about the other notes and media of the site."""

    def entry_url_for_path(self, source: str, rel_path: str) -> str | None: ...

    def entry_url_for_name(self, name: str) -> str | None: ...

    def media_path_for_name(self, source: str, name: str) -> str | None: ...

    def media_url(self, source: str, rel_path: str) -> str: ...


class NoLinks:
    """A resolver that knows no notes: links become text, media URLs stay under /media."""

    def __init__(self, media_base: str = "/media/") -> None:
        self.media_base = media_base

    def entry_url_for_path(self, source: str, rel_path: str) -> str | None:
        return None

    def entry_url_for_name(self, name: str) -> str | None:
        return None

    def media_path_for_name(self, source: str, name: str) -> str | None:
        return None

    def media_url(self, source: str, rel_path: str) -> str:
        return f"{self.media_base}{source}/{rel_path}"


def path_key(source: str, rel_path: str) -> str:
    return f"path:{source}/{rel_path}"


def name_key(name: str) -> str:
    return f"name:{name.strip().casefold()}"


def keys_for_note(source: str, rel_path: str, stem: str) -> tuple[str, ...]:
    """The link keys under which other notes may refer to this one."""
    no_ext = rel_path.rsplit(".", 1)[0]
    return (path_key(source, rel_path), name_key(stem), name_key(no_ext))


def resolve_relative(note_rel_path: str, target: str) -> str | None:
    """A target relative to the note's folder, as a path below the source root, or None if
    it climbs out of the source."""
    target = unquote(target.split("#", 1)[0].split("?", 1)[0])
    if not target:
        return None
    base = posixpath.dirname(note_rel_path)
    joined = posixpath.normpath(posixpath.join(base, target))
    if joined.startswith("../") or joined in ("..", ".") or joined.startswith("/"):
        return None
    return joined
