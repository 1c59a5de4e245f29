"""A big source's walk is split over two processes (forkwalk.py) and sees exactly what one
walk sees: the same notes and media with the same stats, whichever half walked them. A
symlink, a failing child or a small source mean one walk. Real files, real forks."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from feedsvc import forkwalk
from feedsvc.errors import SourceUnavailableError
from feedsvc.forkwalk import SplitWalker
from feedsvc.forkwalk import walk_in_two
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


def test_a_split_walk_sees_what_one_walk_sees(notes: NotesDir) -> None:
    source = tree(notes)
    whole = walk_source(source)
    split = walk_in_two(source)
    assert split is not None
    assert seen(split) == seen(whole)
    assert len(whole.notes) == 1 + 6 * 6 and len(whole.media_stats) == 1 + 6 * 3
    # the halves share the folders between them, the root's own files go to the first
    first, second = walk_source(source, part=(0, 2)), walk_source(source, part=(1, 2))
    assert first.notes.keys().isdisjoint(second.notes.keys())
    assert first.notes.keys() | second.notes.keys() == whole.notes.keys()
    assert "index.md" in first.notes and "cover.png" in first.media_stats
    assert {k.split("/")[0] for k in second.notes} == {"NLP", "RL", "数学"}  # every other by name


def test_a_big_source_is_walked_in_two_processes_and_a_small_one_in_one(notes: NotesDir) -> None:
    source = tree(notes)
    walker = SplitWalker(split_from=30)  # the tree holds 56 files
    first = walker.walk(source)  # nothing known about its size yet: one walk
    assert walker.splits == 0
    second = walker.walk(source)
    assert walker.splits == 1 and seen(second) == seen(first)
    small = SplitWalker(split_from=100)
    small.walk(source)
    small.walk(source)
    assert small.splits == 0


def test_a_source_with_a_symlink_is_walked_serially_from_then_on(notes: NotesDir) -> None:
    source = tree(notes)
    os.symlink(notes.root / "CV", notes.root / "RL" / "cv-link")  # in the child's half
    whole = walk_source(source)
    assert whole.links == 1
    assert walk_in_two(source) is None  # the child met it: walked serially instead
    walker = SplitWalker(split_from=0)
    assert seen(walker.walk(source)) == seen(whole)
    assert seen(walker.walk(source)) == seen(whole)
    assert walker.splits == 0


def test_a_child_that_fails_leaves_the_walk_to_the_parent(
        notes: NotesDir, monkeypatch: pytest.MonkeyPatch) -> None:
    source = tree(notes)
    parent = os.getpid()
    real = forkwalk.walk_source

    def failing_in_the_child(source: Source, part: tuple[int, int] | None = None) -> SourceWalk:
        if os.getpid() != parent:
            raise MemoryError("the child could not walk")
        return real(source, part)
    monkeypatch.setattr(forkwalk, "walk_source", failing_in_the_child)
    assert walk_in_two(source) is None
    walker = SplitWalker(split_from=0)
    assert seen(walker.walk(source)) == seen(walk_source(source))
    assert walker.splits == 0


def test_a_missing_root_is_the_error_one_walk_raises(tmp_path: Path) -> None:
    source = Source(name="notes", root=tmp_path / "unmounted")
    with pytest.raises(SourceUnavailableError, match="missing or unreadable"):
        walk_in_two(source)
    with pytest.raises(SourceUnavailableError, match="missing or unreadable"):
        SplitWalker(split_from=0).walk(source)
