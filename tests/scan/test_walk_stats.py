"""A walk compares what it saw with the stored stats of every note and media file, kept
between scans (filestats.py) rather than read from the store each time. Whatever the
walks find, the kept stats stay exactly what the store holds; another process's write
drops them; and a media file is copied again only when the walk saw it change."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from typing import Any

import pytest

from feedsvc.config import Config
from feedsvc.scan.scanner import Scanner
from feedsvc.store import Store
from feedsvc.store import open_store

from conftest import Clock
from conftest import NotesDir

PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 32


@pytest.fixture
def store(backend_store: Store) -> Store:
    """Every test here runs on SQLite and on a real PostgreSQL (conftest.store_url)."""
    return backend_store


def seed(notes: NotesDir) -> None:
    notes.write("NLP/a.md", "正文 A ![[fig.png]]", title="A", date="2025-01-01")
    notes.write("NLP/b.md", "正文 B", title="B", date="2025-01-02")
    notes.write("Python/c.md", "正文 C", title="C", date="2025-01-03")
    notes.write_bytes("NLP/img/fig.png", PNG)
    notes.write_bytes("Python/other.png", PNG + b"2")


def count_calls(store: Store, monkeypatch: pytest.MonkeyPatch, *names: str) -> list[str]:
    calls: list[str] = []
    for name in names:
        real = getattr(store, name)
        monkeypatch.setattr(store, name, lambda *a, _n=name, _r=real, **k: calls.append(_n)
                            or _r(*a, **k))
    return calls


def assert_kept_is_stored(scanner: Scanner, store: Store) -> None:
    kept = scanner.pipeline.kept
    assert kept.stamp == store.stamp()  # what follows reads the kept copies, not the store
    assert kept.note_stats("notes") == store.note_stats("notes")
    assert kept.media_stats("notes") == store.media_stats("notes")


def media_hash(store: Store, rel: str) -> str | None:
    info = store.media_info("notes", rel)
    return info.hash if info is not None else None


def test_kept_stats_follow_every_kind_of_change_without_reading_the_store(
        notes: NotesDir, scanner: Scanner, store: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    seed(notes)
    scanner.run()
    scanner.run()  # a walk that finds nothing: the stats it read are kept from here on
    assert_kept_is_stored(scanner, store)
    calls = count_calls(store, monkeypatch, "note_stats", "media_stats")
    steps: list[tuple[Callable[[], Any], Callable[[Any], bool]]] = [
        (lambda: notes.write("NLP/a.md", "正文 A2 ![[fig.png]]", title="A2", date="2025-01-01"),
         lambda r: r.updated == ("notes/NLP/a.md",)),
        (lambda: notes.write("NLP/new.md", "新", title="New", date="2025-01-04"),
         lambda r: r.added == ("notes/NLP/new.md",)),
        (lambda: notes.remove("NLP/b.md"), lambda r: r.removed == ("notes/NLP/b.md",)),
        (lambda: notes.write_bytes("NLP/bad.md", b"---\ntitle: [unclosed\n---\nx"),
         lambda r: [p.path for p in r.problems] == ["NLP/bad.md"]),
        (lambda: notes.rename("Python/c.md", "Python/c2.md"),
         lambda r: r.renamed == ("notes/Python/c.md",)),  # the entry keeps its id
        (lambda: notes.write_bytes("NLP/img/new.png", PNG + b"new"), lambda r: True),
        (lambda: notes.remove("Python/other.png"), lambda r: True),
        (lambda: notes.write_bytes("NLP/bad.md", b"---\ntitle: Fixed\n---\nfixed"),
         lambda r: r.problems == () and r.added == ("notes/NLP/bad.md",)),
    ]
    for change, expected in steps:
        change()
        report = scanner.run()
        assert expected(report), report
        assert calls == []  # the scan read no stats from the store
        assert_kept_is_stored(scanner, store)
        calls.clear()
    assert media_hash(store, "NLP/img/new.png") == hashlib.sha256(PNG + b"new").hexdigest()
    assert media_hash(store, "Python/other.png") is None
    # an image overwritten in place, the same size: the walk's stat (mtime) says it changed
    notes.write_bytes("NLP/img/fig.png", PNG[:-1] + b"\x01")
    notes.touch_forward("NLP/img/fig.png", 10)
    scanner.run()
    assert calls == []
    assert media_hash(store, "NLP/img/fig.png") == hashlib.sha256(PNG[:-1] + b"\x01").hexdigest()
    assert_kept_is_stored(scanner, store)


def test_a_media_file_the_walk_saw_unchanged_is_not_opened(
        notes: NotesDir, scanner: Scanner, store: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    seed(notes)
    scanner.run()
    from feedsvc.scan import media as mediasync
    looked: list[str] = []
    real = mediasync._copy_one
    monkeypatch.setattr(mediasync, "_copy_one",
                        lambda batch, source, rel, stored: looked.append(rel)
                        or real(batch, source, rel, stored))
    notes.write("NLP/a.md", "正文 A3", title="A3", date="2025-01-01")
    scanner.run()
    assert looked == []
    notes.write_bytes("Python/other.png", PNG + b"changed")
    scanner.run()
    assert looked == ["Python/other.png"]


def test_another_process_writing_drops_the_kept_stats(
        notes: NotesDir, config: Config, store_url: str, clock: Clock,
        monkeypatch: pytest.MonkeyPatch) -> None:
    seed(notes)
    mine = Scanner(config, open_store(store_url), clock=clock)
    mine.run()
    mine.run()
    other = Scanner(config, open_store(store_url), clock=clock)  # e.g. `feedsvc scan`
    notes.write("NLP/a.md", "正文 A9", title="A9", date="2025-01-01")
    notes.remove("NLP/b.md")
    notes.write_bytes("NLP/img/late.png", PNG + b"late")
    report = other.run()
    assert report.updated == ("notes/NLP/a.md",) and report.removed == ("notes/NLP/b.md",)
    calls = count_calls(mine.store, monkeypatch, "note_stats", "media_stats")
    again = mine.run()  # the store moved under it: it reads the stats again, finds nothing new
    assert sorted(calls) == ["media_stats", "note_stats"]
    assert again.updated == () and again.added == () and again.removed == ()
    assert_kept_is_stored(mine, mine.store)
    mine.store.close()
    other.store.close()


def test_the_link_index_built_after_a_walk_shares_the_kept_stats(
        notes: NotesDir, scanner: Scanner, store: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    """The index a serve's scanner builds after its start-up walk (kept.warm) reads only
    the entries' places from the store: media and paths come from the kept stats, the same
    string objects (one per path in the process), and it resolves links as a fresh one."""
    seed(notes)
    scanner.run()
    scanner.pipeline.kept.drop()
    scanner.run()  # a walk that finds nothing: the stats are read before it, and kept
    kept = scanner.pipeline.kept
    calls = count_calls(store, monkeypatch, "note_stats", "media_stats", "entry_refs",
                        "entry_places", "stamp")
    kept.warm()
    assert calls == ["stamp", "entry_places"]
    site = kept.site({})
    index = site.index
    kept_notes = {id(rel) for rel in kept.note_stats("notes")}
    kept_media = {id(rel) for rel in kept.media_stats("notes")}
    places = [w for value in index._by_name.values()
              for w in (value if isinstance(value, list) else [value])]
    assert sorted(w[1] for w in places) == ["NLP/a.md", "NLP/b.md", "Python/c.md"]
    assert all(id(w[1]) in kept_notes for w in places)
    assert index.media_of("notes") == {"NLP/img/fig.png", "Python/other.png"}
    media_values = [rel for value in index._media["notes"].values()
                    for rel in (value if isinstance(value, list) else [value])]
    assert all(id(rel) in kept_media for rel in media_values)
    assert site.counts == {"notes": 3}
    assert index.entry_url_for_name("b") is not None
    assert index.media_path_for_name("notes", "FIG.png") == "NLP/img/fig.png"
