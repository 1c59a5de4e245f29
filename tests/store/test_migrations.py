"""Schema versions (Alembic): the migrations build exactly schema.metadata on SQLite and
PostgreSQL; revision 0001 is the previous release's schema; a store that release wrote is
upgraded with every row, id, date and validator intact; a store from a newer release is
refused with nothing touched; `feedsvc migrate` says where the store stands."""

from __future__ import annotations

import datetime as dt
import os
import sqlite3
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import requests
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import create_engine
from sqlalchemy import inspect
from sqlalchemy import text

from feedsvc.config import load_config
from feedsvc.errors import StoreVersionError
from feedsvc.scan.scanner import Scanner
from feedsvc.store import Store
from feedsvc.store import open_store
from feedsvc.store.migrator import alembic_config
from feedsvc.store.migrator import head_revision
from feedsvc.store.schema import metadata
from feedsvc.web import create_app

from conftest import DATA
from conftest import REPO
from conftest import Clock
from conftest import NotesDir
from conftest import write_config
from test_media import PNG
from test_media import free_port
from test_media import start_serve
from test_media import stop
from test_media import wait_all_up
from test_media import with_store_url

MEDIA_TABLES = ("media", "media_blobs")
HEAD = head_revision()  # 0006 here; later revisions chain onto it
TABLES_0001 = ("notes", "entries", "links", "first_seen", "tombstones", "feed_states", "meta",
               "locks")


def run_cli(*args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    return subprocess.run([sys.executable, "-m", "feedsvc", *args], capture_output=True,
                          text=True, timeout=timeout, env=env, cwd=REPO)


def config_for(tmp_path: Path, notes: NotesDir, store_url: str, name: str = "cfg.toml") -> Path:
    path = write_config(tmp_path, notes.root, name=name)
    text_ = path.read_text(encoding="utf-8")
    sqlite_line = f'url = "sqlite:///{(tmp_path / "feedsvc.db").as_posix()}"'
    assert sqlite_line in text_
    path.write_text(text_.replace(sqlite_line, f'url = "{store_url}"'), encoding="utf-8")
    return path


def dump(store_url: str, columns: dict[str, list[str]] | None = None
         ) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of every table, sorted: what "nothing changed" compares (only `columns` of
    the tables it names, when given: a later revision's columns left out)."""
    engine = create_engine(store_url)
    try:
        with engine.connect() as conn:
            names = sorted(inspect(conn).get_table_names())
            out = {}
            for name in names:
                chosen = ", ".join(f'"{c}"' for c in columns[name]) \
                    if columns and name in columns else "*"
                out[name] = sorted(tuple(r) for r in conn.execute(
                    text(f'SELECT {chosen} FROM "{name}"')))
            return out
    finally:
        engine.dispose()


def test_migrated_schema_matches_the_metadata(store_url: str) -> None:
    store = open_store(store_url)
    try:
        with store.engine.connect() as conn:
            diffs = compare_metadata(MigrationContext.configure(
                conn, opts={"compare_type": True}), metadata)
        assert diffs == []
        status = store.schema_status()
        assert status is not None and status.revision == HEAD and status.is_head
    finally:
        store.close()


def test_revision_0001_is_the_previous_release_schema_exactly(tmp_path: Path) -> None:
    """On SQLite the DDL text itself is compared with the frozen create_all output of the
    release before schema versions (tests/data/store_before_versions.sql)."""
    engine = create_engine(f"sqlite:///{tmp_path / 'new.db'}")
    with engine.begin() as conn:  # later revisions may change these tables (0005 does)
        command.upgrade(alembic_config(conn), "0001")
    engine.dispose()
    with sqlite3.connect(tmp_path / "new.db") as conn:
        made = [sql.strip() for (table, sql) in conn.execute(
            "SELECT tbl_name, sql FROM sqlite_master WHERE sql IS NOT NULL ORDER BY rowid")
            if table in TABLES_0001]
    lines = (DATA / "store_before_versions.sql").read_text().splitlines()
    frozen = "\n".join(line for line in lines if not line.startswith("--")).split(";")
    assert sorted(" ".join(s.split()) for s in made) == \
        sorted(" ".join(s.split()) for s in frozen if s.strip())


def fill(store: Store, notes: NotesDir, tmp_path: Path, clock: Clock) -> None:
    """A real store, the way scans write it: entries, an undated note's first-seen time,
    a deletion's tombstone, feed validators, a lease."""
    config = load_config(write_config(tmp_path, notes.root, name="fill.toml"), env={})
    notes.write("NLP/a.md", "正文 a", title="A", date="2025-01-01")
    notes.write("NLP/undated.md", "no date here", title="Undated")
    notes.write("Large Model/b.md", "正文 b", title="B", date="2025-01-03", tags=["x"])
    notes.write("NLP/gone.md", "will go", title="Gone", date="2025-01-02")
    scanner = Scanner(config, store, clock=clock)
    scanner.run()
    clock.advance(hours=1)
    notes.remove("NLP/gone.md")
    scanner.run()
    store.try_lock("scheduler", "someone", now=clock(), ttl=dt.timedelta(seconds=30))


def feed_bytes(store: Store, tmp_path: Path, notes: NotesDir, clock: Clock) -> dict[str, Any]:
    config = load_config(write_config(tmp_path, notes.root, name="read.toml"), env={})
    client = create_app(config, store=store, clock=clock).test_client()
    out: dict[str, Any] = {}
    for url in ("/feeds/all.atom", "/feeds/nlp.rss", "/feeds/large-model.json", "/feeds.opml"):
        response = client.get(url)
        assert response.status_code == 200, url
        out[url] = (response.data, response.headers["ETag"], response.headers["Last-Modified"])
    return out


def make_legacy(store_url: str) -> None:
    """Turn a store into what the release before schema versions wrote: 0001 is that
    schema exactly (test above), so downgrading to it and dropping the version table leaves
    exactly its tables and columns."""
    engine = create_engine(store_url)
    try:
        with engine.begin() as conn:
            command.downgrade(alembic_config(conn), "0001")
            conn.execute(text('DROP TABLE "alembic_version"'))
    finally:
        engine.dispose()


def columns_of(store_url: str) -> dict[str, list[str]]:
    engine = create_engine(store_url)
    try:
        with engine.connect() as conn:
            found = inspect(conn)
            return {name: [c["name"] for c in found.get_columns(name)]
                    for name in found.get_table_names()}
    finally:
        engine.dispose()


def test_store_from_before_versions_is_stamped_and_upgraded_intact(
        store_url: str, notes: NotesDir, tmp_path: Path, clock: Clock) -> None:
    store = open_store(store_url)
    fill(store, notes, tmp_path, clock)
    feeds_before = feed_bytes(store, tmp_path, notes, clock)
    store.close()
    make_legacy(store_url)
    rows_before = dump(store_url)
    legacy_columns = columns_of(store_url)
    assert set(rows_before) == set(TABLES_0001)
    assert len(rows_before["entries"]) == 3 and len(rows_before["first_seen"]) >= 1
    assert rows_before["tombstones"] and rows_before["feed_states"]

    result = run_cli("migrate", "--config", str(config_for(tmp_path, notes, store_url)))
    assert (result.returncode, result.stdout.strip()) == (0, f"store at schema {HEAD} (head)"), \
        result.stderr
    assert all(digest for (digest,) in dump(store_url, {"entries": ["digest"]})["entries"])
    rows_after = dump(store_url, legacy_columns)  # the columns of later revisions aside
    assert rows_after.pop("alembic_version") == [(HEAD,)]
    assert rows_after.pop("media") == [] and rows_after.pop("media_blobs") == []
    for later in set(rows_after) - set(TABLES_0001):
        del rows_after[later]  # tables of revisions after 0002 (they may fill themselves)
    assert rows_after == rows_before  # every entry, id, first-seen time, validator, lease
    store = open_store(store_url)
    try:
        assert feed_bytes(store, tmp_path, notes, clock) == feeds_before
    finally:
        store.close()


AP_TABLES = ("ap_keys", "ap_followers", "ap_remote_actors", "ap_publications", "ap_deliveries")


def test_a_store_at_0005_upgrades_to_0006_intact(
        store_url: str, notes: NotesDir, tmp_path: Path, clock: Clock) -> None:
    """0006 adds the ActivityPub tables, empty, and touches nothing stored before."""
    store = open_store(store_url)
    fill(store, notes, tmp_path, clock)
    feeds_before = feed_bytes(store, tmp_path, notes, clock)
    store.close()
    engine = create_engine(store_url)
    try:
        with engine.begin() as conn:
            command.downgrade(alembic_config(conn), "0005")
    finally:
        engine.dispose()
    rows_before = dump(store_url)
    columns_0005 = columns_of(store_url)
    assert not set(AP_TABLES) & set(rows_before)
    assert rows_before.pop("alembic_version") == [("0005",)]
    assert len(rows_before["entries"]) == 3 and rows_before["tombstones"]

    store = open_store(store_url)
    try:
        status = store.schema_status()
        assert status is not None and status.revision == HEAD
        rows_after = dump(store_url, columns_0005)  # columns of later revisions aside
        rows_after.pop("alembic_version")
        assert {name: rows_after.pop(name) for name in AP_TABLES} == \
            {name: [] for name in AP_TABLES}
        for later in set(rows_after) - set(rows_before):
            del rows_after[later]  # tables of revisions after 0006
        assert rows_after == rows_before
        assert feed_bytes(store, tmp_path, notes, clock) == feeds_before
        assert store.federation.save_key("nlp", "PRIV", "PUB", clock()) == ("PRIV", "PUB")
    finally:
        store.close()


def test_store_newer_than_the_code_is_refused_untouched(
        store_url: str, notes: NotesDir, tmp_path: Path, clock: Clock) -> None:
    store = open_store(store_url)
    fill(store, notes, tmp_path, clock)
    with store.engine.begin() as conn:
        conn.execute(text("UPDATE alembic_version SET version_num = '0099'"))
    store.close()
    before = dump(store_url)
    with pytest.raises(StoreVersionError) as caught:
        open_store(store_url)
    assert caught.value.revision == "0099" and "'0099'" in str(caught.value)
    config_path = config_for(tmp_path, notes, store_url)
    migrate = run_cli("migrate", "--config", str(config_path))
    assert migrate.returncode == 1
    assert "schema revision '0099', which this feedsvc does not know" in migrate.stderr
    serve = run_cli("serve", "--config", str(config_path), "--port", "0")
    assert serve.returncode == 1
    assert "schema revision '0099'" in serve.stderr and "Traceback" not in serve.stderr
    assert dump(store_url) == before


def test_migrate_on_an_empty_store_and_again(tmp_path: Path, notes: NotesDir) -> None:
    config_path = config_for(tmp_path, notes, f"sqlite:///{tmp_path / 'fresh' / 'f.db'}")
    first = run_cli("migrate", "--config", str(config_path))
    again = run_cli("migrate", "--config", str(config_path))
    assert (first.returncode, first.stdout) == (0, f"store at schema {HEAD} (head)\n"), \
        first.stderr
    assert (again.returncode, again.stdout) == (0, f"store at schema {HEAD} (head)\n"), \
        again.stderr


@pytest.mark.slow
@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
@pytest.mark.parametrize("start", ["empty", "previous-release"])
def test_four_processes_started_together_all_come_up(
        backend: str, start: str, notes: NotesDir, tmp_path: Path, clock: Clock,
        request: pytest.FixtureRequest) -> None:
    """On an empty store, and on one the release before schema versions wrote (whose feeds
    are then byte-identical, validators included)."""
    if backend == "sqlite":
        store_url = f"sqlite:///{(tmp_path / 'empty' / 'feedsvc.db').as_posix()}"
    else:
        store_url = request.getfixturevalue("pg_server").database("empty")
    feeds_before: dict[str, Any] = {}
    if start == "previous-release":
        # the processes scan with the wall clock: fill with it too (tombstones expire)
        clock = Clock(dt.datetime.now(dt.timezone.utc) - dt.timedelta(minutes=5))
        store = open_store(store_url)
        fill(store, notes, tmp_path, clock)
        feeds_before = feed_bytes(store, tmp_path, notes, clock)
        store.close()
        make_legacy(store_url)
    else:
        notes.write("NLP/a.md", "正文 a", title="A", date="2025-01-01")
    notes.write_bytes("NLP/fig.png", PNG)
    config_path = with_store_url(write_config(tmp_path, notes.root), store_url, tmp_path)
    ports = [free_port() for _ in range(4)]
    processes = [start_serve(config_path, port, tmp_path / f"serve{i}.log")
                 for i, port in enumerate(ports)]
    try:
        wait_all_up(ports, processes, timeout=90)
        for port in ports:
            media = requests.get(f"http://127.0.0.1:{port}/media/notes/NLP/fig.png", timeout=10)
            assert media.status_code == 200
            for url, (body, etag, last_modified) in feeds_before.items():
                response = requests.get(f"http://127.0.0.1:{port}{url}", timeout=10,
                                        headers={"Accept-Encoding": "identity"})
                assert response.status_code == 200, url
                assert (response.content, response.headers["ETag"],
                        response.headers["Last-Modified"]) == (body, etag, last_modified), url
    finally:
        for process in processes:
            stop(process)
    logs = "".join((tmp_path / f"serve{i}.log").read_text() for i in range(4))
    assert "Traceback" not in logs and "already exists" not in logs
    store = open_store(store_url, migrate=False)
    try:
        status = store.schema_status()
        assert status is not None and status.revision == HEAD
    finally:
        store.close()


def test_a_locked_sqlite_store_is_migrated_once_the_lock_is_gone(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """SQLite may say "database is locked" without waiting (WAL checkpoint, index recovery
    in another process): the migration, rolled back, is tried again; other errors are not."""
    from sqlalchemy.exc import OperationalError

    from feedsvc.store import migrator

    real = migrator._migrate
    calls: list[int] = []

    def locked_twice(engine: Any) -> Any:
        calls.append(1)
        if len(calls) <= 2:
            raise OperationalError("BEGIN EXCLUSIVE", {}, sqlite3.OperationalError(
                "database is locked"))
        return real(engine)

    monkeypatch.setattr(migrator, "_migrate", locked_twice)
    store = open_store(f"sqlite:///{(tmp_path / 'feedsvc.db').as_posix()}")
    try:
        status = store.schema_status()
        assert status is not None and status.revision == HEAD and len(calls) == 3
    finally:
        store.close()

    def broken(engine: Any) -> Any:
        calls.append(1)
        raise OperationalError("SELECT", {}, sqlite3.OperationalError("disk I/O error"))

    monkeypatch.setattr(migrator, "_migrate", broken)
    calls.clear()
    with pytest.raises(Exception, match="disk I/O error"):
        open_store(f"sqlite:///{(tmp_path / 'other.db').as_posix()}")
    assert len(calls) == 1
