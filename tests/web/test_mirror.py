"""The static mirror: `feedsvc export` of the bundled examples crawled as files, and
`[publish] dir` kept current by scans (bytes, mtimes, siblings, pruning, coalescing)."""

from __future__ import annotations

import gzip
import os
import time
from email.utils import parsedate_to_datetime
from html.parser import HTMLParser
from pathlib import Path
from typing import Any
from urllib.parse import unquote
from urllib.parse import urlsplit

import brotli
import pytest
from click.testing import CliRunner

from feedsvc.cli import main
from feedsvc.config import load_config
from feedsvc.errors import ConfigError
from feedsvc.store import open_store
from feedsvc.web import create_app
from feedsvc.web.mirror import MARKER
from feedsvc.web.mirror import Mirror
from feedsvc.web.mirror import attach_mirror
from feedsvc.web.mirror import export_tree
from feedsvc.model import ScanJob

from conftest import REPO
from conftest import NotesDir
from conftest import write_config

EXAMPLE_BASE = "http://127.0.0.1:8080/"


class Links(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.found: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.found += [v for k, v in attrs if k in ("href", "src") and v]


def resolve(root: Path, url: str, base: str) -> Path | None:
    """The file a static server with `try_files $uri $uri/index.html` sends for a URL."""
    path = url[len(base) - 1:] if url.startswith(base) else url
    rel = unquote(path).lstrip("/")
    for candidate in (root / rel, root / rel / "index.html"):
        if candidate.is_file():
            return candidate
    return None


def crawl(root: Path, base: str) -> tuple[set[Path], list[str]]:
    """Every file reached from index.html, and every internal link that is not a file."""
    start = root / "index.html"
    seen, todo, broken = {start}, [start], []
    while todo:
        page = todo.pop()
        parser = Links()
        parser.feed(page.read_text(encoding="utf-8"))
        for link in parser.found:
            link = link.split("#", 1)[0]
            internal = link.startswith(base) or (link.startswith("/") and not link.startswith("//"))
            if not internal or not link:
                continue
            target = resolve(root, link, base) if "?" not in link else None
            if target is None:
                broken.append(f"{page.relative_to(root)} -> {link}")
                continue
            if target not in seen:
                seen.add(target)
                if target.name.endswith(".html"):
                    todo.append(target)
    return seen, broken


def test_export_of_the_examples_resolves_every_link_as_a_file(tmp_path: Path) -> None:
    out = tmp_path / "public"
    result = CliRunner().invoke(main, ["export", str(out), "--config",
                                       str(REPO / "config" / "feedsvc.toml")],
                                env={"FEEDSVC_STORE_DATA_DIR": str(tmp_path / "data"),
                                     "FEEDSVC_PUBLISH_DIR": ""})
    assert result.exit_code == 0, result.output
    reached, broken = crawl(out, EXAMPLE_BASE)
    assert broken == []
    rels = {p.relative_to(out).as_posix() for p in reached}
    # pagination, categories, every entry page, feeds (autodiscovery + footer), OPML, CSS, images
    assert {"updates/index.html", "updates/page/2/index.html", "feeds.opml", "static/style.css",
            "updates/category/nlp/index.html", "feeds/nlp.atom", "feeds/all.json",
            "media/notes/Large Model/attention-tiles.png",
            "media/notes/Computer Vision/images/two-stream.png"} <= rels
    html_files = {p.relative_to(out).as_posix() for p in out.rglob("*.html")}
    assert html_files <= rels  # no page of the tree is an orphan
    assert len([r for r in rels if r.startswith("entries/")]) == 15
    for name in ("feeds/all.rss", "index.html", "feeds.opml"):
        body = (out / name).read_bytes()
        assert gzip.decompress((out / f"{name}.gz").read_bytes()) == body
        assert brotli.decompress((out / f"{name}.br").read_bytes()) == body
    assert not (out / "media/notes/Large Model/attention-tiles.png.gz").exists()

    # a second export into the same folder writes nothing and keeps every mtime
    before = {p: p.stat().st_mtime_ns for p in out.rglob("*")}
    again = CliRunner().invoke(main, ["export", str(out), "--no-scan", "--config",
                                      str(REPO / "config" / "feedsvc.toml")],
                               env={"FEEDSVC_STORE_DATA_DIR": str(tmp_path / "data")})
    assert again.exit_code == 0 and "wrote 0 files" in again.output, again.output
    assert {p: p.stat().st_mtime_ns for p in out.rglob("*")} == before


def test_export_refuses_a_folder_that_is_not_a_mirror(tmp_path: Path) -> None:
    out = tmp_path / "precious"
    out.mkdir()
    (out / "thesis.tex").write_text("years of work")
    result = CliRunner().invoke(main, ["export", str(out), "--no-scan", "--config",
                                       str(REPO / "config" / "feedsvc.toml")],
                                env={"FEEDSVC_STORE_DATA_DIR": str(tmp_path / "data")})
    assert result.exit_code == 2
    assert "OUT_DIR" in result.output and "not a feedsvc mirror" in result.output
    assert (out / "thesis.tex").read_text() == "years of work"


def test_publish_dir_is_relative_to_the_config_file_and_env_overrides_it(tmp_path: Path) -> None:
    path = write_config(tmp_path, tmp_path / "notes", extra='[publish]\ndir = "site"\n')
    assert load_config(path, env={}).publish.dir == str(tmp_path / "site")
    env = {"FEEDSVC_PUBLISH_DIR": "/srv/mirror"}
    assert load_config(path, env=env).publish.dir == "/srv/mirror"
    plain = write_config(tmp_path, tmp_path / "notes", name="plain.toml")
    assert load_config(plain, env={}).publish.dir == ""


@pytest.fixture
def published(tmp_path: Path, notes: NotesDir) -> Any:
    notes.write("NLP/a.md", "Alpha body", title="Alpha", date="2025-01-01")
    notes.write("NLP/b.md", "Beta body ![pic](pic.png)", title="Beta", date="2025-01-02")
    notes.write_bytes("NLP/pic.png", b"\x89PNG\r\n\x1a\n" + b"0" * 64)
    notes.write("Python/c.md", "Gamma body", title="Gamma", date="2025-01-03")
    path = write_config(tmp_path, notes.root, extra='[publish]\ndir = "site"\n')
    config = load_config(path, env={})
    store = open_store(config.store_url, keep_per_category=config.store.keep_per_category,
                       tombstone_days=config.feeds.tombstone_days)
    app = create_app(config, store=store)
    mirror = attach_mirror(app)
    assert mirror is not None
    yield app, mirror, Path(config.publish.dir)
    mirror.stop()
    store.close()


def stats(root: Path) -> dict[str, tuple[int, int]]:
    return {p.relative_to(root).as_posix(): (p.stat().st_ino, p.stat().st_mtime_ns)
            for p in root.rglob("*") if p.is_file()}


def scan(app: Any, mirror: Mirror) -> float:
    """Run a scan as the scheduler does; return seconds until the mirror caught up."""
    app.extensions["feedsvc"].scanner.run(ScanJob(reason="test"))
    started = time.monotonic()
    assert mirror.wait_idle(30)
    return time.monotonic() - started


def test_publish_dir_follows_every_change(published: Any, notes: NotesDir) -> None:
    app, mirror, root = published
    client = app.test_client()
    assert mirror.wait_idle(30)
    assert scan(app, mirror) < 1.0
    assert (root / MARKER).is_file()
    for name in ("feeds/nlp.atom", "feeds/all.rss", "feeds/python.json", "feeds.opml"):
        response = client.get("/" + name)
        assert (root / name).read_bytes() == response.data, name
        modified = parsedate_to_datetime(response.headers["Last-Modified"]).timestamp()
        for sibling in (name, f"{name}.gz", f"{name}.br"):
            assert (root / sibling).stat().st_mtime == modified, sibling
    assert (root / "entries/nlp/b/index.html").read_bytes() == client.get("/entries/nlp/b").data
    assert (root / "media/notes/NLP/pic.png").read_bytes().startswith(b"\x89PNG")
    leftovers = [p for p in root.rglob(".*") if p.name != MARKER]
    assert leftovers == []

    # no change: not one file rewritten, not one mtime moved
    before = stats(root)
    scan(app, mirror)
    assert stats(root) == before

    # a new note in NLP: its feeds, pages and the digest change; Python's feeds do not
    notes.write("NLP/d.md", "Delta body", title="Delta", date="2025-02-01")
    assert scan(app, mirror) < 1.0
    after = stats(root)
    assert b"Delta" in (root / "feeds/nlp.atom").read_bytes()
    assert b"Delta" in (root / "updates/index.html").read_bytes()
    assert "entries/nlp/d/index.html" in after
    for name in ("feeds/python.json", "feeds/python.rss", "entries/nlp/a/index.html",
                 "media/notes/NLP/pic.png", "static/style.css"):
        assert after[name] == before[name], name
    assert after["feeds/nlp.atom"] != before["feeds/nlp.atom"]
    modified = parsedate_to_datetime(client.get("/feeds/nlp.atom").headers["Last-Modified"])
    assert (root / "feeds/nlp.atom.gz").stat().st_mtime == modified.timestamp()

    # a deleted note and its now unused image leave the tree, empty folders too
    notes.write("NLP/b.md", "Beta body, no picture", title="Beta", date="2025-01-02")
    notes.remove("Python/c.md")
    scan(app, mirror)
    files = stats(root)
    assert "entries/python/c/index.html" not in files
    assert not (root / "entries/python").exists()
    assert "media/notes/NLP/pic.png" not in files
    assert "feeds/python.rss" not in files and "feeds/python.rss.gz" not in files
    assert b"no picture" in (root / "entries/nlp/b/index.html").read_bytes()


def test_a_burst_of_changes_coalesces(published: Any) -> None:
    app, mirror, root = published
    assert mirror.wait_idle(30)
    syncs = []
    real = mirror.writer.sync

    def counting() -> Any:
        syncs.append(1)
        return real()
    mirror.writer.sync = counting  # type: ignore[method-assign]
    for _ in range(20):
        mirror.request()
    assert mirror.wait_idle(30)
    assert len(syncs) <= 2


def test_publish_dir_that_is_someone_elses_folder_is_a_config_error(tmp_path: Path,
                                                                    notes: NotesDir) -> None:
    (tmp_path / "site").mkdir()
    (tmp_path / "site" / "keep.txt").write_text("mine")
    path = write_config(tmp_path, notes.root, extra='[publish]\ndir = "site"\n')
    config = load_config(path, env={})
    store = open_store(config.store_url)
    try:
        with pytest.raises(ConfigError) as info:
            attach_mirror(create_app(config, store=store))
        assert "publish.dir" in str(info.value)
    finally:
        store.close()
    assert (tmp_path / "site" / "keep.txt").read_text() == "mine"


def test_export_tree_writes_what_the_app_serves(app: Any, notes: NotesDir, tmp_path: Path) -> None:
    notes.write("NLP/x.md", "X", title="X", date="2025-01-01")
    app.extensions["feedsvc"].scanner.run()
    report = export_tree(app, tmp_path / "out")
    assert "feeds/nlp.rss" in report.written and "updates.json" in report.written
    assert (tmp_path / "out/updates.json").read_bytes() == app.test_client().get("/updates.json").data
    assert os.stat(tmp_path / "out/feeds/nlp.rss").st_mode & 0o777 == 0o644
    assert urlsplit(EXAMPLE_BASE).path == "/"


def test_unchanged_pages_are_not_rendered_again_and_lost_files_come_back(published: Any) -> None:
    app, mirror, root = published
    scan(app, mirror)
    rendered: list[str] = []
    real = mirror.writer._fetch

    def fetch(path: str, key: object, cached: Any) -> Any:
        rendered.append(path)
        return real(path, key, cached)
    mirror.writer._fetch = fetch  # type: ignore[method-assign]
    (root / "entries/nlp/a/index.html.gz").unlink()
    (root / "feeds/nlp.rss").unlink()
    report = mirror.writer.sync()
    assert sorted(report.written) == ["entries/nlp/a/index.html", "feeds/nlp.rss"]
    assert (root / "entries/nlp/a/index.html.gz").is_file() and (root / "feeds/nlp.rss").is_file()
    assert "/entries/nlp/b" not in rendered  # same entry: its page is not rendered again
    assert not any(p.startswith("/updates/category/") for p in rendered)
