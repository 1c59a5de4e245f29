"""What real readers showed (issue 10 item 10): formulas read once in a text-only reader and
stay MathML; code lines keep their line ends inside spans; feed titles put the category first;
autodiscovery titles name the category; no style the W3C validator flags."""

from __future__ import annotations

import re
from typing import Any

import lxml.html
import pytest
from lxml import etree

from feedsvc.content.highlight import highlight_code
from feedsvc.scan.scanner import Scanner

from conftest import NotesDir
from validators import parse_ok
from validators import validate_atom
from validators import validate_json_feed

ATOM = "{http://www.w3.org/2005/Atom}"
CODE = """import torch


def f(x):
    s = \"\"\"multi
line\"\"\"
    return x  # comment
"""


@pytest.fixture
def rich(notes: NotesDir, scanner: Scanner) -> None:
    notes.write("Large Model/math.md", "行内 $N \\times N$ 与\n\n$$\n\\frac{a}{b} + \\sqrt{x}\n$$\n",
                title="Math", date="2025-01-02")
    notes.write("Large Model/code.md", f"```python\n{CODE}```\n\n```\nplain\n  indented\n```\n",
                title="Code", date="2025-01-03")
    notes.write("NLP/n.md", "x", title="N", date="2025-01-01")
    scanner.run()


def contents(client: Any, slug: str) -> dict[str, str]:
    atom = etree.fromstring(client.get(f"/feeds/{slug}.atom").data)
    return {e.findtext(f"{ATOM}title"): e.findtext(f"{ATOM}content")
            for e in atom.iter(f"{ATOM}entry")}


def as_text(fragment: str) -> str:
    """What a text-only reader shows: the text of the HTML, tags dropped."""
    return str(lxml.html.fragment_fromstring(fragment, create_parent="div").text_content())


def test_each_formula_reads_once_in_a_text_reader_and_stays_mathml(client: Any,
                                                                    rich: None) -> None:
    html = contents(client, "large-model")["Math"]
    text = as_text(html)
    assert text.count("N×N") == 1, text
    assert "\\times" not in text and "\\frac" not in text and "\\sqrt" not in text
    assert "<annotation" not in html
    doc = lxml.html.fragment_fromstring(html, create_parent="div")
    maths = doc.findall(".//math")
    assert [m.get("display") for m in maths] == ["inline", "block"]
    assert maths[0].get("alttext") == "N \\times N"  # TeX kept for assistive tech and copying
    assert maths[1].find(".//mfrac") is not None and maths[1].find(".//msqrt") is not None


def test_code_line_ends_sit_inside_spans(client: Any, rich: None) -> None:
    html = contents(client, "large-model")["Code"]
    doc = lxml.html.fragment_fromstring(html, create_parent="div")
    codes = doc.findall(".//pre/code")
    assert len(codes) == 2
    for code in codes:
        # no bare text directly in <code>: every token and line end is inside a span
        assert not code.text and all(not c.tail for c in code)
        assert all(c.tag == "span" for c in code)
        lines = list(code)
        for i, line in enumerate(lines):
            assert all(child.tag == "span" for child in line)  # each token in a span
            assert (line.text or "") in ("", "\n") and all((c.tail or "") in ("", "\n")
                                                           for c in line)
            assert line.text_content().endswith("\n") == (i < len(lines) - 1)
    # a text reader gets the code back line for line
    assert as_text(etree.tostring(codes[0], encoding="unicode")) == CODE.rstrip("\n")
    assert as_text(etree.tostring(codes[1], encoding="unicode")) == "plain\n  indented"


def test_formatter_output_shape() -> None:
    out = highlight_code("a = 1\n\nb\n", "python")
    body = out.split("<code>", 1)[1].split("</code>", 1)[0]
    assert re.fullmatch(r"(<span>(<span[^>]*>[^<]*</span>)*\n</span>)*<span>(<span[^>]*>[^<]*</span>)*</span>",
                        body), body
    assert "border-radius" not in out
    assert highlight_code("x", "").count("<span>") == 2
    # token types a style does not list (YAML's Literal.Scalar.Plain) take their parent's
    assert "<span" in highlight_code("key: plain value\nlist:\n  - a\n", "yaml")


def test_no_style_the_w3c_validator_flags(client: Any, rich: None) -> None:
    for slug in ("all", "large-model"):
        for body in (client.get(f"/feeds/{slug}.atom").data, client.get(f"/feeds/{slug}.rss").data,
                     client.get(f"/feeds/{slug}.json").data):
            assert b"border-radius" not in body
    page = client.get("/entries/large-model/code").get_data(as_text=True)
    assert "border-radius" not in re.sub(r"<link[^>]*>", "", page)


def test_feed_titles_put_the_category_first(client: Any, rich: None) -> None:
    for slug, title in (("large-model", "Large Model · INCOMING TRANSMISSION"),
                        ("all", "INCOMING TRANSMISSION")):
        atom = client.get(f"/feeds/{slug}.atom").data
        validate_atom(atom)
        assert parse_ok(atom).feed.title == title
        assert parse_ok(client.get(f"/feeds/{slug}.rss").data).feed.title == title
        assert validate_json_feed(client.get(f"/feeds/{slug}.json").data)["title"] == title


def test_autodiscovery_titles_use_the_category_name(client: Any, rich: None) -> None:
    for url in ("/updates?category=large-model", "/entries/large-model/math"):
        doc = lxml.html.fromstring(client.get(url).data)
        titles = [link.get("title") for link in doc.findall(".//head/link[@rel='alternate']")]
        assert titles[:3] == ["Large Model (Atom)", "Large Model (RSS)", "Large Model (JSON Feed)"]
        assert "large-model (Atom)" not in titles
        assert titles[3:] == ["INCOMING TRANSMISSION (Atom)", "INCOMING TRANSMISSION (RSS)",
                              "INCOMING TRANSMISSION (JSON Feed)"]


def test_opml_lists_category_feeds_only(client: Any, rich: None) -> None:
    doc = etree.fromstring(client.get("/feeds.opml").data)
    urls = [o.get("xmlUrl") for o in doc.iter("outline")]
    assert urls == ["http://feeds.example.org/feeds/large-model.atom",
                    "http://feeds.example.org/feeds/nlp.atom"]
