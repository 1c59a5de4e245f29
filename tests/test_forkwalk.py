"""A big source's walk is split over two processes (forkwalk.py) and sees exactly what one
walk sees: the same notes and media with the same stats, whichever half walked them. A
symlink, a failing helper or a small source mean one walk. Real files, real processes."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from feedsvc import forkwalk
from feedsvc.errors import SourceUnavailableError
from feedsvc.forkwalk import SplitWalker
from feedsvc.forkwalk import WalkHelper
from feedsvc.model import Source
from feedsvc.sources import SourceWalk
from feedsvc.sources import walk_source

from conftest import NotesDir

PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 16


def tree(notes: NotesDir) -> Source:
    """Notes and images at the root, in six top-level folders and below them, hidden ones."""
    notes.write("index.md", "根目录的笔记")
    notes.write_bytes("cover.png", PNG)
    for i, folder in enumerate(["CV", "NLP", "Python", "RL", "数学", "z-last"]):
        for j in range(3):
            notes.write(f"{folder}/n{j}.md", f"{folder} {j}")
            notes.write(f"{folder}/deep/er/m{j}.markdown", f"deep {j}")
            notes.write_bytes(f"{folder}/img/f{j}.png", PNG + bytes([i, j]))
    notes.write("NLP/.obsidian/workspace.md", "hidden")
    notes.write(".git/HEAD.md", "hidden")
    notes.write("RL/.n0.md.swp", "swap")
    return Source(name="notes", root=notes.root)


def seen(walk: SourceWalk) -> tuple[object, ...]:
    return (walk.notes, walk.media_stats, sorted(walk.media_followed),
            sorted(map(str, walk.problems)), sorted(walk.unlisted), walk.links)


@pytest.fixture
def helper() -> Iterator[WalkHelper]:
    walker = WalkHelper()
    yield walker
    walker.close()


def gone(pid: int, within: float = 10.0) -> bool:
    """The process has left (and been reaped, or is a zombie of a parent that has gone)."""
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        try:
            with open(f"/proc/{pid}/stat") as f:
                if f.read().rsplit(")", 1)[1].split()[0] == "Z":
                    return True
        except FileNotFoundError:
            return True
        time.sleep(0.05)
    return False


def test_a_split_walk_sees_what_one_walk_sees(notes: NotesDir, helper: WalkHelper) -> None:
    source = tree(notes)
    whole = walk_source(source)
    split = helper.walk_in_two(source)
    assert split is not None
    assert seen(split) == seen(whole)
    assert len(whole.notes) == 1 + 6 * 6 and len(whole.media_stats) == 1 + 6 * 3
    # the halves share the folders between them, the root's own files go to the first
    first, second = walk_source(source, part=(0, 2)), walk_source(source, part=(1, 2))
    assert first.notes.keys().isdisjoint(second.notes.keys())
    assert first.notes.keys() | second.notes.keys() == whole.notes.keys()
    assert "index.md" in first.notes and "cover.png" in first.media_stats
    assert {k.split("/")[0] for k in second.notes} == {"NLP", "RL", "数学"}  # every other by name
    # the one helper serves walk after walk, and sees each edit
    pid = helper.pid
    notes.write("NLP/new.md", "新的")
    again = helper.walk_in_two(source)
    assert again is not None and "NLP/new.md" in again.notes and helper.pid == pid


def test_a_big_source_is_walked_in_two_processes_and_a_small_one_in_one(notes: NotesDir) -> None:
    source = tree(notes)
    walker = SplitWalker(split_from=30)  # the tree holds 56 files
    try:
        first = walker.walk(source)  # nothing known about its size yet: one walk
        assert walker.splits == 0 and walker.helper.pid is not None  # started for the next
        second = walker.walk(source)
        third = walker.walk(source)
        assert walker.splits == 2 and seen(second) == seen(first) == seen(third)
    finally:
        walker.close()
    small = SplitWalker(split_from=100)
    small.walk(source)
    small.walk(source)
    assert small.splits == 0 and small.helper.pid is None


def test_a_source_with_a_symlink_is_walked_serially_from_then_on(
        notes: NotesDir, helper: WalkHelper) -> None:
    source = tree(notes)
    os.symlink(notes.root / "CV", notes.root / "RL" / "cv-link")  # in the helper's half
    whole = walk_source(source)
    assert whole.links == 1
    assert helper.walk_in_two(source) is None  # the helper met it: walked serially instead
    walker = SplitWalker(split_from=0)
    try:
        assert seen(walker.walk(source)) == seen(whole)
        assert seen(walker.walk(source)) == seen(whole)
        assert walker.splits == 0
    finally:
        walker.close()


def test_a_helper_that_dies_leaves_the_walk_to_the_scanner_and_is_started_again(
        notes: NotesDir, monkeypatch: pytest.MonkeyPatch) -> None:
    source = tree(notes)
    walker = SplitWalker(split_from=0)
    real = forkwalk.walk_source

    def helper_killed_meanwhile(source: Source, part: tuple[int, int] | None = None) -> SourceWalk:
        if part == (0, 2):  # the scanner's half: the helper dies while it walks the other
            pid = walker.helper.pid
            assert pid is not None
            os.kill(pid, signal.SIGKILL)
            assert gone(pid)
        return real(source, part)
    try:
        whole = walker.walk(source)
        first = walker.helper.pid
        assert walker.splits == 1 and first is not None
        monkeypatch.setattr(forkwalk, "walk_source", helper_killed_meanwhile)
        assert seen(walker.walk(source)) == seen(whole)  # walked serially instead
        assert walker.splits == 1
        monkeypatch.undo()
        assert seen(walker.walk(source)) == seen(whole)
        assert walker.splits == 2 and walker.helper.pid not in (None, first)  # a new one
    finally:
        walker.close()


def test_the_helper_never_outlives_the_scanner(notes: NotesDir) -> None:
    """Killed outright, the scanning process leaves no helper behind: its pipe closes."""
    tree(notes)
    code = ("import sys, time\n"
            "from pathlib import Path\n"
            "from feedsvc.forkwalk import SplitWalker\n"
            "from feedsvc.model import Source\n"
            "walker = SplitWalker(split_from=0)\n"
            f"walker.walk(Source(name='notes', root=Path({str(notes.root)!r})))\n"
            "print(walker.helper.pid, flush=True)\n"
            "time.sleep(60)\n")
    scanner = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True,
                               cwd=Path(__file__).resolve().parents[1])
    try:
        assert scanner.stdout is not None
        helper_pid = int(scanner.stdout.readline())
        assert not gone(helper_pid, within=0.3)  # it is running
    finally:
        scanner.kill()
        scanner.communicate()
    assert gone(helper_pid)


def test_a_missing_root_is_the_error_one_walk_raises(tmp_path: Path, helper: WalkHelper) -> None:
    source = Source(name="notes", root=tmp_path / "unmounted")
    with pytest.raises(SourceUnavailableError, match="missing or unreadable"):
        helper.walk_in_two(source)
    walker = SplitWalker(split_from=0)
    try:
        with pytest.raises(SourceUnavailableError, match="missing or unreadable"):
            walker.walk(source)
    finally:
        walker.close()
