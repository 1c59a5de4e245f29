"""The bundled examples, served by the default config, are what a new user sees first: every
feed valid, the digest complete, the draft hidden, every entry page and image reachable."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from feedsvc.config import load_config
from feedsvc.store import open_store
from feedsvc.web import create_app

from conftest import REPO
from validators import parse_ok
from validators import validate_atom
from validators import validate_json_feed


@pytest.fixture
def example_client(tmp_path: Path) -> Any:
    config = load_config(REPO / "config" / "feedsvc.toml",
                         env={"FEEDSVC_STORE_URL": f"sqlite:///{tmp_path / 'examples.db'}"})
    assert [s.root.resolve() for s in config.sources] == [(REPO / "examples" / "notes").resolve()]
    store = open_store(config.store_url)
    app = create_app(config, store=store)
    report = app.extensions["feedsvc"].scanner.run()
    assert report.problems == () and len(report.added) == 15
    yield app.test_client()
    store.close()


def test_every_example_feed_is_valid(example_client: Any) -> None:
    slugs = ["all"] + [i["category_slug"] for i in
                       example_client.get("/updates.json?page=1").get_json()["items"]]
    categories = {"3d-model", "computer-vision", "nlp", "large-model", "python",
                  "generative-model", "notes"}
    assert set(slugs) - {"all"} <= categories
    for slug in ["all", *sorted(categories)]:
        atom = example_client.get(f"/feeds/{slug}.atom").data
        validate_atom(atom)
        assert parse_ok(atom).entries
        parse_ok(example_client.get(f"/feeds/{slug}.rss").data)
        validate_json_feed(example_client.get(f"/feeds/{slug}.json").data)


def test_example_digest(example_client: Any) -> None:
    page = example_client.get("/updates").get_data(as_text=True)
    entries = re.findall(r'<li class="entry">(.*?)</li>', page, re.S)
    assert len(entries) == 12
    for block in entries:
        assert re.search(r"<h3><a href=\"http://127.0.0.1:8080/entries/[^\"]+\">[^<]+</a></h3>", block)
        assert re.search(r'<p class="excerpt">[^<]{20,}</p>', block)
        assert re.search(r'<time datetime="[^"]+">\d{4}-\d{2}-\d{2}</time>', block)
    assert "面试前的复习清单" not in page  # the draft
    second = example_client.get("/updates?page=2").get_data(as_text=True)
    assert len(re.findall(r'<li class="entry">', second)) == 3


def test_example_entry_pages_and_images(example_client: Any) -> None:
    images = 0
    for item in example_client.get("/updates.json").get_json()["items"] + \
            example_client.get("/updates.json?page=2").get_json()["items"]:
        page = example_client.get(item["url"].replace("http://127.0.0.1:8080", ""))
        assert page.status_code == 200
        for src in re.findall(r'<img src="http://127.0.0.1:8080(/media/[^"]+)"', page.get_data(as_text=True)):
            image = example_client.get(src)
            assert image.status_code == 200 and image.data.startswith(b"\x89PNG")
            image.close()
            images += 1
    assert images == 2  # the relative image in two-stream-cnn and the ![[embed]] in flash-attention
