"""LaTeX -> MathML with the TeX kept in `alttext` only (no `<annotation>`: a text-only reader
such as newsboat would show the formula twice, its MathML text run into the TeX). A formula
that fails to convert becomes escaped TeX in <code>; the output is sanitized like any other
HTML."""

from __future__ import annotations

import functools
import html

import latex2mathml.converter
import nh3

MATHML_TAGS = frozenset({
    "math", "semantics", "annotation", "mrow", "mi", "mn", "mo", "ms", "mtext", "mspace",
    "msub", "msup", "msubsup", "mfrac", "msqrt", "mroot", "mstyle", "merror", "mpadded",
    "mphantom", "mfenced", "menclose", "munder", "mover", "munderover", "mtable", "mtr", "mtd",
    "mlabeledtr", "mmultiscripts", "mprescripts", "none",
})
MATHML_ATTRIBUTES = frozenset({
    "display", "alttext", "encoding", "mathvariant", "stretchy", "fence", "separator", "lspace",
    "rspace", "accent", "accentunder", "columnalign", "rowalign", "columnspacing", "rowspacing",
    "columnlines", "rowlines", "frame", "displaystyle", "scriptlevel", "linethickness", "open",
    "close", "separators", "notation", "width", "height", "depth", "minsize", "maxsize",
    "movablelimits", "largeop", "symmetric", "form", "mathsize", "align", "rowspan", "columnspan",
})
MATH_CODE_STYLE = "font-family:monospace;background-color:#f6f8fa;padding:0 0.2em"


@functools.lru_cache(maxsize=8192)
def tex_to_mathml(tex: str, display: bool) -> str:
    """MathML for a formula (inline or display), or escaped TeX if it cannot be converted."""
    tex = tex.strip()
    try:
        converted = latex2mathml.converter.convert(tex, display="block" if display else "inline")
    except Exception:  # latex2mathml raises many unrelated types on bad input
        return _fallback(tex, display)
    open_end = converted.find(">")
    close_start = converted.rfind("</math>")
    if open_end < 0 or close_start < 0:
        return _fallback(tex, display)
    inner = converted[open_end + 1:close_start]
    escaped = html.escape(tex, quote=True)
    mathml = (f'<math display="{"block" if display else "inline"}" alttext="{escaped}">'
              f"<mrow>{inner}</mrow></math>")
    return _cleaner().clean(mathml)


@functools.cache
def _cleaner() -> nh3.Cleaner:
    """Built once (nh3.clean() would build its rule set again for every formula)."""
    return nh3.Cleaner(tags=set(MATHML_TAGS),
                       attributes={tag: set(MATHML_ATTRIBUTES) for tag in MATHML_TAGS})


def _fallback(tex: str, display: bool) -> str:
    code = f'<code class="math-tex" style="{MATH_CODE_STYLE}">{html.escape(tex)}</code>'
    return f"<p>{code}</p>" if display else code
