"""A real nginx (Debian's) with the shipped config/nginx.conf on the mirror that a real
`feedsvc serve` keeps current: media types, gzip, 304s, validators equal to feedsvc's, a
webhook through nginx showing up through nginx, and the live-only paths proxied."""

from __future__ import annotations

import gzip
import hashlib
import hmac
import importlib.util
import os
import re
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import requests

from conftest import stop
from conftest import REPO

NGINX = shutil.which("nginx") or "/usr/sbin/nginx"
# how long each nginx worker trusts what it found of a file, a failed open included
OPEN_FILE_CACHE_VALID = float(re.search(r"open_file_cache_valid (\d+)s;", (
    REPO / "config" / "nginx.conf").read_text(encoding="utf-8")).group(1))  # type: ignore[union-attr]
SECRET = "nginx-test-secret"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_until(predicate: Any, timeout: float, what: str, interval: float = 0.05) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        try:
            value = predicate()
            if value:
                return value
        except (requests.RequestException, OSError):
            pass
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(interval)


def nginx_conf_module() -> Any:
    spec = importlib.util.spec_from_file_location("nginx_conf", REPO / "tools" / "nginx_conf.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@dataclass
class Stack:
    nginx: str  # http://127.0.0.1:<port>
    feedsvc: str
    mirror: Path
    notes: Path


@pytest.fixture
def stack(tmp_path: Path) -> Iterator[Stack]:
    assert Path(NGINX).exists(), "nginx is needed (Debian: apt-get install nginx; .ci/run does)"
    notes = tmp_path / "notes"
    shutil.copytree(REPO / "examples" / "notes", notes)
    app_port, web_port = free_port(), free_port()
    nginx_url = f"http://127.0.0.1:{web_port}"
    mirror = tmp_path / "mirror"
    config = tmp_path / "feedsvc.toml"
    config.write_text(f"""
[site]
base_url = "{nginx_url}/"
timezone = "Asia/Shanghai"

[[sources]]
name = "notes"
path = "notes"
default_category = "Notes"

[store]
data_dir = "data"

[scheduler]
poll_seconds = 0

[webhook]
secret = "{SECRET}"
min_interval_seconds = 0

[publish]
dir = "mirror"
""", encoding="utf-8")
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    env.pop("FEEDSVC_PUBLISH_DIR", None)
    log = tmp_path / "feedsvc.log"
    with log.open("wb") as out:
        app = subprocess.Popen([sys.executable, "-m", "feedsvc", "serve", "--config", str(config),
                                "--port", str(app_port)], stdout=out, stderr=subprocess.STDOUT,
                               env=env, cwd=tmp_path)
    prefix = tmp_path / "nginx"
    prefix.mkdir()
    conf = prefix / "nginx.conf"
    conf.write_text(nginx_conf_module().render(root=mirror, listen=f"127.0.0.1:{web_port}",
                                               upstream=f"127.0.0.1:{app_port}", prefix=prefix))
    with (prefix / "stderr").open("wb") as err:
        web = subprocess.Popen([NGINX, "-c", str(conf), "-p", str(prefix), "-g", "daemon off;"],
                               stdout=subprocess.DEVNULL, stderr=err)
    try:
        wait_until(lambda: requests.get(f"http://127.0.0.1:{app_port}/healthz", timeout=2)
                   .json().get("last_scan"), 60, "feedsvc's first scan")
        wait_until(lambda: requests.get(f"{nginx_url}/feeds/all.rss", timeout=2).ok, 15,
                   "nginx " + (prefix / "stderr").read_text(errors="replace"))
        wait_until(lambda: caught_up(nginx_url, f"http://127.0.0.1:{app_port}"), 30,
                   "the mirror")
        # each nginx worker keeps a failed open (a file not yet in the mirror) that long:
        # the worker caught_up asked may have seen the file while another still sends that
        # path to feedsvc (a 1-in-10 failure under load before this wait)
        time.sleep(OPEN_FILE_CACHE_VALID + 0.2)
        yield Stack(nginx_url, f"http://127.0.0.1:{app_port}", mirror, notes)
    finally:
        stop(web)
        stop(app)
    assert app.returncode is not None and web.returncode is not None


TYPES = {"/feeds/all.rss": "application/rss+xml; charset=utf-8",
         "/feeds/nlp.atom": "application/atom+xml; charset=utf-8",
         "/feeds/python.json": "application/feed+json; charset=utf-8",
         "/feeds.opml": "text/x-opml; charset=utf-8",
         "/": "text/html; charset=utf-8",
         "/updates/page/2/": "text/html; charset=utf-8",
         "/updates/category/nlp/": "text/html; charset=utf-8",
         "/entries/nlp/bpe-tokenizer": "text/html; charset=utf-8",
         "/static/style.css": "text/css; charset=utf-8",
         "/media/notes/Large%20Model/attention-tiles.png": "image/png"}


def caught_up(nginx: str, live: str) -> bool:
    """nginx sends from files what feedsvc serves now (the mirror is written after a scan)."""
    for path in TYPES:
        ours = get(nginx + path)
        if not is_nginx_etag(ours) or ours.content != get(live + path).content:
            return False
    return True


def get(url: str, **headers: str) -> requests.Response:
    return requests.get(url, headers=headers, timeout=10)


def is_nginx_etag(response: requests.Response) -> bool:
    """nginx's ETag from the file ("<mtime hex>-<size hex>"), not feedsvc's content hash."""
    tag = response.headers.get("ETag", "").removeprefix("W/").strip('"')
    mtime, _, size = tag.partition("-")
    return all(c in "0123456789abcdef" for c in mtime + size) and bool(mtime and size)


def test_nginx_serves_the_mirror(stack: Stack) -> None:
    for path, media_type in TYPES.items():
        response = get(stack.nginx + path, **{"Accept-Encoding": "identity"})
        assert response.status_code == 200, path
        assert response.headers["Content-Type"] == media_type, path
        assert is_nginx_etag(response), (path, response.headers.get("ETag"))
        live = get(stack.feedsvc + path, **{"Accept-Encoding": "identity"})
        assert response.content == live.content, path
    for path in ("/feeds/all.rss", "/feeds/nlp.atom", "/feeds/python.json", "/feeds.opml"):
        ours = get(stack.nginx + path)
        live = get(stack.feedsvc + path)
        assert ours.headers["Last-Modified"] == live.headers["Last-Modified"], path
        assert ours.headers["Cache-Control"] == "public, max-age=900"
    assert "Content-Security-Policy" in get(stack.nginx + "/").headers


def test_gzip_and_conditional_requests(stack: Stack) -> None:
    url = stack.nginx + "/feeds/all.atom"
    zipped = requests.get(url, headers={"Accept-Encoding": "gzip"}, timeout=10, stream=True)
    assert zipped.headers["Content-Encoding"] == "gzip"
    assert "Accept-Encoding" in zipped.headers["Vary"]
    raw = zipped.raw.read(decode_content=False)
    assert gzip.decompress(raw) == (stack.mirror / "feeds" / "all.atom").read_bytes()
    assert raw == (stack.mirror / "feeds" / "all.atom.gz").read_bytes()

    plain = get(url, **{"Accept-Encoding": "identity"})
    assert "Content-Encoding" not in plain.headers
    etag, modified = plain.headers["ETag"], plain.headers["Last-Modified"]
    again = get(url, **{"If-None-Match": etag, "Accept-Encoding": "identity"})
    assert again.status_code == 304 and again.content == b""
    assert again.headers["ETag"] == etag
    assert get(url, **{"If-Modified-Since": modified}).status_code == 304
    assert get(url, **{"If-None-Match": '"other"'}).status_code == 200
    assert get(url, **{"If-Modified-Since": "Mon, 01 Jan 2001 00:00:00 GMT"}).status_code == 200


def test_live_only_paths_and_query_urls_go_to_feedsvc(stack: Stack) -> None:
    health = get(stack.nginx + "/healthz")
    assert health.status_code == 200 and health.json()["status"] == "ok"
    old_link = get(stack.nginx + "/updates?page=2")
    assert old_link.status_code == 200
    assert old_link.content == get(stack.nginx + "/updates/page/2/").content
    assert get(stack.nginx + "/updates.json?page=2").json()["page"] == 2
    assert get(stack.nginx + "/updates?page=x").status_code == 404
    assert get(stack.nginx + "/entries/nlp/no-such-note").status_code == 404
    assert get(stack.nginx + "/.feedsvc-mirror").status_code == 404
    assert requests.post(stack.nginx + "/hooks/refresh", data=b"{}", timeout=10).status_code == 401


def test_a_webhook_through_nginx_shows_up_through_nginx(stack: Stack) -> None:
    untouched = stack.mirror / "feeds" / "python.rss"
    before = (untouched.stat().st_ino, untouched.stat().st_mtime_ns)
    first = get(stack.nginx + "/feeds/nlp.json")
    (stack.notes / "NLP" / "fresh-note.md").write_text(
        "---\ntitle: Fresh through nginx\ndate: 2026-01-01\n---\n\nA new note.\n", encoding="utf-8")
    body = b'{"ref": "refs/heads/main"}'
    signature = "sha256=" + hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()
    started = time.monotonic()
    answer = requests.post(stack.nginx + "/hooks/refresh?source=notes", data=body, timeout=10,
                           headers={"X-Hub-Signature-256": signature,
                                    "Content-Type": "application/json"})
    assert answer.status_code == 202, answer.text
    feed = wait_until(lambda: (r := get(stack.nginx + "/feeds/nlp.json")).ok
                      and "Fresh through nginx" in r.text and r, 5, "the new note through nginx")
    assert time.monotonic() - started < 3.0
    assert is_nginx_etag(feed) and feed.headers["ETag"] != first.headers["ETag"]
    assert feed.headers["Last-Modified"] == get(stack.feedsvc + "/feeds/nlp.json").headers[
        "Last-Modified"]
    # the new page is answered at once (by feedsvc behind nginx until its file is written)
    assert get(stack.nginx + "/entries/nlp/fresh-note").status_code == 200
    wait_until(lambda: is_nginx_etag(get(stack.nginx + "/entries/nlp/fresh-note")), 5,
               "the entry page as a file")
    assert (untouched.stat().st_ino, untouched.stat().st_mtime_ns) == before
