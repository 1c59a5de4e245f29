"""Fixtures that build real things in tmp_path: notes on disk, a TOML config read by the
real loader, a SQLite store file, the app, and a real HTTP server on a free port."""

from __future__ import annotations

import collections
import dataclasses
import datetime as dt
import os
import signal
import subprocess
import threading
import time
import urllib.parse
import http.server
from collections.abc import Callable
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from werkzeug.serving import make_server

from feedsvc.config import Config
from feedsvc.config import load_config
from feedsvc.scan import Scanner
from feedsvc.store import Store
from feedsvc.store import open_store
from feedsvc.web import create_app

from pg import PostgresNotInstalled
from pg import PostgresServer

REPO = Path(__file__).resolve().parents[1]
DATA = Path(__file__).resolve().parent / "data"
BASE_URL = "http://feeds.example.org/"


class Clock:
    """A fixed clock that tests move forward explicitly (no sleeping)."""

    def __init__(self, start: dt.datetime) -> None:
        self.now = start

    def __call__(self) -> dt.datetime:
        return self.now

    def advance(self, **delta: float) -> dt.datetime:
        self.now += dt.timedelta(**delta)
        return self.now


class NotesDir:
    """Writes notes (front matter + body) and other files below a source root."""

    def __init__(self, root: Path) -> None:
        self.root = root
        root.mkdir(parents=True, exist_ok=True)

    def path(self, rel: str) -> Path:
        return self.root / rel

    def write(self, rel: str, body: str = "正文。", *, mtime: float | None = None,
              **front_matter: Any) -> Path:
        text = body
        if front_matter:
            fm = yaml.safe_dump(front_matter, allow_unicode=True, sort_keys=False)
            text = f"---\n{fm}---\n\n{body}"
        return self.write_bytes(rel, text.encode("utf-8"), mtime=mtime)

    def write_bytes(self, rel: str, data: bytes, *, mtime: float | None = None) -> Path:
        path = self.path(rel)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        if mtime is not None:
            os.utime(path, (mtime, mtime))
        return path

    def touch_forward(self, rel: str, seconds: float = 5) -> None:
        """Move a file's mtime forward so a scan sees it as changed."""
        st = self.path(rel).stat()
        os.utime(self.path(rel), (st.st_atime, st.st_mtime + seconds))

    def rename(self, old: str, new: str) -> None:
        self.path(new).parent.mkdir(parents=True, exist_ok=True)
        self.path(old).rename(self.path(new))

    def remove(self, rel: str) -> None:
        self.path(rel).unlink()


def write_config(tmp_path: Path, notes_root: Path, *, extra: str = "",
                 name: str = "feedsvc.toml", min_interval: float = 0) -> Path:
    path = tmp_path / name
    path.write_text(f"""
[site]
title = "INCOMING TRANSMISSION"
base_url = "{BASE_URL}"
timezone = "Asia/Shanghai"
author = "Test Author"

[[sources]]
name = "notes"
path = "{notes_root.as_posix()}"

[store]
url = "sqlite:///{(tmp_path / 'feedsvc.db').as_posix()}"

[webhook]
secret = "s3cret"
min_interval_seconds = {min_interval}
{extra}
""", encoding="utf-8")
    return path


@pytest.fixture
def clock() -> Clock:
    return Clock(dt.datetime(2026, 1, 20, 12, 0, tzinfo=dt.timezone.utc))


@pytest.fixture
def notes(tmp_path: Path) -> NotesDir:
    return NotesDir(tmp_path / "notes")


@pytest.fixture
def config_path(tmp_path: Path, notes: NotesDir) -> Path:
    return write_config(tmp_path, notes.root)


@pytest.fixture
def config(config_path: Path) -> Config:
    return load_config(config_path, env={})


@pytest.fixture
def store(config: Config) -> Iterator[Store]:
    s = open_store(config.store_url, keep_per_category=config.store.keep_per_category,
                   tombstone_days=config.feeds.tombstone_days)
    yield s
    s.close()


@pytest.fixture(scope="session")
def pg_server() -> Iterator[PostgresServer]:
    """A real PostgreSQL for the whole session (FAILS, never skips, when not installed)."""
    try:
        server = PostgresServer()
    except PostgresNotInstalled as e:
        pytest.fail(str(e), pytrace=False)
    try:
        server.start()
    except Exception as e:  # initdb/pg_ctl output says why; clean the folder up either way
        server.stop()
        pytest.fail(f"cannot start the test PostgreSQL server: {e}", pytrace=False)
    yield server
    server.stop()


@pytest.fixture(params=["sqlite", "postgresql"])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """The same test on both backends: a SQLite file, or a fresh PostgreSQL database."""
    if request.param == "sqlite":
        return f"sqlite:///{(tmp_path / 'backend.db').as_posix()}"
    server: PostgresServer = request.getfixturevalue("pg_server")
    return server.database()


@pytest.fixture
def backend_store(store_url: str, config: Config) -> Iterator[Store]:
    """`store` on each backend (modules that run on both say `store = backend_store`)."""
    s = open_store(store_url, keep_per_category=config.store.keep_per_category,
                   tombstone_days=config.feeds.tombstone_days)
    yield s
    s.close()


@pytest.fixture
def scanner(config: Config, store: Store, clock: Clock) -> Scanner:
    return Scanner(config, store, clock=clock)


@pytest.fixture
def app(config: Config, store: Store, clock: Clock, scanner: Scanner) -> Any:
    app = create_app(config, store=store, clock=clock, scanner=scanner)
    app.config["TESTING"] = True
    return app


@pytest.fixture
def client(app: Any) -> Any:
    return app.test_client()


@pytest.fixture
def runner(app: Any) -> Any:
    return app.test_cli_runner()


class LiveServer:
    """A real HTTP server on a free 127.0.0.1 port; the app is attached once the port is
    known, so its base_url (and every feed link) points at this very server."""

    def __init__(self) -> None:
        self.app: Any = None
        self.log: list[tuple[str, str, int]] = []  # (method, path, status) of every response
        self.server = make_server("127.0.0.1", 0, self._dispatch, threaded=True)
        self.port = self.server.server_port
        self.url = f"http://127.0.0.1:{self.port}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def _dispatch(self, environ: Any, start_response: Any) -> Any:
        def recording_start_response(status: str, headers: Any, *args: Any) -> Any:
            self.log.append((environ["REQUEST_METHOD"], environ.get("PATH_INFO", ""),
                             int(status.split()[0])))
            return start_response(status, headers, *args)
        return self.app(environ, recording_start_response)

    def __enter__(self) -> LiveServer:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.thread.join(timeout=10)


def with_base_url(config: Config, base_url: str) -> Config:
    return dataclasses.replace(config, site=dataclasses.replace(config.site, base_url=base_url))


@pytest.fixture
def live_server(config: Config, store: Store) -> Iterator[LiveServer]:
    """The real app (wall-clock time) behind a real HTTP server."""
    server = LiveServer()
    server.app = create_app(with_base_url(config, server.url + "/"), store=store)
    with server:
        yield server
    server.app.extensions["feedsvc"].scanner.wait_idle(10)


def stop(process: subprocess.Popen[bytes]) -> None:
    """SIGTERM a server process, SIGKILL it if it has not gone within 10 s."""
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(5)


class Hub:
    """A stand-in WebSub hub on 127.0.0.1 that records publish pings and the status it gave
    each. `status`: one for every ping, or one per pinged feed URL."""

    def __init__(self, status: int | Callable[[str], int] = 204, delay: float = 0.0) -> None:
        self.pings: list[dict[str, str]] = []
        self.statuses: collections.Counter[int] = collections.Counter()
        lock = threading.Lock()
        hub = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                ping = dict(urllib.parse.parse_qsl(body.decode()))
                answer = status(ping.get("hub.url", "")) if callable(status) else status
                with lock:
                    hub.pings.append(ping)
                    hub.statuses[answer] += 1
                if delay:
                    time.sleep(delay)
                self.send_response(answer)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> Hub:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(10)
