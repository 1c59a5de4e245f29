"""Markdown -> feed-ready HTML: inline-styled code, MathML, absolute URLs, wikilinks, and
nothing active getting through."""

from __future__ import annotations

import re

import pytest

from feedsvc.content import ContentSettings
from feedsvc.content import parse_note
from feedsvc.model import ParsedNote
from feedsvc.model import NoteFile
from feedsvc.scan.links import SiteIndex
from feedsvc.urls import Urls

BASE = "https://notes.example.org/"
ACTIVE_URL = re.compile(r"""(?:href|src|action|data)\s*=\s*["']?\s*(?:javascript|vbscript|data:text)""")


def render(body: str, rel_path: str = "Large Model/note.md", index: SiteIndex | None = None
           ) -> ParsedNote:
    if index is None:
        index = SiteIndex(Urls(BASE))
    note = NoteFile(source="notes", rel_path=rel_path, abs_path=str(rel_path), size=0, mtime_ns=0)
    return parse_note(note, body.encode(), ContentSettings(),
                      entry_url=BASE + "entries/large-model/note", resolver=index)


def test_code_is_highlighted_with_inline_styles() -> None:
    html = render("```python\nimport torch\nx = 1  # c\n```\n").html
    assert html.startswith("<pre style=")
    assert '<span style="color: #007020; font-weight: bold">import</span>' in html
    assert "class=" not in html


def test_unknown_language_is_plain_escaped_code() -> None:
    html = render("```nosuchlang\n<b>x</b>\n```\n").html
    assert "<code><span><span>&lt;b&gt;x&lt;/b&gt;</span></span></code>" in html
    assert "style=" not in html.split("<code>", 1)[1]


def test_math_becomes_mathml_with_tex_in_alttext() -> None:
    html = render("行内 $a^2$ 与\n\n$$\n\\frac{1}{2}\n$$\n\n\\(b\\)\n\n\\[c\\]\n").html
    assert html.count("<math") == 4
    assert '<math display="inline" alttext="a^2">' in html
    assert '<math display="block" alttext="\\frac{1}{2}">' in html
    # no <annotation>: a text-only reader would read the formula twice (issue 10 item 10)
    assert "<annotation" not in html and "<semantics" not in html
    assert "<mfrac>" in html


def test_bad_formula_shows_as_escaped_tex() -> None:
    html = render("$$\n\\frac{<x>}{\n$$\n").html
    assert '<code class="math-tex"' in html and "\\frac{&lt;x&gt;}{" in html
    assert "<math" not in html


def test_script_inside_math_text_is_dropped() -> None:
    html = render("$\\text{<script>alert(1)</script>}$").html
    assert "<script" not in html
    assert "alert(1)</" not in html


def test_relative_urls_become_absolute() -> None:
    html = render("![fig](<images/a b.png>) [doc](../NLP/paper.pdf) [top](/updates) [sec](#h)").html
    srcs = re.findall(r'(?:src|href)="([^"]+)"', html)
    assert srcs == [
        BASE + "media/notes/Large%20Model/images/a%20b.png",
        BASE + "media/notes/NLP/paper.pdf",
        BASE + "updates",
        BASE + "entries/large-model/note#h",
    ]


def test_links_escaping_the_source_are_dropped() -> None:
    html = render("[x](../../etc/passwd) ![y](../../../secret.png)").html
    assert "passwd" not in html and "secret" not in html


def test_wikilinks_and_embeds_resolve() -> None:
    index = SiteIndex(Urls(BASE))
    index.add_entry("notes", "NLP/Other Note.md", "nlp", "other-note")
    index.add_media("notes", ["Large Model/pics/fig.png"])
    parsed = render("见 [[Other Note]]、[[other note|别名]]、[[Missing]] 和 ![[fig.png]] "
                    "以及 [相对](../NLP/Other%20Note.md)", index=index)
    html = parsed.html
    assert html.count(f'href="{BASE}entries/nlp/other-note"') == 3
    assert ">别名</a>" in html
    assert "Missing" in html and "entries/missing" not in html
    assert f'<img src="{BASE}media/notes/Large%20Model/pics/fig.png" alt="fig.png">' in html
    assert set(parsed.links) == {"name:other note", "name:missing", "path:notes/NLP/Other Note.md"}


@pytest.mark.parametrize("vector", [
    "<script>alert(1)</script>",
    "<img src=x onerror=alert(1)>",
    "<a href=\"javascript:alert(1)\">x</a>",
    "<a href=\"JaVaScRiPt:alert(1)\">x</a>",
    "<a href=\"&#106;avascript:alert(1)\">x</a>",
    "<a href=\"vbscript:msgbox(1)\">x</a>",
    "<a href=\"data:text/html;base64,PHNjcmlwdD4=\">x</a>",
    "<svg onload=alert(1)><circle/></svg>",
    "<iframe src=\"https://evil.example\"></iframe>",
    "<object data=\"x.swf\"></object><embed src=x.swf>",
    "<style>body{background:url(javascript:alert(1))}</style>",
    "<div style=\"background:expression(alert(1))\">x</div>",
    "<math><mtext><table><mglyph><style><img src=x onerror=alert(1)>",
    "<form action=\"https://evil.example\"><input type=submit></form>",
    "[x](javascript:alert(1))",
    "![x](javascript:alert(1))",
    "<body onload=alert(1)>",
    "<meta http-equiv=\"refresh\" content=\"0;url=javascript:alert(1)\">",
    "<base href=\"javascript:/\">",
    "<a href=\"java\tscript:alert(1)\">x</a>",
])
def test_hostile_html_never_survives(vector: str) -> None:
    html = render(f"前文\n\n{vector}\n\n后文").html.lower()
    for bad in ("<script", "onerror", "onload", "<iframe", "<object", "<embed", "<style",
                "expression(", "<form", "<meta", "<base", "<svg"):
        assert bad not in html, (vector, html)
    # a refused link may stay as inert text; no attribute may carry an active URL
    assert not ACTIVE_URL.search(html), (vector, html)


def test_data_image_urls_are_allowed_only_for_images() -> None:
    png = "data:image/png;base64,iVBORw0KGgo="
    html = render(f"![a]({png}) [b]({png})").html
    assert html.count(png) == 1 and f'src="{png}"' in html


def test_deep_nesting_does_not_crash() -> None:
    for body in ("> " * 5000 + "deep", "- " * 5000 + "deep", "[" * 5000 + "x" + "]" * 5000,
                 "*" * 5000 + "x" + "*" * 5000):
        parsed = render(body)
        assert isinstance(parsed.html, str)


def test_tables_footnotes_tasks_strikethrough() -> None:
    html = render("| a | b |\n|---|---|\n| 1 | 2 |\n\n~~old~~ 注[^1]\n\n[^1]: 脚注\n\n"
                  "- [x] done\n- [ ] todo\n").html
    assert "<table>" in html and "<td>1</td>" in html
    assert "<s>old</s>" in html or "<del>old</del>" in html
    assert 'type="checkbox"' in html and "脚注" in html
