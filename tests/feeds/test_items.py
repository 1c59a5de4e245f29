"""JSON feeds re-rendered from kept items (feeds/items.py): byte for byte the feed a whole
render gives, after edits, deletions and new entries; an edit reads one entry whole; the
kept items are bounded by bytes."""

from __future__ import annotations

import json

from feedsvc.config import Config
from feedsvc.feeds.items import ItemCache
from feedsvc.feeds.jsonfeed import render_json_feed
from feedsvc.model import Category
from feedsvc.model import FeedFormat
from feedsvc.web.feedcache import Publisher
from feedsvc.scan.scanner import Scanner
from feedsvc.store import Store

from conftest import Clock
from conftest import NotesDir


def whole_render(publisher: Publisher, slug: str) -> bytes:
    """The feed as render_json_feed makes it from every entry read whole."""
    now = publisher.as_of()
    entries = publisher.store.latest_entries(slug, now)
    state = publisher.store.feed_state(slug)
    assert state is not None
    info = publisher.feed_info(slug, state.last_modified,
                               entries_category=entries[0].category if entries else None)
    return render_json_feed(info, entries, publisher.urls)


def test_json_feeds_from_kept_items_are_the_whole_render(
        config: Config, store: Store, scanner: Scanner, notes: NotesDir, clock: Clock) -> None:
    for i in range(6):
        notes.write(f"NLP/n{i}.md", f"正文 {i} $x^{i}$", title=f"N{i}", date=f"2025-01-0{i + 1}",
                    tags=["t"] if i % 2 else [])
    scanner.run()
    publisher = Publisher(config, store, clock)
    read_whole: list[int] = []
    feed_entries = store.feed_entries

    def counting(key: str, now, known):  # type: ignore[no-untyped-def]
        rows = feed_entries(key, now, known)
        read_whole.append(sum(1 for _, _, entry in rows if entry is not None))
        return rows

    store.feed_entries = counting  # type: ignore[method-assign]
    for slug in ("nlp", "all", "tag:t"):
        assert publisher.feed(slug, FeedFormat.JSON).rendered.body == whole_render(publisher, slug)
    assert read_whole == [6, 0, 0]  # "all" and the tag feed reuse the category's items

    notes.write("NLP/n2.md", "改过 $y$", title="N2 edited", date="2025-01-03")
    notes.remove("NLP/n4.md")
    notes.write("NLP/n9.md", "新的", title="N9", date="2025-01-09")
    clock.advance(seconds=30)
    scanner.run()
    publisher.invalidate()  # (a serve's scanner tells its publisher so)
    read_whole.clear()
    body = publisher.feed("nlp", FeedFormat.JSON).rendered.body
    assert body == whole_render(publisher, "nlp")
    assert read_whole == [2]  # the edited note and the new one, nothing else
    titles = [item["title"] for item in json.loads(body)["items"]]
    assert titles == ["N9", "N5", "N3", "N2 edited", "N1", "N0"]


def test_kept_items_are_bounded_by_bytes() -> None:
    cache = ItemCache(max_bytes=100)
    category = Category(name="NLP", slug="nlp")
    for i in range(10):
        cache.put(f"e{i}", "d", b"x" * 30, category)
    assert cache.size <= 100
    assert not cache.has("e0", "d") and cache.has("e9", "d")
    assert cache.get("e9", "d") == (b"x" * 30, category)
    assert not cache.has("e9", "other digest")


def test_a_render_that_fills_the_kept_items_still_has_every_item(
        config: Config, store: Store, scanner: Scanner, notes: NotesDir, clock: Clock) -> None:
    """Items the cache said it had are taken before any new item is put: a put drops the
    least recently used, which may be one of this very feed's (a 500 at 100k notes, where
    the tag feeds fill the cache)."""
    for i in range(6):
        notes.write(f"NLP/n{i}.md", f"正文 {i}", title=f"N{i}", date=f"2025-01-0{i + 1}",
                    tags=["t"] if i < 3 else [])
    scanner.run()
    publisher = Publisher(config, store, clock)
    publisher.feed("tag:t", FeedFormat.JSON)  # kept: N2, N1, N0
    assert len(publisher._items) == 3
    item = publisher._items.size // 3
    publisher._items.max_bytes = item * 3 + item // 2  # room for three items of this size
    body = publisher.feed("nlp", FeedFormat.JSON).rendered.body  # N5..N3 new, then N2..N0 kept
    assert body == whole_render(publisher, "nlp")
    assert publisher._items.size <= publisher._items.max_bytes
