"""End to end through real HTTP: a server on a free 127.0.0.1 port read with feedparser and
requests; and `python -m feedsvc serve` started as real processes sharing one store."""

from __future__ import annotations

import datetime as dt
import os
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import feedparser
import pytest
import requests

from feedsvc.serve.scheduler import FeedScheduler
from feedsvc.web.webhook import sign

from conftest import stop
from conftest import REPO
from conftest import LiveServer
from conftest import NotesDir
from conftest import write_config

SECRET = "s3cret"


def post_hook(server: LiveServer, body: bytes = b"{}", **headers: str) -> requests.Response:
    headers.setdefault("X-Hub-Signature-256", sign(SECRET, body))
    return requests.post(f"{server.url}/hooks/refresh", data=body, headers=headers, timeout=10)


def feed(server: LiveServer, slug: str, fmt: str = "atom") -> Any:
    response = requests.get(f"{server.url}/feeds/{slug}.{fmt}", timeout=10)
    assert response.status_code == 200
    parsed = feedparser.parse(response.content)
    assert parsed.bozo == 0, parsed.get("bozo_exception")
    return parsed


def wait_for(predicate: Any, timeout: float = 15.0, interval: float = 0.05) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError("condition not met in time")


def scanner_of(server: LiveServer) -> Any:
    return server.app.extensions["feedsvc"].scanner


def test_new_note_edit_and_delete_through_webhook(live_server: LiveServer, notes: NotesDir) -> None:
    notes.write("NLP/first.md", "第一篇", title="First", date="2025-01-01")
    assert post_hook(live_server).status_code == 202
    assert scanner_of(live_server).wait_idle(15)
    assert [e.title for e in feed(live_server, "nlp").entries] == ["First"]

    notes.write("NLP/new note.md", "新的笔记 $x$", title="New note", date="2025-02-01")
    notes.write("NLP/draft.md", "草稿", title="Draft", draft=True)
    assert post_hook(live_server).status_code == 202
    assert scanner_of(live_server).wait_idle(15)
    parsed = feed(live_server, "nlp")
    assert [e.title for e in parsed.entries] == ["New note", "First"]
    new = parsed.entries[0]
    assert new.link == f"{live_server.url}/entries/nlp/new-note"
    assert requests.get(new.link, timeout=10).status_code == 200

    notes.write("NLP/new note.md", "改过的正文", title="New note", date="2025-02-01")
    notes.touch_forward("NLP/new note.md", 30)
    post_hook(live_server)
    assert scanner_of(live_server).wait_idle(15)
    edited = feed(live_server, "nlp").entries[0]
    assert edited.id == new.id
    assert edited.updated > new.updated
    assert "改过的正文" in edited.content[0].value

    notes.remove("NLP/first.md")
    post_hook(live_server)
    assert scanner_of(live_server).wait_idle(15)
    for fmt in ("atom", "rss"):
        assert [e.title for e in feed(live_server, "nlp", fmt).entries] == ["New note"]
    assert all("Draft" not in e.title for e in feed(live_server, "all").entries)
    assert requests.get(f"{live_server.url}/entries/nlp/draft", timeout=10).status_code == 404


def test_bad_signatures_are_refused(live_server: LiveServer) -> None:
    assert post_hook(live_server, **{"X-Hub-Signature-256": "sha256=" + "0" * 64}).status_code == 401
    response = requests.post(f"{live_server.url}/hooks/refresh", data=b"{}", timeout=10)
    assert response.status_code == 401
    assert scanner_of(live_server).scans_run == 0


def test_oversized_chunked_body_is_413(live_server: LiveServer) -> None:
    def chunks() -> Any:
        for _ in range(1100):
            yield b"y" * 1024
    response = requests.post(f"{live_server.url}/hooks/refresh", data=chunks(),
                             headers={"Authorization": f"Bearer {SECRET}"}, timeout=30)
    assert response.status_code == 413


def test_burst_of_webhooks_yields_at_most_one_more_scan(live_server: LiveServer,
                                                        notes: NotesDir) -> None:
    for i in range(300):
        notes.write(f"NLP/n{i}.md", f"正文 {i} " * 50, date="2025-01-01")
    scanner = scanner_of(live_server)
    assert post_hook(live_server).json()["status"] == "started"
    wait_for(lambda: scanner._run_lock.locked(), timeout=5, interval=0.001)
    statuses = []

    def fire() -> None:
        statuses.append(post_hook(live_server).json()["status"])
    threads = [threading.Thread(target=fire) for _ in range(20)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    assert scanner.wait_idle(30)
    assert scanner.scans_run <= 2
    assert scanner.scans_run == 1 + (1 if "queued" in statuses or "started" in statuses else 0)
    assert len(feed(live_server, "nlp").entries) == 50


def test_future_note_appears_when_due(live_server: LiveServer, notes: NotesDir) -> None:
    scanner = scanner_of(live_server)
    scheduler = FeedScheduler(scanner, poll_seconds=0)
    scheduler.start()
    try:
        wait_for(lambda: scheduler.is_leader, timeout=10)
        due = dt.datetime.now(dt.timezone.utc) + dt.timedelta(seconds=3)
        notes.write("NLP/soon.md", "马上发布", title="Soon", date=due.isoformat())
        notes.write("NLP/now.md", "现在", title="Now", date="2025-01-01")
        post_hook(live_server)
        assert scanner.wait_idle(15)
        assert [e.title for e in feed(live_server, "nlp").entries] == ["Now"]
        wait_for(lambda: [e.title for e in feed(live_server, "nlp").entries] == ["Soon", "Now"],
                 timeout=15, interval=0.2)
        assert dt.datetime.now(dt.timezone.utc) >= due
    finally:
        scheduler.shutdown()


def test_conditional_get_over_http(live_server: LiveServer, notes: NotesDir) -> None:
    notes.write("NLP/a.md", "a", date="2025-01-01")
    scanner_of(live_server).run()
    first = requests.get(f"{live_server.url}/feeds/nlp.rss", timeout=10)
    # requests accepts br when brotli is present: gzip until the background pass made it
    assert first.headers["Content-Encoding"] in ("br", "gzip")
    again = requests.get(f"{live_server.url}/feeds/nlp.rss", timeout=10,
                         headers={"If-None-Match": first.headers["ETag"]})
    assert again.status_code == 304 and again.content == b""


# -- real processes ---------------------------------------------------------------------

def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_serve(config_path: Path, port: int, log: Path, *,
                role: str = "all") -> subprocess.Popen[bytes]:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    with log.open("wb") as out:  # the child keeps its own copy of the descriptor
        return subprocess.Popen(
            [sys.executable, "-m", "feedsvc", "serve", "--config", str(config_path),
             "--port", str(port), "--role", role, "--workers", "2"], stdout=out, stderr=subprocess.STDOUT, env=env, cwd=REPO)


def health(port: int, seen: dict[int, object] | None = None) -> dict[str, Any] | None:
    """The /healthz body, or None while the process is not answering 200; `seen` keeps the
    last answer (or error) per port, for the failure message."""
    try:
        response = requests.get(f"http://127.0.0.1:{port}/healthz", timeout=2)
    except requests.ConnectionError as e:
        if seen is not None:
            seen[port] = repr(e)
        return None
    if seen is not None:
        seen[port] = (response.status_code, response.text[:500])
    return response.json() if response.status_code == 200 else None


def serve_logs(tmp_path: Path, count: int) -> str:
    return "".join(f"--- serve{i}.log\n" + (tmp_path / f"serve{i}.log").read_text(errors="replace")
                   for i in range(count))


@pytest.mark.slow
def test_two_serve_processes_share_one_store_with_one_scheduler(tmp_path: Path,
                                                                notes: NotesDir) -> None:
    notes.write("NLP/a.md", "a", date="2025-01-01")
    config_path = write_config(tmp_path, notes.root, extra="[scheduler]\npoll_seconds = 1\n")
    ports = [free_port(), free_port()]
    processes = [start_serve(config_path, port, tmp_path / f"serve{i}.log")
                 for i, port in enumerate(ports)]
    try:
        seen: dict[int, object] = {}

        def both_up_with_a_leader() -> list[dict[str, Any]] | None:
            states = [health(p, seen) for p in ports]
            if all(states) and any(s["scheduler"]["this_process"] for s in states):  # type: ignore[index]
                return states  # type: ignore[return-value]
            return None
        try:
            states = wait_for(both_up_with_a_leader, timeout=30, interval=0.2)
        except AssertionError:
            alive = [p.poll() for p in processes]
            raise AssertionError(f"no leader in 30 s: exit codes {alive}, last answers {seen}\n"
                                 + serve_logs(tmp_path, 2)) from None
        leaders = [s["scheduler"]["this_process"] for s in states]
        assert sorted(leaders) == [False, True]
        holder = states[0]["scheduler"]["lease_holder"]
        assert states[1]["scheduler"]["lease_holder"] == holder
        # only the leader polls: a note added on disk shows up on both, polled by the leader
        notes.write("NLP/b.md", "b", date="2025-01-02")
        wait_for(lambda: len(feedparser.parse(requests.get(
            f"http://127.0.0.1:{ports[1]}/feeds/nlp.atom", timeout=5).content).entries) == 2,
            timeout=20, interval=0.2)
        last_poll = wait_for(lambda: (health(ports[0]) or {}).get("scheduler", {}).get("last_poll"))
        assert last_poll["owner"] == holder
        # the leader stops: the other process takes the lease over
        leader_index = leaders.index(True)
        stop(processes[leader_index])
        other = ports[1 - leader_index]
        taken = wait_for(lambda: (health(other) or {}).get("scheduler", {}).get("this_process"),
                         timeout=30, interval=0.5)
        assert taken is True
    finally:
        for process in processes:
            stop(process)
    logs = serve_logs(tmp_path, 2)
    assert "Traceback" not in logs, logs
