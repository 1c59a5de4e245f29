"""Crash consistency: SIGKILL a running `feedsvc scan` at many points and show that every time
the store opens, holds (and serves) the previous complete state, and the next scan converges
to exactly the state an uninterrupted scan reaches."""

from __future__ import annotations

import itertools
import os
import random
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from feedsvc.config import load_config
from feedsvc.scan import Scanner
from feedsvc.store import open_store
from feedsvc.web import create_app

from conftest import REPO
from conftest import NotesDir
from conftest import write_config

TRIALS = 24
# Everything here is a function of the notes on disk; times of the scan itself (tombstone
# times, Last-Modified of a changed feed, first-seen of undated new notes) are left out, and
# all notes the test adds are dated.
DUMPS = {
    "entries": "SELECT * FROM entries ORDER BY id",
    "notes": "SELECT * FROM notes ORDER BY source, rel_path",
    "links": "SELECT * FROM links ORDER BY entry_id, target",
    "first_seen": "SELECT entry_id FROM first_seen ORDER BY entry_id",
    "tombstones": "SELECT entry_id, category_slug, title, entry_path FROM tombstones ORDER BY 1, 2",
}


def dump(db: Path) -> dict[str, list[tuple[Any, ...]]]:
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        assert conn.execute("PRAGMA integrity_check").fetchone() == ("ok",)
        return {name: conn.execute(sql).fetchall() for name, sql in DUMPS.items()}
    finally:
        conn.close()


def copy_db(src: Path, dst: Path) -> None:
    for suffix in ("", "-wal", "-shm"):
        if Path(f"{dst}{suffix}").exists():
            Path(f"{dst}{suffix}").unlink()
    conn = sqlite3.connect(src)
    target = sqlite3.connect(dst)
    conn.backup(target)
    target.close()
    conn.close()


def all_atom(config_path: Path) -> bytes:
    config = load_config(config_path, env={})
    store = open_store(config.store_url)
    try:
        return create_app(config, store=store).test_client().get("/feeds/all.atom").data
    finally:
        store.close()


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """A 1,500-note corpus scanned (state A), then changed on disk (state B on disk)."""
    tmp = tmp_path_factory.mktemp("crash")
    notes_root = tmp / "notes"
    subprocess.run([sys.executable, str(REPO / "tools" / "make_corpus.py"), str(notes_root),
                    "--notes", "1500", "--seed", "7", "--images", "--force"], check=True,
                   capture_output=True)
    base_config = write_config(tmp, notes_root, name="base.toml")
    config = load_config(base_config, env={})
    store = open_store(config.store_url)
    Scanner(config, store).run()
    store.close()
    base_db = tmp / "base.db"
    copy_db(tmp / "feedsvc.db", base_db)
    feed_a = all_atom(base_config)

    notes = NotesDir(notes_root)
    rng = random.Random(7)
    existing = sorted(p for p in notes_root.rglob("*.md"))
    for i in range(400):
        notes.write(f"Crash Test/new-{i:03}.md", f"新笔记 {i}\n\n$$\nx_{i}\n$$\n\n```python\nprint({i})\n```\n",
                    title=f"new {i}", date=f"2025-06-{i % 28 + 1:02}T10:00:00+08:00",
                    mtime=1_750_000_000 + i)
    for path in rng.sample(existing, 160)[:100]:
        path.write_text(path.read_text(encoding="utf-8") + "\n\n追加的一段。\n", encoding="utf-8")
        os.utime(path, (1_760_000_000, 1_760_000_000))
    for path in rng.sample(existing, 160)[100:160]:
        path.unlink()

    ref_config = write_config(tmp, notes_root, name="ref.toml")
    ref_db = tmp / "ref.db"
    ref_config.write_text(ref_config.read_text().replace(str(tmp / "feedsvc.db"), str(ref_db)))
    copy_db(base_db, ref_db)
    start = time.monotonic()
    result = subprocess.run([sys.executable, "-m", "feedsvc", "scan", "--json", "--config",
                             str(ref_config)], env={**os.environ, "PYTHONPATH": str(REPO)},
                            capture_output=True, text=True, timeout=300)
    duration = time.monotonic() - start
    assert result.returncode == 0, result.stderr
    return {"tmp": tmp, "notes": notes_root, "base_db": base_db, "state_a": dump(base_db),
            "state_b": dump(ref_db), "feed_a": feed_a, "duration": duration}


@pytest.mark.slow
def test_sigkill_at_many_points_never_corrupts_and_converges(world: dict[str, Any]) -> None:
    tmp: Path = world["tmp"]
    state_a, state_b = world["state_a"], world["state_b"]
    assert state_a != state_b
    assert len(state_b["entries"]) - len(state_a["entries"]) > 300
    rng = random.Random(2026)
    duration = world["duration"]
    # half the kills anywhere in the run, half in its last stretch, where the transaction is
    delays = [rng.uniform(0.1, duration) for _ in range(TRIALS // 2)] + \
             [rng.uniform(0.8 * duration, 1.05 * duration) for _ in range(TRIALS - TRIALS // 2)]
    outcomes = {"killed before commit": 0, "finished before kill": 0}
    # the scan's speed here moves with the machine's load: when too few kills landed before
    # the commit, more kills early in the run (bounded) make up the half the test promises
    extra = (rng.uniform(0.1, 0.6 * duration) for _ in range(TRIALS))
    for trial, delay in enumerate(itertools.chain(delays, extra)):
        if trial >= TRIALS and outcomes["killed before commit"] >= TRIALS // 2:
            break
        db = tmp / f"trial-{trial}.db"
        copy_db(world["base_db"], db)
        config_path = write_config(tmp, world["notes"], name=f"trial-{trial}.toml")
        config_path.write_text(config_path.read_text().replace(str(tmp / "feedsvc.db"), str(db)))
        process = subprocess.Popen([sys.executable, "-m", "feedsvc", "scan", "--config",
                                    str(config_path)], env={**os.environ, "PYTHONPATH": str(REPO)},
                                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                   start_new_session=True)
        time.sleep(delay)
        try:
            os.killpg(process.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        process.wait(30)

        after_kill = dump(db)  # opens, passes integrity_check
        if after_kill == state_a:
            outcomes["killed before commit"] += 1
            assert all_atom(config_path) == world["feed_a"], f"trial {trial}: serves state A"
        else:
            assert after_kill == state_b, f"trial {trial} (kill at {delay:.2f}s): half a state"
            outcomes["finished before kill"] += 1

        config = load_config(config_path, env={})
        store = open_store(config.store_url)
        Scanner(config, store).run()
        store.close()
        assert dump(db) == state_b, f"trial {trial}: next scan did not converge"
        for suffix in ("", "-wal", "-shm"):
            Path(f"{db}{suffix}").unlink(missing_ok=True)
    assert outcomes["killed before commit"] >= TRIALS // 2, outcomes
