"""Honest dates for undated notes on a first import (issue 10 item 2; DESIGN.md "Sources and
entries", dates): git author date of the adding commit in a work tree, else mtime, at first
sight only; later new files get their first-seen time; one `git log` pass per scan."""

from __future__ import annotations

import datetime as dt
import os
import subprocess
from pathlib import Path
from typing import Any

import pytest

from feedsvc.sources import dates
from feedsvc.sources import git as sources_git
from feedsvc.config import load_config
from feedsvc.scan.scanner import Scanner
from feedsvc.store import Store
from feedsvc.store import open_store

from conftest import Clock
from conftest import NotesDir
from conftest import write_config

UTC = dt.timezone.utc
NOW = dt.datetime(2026, 1, 20, 12, 0, tzinfo=UTC)


def git(cwd: Path, *args: str, date: str | None = None) -> None:
    env = {**os.environ, "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@example.org",
           "GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@example.org",
           "GIT_CONFIG_GLOBAL": os.devnull, "GIT_CONFIG_NOSYSTEM": "1"}
    if date:
        env["GIT_AUTHOR_DATE"] = date
        env["GIT_COMMITTER_DATE"] = date
    subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True, env=env)


def published(store: Store) -> dict[str, dt.datetime]:
    return {e.rel_path: e.published for e in store.latest_entries("all", NOW + dt.timedelta(days=999),
                                                                   limit=1000)}


def at(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text).replace(tzinfo=UTC)


@pytest.fixture
def count_git_logs(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, ...]]:
    calls: list[tuple[str, ...]] = []
    real = subprocess.run

    def counting(args: Any, *a: Any, **kw: Any) -> Any:
        if "log" in args:
            calls.append(tuple(args))
        return real(args, *a, **kw)
    monkeypatch.setattr(sources_git.subprocess, "run", counting)
    return calls


def test_git_work_tree_dates_from_adding_commits(tmp_path: Path, clock: Clock,
                                                 count_git_logs: list[tuple[str, ...]]) -> None:
    repo = tmp_path / "repo"
    vault = NotesDir(repo / "vault")  # the source is a sub-folder of the work tree
    git(repo, "init", "-q")
    vault.write("NLP/first.md", "# First\n\nundated")
    vault.write("NLP/空格 名.md", "# CJK\n\nundated")
    vault.write("NLP/old-name.md", "# Moved\n\nundated, renamed in git later")
    vault.write("NLP/dated.md", "# Dated", date="2025-06-01")
    git(repo, "add", "-A")
    git(repo, "commit", "-qm", "one", date="2023-03-01T10:00:00Z")
    vault.write("CV/second.md", "# Second\n\nundated")
    git(repo, "add", "-A")
    git(repo, "commit", "-qm", "two", date="2024-05-02T11:00:00Z")
    git(repo, "mv", "vault/NLP/old-name.md", "vault/NLP/new-name.md")
    git(repo, "commit", "-qm", "rename", date="2025-01-01T00:00:00Z")
    # not committed: counts as a plain file (its mtime)
    vault.write("CV/draft-ish.md", "# Uncommitted", mtime=at("2022-07-07T07:07:07").timestamp())
    (repo / "outside.md").write_text("# not in the source")

    config = load_config(write_config(tmp_path, vault.root), env={})
    store = open_store(config.store_url)
    scanner = Scanner(config, store, clock=clock)
    scanner.run()
    dates = published(store)
    assert dates["NLP/first.md"] == at("2023-03-01T10:00:00")
    assert dates["NLP/空格 名.md"] == at("2023-03-01T10:00:00")
    assert dates["CV/second.md"] == at("2024-05-02T11:00:00")
    assert dates["NLP/new-name.md"] == at("2023-03-01T10:00:00")  # a rename keeps its date
    assert dates["CV/draft-ish.md"] == at("2022-07-07T07:07:07")
    assert dates["NLP/dated.md"] == dt.datetime(2025, 6, 1, tzinfo=ZoneShanghai())
    assert len(count_git_logs) == 1  # one pass over the history, not one per file

    # a new file after the first scan gets its first-seen time, even if committed long ago
    clock.advance(hours=1)
    vault.write("NLP/later.md", "# Later\n\nundated")
    git(repo, "add", "-A")
    git(repo, "commit", "-qm", "later", date="2020-01-01T00:00:00Z")
    scanner.run()
    assert published(store)["NLP/later.md"] == clock.now
    assert len(count_git_logs) == 1  # nothing to ask git on a later scan

    # the dates are kept: a delete-and-restore (git checkout) moves none of them
    (vault.root / "NLP" / "first.md").unlink()
    clock.advance(hours=1)
    scanner.run()
    git(repo, "checkout", "--", "vault/NLP/first.md")
    os.utime(vault.path("NLP/first.md"), None)
    clock.advance(hours=1)
    scanner.run()
    assert published(store)["NLP/first.md"] == at("2023-03-01T10:00:00")
    # an edit moves `updated`, never the published date
    vault.write("NLP/空格 名.md", "# CJK\n\nedited")
    clock.advance(hours=1)
    scanner.run()
    entry = {e.rel_path: e for e in store.latest_entries("all", clock.now)}["NLP/空格 名.md"]
    assert entry.published == at("2023-03-01T10:00:00") and entry.updated > entry.published
    store.close()


def ZoneShanghai() -> dt.tzinfo:  # the test config's site.timezone
    from zoneinfo import ZoneInfo
    return ZoneInfo("Asia/Shanghai")


def test_plain_folder_uses_mtimes_at_first_import(tmp_path: Path, notes: NotesDir,
                                                 clock: Clock,
                                                 count_git_logs: list[tuple[str, ...]]) -> None:
    notes.write("NLP/a.md", "# A", mtime=at("2021-02-03T04:05:06").timestamp())
    notes.write("NLP/b.md", "# B", mtime=at("2024-12-31T23:00:00").timestamp())
    notes.write("NLP/future.md", "# F", mtime=(NOW + dt.timedelta(days=30)).timestamp())
    config = load_config(write_config(tmp_path, notes.root), env={})
    store = open_store(config.store_url)
    scanner = Scanner(config, store, clock=clock)
    scanner.run()
    dates = published(store)
    assert dates["NLP/a.md"] == at("2021-02-03T04:05:06")
    assert dates["NLP/b.md"] == at("2024-12-31T23:00:00")
    assert dates["NLP/future.md"] == clock.now  # never later than the scan
    # feeds are not flooded with one timestamp: their Last-Modified is the newest note's
    state = store.feed_state("all")
    assert state is not None and state.last_modified == clock.now
    # a rename keeps the date it had, mtime of the new path notwithstanding
    clock.advance(hours=1)
    notes.rename("NLP/a.md", "NLP/renamed.md")
    os.utime(notes.path("NLP/renamed.md"), None)
    scanner.run()
    assert published(store)["NLP/renamed.md"] == at("2021-02-03T04:05:06")
    # a new file later: first seen, not its old mtime
    clock.advance(hours=1)
    notes.write("NLP/new.md", "# N", mtime=at("2019-01-01T00:00:00").timestamp())
    scanner.run()
    assert published(store)["NLP/new.md"] == clock.now
    store.close()


def test_an_empty_first_scan_makes_later_files_new(tmp_path: Path, notes: NotesDir,
                                                  clock: Clock) -> None:
    notes.root.mkdir(parents=True, exist_ok=True)
    config = load_config(write_config(tmp_path, notes.root), env={})
    store = open_store(config.store_url)
    scanner = Scanner(config, store, clock=clock)
    scanner.run()
    clock.advance(hours=2)
    notes.write("NLP/a.md", "# A", mtime=at("2021-02-03T04:05:06").timestamp())
    scanner.run()
    assert published(store)["NLP/a.md"] == clock.now
    store.close()


def test_parse_added_log_follows_renames_and_readds() -> None:
    log = ("\x011000\x00\nA\x00a.md\x00A\x00b.md\x00"
           "\x012000\x00\nR100\x00a.md\x00c.md\x00"
           "\x013000\x00\nA\x00b.md\x00")
    got = sources_git.parse_added_log(log)
    assert got == {"c.md": dt.datetime.fromtimestamp(1000, UTC),
                   "b.md": dt.datetime.fromtimestamp(3000, UTC)}


def test_not_a_work_tree_is_plain(tmp_path: Path) -> None:
    (tmp_path / "x.md").write_text("x")
    assert sources_git.added_dates(tmp_path) == {}
    stamp = at("2020-01-01T00:00:00")
    assert dates.import_dates(tmp_path, {"x.md": int(stamp.timestamp() * 1e9)}, now=NOW) == \
        {"x.md": stamp}
