"""Slugs for categories and entries: lower case, runs of anything but letters and digits
become '-', Unicode letters kept ("3D Model" -> "3d-model", "行为识别" stays)."""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable

_NOT_WORD = re.compile(r"[\W_]+", re.UNICODE)
MAX_SLUG_CHARS = 120


def slugify(text: str, *, fallback: str = "untitled") -> str:
    text = unicodedata.normalize("NFC", text).lower()
    slug = _NOT_WORD.sub("-", text).strip("-")[:MAX_SLUG_CHARS].strip("-")
    return slug or fallback


def tag_slugs(tags: Iterable[str]) -> tuple[tuple[str, str], ...]:
    """(slug, name) per tag, by the category slug rule; tags whose slugs collide are one tag
    (the first name wins), and a tag with no letter or digit has no page."""
    out: dict[str, str] = {}
    for name in tags:
        slug = slugify(name, fallback="")
        if slug and slug not in out:
            out[slug] = name
    return tuple(out.items())
