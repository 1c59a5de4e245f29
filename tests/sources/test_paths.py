"""The one path rule (sources/paths.py), as a table: every way a path can be refused, and
the normal form of the ones taken. The webhook payload, the watcher, /media and the scan's
targeted paths all go through it."""

from __future__ import annotations

import pytest

from feedsvc.sources.paths import clean_rel_path
from feedsvc.sources.paths import is_clean_rel_path


@pytest.mark.parametrize(("path", "clean", "reason"), [
    ("NLP/a.md", "NLP/a.md", ""),
    ("NLP//a.md", "NLP/a.md", ""),
    ("./NLP/./a.md", "NLP/a.md", ""),
    ("NLP/", "NLP", ""),
    ("中文/笔记.md", "中文/笔记.md", ""),
    ("", None, "not a non-empty string"),
    (None, None, "not a non-empty string"),
    (7, None, "not a non-empty string"),
    ("a\x00b.md", None, "contains a NUL or a backslash"),
    ("NLP\\a.md", None, "contains a NUL or a backslash"),
    ("/etc/passwd", None, "absolute path"),
    ("C:/notes/a.md", None, "absolute path"),
    ("NLP/../../etc/passwd", None, "climbs out with '..'"),
    ("..", None, "climbs out with '..'"),
    ("./", None, "names no file"),
    (".git/config", None, "hidden (a part starts with '.')"),
    ("NLP/.a.md.swp", None, "hidden (a part starts with '.')"),
])
def test_the_path_rule(path: object, clean: str | None, reason: str) -> None:
    assert clean_rel_path(path) == (clean, reason)


@pytest.mark.parametrize(("path", "expected"), [
    ("NLP/a.md", True), ("NLP//a.md", False), ("./a.md", False), ("a/", False),
    (".obsidian/x.json", False), ("a/../b", False), ("", False),
])
def test_clean_as_it_stands(path: str, expected: bool) -> None:
    assert is_clean_rel_path(path) is expected
