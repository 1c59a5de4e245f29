"""`watch = true` sources: file-system events become targeted scan requests (feedsvc/sources/watch.py),
in the serve's scanner process while it holds the lease; real files, real inotify, a real serve."""

from __future__ import annotations

import logging
import shutil
import threading
import time
from pathlib import Path
from typing import Any

import pytest
import requests

from feedsvc.model import Source
from feedsvc.sources.watch import SourceWatcher
from feedsvc.sources.watch import relative_paths
from feedsvc.sources.watch import relevant
from feedsvc.model import ScanRequest

from conftest import NotesDir
from test_live_http import free_port
from test_live_http import health
from test_live_http import start_serve
from test_live_http import stop
from test_live_http import wait_for


class Requests:
    """Records what a SourceWatcher asks for (stands in for Scanner.request)."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, tuple[str, ...] | None, str]] = []
        self.lock = threading.Lock()

    def __call__(self, request: ScanRequest) -> str:
        assert request.source is not None
        with self.lock:
            self.calls.append((request.source, request.paths, request.reason))
        return "started"

    def paths(self) -> set[str]:
        with self.lock:
            return {p for _, paths, _ in self.calls for p in (paths or ())}

    def whole(self) -> int:
        with self.lock:
            return sum(1 for _, paths, _ in self.calls if paths is None)


def test_hidden_and_swap_files_are_not_relevant(tmp_path: Path) -> None:
    assert relevant("NLP/a.md") and relevant("img/x.png") and relevant("NLP")
    for path in (".git/index", "NLP/.a.md.swp", "NLP/a.md~", "NLP/#a.md#", "NLP/4913",
                 ".obsidian/workspace.json", "a/.hidden/b.md", "NLP/a.md.swp", ""):
        assert not relevant(path), path
    root = tmp_path / "notes"
    changed = [str(root / "NLP/a.md"), str(root / ".git/HEAD"), str(root), str(tmp_path / "x.md"),
               str(root / "NLP")]
    assert relative_paths(root, changed) == ("NLP", "NLP/a.md")


def _watcher(tmp_path: Path, requests_: Requests, **kwargs: Any) -> tuple[SourceWatcher, Path]:
    root = tmp_path / "notes"
    root.mkdir(exist_ok=True)
    sources = [Source(name="watched", root=root, watch=True),
               Source(name="plain", root=tmp_path / "plain", watch=False)]
    (tmp_path / "plain").mkdir(exist_ok=True)
    return SourceWatcher(sources, requests_, **kwargs), root


def test_a_saved_file_becomes_one_targeted_request_quickly(tmp_path: Path) -> None:
    calls = Requests()
    watcher, root = _watcher(tmp_path, calls)
    assert [s.name for s in watcher.sources] == ["watched"]  # watch = false: not watched
    watcher.start()
    try:
        time.sleep(0.3)  # the inotify watch is set up
        started = time.monotonic()
        (root / "NLP").mkdir()
        (root / "NLP" / "a.md").write_text("# a\n")
        (root / ".git").mkdir()
        (root / ".git" / "HEAD").write_text("ref\n")
        (tmp_path / "plain" / "b.md").write_text("# b\n")
        # a file made in a new folder at once may come before inotify watches that folder:
        # the folder itself is then named (a targeted scan walks it)
        wait_for(lambda: calls.paths() & {"NLP", "NLP/a.md"}, timeout=5, interval=0.01)
        assert time.monotonic() - started < 1.0, calls.calls
        time.sleep(0.2)
        assert all(c[0] == "watched" and c[2] == "watch" for c in calls.calls)
        assert not any(p.startswith(".git") or p.endswith("b.md") for p in calls.paths())
        (root / "NLP" / "a.md").unlink()
        wait_for(lambda: len(calls.calls) >= 2, timeout=5, interval=0.01)
    finally:
        stopping = time.monotonic()
        watcher.stop()
        assert time.monotonic() - stopping < 2.0
    assert not any(t.name.startswith("feedsvc-watch") for t in threading.enumerate())


def test_watches_only_while_holding_the_lease(tmp_path: Path) -> None:
    calls = Requests()
    leader = threading.Event()
    watcher, root = _watcher(tmp_path, calls, is_leader=leader.is_set)
    watcher.start()
    try:
        time.sleep(0.3)
        (root / "a.md").write_text("a")
        time.sleep(0.8)
        assert calls.calls == []  # a standby does not watch
        leader.set()  # it takes over: it watches from now on
        time.sleep(1.0)
        (root / "b.md").write_text("b")
        wait_for(lambda: "b.md" in calls.paths(), timeout=5, interval=0.01)
        leader.clear()
        time.sleep(1.0)
        count = len(calls.calls)
        (root / "c.md").write_text("c")
        time.sleep(0.8)
        assert len(calls.calls) == count
    finally:
        watcher.stop()


def test_a_vanished_root_is_logged_and_watched_again_when_back(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    calls = Requests()
    watcher, root = _watcher(tmp_path, calls)
    caplog.set_level(logging.INFO, logger="feedsvc.sources.watch")
    (root / "NLP").mkdir()
    (root / "NLP" / "a.md").write_text("a")
    watcher.start()
    try:
        time.sleep(0.3)
        shutil.rmtree(root)
        wait_for(lambda: "source root is missing" in caplog.text, timeout=5, interval=0.05)
        assert "source=watched" in caplog.text
        assert calls.paths() == set()  # a vanished root never becomes a removal of its notes
        root.mkdir()
        wait_for(lambda: calls.whole() >= 1, timeout=10, interval=0.05)  # back: walk it all
        time.sleep(0.6)
        (root / "new.md").write_text("new")
        wait_for(lambda: "new.md" in calls.paths(), timeout=5, interval=0.01)
    finally:
        watcher.stop()


def test_an_inotify_limit_falls_back_to_polling(tmp_path: Path,
                                                caplog: pytest.LogCaptureFixture) -> None:
    from watchfiles import watch as real_watch

    def limited(*paths: Any, **kwargs: Any) -> Any:
        if not kwargs.get("force_polling"):
            raise OSError("OS file watch limit reached")
        return real_watch(*paths, **kwargs)

    calls = Requests()
    watcher, root = _watcher(tmp_path, calls, watch=limited)
    caplog.set_level(logging.INFO, logger="feedsvc.sources.watch")
    watcher.start()
    try:
        wait_for(lambda: "polling instead" in caplog.text, timeout=5, interval=0.05)
        assert "source=watched" in caplog.text and watcher.polling == {"watched"}
        time.sleep(0.6)
        (root / "a.md").write_text("a")
        wait_for(lambda: "a.md" in calls.paths(), timeout=5, interval=0.02)
    finally:
        watcher.stop()


def _json_feed(port: int, slug: str) -> dict[str, Any] | None:
    response = requests.get(f"http://127.0.0.1:{port}/feeds/{slug}.json", timeout=5)
    return response.json() if response.status_code == 200 else None


def _titles(port: int, slug: str) -> set[str]:
    feed = _json_feed(port, slug)
    return {item["title"] for item in (feed or {}).get("items", [])}


@pytest.mark.slow
def test_serve_shows_saved_edited_and_deleted_notes_without_a_webhook(tmp_path: Path) -> None:
    watched, plain = NotesDir(tmp_path / "watched"), NotesDir(tmp_path / "plain")
    watched.write("NLP/a.md", "a", title="First", date="2025-01-01")
    plain.write("Python/p.md", "p", title="Plain one", date="2025-01-01")
    config_path = tmp_path / "feedsvc.toml"
    config_path.write_text(f"""
[site]
base_url = "http://127.0.0.1/"

[[sources]]
name = "watched"
path = "{watched.root.as_posix()}"
watch = true

[[sources]]
name = "plain"
path = "{plain.root.as_posix()}"

[store]
url = "sqlite:///{(tmp_path / 'feedsvc.db').as_posix()}"

[scheduler]
poll_seconds = 0
""", encoding="utf-8")
    port = free_port()
    log = tmp_path / "serve.log"
    process = start_serve(config_path, port, log)
    try:
        wait_for(lambda: (health(port) or {}).get("last_scan"), timeout=30, interval=0.2)
        wait_for(lambda: "watching sources: watched" in log.read_text(), timeout=10)
        time.sleep(0.5)  # the inotify watch is set up once the lease is held

        def shows(check: Any) -> float:
            started = time.monotonic()
            wait_for(check, timeout=5, interval=0.02)
            return time.monotonic() - started

        watched.write("NLP/b.md", "b", title="Second", date="2025-01-02")
        new = shows(lambda: "Second" in _titles(port, "nlp"))
        watched.write("NLP/a.md", "a", title="First, edited", date="2025-01-01")
        edit = shows(lambda: "First, edited" in _titles(port, "nlp"))
        watched.remove("NLP/b.md")
        gone = shows(lambda: "Second" not in _titles(port, "nlp"))
        assert max(new, edit, gone) < 3.0, (new, edit, gone)  # a second, with CI slack
        plain.write("Python/q.md", "q", title="Plain two", date="2025-01-02")
        time.sleep(2.0)
        assert _titles(port, "python") == {"Plain one"}  # watch = false: only poll or webhook
    finally:
        stop(process)
    text = log.read_text()
    assert "Traceback" not in text
    assert "watch" in text
