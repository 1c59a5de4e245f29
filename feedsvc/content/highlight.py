"""Code blocks -> HTML with inline styles (feed readers drop stylesheets and classes).

Every line of a block is one `<span>` holding its tokens and its line end, and every token is
a `<span>` of its own, plain ones too: newsboat 2.21 joins lines whose line ends sit outside
any span, and the W3C validator flags styles such as `border-radius` (none are used)."""

from __future__ import annotations

import functools
import html
from collections.abc import Iterable

from pygments.lexer import Lexer
from pygments.lexers import get_lexer_by_name
from pygments.style import StyleMeta
from pygments.styles import get_style_by_name
from pygments.token import Token
from pygments.token import _TokenType
from pygments.util import ClassNotFound

STYLE: StyleMeta = get_style_by_name("friendly")
PRE_STYLE = ("background-color:#f6f8fa;padding:0.8em 1em;overflow:auto;line-height:1.45;"
             "font-size:0.9em")


@functools.lru_cache(maxsize=256)
def _lexer(language: str) -> Lexer | None:
    try:
        return get_lexer_by_name(language, stripnl=False, ensurenl=False)
    except ClassNotFound:
        return None


@functools.lru_cache(maxsize=1024)
def token_style(ttype: _TokenType) -> str:
    """The inline CSS of a token type (as Pygments' HtmlFormatter(noclasses=True) writes it)."""
    while not STYLE.styles_token(ttype) and ttype.parent is not None:
        ttype = ttype.parent  # a lexer's own token type (YAML's Scalar.Plain): its parent's
    info = STYLE.style_for_token(ttype)
    parts = []
    if info["color"]:
        parts.append(f"color: #{info['color']}")
    if info["bold"]:
        parts.append("font-weight: bold")
    if info["italic"]:
        parts.append("font-style: italic")
    if info["underline"]:
        parts.append("text-decoration: underline")
    if info["bgcolor"]:
        parts.append(f"background-color: #{info['bgcolor']}")
    return "; ".join(parts)


def format_tokens(tokens: Iterable[tuple[_TokenType, str]]) -> str:
    """Tokens -> lines, each `<span>…\\n</span>`, each token `<span [style]>…</span>`."""
    lines: list[list[str]] = [[]]
    for ttype, value in tokens:
        style = token_style(ttype)
        opening = f'<span style="{style}">' if style else "<span>"
        for i, part in enumerate(value.split("\n")):
            if i:
                lines.append([])
            if part:
                lines[-1].append(f"{opening}{html.escape(part, quote=False)}</span>")
    while len(lines) > 1 and not lines[-1]:
        lines.pop()  # the block's trailing line ends
    out = [f"<span>{''.join(parts)}\n</span>" for parts in lines[:-1]]
    out.append(f"<span>{''.join(lines[-1])}</span>")
    return "".join(out)


CACHE_MAX_CHARS = 16 * 1024  # larger blocks are highlighted every time, never kept


def highlight_code(code: str, language: str) -> str:
    """A <pre><code> block; spans carry inline colours when the language is known. The same
    snippet in many notes (boilerplate, a note copied) is highlighted once per process."""
    if len(code) <= CACHE_MAX_CHARS:
        return _highlight_cached(code, language)
    return _highlight(code, language)


@functools.lru_cache(maxsize=4096)  # at most 4096 x 16 KiB of code (and its HTML)
def _highlight_cached(code: str, language: str) -> str:
    return _highlight(code, language)


def _highlight(code: str, language: str) -> str:
    language = language.strip().split()[0].lower() if language.strip() else ""
    lexer = _lexer(language) if language else None
    tokens = lexer.get_tokens(code) if lexer is not None else [(Token.Text, code)]
    lang_attr = f' data-lang="{html.escape(language)}"' if language else ""
    return f'<pre style="{PRE_STYLE}"{lang_attr}><code>{format_tokens(tokens)}</code></pre>\n'
