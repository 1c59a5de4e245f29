"""Slugs for categories and entries: lower case, runs of anything but letters and digits
become '-', Unicode letters kept ("3D Model" -> "3d-model", "行为识别" stays)."""

from __future__ import annotations

import re
import unicodedata

_NOT_WORD = re.compile(r"[\W_]+", re.UNICODE)
MAX_SLUG_CHARS = 120


def slugify(text: str, *, fallback: str = "untitled") -> str:
    text = unicodedata.normalize("NFC", text).lower()
    slug = _NOT_WORD.sub("-", text).strip("-")[:MAX_SLUG_CHARS].strip("-")
    return slug or fallback
