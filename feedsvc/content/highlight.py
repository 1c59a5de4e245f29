"""Code blocks -> HTML with inline styles (feed readers drop stylesheets and classes)."""

from __future__ import annotations

import functools
import html

from pygments import highlight
from pygments.formatters import HtmlFormatter
from pygments.lexer import Lexer
from pygments.lexers import get_lexer_by_name
from pygments.util import ClassNotFound

_FORMATTER = HtmlFormatter(noclasses=True, nowrap=True, style="friendly")
PRE_STYLE = ("background-color:#f6f8fa;padding:0.8em 1em;overflow:auto;line-height:1.45;"
             "border-radius:4px;font-size:0.9em")


@functools.lru_cache(maxsize=256)
def _lexer(language: str) -> Lexer | None:
    try:
        return get_lexer_by_name(language, stripnl=False, ensurenl=False)
    except ClassNotFound:
        return None


def highlight_code(code: str, language: str) -> str:
    """A <pre><code> block; spans carry inline colours when the language is known."""
    language = language.strip().split()[0].lower() if language.strip() else ""
    lexer = _lexer(language) if language else None
    body = highlight(code, lexer, _FORMATTER) if lexer is not None else html.escape(code)
    lang_attr = f' data-lang="{html.escape(language)}"' if language else ""
    return f'<pre style="{PRE_STYLE}"{lang_attr}><code>{body.rstrip(chr(10))}</code></pre>\n'
