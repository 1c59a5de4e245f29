"""Excerpts, character for character (DESIGN.md "Excerpts")."""

from __future__ import annotations

from pathlib import Path

import pytest

from feedsvc.content import ContentSettings
from feedsvc.content import read_note
from feedsvc.content import render_note
from feedsvc.content.excerpt import ExcerptSettings
from feedsvc.content.links import NoLinks
from feedsvc.model import NoteFile

from conftest import DATA

EXAMPLES = sorted((DATA / "excerpts").glob("*.md"))


def excerpt_of(text: str, settings: ContentSettings | None = None, name: str = "n.md") -> str:
    settings = settings or ContentSettings()
    note = NoteFile(source="s", rel_path=name, abs_path=str(name), size=0, mtime_ns=0)
    parsed = render_note(note, read_note(note, text.encode(), settings),
                         entry_url="http://x/entries/c/n", resolver=NoLinks(), settings=settings)
    return parsed.excerpt


@pytest.mark.parametrize("note", EXAMPLES, ids=[p.stem for p in EXAMPLES])
def test_bundled_examples_match_exactly(note: Path) -> None:
    expected = note.with_name(note.stem + ".expected.txt").read_text(encoding="utf-8")
    assert excerpt_of(note.read_text(encoding="utf-8"), name=note.name) == expected


def test_cut_counts_code_points_and_appends_ellipsis() -> None:
    body = "汉" * 400
    assert excerpt_of(body) == "汉" * 350 + "..."


def test_text_of_exactly_the_length_gets_no_ellipsis() -> None:
    assert excerpt_of("a" * 350) == "a" * 350


def test_cut_never_splits_a_placeholder() -> None:
    body = "x" * 347 + " $a$ tail"  # [Math] would straddle position 350
    out = excerpt_of(body)
    assert out == "x" * 347 + " ..."


def test_cut_never_splits_a_grapheme_cluster() -> None:
    family = "👨\u200d👩\u200d👧"  # one cluster, five code points
    body = "y" * 348 + family + "zzz"
    out = excerpt_of(body)
    assert out == "y" * 348 + "..."


def test_ordered_lists_keep_rendered_numbers_and_bullets_vanish() -> None:
    body = "1. TSN: 视频\n1. TRN: 对视\n\n- 无序项\n\n3. 三\n4. 四\n"
    assert excerpt_of(body) == "1. TSN: 视频 2. TRN: 对视 无序项 3. 三 4. 四"


def test_opening_h1_is_the_titles_and_is_left_out() -> None:
    assert excerpt_of("# 标题\n\n正文一段。\n\n# 另一个一级标题\n") == "正文一段。 另一个一级标题"


def test_placeholders_links_images_and_html() -> None:
    body = ("见 [文档](https://a.example/x) 和 https://b.example/y ![图](i.png)\n\n"
            "```\ncode\n```\n\n$$\nx\n$$\n\n\\[y\\]\n\n行内 \\(z\\) 与 $w$ <b>粗</b>")
    assert excerpt_of(body) == ("见 文档 和 https://b.example/y [代码] [公式] [公式] "
                                "行内 [Math] 与 [Math] 粗")


def test_placeholders_are_configurable() -> None:
    settings = ContentSettings(excerpt=ExcerptSettings(length=20, code="[code]",
                                                       display_math="[eq]", inline_math="[m]"))
    body = "```\nx\n```\n\n$$\ny\n$$\n\n$z$ abcdefghijklmnop"
    assert excerpt_of(body, settings) == "[code] [eq] [m] abcd..."


def test_summary_front_matter_replaces_the_excerpt() -> None:
    assert excerpt_of("---\nsummary: 作者写的  摘要\n---\n正文") == "作者写的 摘要"


def test_hyphens_minus_and_fullwidth_punctuation_survive() -> None:
    body = "Qwen1.5-7B-Chat 返回 1 或 -1,x − y;「引号」--flag"
    assert excerpt_of(body) == body
