"""The plain-text excerpt shown by the digest and feed summaries (DESIGN.md "Excerpts").

Blocks (headings, paragraphs, list items, table cells) are joined by single spaces; code
blocks, display math and inline math become placeholders; images vanish, link text stays; raw
HTML tags are stripped; ordered list items keep their rendered number. The cut counts code
points and backs off to a boundary so it never splits a placeholder or a grapheme cluster."""

from __future__ import annotations

import functools
import html
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import regex
from markdown_it.token import Token

ELLIPSIS = "..."
_TAG = re.compile(r"<[^>]*>")
_SPACE = re.compile(r"\s+")


@dataclass(frozen=True, slots=True)
class ExcerptSettings:
    length: int = 350
    code: str = "[代码]"
    display_math: str = "[公式]"
    inline_math: str = "[Math]"


def plain_blocks(tokens: Sequence[Token], settings: ExcerptSettings, *,
                 skip_opening_h1: bool) -> list[str]:
    """The text of each block element, in order."""
    blocks: list[str] = []
    pending_number: list[str] = []  # "N. " waiting for the first block inside an <li>
    counters: list[int | None] = []  # per open list: next number, None for bullets
    start = 0
    if skip_opening_h1 and len(tokens) >= 3 and tokens[0].type == "heading_open" \
            and tokens[0].tag == "h1":
        start = 3

    def add(text: str) -> None:
        if pending_number:
            text = pending_number.pop() + text
        if text.strip():
            blocks.append(text)

    for token in tokens[start:]:
        kind = token.type
        if kind == "ordered_list_open":
            counters.append(int(token.attrGet("start") or 1))
        elif kind == "bullet_list_open":
            counters.append(None)
        elif kind in ("ordered_list_close", "bullet_list_close"):
            counters.pop()
        elif kind == "list_item_open":
            pending_number.clear()
            number = counters[-1] if counters else None
            if number is not None:
                pending_number.append(f"{number}. ")
                counters[-1] = number + 1
        elif kind == "inline":
            add(inline_text(token.children or [], settings))
        elif kind in ("fence", "code_block"):
            add(settings.code)
        elif kind in ("math_block", "math_block_eqno", "amsmath"):
            add(settings.display_math)
        elif kind == "html_block":
            add(html.unescape(_TAG.sub(" ", token.content)))
    return blocks


def inline_text(children: Sequence[Token], settings: ExcerptSettings) -> str:
    parts: list[str] = []
    for child in children:
        kind = child.type
        if kind in ("text", "code_inline"):
            parts.append(child.content)
        elif kind in ("softbreak", "hardbreak"):
            parts.append(" ")
        elif kind in ("math_inline", "math_inline_double", "math_single"):
            parts.append(settings.inline_math)
        elif kind == "wikilink":
            if not child.meta.get("embed"):
                parts.append(child.content)
        elif kind == "html_inline":
            parts.append("")
        # images, footnote refs and formatting marks contribute nothing
    return "".join(parts)


def make_excerpt(tokens: Sequence[Token], settings: ExcerptSettings, *,
                 skip_opening_h1: bool = True) -> str:
    text = _SPACE.sub(" ", " ".join(plain_blocks(tokens, settings,
                                                 skip_opening_h1=skip_opening_h1))).strip()
    return cut_text(text, settings)


@functools.cache
def _atoms(*placeholders: str) -> Any:
    """What the cut never splits: a placeholder (longest first) or one grapheme cluster."""
    ordered = sorted(set(placeholders), key=len, reverse=True)
    return regex.compile("|".join(regex.escape(p) for p in ordered if p) + r"|\X")


def cut_text(text: str, settings: ExcerptSettings) -> str:
    """Cut at settings.length code points, at a placeholder/grapheme boundary, plus '...'."""
    if len(text) <= settings.length:
        return text
    atoms = _atoms(settings.code, settings.display_math, settings.inline_math)
    end = 0
    for match in atoms.finditer(text, 0, settings.length + 64):
        if match.end() > settings.length:
            break
        end = match.end()
    return text[:end] + ELLIPSIS
