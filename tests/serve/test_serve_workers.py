"""`feedsvc serve --workers 2` for real: keep-alive after a 304, one scanner per serve, a
webhook's change served by every worker at once, /healthz answering for the whole serve."""

from __future__ import annotations

import socket
import time
from pathlib import Path

import pytest
import requests

from conftest import NotesDir
from conftest import write_config
from test_live_http import free_port
from test_live_http import health
from test_live_http import start_serve
from test_live_http import stop
from test_live_http import wait_for

AUTH = {"Authorization": "Bearer s3cret"}


def read_response(sock: socket.socket) -> tuple[str, dict[str, str], bytes]:
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        assert chunk, "connection closed"
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    headers = {k.lower(): v for k, v in (line.split(": ", 1) for line in lines[1:])}
    while len(body) < int(headers.get("content-length", "0")):
        body += sock.recv(65536)
    return lines[0], headers, body


@pytest.mark.slow
def test_workers_keep_alive_after_304_and_see_a_change_at_once(tmp_path: Path,
                                                               notes: NotesDir) -> None:
    notes.write("NLP/a.md", "a", title="First", date="2025-01-01")
    config_path = write_config(tmp_path, notes.root, extra="[scheduler]\npoll_seconds = 0\n")
    port = free_port()
    log = tmp_path / "serve.log"
    process = start_serve(config_path, port, log)
    try:
        wait_for(lambda: (health(port) or {}).get("last_scan"), timeout=30, interval=0.2)
        # every worker answers for the serve: its scanner holds the lease
        for _ in range(10):
            assert (health(port) or {})["scheduler"]["this_process"] is True
        with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
            request = b"GET /feeds/nlp.atom HTTP/1.1\r\nHost: x\r\nAccept-Encoding: gzip\r\n"
            sock.sendall(request + b"\r\n")
            status, headers, _ = read_response(sock)
            assert status.endswith("200 OK")
            for _ in range(2):  # the connection stays open after a 304
                sock.sendall(request + f"If-None-Match: {headers['etag']}\r\n\r\n".encode())
                status304, headers304, body = read_response(sock)
                assert " 304 " in status304 + " " and body == b""
                assert headers304.get("connection", "").lower() != "close"
        notes.write("NLP/b.md", "b", title="Second", date="2025-01-02")
        assert requests.post(f"http://127.0.0.1:{port}/hooks/refresh", timeout=5,
                             headers=AUTH).status_code == 202
        wait_for(lambda: b"Second" in requests.get(f"http://127.0.0.1:{port}/feeds/nlp.atom",
                                                   timeout=5).content, timeout=10, interval=0.05)
        # once one worker serves it, all do (no once-a-second lag): new connections each time
        for _ in range(20):
            assert b"Second" in requests.get(f"http://127.0.0.1:{port}/feeds/nlp.atom",
                                             timeout=5, headers={"Connection": "close"}).content
    finally:
        stop(process)
    text = log.read_text()
    assert text.count("scanner started") == 1
    assert "Traceback" not in text


@pytest.mark.slow
def test_web_role_never_scans_and_relays_webhooks_through_the_store(tmp_path: Path,
                                                                    notes: NotesDir) -> None:
    notes.write("NLP/a.md", "a", title="First", date="2025-01-01")
    extra = "[scheduler]\npoll_seconds = 0\nlease_seconds = 3\n"
    config_path = write_config(tmp_path, notes.root, extra=extra)
    web_port = free_port()
    web = start_serve(config_path, web_port, tmp_path / "web.log", role="web")
    scanner = None
    try:
        wait_for(lambda: health(web_port), timeout=30, interval=0.2)
        time.sleep(1.0)
        state = health(web_port) or {}
        assert state["status"] == "ok" and state["role"] == "web" and state["last_scan"] is None
        scanner_port = free_port()
        scanner = start_serve(config_path, scanner_port, tmp_path / "scanner.log", role="scanner")
        wait_for(lambda: (health(web_port) or {}).get("last_scan"), timeout=30, interval=0.2)
        notes.write("NLP/b.md", "b", title="Second", date="2025-01-02")
        assert requests.post(f"http://127.0.0.1:{web_port}/hooks/refresh",
                             timeout=5, headers=AUTH).status_code == 202
        wait_for(lambda: b"Second" in requests.get(f"http://127.0.0.1:{web_port}/feeds/nlp.atom",
                                                   timeout=5).content, timeout=3, interval=0.05)
    finally:
        if scanner is not None:
            stop(scanner)
        stop(web)
    assert "scan done" not in (tmp_path / "web.log").read_text()
