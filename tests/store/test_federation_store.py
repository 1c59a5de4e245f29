"""The federation's store (Store.federation, store/federation.py) on SQLite and a real
PostgreSQL: keys saved once however many processes race, followers and their inboxes, the
cached remote actors, the change log apply() writes, and a delivery queue that never hands
one delivery to two senders at once."""

from __future__ import annotations

import datetime as dt
import threading
from collections.abc import Callable
from collections.abc import Iterator
from typing import TypeVar

import pytest
from sqlalchemy import func
from sqlalchemy import select

from feedsvc.errors import StoreError
from feedsvc.model import Category
from feedsvc.model import Changeset
from feedsvc.model import Delivery
from feedsvc.model import Entry
from feedsvc.model import EntryChange
from feedsvc.model import Follower
from feedsvc.model import Publication
from feedsvc.model import PublicationKind
from feedsvc.model import RemoteActor
from feedsvc.store import Store
from feedsvc.store import open_store
from feedsvc.store.schema import ap_activities

UTC = dt.timezone.utc
T0 = dt.datetime(2026, 1, 1, tzinfo=UTC)
CREATE, UPDATE, DELETE = PublicationKind.CREATE, PublicationKind.UPDATE, PublicationKind.DELETE
T = TypeVar("T")


@pytest.fixture
def store(backend_store: Store) -> Store:
    """Every test here runs on SQLite and on a real PostgreSQL (conftest.store_url)."""
    return backend_store


@pytest.fixture
def other(store: Store, store_url: str) -> Iterator[Store]:
    """A second Store on the same database: another process, as far as the store can tell
    (its own engine, its own in-process write lock)."""
    second = open_store(store_url, migrate=False)
    yield second
    second.close()


def at(minutes: float) -> dt.datetime:
    return T0 + dt.timedelta(minutes=minutes)


def race(workers: list[Callable[[], T]]) -> list[T]:
    """Run the callables at the same moment, each in its own thread; their results in order."""
    barrier = threading.Barrier(len(workers))
    results: list[T | None] = [None] * len(workers)
    errors: list[BaseException] = []

    def run(i: int) -> None:
        barrier.wait()
        try:
            results[i] = workers[i]()
        except BaseException as e:  # reported below, in the test's thread
            errors.append(e)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(workers))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert not any(t.is_alive() for t in threads)
    assert errors == []
    return [r for r in results if r is not None]


def follower(actor: str, name: str, *, shared: str | None = "https://a.example/inbox",
             minutes: float = 0) -> Follower:
    host = "a.example" if shared is None or "a.example" in shared else "b.example"
    return Follower(actor=actor, follower=f"https://{host}/users/{name}",
                    inbox=f"https://{host}/users/{name}/inbox", shared_inbox=shared,
                    followed_at=at(minutes))


def entry(i: int, published: dt.datetime) -> Entry:
    return Entry(id=f"s/{i}.md", source="s", rel_path=f"{i}.md",
                 category=Category(name="NLP", slug="nlp"), slug=f"e{i}", title=f"t{i}",
                 published=published, updated=published, html="<p>x</p>", excerpt="x",
                 content_hash=f"h{i}")


def apply(store: Store, now: dt.datetime, *entries: Entry,
          publications: tuple[Publication, ...] = ()) -> None:
    store.apply(Changeset(now=now, publications=publications, upsert_entries=tuple(
        EntryChange(entry=e, links=()) for e in entries)))


def queue(store: Store, *inboxes: str, activity: str = "https://feeds.example.org/ap/a/1",
          now: dt.datetime = T0) -> int:
    return store.federation.enqueue(None, [(activity, f"body of {activity}".encode(), "nlp", i)
                                           for i in inboxes], now)


# -- keys ------------------------------------------------------------------------------


def test_a_key_is_saved_once_and_kept(store: Store) -> None:
    fed = store.federation
    assert fed.key("nlp") is None
    assert fed.save_key("nlp", "PRIVATE 1", "PUBLIC 1", T0) == ("PRIVATE 1", "PUBLIC 1")
    assert fed.save_key("nlp", "PRIVATE 2", "PUBLIC 2", at(1)) == ("PRIVATE 1", "PUBLIC 1")
    assert fed.key("nlp") == ("PRIVATE 1", "PUBLIC 1")
    assert fed.key("all") is None


def test_processes_racing_to_save_a_key_all_get_the_same_one(store: Store,
                                                             other: Store) -> None:
    handles = [f"h{i}" for i in range(10)]
    for handle in handles:
        got = race([lambda s=s, n=n: s.federation.save_key(handle, f"PRIV {n}", f"PUB {n}", T0)
                    for n, s in enumerate([store, other, store, other])])
        assert len(got) == 4 and len(set(got)) == 1, got
        n = got[0][0].removeprefix("PRIV ")
        assert got[0] == (f"PRIV {n}", f"PUB {n}")
        assert store.federation.key(handle) == other.federation.key(handle) == got[0]


# -- followers -------------------------------------------------------------------------


def test_followers_are_added_once_and_removed(store: Store) -> None:
    fed = store.federation
    ann, bob = follower("nlp", "ann", minutes=1), follower("nlp", "bob", shared=None)
    assert fed.add_follower(ann) is True
    assert fed.add_follower(bob) is True
    assert fed.add_follower(follower("cv", "ann")) is True
    # a repeated Follow: not new, first followed_at kept, the inboxes it names taken
    moved = Follower(actor="nlp", follower=ann.follower, inbox="https://a.example/new/inbox",
                     shared_inbox=None, followed_at=at(9))
    assert fed.add_follower(moved) is False
    assert fed.followers("nlp") == [
        bob, Follower(actor="nlp", follower=ann.follower, inbox="https://a.example/new/inbox",
                      shared_inbox=None, followed_at=at(1))]
    assert fed.follower_counts() == {"cv": 1, "nlp": 2}
    assert fed.remove_follower("nlp", ann.follower) is True
    assert fed.remove_follower("nlp", ann.follower) is False
    assert fed.remove_follower("nobody", bob.follower) is False
    assert fed.followers("nlp") == [bob]
    assert fed.followers("nobody") == []
    assert fed.follower_counts() == {"cv": 1, "nlp": 1}


def test_a_deleted_remote_actor_goes_everywhere(store: Store) -> None:
    fed = store.federation
    for actor in ("nlp", "cv", "all"):
        fed.add_follower(follower(actor, "ann"))
    fed.add_follower(follower("nlp", "bob"))
    ann = follower("nlp", "ann").follower
    fed.save_remote_actor(RemoteActor(id=ann, key_id=ann + "#main-key", public_key_pem="PEM",
                                      inbox=ann + "/inbox", fetched_at=T0))
    assert fed.remove_actor_everywhere(ann) == 3
    assert fed.remove_actor_everywhere(ann) == 0
    assert fed.follower_counts() == {"nlp": 1}
    assert [f.follower for f in fed.followers("nlp")] == ["https://a.example/users/bob"]
    assert fed.remote_actor(ann) is None and fed.remote_actor_by_key(ann + "#main-key") is None


def test_a_gone_inbox_removes_every_follower_delivered_through_it(store: Store) -> None:
    fed = store.federation
    shared = "https://a.example/inbox"
    fed.add_follower(follower("nlp", "ann", shared=shared))
    fed.add_follower(follower("cv", "ann", shared=shared))
    fed.add_follower(follower("nlp", "bob", shared=shared))
    fed.add_follower(follower("nlp", "cat", shared=None))  # its own inbox only
    fed.add_follower(follower("nlp", "dan", shared="https://b.example/inbox"))
    assert fed.remove_inbox(shared) == 3  # the whole instance behind the shared inbox
    assert fed.remove_inbox("https://a.example/users/cat/inbox") == 1
    assert fed.remove_inbox("https://nowhere.example/inbox") == 0
    assert fed.follower_counts() == {"nlp": 1}
    assert [f.follower for f in fed.followers("nlp")] == ["https://b.example/users/dan"]


def test_delivery_inboxes_prefer_shared_ones_each_once(store: Store) -> None:
    fed = store.federation
    fed.add_follower(follower("nlp", "ann"))  # a.example's shared inbox
    fed.add_follower(follower("nlp", "bob"))  # the same shared inbox
    fed.add_follower(follower("all", "ann"))  # the same again, through the site actor
    fed.add_follower(follower("all", "cat", shared=None))  # its own inbox
    fed.add_follower(follower("nlp", "dan", shared="https://b.example/inbox"))
    fed.add_follower(follower("cv", "eve", shared="https://c.example/inbox"))
    assert fed.delivery_inboxes(["nlp", "all"]) == [
        "https://a.example/inbox", "https://a.example/users/cat/inbox",
        "https://b.example/inbox"]
    assert fed.delivery_inboxes(["nlp"]) == ["https://a.example/inbox",
                                             "https://b.example/inbox"]
    assert fed.delivery_inboxes(iter(["cv", "cv"])) == ["https://c.example/inbox"]
    assert fed.delivery_inboxes(["nobody"]) == []
    assert fed.delivery_inboxes([]) == []


# -- remote actors ---------------------------------------------------------------------


def test_remote_actors_are_cached_and_replaced(store: Store) -> None:
    fed = store.federation
    ann = RemoteActor(id="https://a.example/users/ann", key_id="https://a.example/users/ann#k1",
                      public_key_pem="PEM 1", inbox="https://a.example/users/ann/inbox",
                      shared_inbox="https://a.example/inbox", fetched_at=T0)
    assert fed.remote_actor(ann.id) is None and fed.remote_actor_by_key(ann.key_id) is None
    fed.save_remote_actor(ann)
    assert fed.remote_actor(ann.id) == ann
    assert fed.remote_actor_by_key(ann.key_id) == ann
    rotated = RemoteActor(id=ann.id, key_id="https://a.example/users/ann#k2",
                          public_key_pem="PEM 2", inbox=ann.inbox, fetched_at=at(5))
    fed.save_remote_actor(rotated)  # fetched again: a new key, no shared inbox any more
    assert fed.remote_actor(ann.id) == rotated
    assert fed.remote_actor_by_key(ann.key_id) is None
    assert fed.remote_actor_by_key(rotated.key_id) == rotated
    # a key id another actor held (an account moved) is the new actor's
    bob = RemoteActor(id="https://a.example/users/bob", key_id=rotated.key_id,
                      public_key_pem="PEM 3", inbox="https://a.example/users/bob/inbox",
                      fetched_at=at(6))
    fed.save_remote_actor(bob)
    assert fed.remote_actor_by_key(rotated.key_id) == bob
    assert fed.remote_actor(ann.id) is None


# -- the change log --------------------------------------------------------------------


def test_apply_writes_the_change_log_and_enqueue_consumes_it(store: Store) -> None:
    fed = store.federation
    assert fed.take_publications(10) == []
    first = (Publication(entry_id="s/1.md", kind=CREATE, at=T0),
             Publication(entry_id="s/2.md", kind=UPDATE, at=T0))
    apply(store, T0, entry(1, T0), publications=first)
    apply(store, at(1), publications=(Publication(entry_id="s/1.md", kind=DELETE, at=at(1)),))
    taken = fed.take_publications(10)
    assert [p for _, p in taken] == [*first, Publication(entry_id="s/1.md", kind=DELETE,
                                                         at=at(1))]
    seqs = [seq for seq, _ in taken]
    assert seqs == sorted(seqs) and len(set(seqs)) == 3
    assert fed.take_publications(2) == taken[:2]
    assert fed.take_publications(2) == taken[:2]  # taking does not remove
    # deliveries of the first two, and the log up to the second, in one transaction
    queued = fed.enqueue(seqs[1], [("https://x/ap/1", b"{1}", "nlp", "https://a.example/inbox"),
                                   ("https://x/ap/1", b"{1}", "nlp", "https://b.example/inbox"),
                                   ("https://x/ap/2", b"{2}", "all", "https://a.example/inbox")],
                         at(2))
    assert queued == 3
    assert fed.take_publications(10) == taken[2:]
    assert fed.enqueue(seqs[2], [], at(3)) == 0
    assert fed.take_publications(10) == []
    # a seq is never given again, even once the log is empty
    apply(store, at(4), publications=(Publication(entry_id="s/3.md", kind=CREATE, at=at(4)),))
    [(seq, publication)] = fed.take_publications(10)
    assert seq > seqs[2] and publication == Publication(entry_id="s/3.md", kind=CREATE, at=at(4))
    assert fed.queue_stats(at(5)) == (3, at(2))


def test_enqueue_ignores_a_delivery_already_queued(store: Store) -> None:
    fed = store.federation
    assert queue(store, "https://a.example/inbox", "https://b.example/inbox") == 2
    # the same (activity, inbox) again, twice in one call, and a new inbox: an activity's
    # body is stored once (the first), however many inboxes it goes to
    again = [("https://feeds.example.org/ap/a/1", b"other", "all", inbox)
             for inbox in ("https://a.example/inbox", "https://c.example/inbox",
                           "https://c.example/inbox")]
    assert fed.enqueue(None, again, at(1)) == 1
    claimed = fed.claim_deliveries(at(2), 10, "w", 60)
    body = b"body of https://feeds.example.org/ap/a/1"
    assert sorted((d.inbox, d.body, d.signer, d.created_at) for d in claimed) == [
        ("https://a.example/inbox", body, "nlp", T0),
        ("https://b.example/inbox", body, "nlp", T0),
        ("https://c.example/inbox", body, "nlp", at(1))]


def test_an_activity_body_is_kept_once_and_goes_when_no_delivery_needs_it(
        store: Store) -> None:
    fed = store.federation
    queue(store, *(f"https://{i}.example/inbox" for i in range(5)))
    queue(store, "https://z.example/inbox", activity="https://feeds.example.org/ap/a/2")
    with store._read() as conn:  # noqa: SLF001 (the test reads the table it is about)
        assert conn.execute(select(func.count()).select_from(ap_activities)).scalar() == 2
    for delivery in fed.claim_deliveries(at(1), 10, "w", 60):
        if delivery.activity_id.endswith("/1"):
            fed.delivered(delivery.id)
    fed.enqueue(None, [], at(2))  # an enqueue clears the bodies nothing needs
    with store._read() as conn:  # noqa: SLF001
        assert list(conn.execute(select(ap_activities.c.id)).scalars()) == [
            "https://feeds.example.org/ap/a/2"]


def test_a_failed_enqueue_leaves_the_publications_in_place(store: Store) -> None:
    fed = store.federation
    apply(store, T0, publications=(Publication(entry_id="s/1.md", kind=CREATE, at=T0),))
    [(seq, _)] = fed.take_publications(10)
    bad: bytes = None  # type: ignore[assignment]  # NOT NULL fails mid-transaction
    with pytest.raises(StoreError):
        fed.enqueue(seq, [("https://x/ap/1", b"{}", "nlp", "https://a.example/inbox"),
                          ("https://x/ap/2", bad, "nlp", "https://b.example/inbox")], at(1))
    assert [s for s, _ in fed.take_publications(10)] == [seq]
    assert fed.queue_stats(at(1)) == (0, None)


def test_entries_coming_due_are_logged_only_when_recording(store: Store) -> None:
    fed = store.federation
    apply(store, T0, entry(1, at(10)), entry(2, at(20)), entry(3, at(30)))
    store.refresh_due(at(15))  # not recording: e1 came due unlogged
    assert fed.take_publications(10) == []
    store.record_publications = True
    store.refresh_due(at(25))  # e2 came due since the last refresh (at 15)
    assert [p for _, p in fed.take_publications(10)] == [
        Publication(entry_id="s/2.md", kind=CREATE, at=at(20))]
    store.refresh_due(at(26))
    assert len(fed.take_publications(10)) == 1
    # a scan records what came due (read before its writes), then its own publications;
    # an entry it adds already visible is not counted again as coming due
    mine = Publication(entry_id="s/4.md", kind=CREATE, at=at(40))
    apply(store, at(40), entry(4, at(35)), publications=(mine,))
    assert [p for _, p in fed.take_publications(10)][1:] == [
        Publication(entry_id="s/3.md", kind=CREATE, at=at(30)), mine]
    store.refresh_due(at(50))
    assert len(fed.take_publications(10)) == 3


# -- the delivery queue ----------------------------------------------------------------


def test_claims_take_due_deliveries_oldest_first_and_hold_them(store: Store) -> None:
    fed = store.federation
    queue(store, "https://a.example/inbox", now=T0)
    queue(store, "https://b.example/inbox", now=at(1))
    queue(store, "https://c.example/inbox", now=at(2))
    queue(store, "https://d.example/inbox", now=at(5.75))  # not due at 5
    first = fed.claim_deliveries(at(5), 2, "one", 60)  # held until 6
    assert [(d.inbox, d.attempts, d.created_at, d.next_at) for d in first] == [
        ("https://a.example/inbox", 0, T0, T0), ("https://b.example/inbox", 0, at(1), at(1))]
    assert first[0] == Delivery(id=first[0].id, activity_id="https://feeds.example.org/ap/a/1",
                                inbox="https://a.example/inbox",
                                body=b"body of https://feeds.example.org/ap/a/1", signer="nlp", attempts=0,
                                created_at=T0, next_at=T0)
    assert [d.inbox for d in fed.claim_deliveries(at(5), 10, "two", 600)] == [
        "https://c.example/inbox"]
    assert fed.claim_deliveries(at(5.5), 10, "three", 60) == []  # all held, or not due
    assert fed.claim_deliveries(at(5.7), 10, "three", 60) == []
    assert fed.queue_stats(at(5.5)) == (4, T0)
    # a claim that runs out (its sender died) is claimable again (c's still holds); d came
    # due meanwhile
    again = fed.claim_deliveries(at(6), 10, "three", 60)
    assert [d.inbox for d in again] == ["https://a.example/inbox", "https://b.example/inbox",
                                        "https://d.example/inbox"]
    assert fed.claim_deliveries(at(6), 10, "four", 60) == []


def test_retry_delivered_and_drop(store: Store) -> None:
    fed = store.federation
    queue(store, "https://a.example/inbox", "https://b.example/inbox", "https://c.example/inbox")
    a, b, c = fed.claim_deliveries(T0, 10, "w", 600)
    fed.retry(a.id, at(2), "HTTP 503")
    assert fed.claim_deliveries(at(1), 10, "w", 600) == []  # unclaimed, but due at 2
    [retried] = fed.claim_deliveries(at(2), 10, "v", 600)
    assert retried == Delivery(id=a.id, activity_id=a.activity_id, inbox=a.inbox, body=a.body,
                               signer="nlp", attempts=1, created_at=T0, next_at=at(2))
    fed.retry(a.id, at(4), "timeout")
    [twice] = fed.claim_deliveries(at(4), 10, "v", 600)
    assert (twice.attempts, twice.next_at) == (2, at(4))
    fed.delivered(b.id)
    fed.drop(c.id)
    assert fed.queue_stats(at(5)) == (1, T0)
    fed.delivered(a.id)
    assert fed.queue_stats(at(5)) == (0, None)
    assert fed.claim_deliveries(at(60), 10, "w", 600) == []
    fed.delivered(a.id)  # gone already: nothing to do


def test_concurrent_claimers_never_share_a_delivery(store: Store, other: Store) -> None:
    fed = store.federation
    inboxes = [f"https://i{n:03}.example/inbox" for n in range(240)]
    assert queue(store, *inboxes) == 240
    stores = [store, other, store, other]

    def claimer(s: Store, owner: str) -> Callable[[], list[int]]:
        def claim_all() -> list[int]:
            got: list[int] = []
            while True:
                batch = s.federation.claim_deliveries(at(1), 7, owner, 600)
                if not batch:
                    return got
                got.extend(d.id for d in batch)
        return claim_all

    claimed = race([claimer(s, f"w{n}") for n, s in enumerate(stores)])
    every = [i for ids in claimed for i in ids]
    assert len(every) == len(set(every)) == 240
    assert sum(1 for ids in claimed if ids) >= 2  # they did run side by side
    assert fed.claim_deliveries(at(1), 300, "late", 600) == []
    assert fed.queue_stats(at(1)) == (240, T0)
