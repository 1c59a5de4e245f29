"""The store: one transaction per scan, validators that never move backwards, leases."""

from __future__ import annotations

import datetime as dt

import pytest

from feedsvc.errors import StoreError
from feedsvc.model import Category
from feedsvc.model import Changeset
from feedsvc.model import Entry
from feedsvc.model import EntryChange
from feedsvc.store import Store

UTC = dt.timezone.utc
T0 = dt.datetime(2026, 1, 1, tzinfo=UTC)


@pytest.fixture
def store(backend_store: Store) -> Store:
    """Every test here runs on SQLite and on a real PostgreSQL (conftest.store_url)."""
    return backend_store


def entry(i: int, *, slug_cat: str = "nlp", published: dt.datetime | None = None,
          updated: dt.datetime | None = None, title: str | None = None) -> Entry:
    pub = published or T0 - dt.timedelta(days=i)
    return Entry(id=f"s/{i}.md", source="s", rel_path=f"{i}.md",
                 category=Category(name=slug_cat.upper(), slug=slug_cat), slug=f"e{i}",
                 title=title or f"t{i}", published=pub, updated=updated or pub, html="<p>x</p>",
                 excerpt="x", content_hash=f"h{i}")


def apply(store: Store, now: dt.datetime, *entries: Entry, delete: tuple[str, ...] = ()) -> tuple[str, ...]:
    result = store.apply(Changeset(now=now, upsert_entries=tuple(
        EntryChange(entry=e, links=()) for e in entries), delete_entries=delete))
    return result.changed_feeds


def test_order_is_published_then_updated_then_id(store: Store) -> None:
    same = T0 - dt.timedelta(days=1)
    apply(store, T0, entry(3, published=same, updated=same), entry(2, published=same,
          updated=same + dt.timedelta(hours=1)), entry(1, published=same, updated=same),
          entry(0))
    assert [e.id for e in store.latest_entries("all", T0)] == ["s/0.md", "s/2.md", "s/1.md", "s/3.md"]


def test_changes_touch_only_affected_feeds(store: Store) -> None:
    assert apply(store, T0, entry(1, slug_cat="nlp"), entry(2, slug_cat="cv")) == ("all", "cv", "nlp")
    before = store.feed_state("cv")
    assert apply(store, T0 + dt.timedelta(hours=1), entry(3, slug_cat="nlp")) == ("all", "nlp")
    assert store.feed_state("cv") == before


def test_last_modified_never_moves_backwards(store: Store) -> None:
    apply(store, T0, entry(1, published=T0 - dt.timedelta(days=1)))
    first = store.feed_state("nlp")
    assert first is not None and first.last_modified == T0 - dt.timedelta(days=1)
    # a back-dated note moves Last-Modified to the time of change
    now = T0 + dt.timedelta(hours=2)
    apply(store, now, entry(2, published=T0 - dt.timedelta(days=300)))
    second = store.feed_state("nlp")
    assert second is not None and second.last_modified == now
    # so does a deletion, and it never goes back
    apply(store, now, delete=("s/2.md",))
    third = store.feed_state("nlp")
    assert third is not None and third.last_modified > second.last_modified


def test_failed_apply_leaves_previous_state_whole(store: Store) -> None:
    apply(store, T0, entry(1))
    revision = store.revision()
    clash = entry(2)
    twin = Entry(id="s/other.md", source="s", rel_path="other.md", category=clash.category,
                 slug=clash.slug, title="dup slug", published=T0, updated=T0, html="",
                 excerpt="", content_hash="")
    with pytest.raises(StoreError):
        apply(store, T0, clash, twin)  # unique (category, slug) violated mid-transaction
    assert [e.id for e in store.latest_entries("all", T0)] == ["s/1.md"]
    assert store.revision() == revision


def test_future_entries_are_hidden_until_due(store: Store) -> None:
    apply(store, T0, entry(1, published=T0 + dt.timedelta(hours=1)))
    assert store.latest_entries("all", T0) == []
    assert store.next_due(T0) == T0 + dt.timedelta(hours=1)
    assert store.refresh_due(T0 + dt.timedelta(hours=1)) == ("all", "nlp")
    assert [e.id for e in store.latest_entries("all", T0 + dt.timedelta(hours=1))] == ["s/1.md"]


def test_tombstones_expire(store: Store) -> None:
    apply(store, T0, entry(1))
    apply(store, T0, delete=("s/1.md",))
    assert [t.id for t in store.tombstones("nlp", T0)] == ["s/1.md"]
    before = store.feed_state("nlp")
    # a feed shows what its signature covered, whatever the clock: tombstones expire when a
    # scan purges them, and that moves the feed's validators
    assert [t.id for t in store.tombstones("nlp", T0 + dt.timedelta(days=31))] == ["s/1.md"]
    later = T0 + dt.timedelta(days=31)
    assert apply(store, later) == ("all", "nlp")
    assert store.tombstones("nlp", later) == []
    after = store.feed_state("nlp")
    assert before is not None and after is not None
    assert after.signature != before.signature and after.last_modified > before.last_modified


def test_leases(store: Store) -> None:
    ttl = dt.timedelta(seconds=30)
    assert store.try_lock("scheduler", "a", now=T0, ttl=ttl)
    assert not store.try_lock("scheduler", "b", now=T0 + dt.timedelta(seconds=10), ttl=ttl)
    assert store.try_lock("scheduler", "a", now=T0 + dt.timedelta(seconds=20), ttl=ttl)
    assert store.try_lock("scheduler", "b", now=T0 + dt.timedelta(seconds=51), ttl=ttl)
    assert store.lock_holder("scheduler", T0 + dt.timedelta(seconds=52)) == "b"
    store.release_lock("scheduler", "b")
    assert store.lock_holder("scheduler", T0 + dt.timedelta(seconds=52)) is None
