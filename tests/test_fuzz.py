"""Hypothesis generates note bodies and front matter (control characters, CJK, emoji, HTML,
broken YAML, wrong types); for every example a scan succeeds and every feed stays well-formed."""

from __future__ import annotations

import datetime as dt
import json
import tempfile
from pathlib import Path
from typing import Any

import yaml
from hypothesis import HealthCheck
from hypothesis import given
from hypothesis import settings
from hypothesis import strategies as st
from lxml import etree

from feedsvc.config import build_config
from feedsvc.scan.scanner import Scanner
from feedsvc.store import open_store
from feedsvc.web import create_app

from validators import parse_ok
from validators import validate_json_feed

FRAGMENTS = ["# ", "## ", "- ", "1. ", "> ", "```", "```python\n", "~~~", "$", "$$", "\\(", "\\)",
             "\\[", "\\]", "[[", "]]", "![", "](", ")", "<script>", "</script>", "<img src=x onerror=a>",
             "<svg onload=x>", "javascript:", "&amp;", "&#0;", "]]>", "|", "---", "\n", "\n\n", "*",
             "_", "`", "<", ">", "\"", "'", "汉字", "公式", "🔖", "👨\u200d👩\u200d👧", "\u0301", "\x00",
             "\x01", "\x0b", "\x1f", "\x7f", "\ufffe", "\u2028", "\r\n", "\t", "[代码]", "[Math]"]
body_parts = st.one_of(st.sampled_from(FRAGMENTS), st.text(max_size=20))
bodies = st.lists(body_parts, max_size=40).map("".join)
scalars = st.one_of(st.none(), st.booleans(), st.integers(-10**12, 10**12), st.text(max_size=30),
                    st.floats(allow_nan=True), st.dates().map(str),
                    st.datetimes(timezones=st.just(dt.timezone.utc)).map(lambda d: d.isoformat()))
values = st.recursive(scalars, lambda inner: st.one_of(st.lists(inner, max_size=4),
                                                       st.dictionaries(st.text(max_size=5), inner, max_size=3)),
                      max_leaves=8)
front_matter = st.dictionaries(st.sampled_from(["title", "date", "updated", "lastmod", "tags",
                                                "category", "summary", "id", "draft", "author",
                                                "other"]), values, max_size=6)
raw_front_matter = st.lists(st.sampled_from(["title: [", "date: {", "&a x", "*a", ": :", "- -",
                                              "tags: !!python/object:os.system x", "\t", "'"]),
                            max_size=4).map("\n".join)


@st.composite
def notes(draw: Any) -> list[tuple[str, bytes]]:
    out = []
    for i in range(draw(st.integers(1, 4))):
        folder = draw(st.sampled_from(["NLP", "Large Model", "汉字 目录", "x"]))
        body = draw(bodies)
        if draw(st.booleans()):
            fm = yaml.safe_dump(draw(front_matter), allow_unicode=True)
        else:
            fm = draw(raw_front_matter)
        text = f"---\n{fm}\n---\n{body}" if draw(st.booleans()) else body
        out.append((f"{folder}/n{i}.md", text.encode("utf-8", "surrogatepass")))
    return out


PUBLISHED: list[int] = []


@settings(max_examples=120, deadline=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(notes())
def test_any_notes_scan_and_every_feed_is_well_formed(files: list[tuple[str, bytes]]) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "notes"
        for rel, data in files:
            path = root / rel
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(data)
        config = build_config({"sources": [{"name": "notes", "path": str(root)}],
                               "store": {"url": f"sqlite:///{tmp}/f.db"}}, base_dir=Path(tmp))
        store = open_store(config.store_url)
        try:
            report = Scanner(config, store).run()
            PUBLISHED.append(len(report.added))
            assert report.source_errors == ()
            assert len(report.added) + len(report.problems) >= 1
            client = create_app(config, store=store).test_client()
            slugs = ["all"] + [c["category_slug"] for c in
                               client.get("/updates.json").get_json()["items"]]
            for slug in dict.fromkeys(slugs):
                for fmt in ("rss", "atom"):
                    body = client.get(f"/feeds/{slug}.{fmt}").data
                    etree.fromstring(body)
                    parse_ok(body)
                validate_json_feed(client.get(f"/feeds/{slug}.json").data)
            assert client.get("/updates").status_code == 200
            for item in client.get("/updates.json").get_json()["items"]:
                path = item["url"].split("://", 1)[1].split("/", 1)[1]
                assert client.get("/" + path).status_code == 200, item["url"]
            assert json.loads(client.get("/healthz").data)["status"] == "ok"
        finally:
            store.close()


def test_the_fuzzer_publishes_most_examples() -> None:
    """Guard against a generator that only ever produces rejected notes."""
    test_any_notes_scan_and_every_feed_is_well_formed()
    assert sum(1 for n in PUBLISHED if n) > len(PUBLISHED) // 2, PUBLISHED[:20]
