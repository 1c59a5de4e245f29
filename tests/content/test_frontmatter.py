"""Front matter variants, wrong types and encodings: each bad file is a NoteError naming it."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

import pytest

from feedsvc.content import ContentSettings
from feedsvc.content import read_note
from feedsvc.errors import FrontMatterError
from feedsvc.errors import NoteEncodingError
from feedsvc.model import NoteFile

SHANGHAI = ContentSettings(tz=ZoneInfo("Asia/Shanghai"))
UTC = dt.timezone.utc


def header(raw: bytes | str, settings: ContentSettings = SHANGHAI, name: str = "c/n.md"):
    data = raw.encode() if isinstance(raw, str) else raw
    note = NoteFile(source="s", rel_path=name, abs_path=str(name), size=len(data), mtime_ns=0)
    return read_note(note, data, settings).header


@pytest.mark.parametrize("value, expected", [
    ("2025-03-05", dt.datetime(2025, 3, 4, 16, 0, tzinfo=UTC)),
    ("2025-03-05T14:22:10", dt.datetime(2025, 3, 5, 6, 22, 10, tzinfo=UTC)),
    ("2025-03-05 14:22", dt.datetime(2025, 3, 5, 6, 22, tzinfo=UTC)),
    ("2025-03-05T14:22:10+02:00", dt.datetime(2025, 3, 5, 12, 22, 10, tzinfo=UTC)),
    ("2025-03-05T14:22:10Z", dt.datetime(2025, 3, 5, 14, 22, 10, tzinfo=UTC)),
    ("'2025-03-05T14:22:10+08:00'", dt.datetime(2025, 3, 5, 6, 22, 10, tzinfo=UTC)),
    ("1741184530", dt.datetime(2025, 3, 5, 14, 22, 10, tzinfo=UTC)),
])
def test_date_forms(value: str, expected: dt.datetime) -> None:
    assert header(f"---\ndate: {value}\n---\nbody").published == expected


def test_updated_and_lastmod() -> None:
    h = header("---\ndate: 2025-01-01\nlastmod: 2025-02-01T00:00:00+00:00\n---\nx")
    assert h.updated == dt.datetime(2025, 2, 1, tzinfo=UTC)
    h = header("---\nupdated: 2025-03-01T00:00:00+00:00\nlastmod: 2020-01-01\n---\nx")
    assert h.updated == dt.datetime(2025, 3, 1, tzinfo=UTC)


def test_fields_read() -> None:
    h = header("---\ntitle: 标题\ncategory: Large Model\ntags: [a, b, a]\nid: 42\n"
               "draft: true\nsummary: 摘要\nauthor: 某人\n---\nbody")
    assert (h.title, h.category_name, h.tags, h.note_id, h.is_draft, h.summary, h.author) == \
        ("标题", "Large Model", ("a", "b"), "42", True, "摘要", "某人")


def test_block_and_string_tags() -> None:
    assert header("---\ntags:\n  - x\n  - '#y'\n---\n").tags == ("x", "y")
    assert header("---\ntags: x, y z\n---\n").tags == ("x", "y", "z")


def test_title_falls_back_to_first_h1_then_file_name() -> None:
    assert header("```\n# not a heading\n```\n\n# 真标题\n").title == "真标题"
    assert header("no heading", name="dir/文件 名.md").title == "文件 名"
    assert header("---\n---\n\n正文").title == "n"


@pytest.mark.parametrize("text, key", [
    ("---\ntitle: [a, b]\n---\n", "title"),
    ("---\ndate: {a: 1}\n---\n", "date"),
    ("---\ndate: next tuesday\n---\n", "date"),
    ("---\ndraft: maybe\n---\n", "draft"),
    ("---\ntags: {a: 1}\n---\n", "tags"),
    ("---\ncategory: [x]\n---\n", "category"),
    ("---\nupdated: 2025-13-45\n---\n", "updated"),
])
def test_wrong_types_name_the_key(text: str, key: str) -> None:
    with pytest.raises(FrontMatterError) as info:
        header(text)
    assert f"'{key}'" in info.value.reason
    assert str(info.value).startswith("s:c/n.md: ")


def test_malformed_yaml_names_the_line() -> None:
    with pytest.raises(FrontMatterError) as info:
        header("---\ntitle: ok\nbad: [unclosed\n---\nbody")
    assert info.value.reason.startswith("malformed front matter")


def test_unclosed_front_matter() -> None:
    with pytest.raises(FrontMatterError, match="no closing"):
        header("---\ntitle: x\nbody without end")


def test_alias_bomb_is_refused_quickly() -> None:
    bomb = "---\na: &a [x,x,x,x,x,x,x,x,x]\n" + "".join(
        f"{chr(98 + i)}: &{chr(98 + i)} [*{chr(97 + i)},*{chr(97 + i)},*{chr(97 + i)},"
        f"*{chr(97 + i)},*{chr(97 + i)},*{chr(97 + i)},*{chr(97 + i)},*{chr(97 + i)}]\n"
        for i in range(9)) + "---\nbody"
    with pytest.raises(FrontMatterError, match="aliases are not allowed"):
        header(bomb)


def test_non_mapping_front_matter() -> None:
    with pytest.raises(FrontMatterError, match="must be a mapping"):
        header("---\n- a\n- b\n---\n")


def test_utf8_bom_and_crlf() -> None:
    h = header("\ufeff---\r\ntitle: 带BOM\r\n---\r\nbody".encode("utf-8"))
    assert h.title == "带BOM"


def test_gbk_and_gb18030_are_decoded() -> None:
    text = "---\ntitle: 中文标题\n---\n\n这是一段用 GBK 编码保存的中文笔记,内容足够长以便检测编码。" * 3
    assert header(text.encode("gbk")).title == "中文标题"
    assert header(text.encode("gb18030")).title == "中文标题"


def test_invalid_utf8_is_an_encoding_problem() -> None:
    with pytest.raises(NoteEncodingError, match="not UTF-8"):
        header(b"---\ntitle: x\n---\n" + bytes([0xFF, 0xFE, 0xFA, 0x80, 0x81]) * 7)


def test_binary_file_named_md() -> None:
    with pytest.raises(NoteEncodingError, match="binary"):
        header(b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(range(256)))


def test_control_characters_are_removed() -> None:
    h = header("---\ntitle: \"a\\x01b\\x0bc\"\n---\n")
    assert h.title == "abc"
