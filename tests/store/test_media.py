"""Media in the store: the scanner copies each source's media (content-addressed, bounded by
max_file_bytes, removed with the file, not re-read when unchanged), and a process without the
notes folder serves /media from the store with the same types, validators and refusals."""

from __future__ import annotations

import dataclasses
import hashlib
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests
from sqlalchemy import func
from sqlalchemy import select

from feedsvc.config import load_config
from feedsvc.scan.scanner import Scanner
from feedsvc.store import Store
from feedsvc.store.schema import media_blobs

from conftest import stop
from conftest import REPO
from conftest import Clock
from conftest import NotesDir
from conftest import write_config

PNG = b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 4


@pytest.fixture
def store(backend_store: Store) -> Store:
    return backend_store


def blob_count(store: Store) -> int:
    with store.engine.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(media_blobs)).scalar_one())


def test_scan_copies_media_deduplicated_bounded_and_removes_it(
        notes: NotesDir, store: Store, tmp_path: Path, clock: Clock) -> None:
    config = load_config(write_config(tmp_path, notes.root, name="m.toml"), env={})
    config = dataclasses.replace(config, sources=tuple(
        dataclasses.replace(s, max_file_bytes=4096) for s in config.sources))
    scanner = Scanner(config, store, clock=clock)
    notes.write("NLP/a.md", "![](img/fig.png)", title="A", date="2025-01-01")
    notes.write_bytes("NLP/img/fig.png", PNG)
    notes.write_bytes("Large Model/same.png", PNG)  # same bytes: one blob
    notes.write_bytes("NLP/paper.pdf", b"%PDF-1.4 tiny")
    notes.write_bytes("NLP/big.bin", b"x" * 5000)  # over max_file_bytes=4096
    notes.write_bytes("NLP/.hidden.png", PNG)
    report = scanner.run()
    assert [(p.path, p.reason) for p in report.problems] == [
        ("NLP/big.bin", "media file is 5000 bytes, over max_file_bytes=4096: "
                        "not copied into the store")]
    assert sorted(store.media_stats("notes")) == ["Large Model/same.png", "NLP/img/fig.png",
                                                  "NLP/paper.pdf"]
    assert blob_count(store) == 2
    info = store.media_info("notes", "NLP/img/fig.png")
    assert info is not None and info.media_type == "image/png"
    assert info.hash == hashlib.sha256(PNG).hexdigest() and info.size == len(PNG)
    assert store.media_bytes(info.hash) == PNG
    pdf = store.media_info("notes", "NLP/paper.pdf")
    assert pdf is not None and pdf.media_type == "application/pdf"

    # same size and mtime: not read again (the store keeps the bytes it has)
    path = notes.path("NLP/img/fig.png")
    st = path.stat()
    path.write_bytes(PNG[::-1])
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))
    scanner.run()
    assert store.media_info("notes", "NLP/img/fig.png") == info
    # a real change is copied; the shared blob stays while another file names it
    notes.touch_forward("NLP/img/fig.png")
    scanner.run()
    changed = store.media_info("notes", "NLP/img/fig.png")
    assert changed is not None and changed.hash == hashlib.sha256(PNG[::-1]).hexdigest()
    assert blob_count(store) == 3
    # removing files removes their rows, and blobs nobody names
    notes.remove("Large Model/same.png")
    notes.remove("NLP/paper.pdf")
    scanner.run()
    assert sorted(store.media_stats("notes")) == ["NLP/img/fig.png"]
    assert blob_count(store) == 1


def test_missing_source_keeps_its_media(notes: NotesDir, store: Store, scanner: Scanner,
                                        tmp_path: Path) -> None:
    notes.write("NLP/a.md", "a", date="2025-01-01")
    notes.write_bytes("NLP/fig.png", PNG)
    scanner.run()
    notes.root.rename(tmp_path / "unmounted")
    report = scanner.run()
    assert report.source_errors and sorted(store.media_stats("notes")) == ["NLP/fig.png"]


# -- real processes ---------------------------------------------------------------------

def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_serve(config_path: Path, port: int, log: Path) -> subprocess.Popen[bytes]:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    with log.open("wb") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "feedsvc", "serve", "--config", str(config_path),
             "--port", str(port), "--threads", "4"], stdout=out, stderr=subprocess.STDOUT,
            env=env, cwd=REPO)


def healthz(port: int) -> int | None:
    try:
        return requests.get(f"http://127.0.0.1:{port}/healthz", timeout=2).status_code
    except requests.RequestException:
        return None


def wait_all_up(ports: list[int], processes: list[subprocess.Popen[bytes]],
                timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        dead = [p.returncode for p in processes if p.poll() is not None]
        assert not dead, f"a serve process exited: {dead}"
        if all(healthz(port) == 200 for port in ports):
            return
        time.sleep(0.2)
    raise AssertionError("not every process answered /healthz in time")


def with_store_url(config_path: Path, store_url: str, tmp_path: Path) -> Path:
    text = config_path.read_text(encoding="utf-8")
    line = f'url = "sqlite:///{(tmp_path / "feedsvc.db").as_posix()}"'
    assert line in text
    config_path.write_text(text.replace(line, f'url = "{store_url}"'), encoding="utf-8")
    return config_path


@pytest.mark.slow
def test_web_process_without_the_notes_serves_media_from_the_store(
        store_url: str, notes: NotesDir, tmp_path: Path) -> None:
    notes.write("NLP/a.md", "![](img/fig.png)", title="A", date="2025-01-01")
    notes.write_bytes("NLP/img/fig.png", PNG)
    notes.write_bytes("NLP/doc.txt", b"<script>alert(1)</script>")
    scanner_config = with_store_url(write_config(tmp_path, notes.root, name="scanner.toml"),
                                    store_url, tmp_path)
    scan = subprocess.run([sys.executable, "-m", "feedsvc", "scan", "--config",
                           str(scanner_config)], capture_output=True, text=True, timeout=120,
                          env={**os.environ, "PYTHONPATH": str(REPO)}, cwd=REPO)
    assert scan.returncode == 0, scan.stderr
    # the web node's config names a notes folder that does not exist on its machine
    web_config = with_store_url(write_config(tmp_path, tmp_path / "not-here", name="web.toml"),
                                store_url, tmp_path)
    port = free_port()
    process = start_serve(web_config, port, tmp_path / "web.log")
    try:
        wait_all_up([port], [process])
        base = f"http://127.0.0.1:{port}"
        ok = requests.get(f"{base}/media/notes/NLP/img/fig.png", timeout=10)
        assert (ok.status_code, ok.headers["Content-Type"], ok.content) == (200, "image/png", PNG)
        assert ok.headers["Cache-Control"] == "public, max-age=3600"
        assert ok.headers["X-Content-Type-Options"] == "nosniff"
        assert ok.headers["ETag"] == f'"{hashlib.sha256(PNG).hexdigest()[:32]}"'
        again = requests.get(f"{base}/media/notes/NLP/img/fig.png", timeout=10,
                             headers={"If-None-Match": ok.headers["ETag"]})
        assert (again.status_code, again.content) == (304, b"")
        since = requests.get(f"{base}/media/notes/NLP/img/fig.png", timeout=10,
                             headers={"If-Modified-Since": ok.headers["Last-Modified"]})
        assert since.status_code == 304
        part = requests.get(f"{base}/media/notes/NLP/img/fig.png", timeout=10,
                            headers={"Range": "bytes=0-7"})
        assert (part.status_code, part.content) == (206, PNG[:8])
        text = requests.get(f"{base}/media/notes/NLP/doc.txt", timeout=10)
        assert text.status_code == 200 and text.headers["Content-Type"].startswith("text/plain")
        for url in ["/media/notes/../web.toml", "/media/notes/%2e%2e/web.toml",
                    "/media/notes/NLP/%2e%2e/%2e%2e/web.toml", "/media/notes/NLP\\..\\a.md",
                    "/media/notes//etc/passwd", "/media/notes/%2Fetc%2Fpasswd",
                    "/media/notes/NLP/a.md", "/media/other/NLP/img/fig.png",
                    "/media/notes/NLP/img/none.png", "/media/notes/NLP/img/.fig.png"]:
            response = requests.get(base + url, timeout=10)
            assert 400 <= response.status_code < 500, url
            assert b"PNG" not in response.content and b"store" not in response.content, url
    finally:
        stop(process)
    log = (tmp_path / "web.log").read_text()
    assert "Traceback" not in log
