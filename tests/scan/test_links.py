"""The link index: a name shared by several entries or media files resolves to the first by
(source, rel_path) whatever order they came and went in, so a targeted scan and a full scan
resolve every link alike."""

from __future__ import annotations

import itertools

from feedsvc.scan.links import SiteIndex
from feedsvc.urls import Urls

ENTRIES = [("notes", "Python/index.md", "python", "index"),
           ("notes", "NLP/index.md", "nlp", "index"),
           ("blog", "index.md", "blog", "index")]


def test_shared_names_resolve_the_same_in_any_order() -> None:
    answers = set()
    for order in itertools.permutations(ENTRIES):
        index = SiteIndex(Urls("http://x.example/"))
        for entry in order:
            index.add_entry(*entry)
        answers.add(index.entry_url_for_name("Index"))
    assert answers == {"http://x.example/entries/blog/index"}


def test_removing_the_winner_falls_back_and_paths_stay_exact() -> None:
    index = SiteIndex(Urls("http://x.example/"))
    for entry in ENTRIES:
        index.add_entry(*entry)
    index.remove_entry("blog", "index.md")
    assert index.entry_url_for_name("index") == "http://x.example/entries/nlp/index"
    assert index.entry_url_for_name("Python/Index.md") == "http://x.example/entries/python/index"
    assert index.entry_url_for_path("notes", "Python/index.md") == \
        "http://x.example/entries/python/index"
    assert index.entry_url_for_path("notes", "python/index.md") is None  # paths are exact
    index.add_entry("notes", "NLP/index.md", "nlp", "index-2")  # moved slug: replaced
    assert index.entry_url_for_name("nlp/index") == "http://x.example/entries/nlp/index-2"
    index.remove_entry("notes", "NLP/index.md")
    index.remove_entry("notes", "Python/index.md")
    assert index.entry_url_for_name("index") is None


def test_media_names_follow_the_same_rule() -> None:
    index = SiteIndex(Urls("http://x.example/"))
    index.add_media("notes", ["b/fig.png", "a/fig.png", "a/note.md"])
    assert index.media_path_for_name("notes", "FIG.png") == "a/fig.png"
    index.remove_media("notes", ["a/fig.png"])
    assert index.media_path_for_name("notes", "fig.png") == "b/fig.png"
    assert index.media_of("notes") == {"b/fig.png"}
    assert index.media_path_for_name("notes", "note.md") is None


def test_slug_registry_asking_the_store_decides_like_one_given_every_slug() -> None:
    from feedsvc.scan.plan import SlugRegistry
    owners = {("nlp", "note"): "notes/NLP/note.md", ("nlp", "other"): "notes/NLP/other.md"}
    asked: list[tuple[str, str]] = []

    def lookup(category: str, slug: str) -> str | None:
        asked.append((category, slug))
        return owners.get((category, slug))

    results = []
    for registry in (SlugRegistry({}, owners=owners), SlugRegistry({}, lookup=lookup)):
        got = [registry.claim("nlp", "Note", "notes/Python/note.md", None)]  # taken: hashed
        registry.release("nlp", "other", "notes/NLP/other.md")
        got.append(registry.claim("nlp", "other", "notes/x/other.md", None))  # freed
        got.append(registry.claim("nlp", "fresh", "notes/x/fresh.md", None))
        results.append(got)
    assert results[0] == results[1]
    assert results[0][0].startswith("note-") and results[0][1:] == ["other", "fresh"]
    assert sorted(set(asked)) == [("nlp", "fresh"), ("nlp", "note"), ("nlp", "other")]
