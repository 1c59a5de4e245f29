"""ActivityPub's tables: actor keys, followers, cached remote actors, the change log of
publications and the delivery queue. `FederationStore` (Store.federation) takes and returns
model objects; `record_*` are the change-log writes Store.apply and Store.refresh_due make
inside their own transaction. Knows nothing of HTTP, signatures or activity JSON; `now` is
always passed in."""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Iterable
from collections.abc import Sequence
from contextlib import AbstractContextManager
from typing import Any
from typing import Protocol

from sqlalchemy import Connection
from sqlalchemy import delete
from sqlalchemy import exists
from sqlalchemy import func
from sqlalchemy import insert
from sqlalchemy import or_
from sqlalchemy import select
from sqlalchemy import update

from feedsvc.model import Delivery
from feedsvc.model import Follower
from feedsvc.model import Publication
from feedsvc.model import PublicationKind
from feedsvc.model import RemoteActor
from feedsvc.store import dialect
from feedsvc.store import state
from feedsvc.store.schema import ap_activities
from feedsvc.store.schema import ap_deliveries
from feedsvc.store.schema import ap_followers
from feedsvc.store.schema import ap_keys
from feedsvc.store.schema import ap_publications
from feedsvc.store.schema import ap_remote_actors
from feedsvc.store.schema import entries
from feedsvc.store.schema import tombstones

logger = logging.getLogger(__name__)
CHUNK = 400  # values per IN (...)
INSERT_CHUNK = 1000  # rows per executemany


class Reader(Protocol):
    """Store._read: a connection for reads, store errors wrapped."""

    def __call__(self) -> AbstractContextManager[Connection]: ...


class Writer(Protocol):
    """Store._write: one write transaction; `serialized` takes the store-wide write lock."""

    def __call__(self, *, serialized: bool = True) -> AbstractContextManager[Connection]: ...


class FederationStore:
    """The federation's queries, reached as `store.federation`; shares the Store's
    connections, its write lock and its error wrapping (every failure is a StoreError).
    Single-statement writes do not take the store-wide write lock, so an inbox POST or a
    delivery never waits behind a long scan on PostgreSQL."""

    def __init__(self, read: Reader, write: Writer) -> None:
        self._read = read
        self._write = write

    # -- our actors' keys ---------------------------------------------------------------

    def key(self, handle: str) -> tuple[str, str] | None:
        """(private_pem, public_pem) of one of our actors, None before it has one."""
        with self._read() as conn:
            return _key(conn, handle)

    def save_key(self, handle: str, private_pem: str, public_pem: str,
                 now: dt.datetime) -> tuple[str, str]:
        """Keep this key pair unless the actor has one already; the pair stored either way
        (two processes generating a key at once both end up using the first one saved)."""
        with self._write(serialized=False) as conn:
            conn.execute(dialect.insert_ignoring(conn, ap_keys).values(
                handle=handle, private_pem=private_pem, public_pem=public_pem, created=now))
            stored = _key(conn, handle)
        assert stored is not None  # inserted, or already there, in this transaction
        return stored

    # -- followers ----------------------------------------------------------------------

    def add_follower(self, f: Follower) -> bool:
        """Record a follow; True when it is new. A repeated Follow keeps the first
        followed_at and takes the inboxes it names (an actor may have moved them)."""
        with self._write(serialized=False) as conn:
            added = conn.execute(dialect.insert_ignoring(conn, ap_followers).values(
                actor=f.actor, follower=f.follower, inbox=f.inbox,
                shared_inbox=f.shared_inbox, followed_at=f.followed_at)).rowcount == 1
            if not added:
                conn.execute(update(ap_followers)
                             .where(ap_followers.c.actor == f.actor,
                                    ap_followers.c.follower == f.follower)
                             .values(inbox=f.inbox, shared_inbox=f.shared_inbox))
        return added

    def remove_follower(self, actor: str, follower: str) -> bool:
        """Undo of a Follow; False when it was not following."""
        with self._write(serialized=False) as conn:
            return conn.execute(delete(ap_followers).where(
                ap_followers.c.actor == actor,
                ap_followers.c.follower == follower)).rowcount > 0

    def remove_actor_everywhere(self, follower: str) -> int:
        """A remote actor deleted: its follows of every actor go, and its cached key."""
        with self._write(serialized=False) as conn:
            removed = conn.execute(delete(ap_followers).where(
                ap_followers.c.follower == follower)).rowcount
            conn.execute(delete(ap_remote_actors).where(ap_remote_actors.c.id == follower))
        return removed

    def remove_inbox(self, inbox: str) -> int:
        """An inbox answered 410 Gone: every follower delivered through it goes (for a
        shared inbox, all of that instance's); how many follows were removed."""
        with self._write(serialized=False) as conn:
            return conn.execute(delete(ap_followers).where(or_(
                ap_followers.c.inbox == inbox, ap_followers.c.shared_inbox == inbox))).rowcount

    def followers(self, actor: str) -> list[Follower]:
        """One actor's followers, oldest follow first."""
        with self._read() as conn:
            rows = conn.execute(select(ap_followers).where(ap_followers.c.actor == actor)
                                .order_by(ap_followers.c.followed_at, ap_followers.c.follower))
            return [Follower(actor=r.actor, follower=r.follower, inbox=r.inbox,
                             shared_inbox=r.shared_inbox, followed_at=r.followed_at)
                    for r in rows]

    def follower_counts(self) -> dict[str, int]:
        """handle -> followers, for the actors that have any."""
        with self._read() as conn:
            rows = conn.execute(select(ap_followers.c.actor, func.count())
                                .group_by(ap_followers.c.actor).order_by(ap_followers.c.actor))
            return {actor: count for actor, count in rows}

    def delivery_inboxes(self, actors: Iterable[str]) -> list[str]:
        """Where one activity goes to reach every follower of these actors: each follower's
        shared inbox when it has one, else its own; each inbox once, sorted."""
        wanted = sorted(set(actors))
        if not wanted:
            return []
        target = func.coalesce(ap_followers.c.shared_inbox, ap_followers.c.inbox)
        with self._read() as conn:
            found: set[str] = set()
            for start in range(0, len(wanted), CHUNK):
                found.update(conn.execute(select(target).where(
                    ap_followers.c.actor.in_(wanted[start:start + CHUNK])).distinct()).scalars())
            return sorted(found)

    # -- remote actors ------------------------------------------------------------------

    def remote_actor(self, id: str) -> RemoteActor | None:
        with self._read() as conn:
            row = conn.execute(select(ap_remote_actors)
                               .where(ap_remote_actors.c.id == id)).first()
            return None if row is None else _remote_actor(row)

    def remote_actor_by_key(self, key_id: str) -> RemoteActor | None:
        with self._read() as conn:
            row = conn.execute(select(ap_remote_actors)
                               .where(ap_remote_actors.c.key_id == key_id)).first()
            return None if row is None else _remote_actor(row)

    def save_remote_actor(self, a: RemoteActor) -> None:
        """Insert or replace the cached actor (a key id another actor held is its now)."""
        row = {"id": a.id, "key_id": a.key_id, "public_key_pem": a.public_key_pem,
               "inbox": a.inbox, "shared_inbox": a.shared_inbox, "fetched_at": a.fetched_at}
        with self._write(serialized=False) as conn:
            conn.execute(delete(ap_remote_actors).where(ap_remote_actors.c.key_id == a.key_id,
                                                        ap_remote_actors.c.id != a.id))
            dialect.upsert(conn, ap_remote_actors, row, keys=("id",))

    # -- the change log and the delivery queue ------------------------------------------

    def take_publications(self, limit: int) -> list[tuple[int, Publication]]:
        """The oldest `limit` publications with their seq (left in place: enqueue() removes
        them with the deliveries they became)."""
        with self._read() as conn:
            rows = conn.execute(select(ap_publications).order_by(ap_publications.c.seq)
                                .limit(limit))
            return [(r.seq, Publication(entry_id=r.entry_id, kind=PublicationKind(r.kind),
                                        at=r.at)) for r in rows]

    def enqueue(self, done_through_seq: int | None,
                deliveries: Iterable[tuple[str, bytes, str, str]], now: dt.datetime) -> int:
        """Queue deliveries (activity_id, body, signer, inbox), due now, and remove the
        publications up to `done_through_seq`, in one transaction: a crash between the
        fan-out and this leaves the publications to be fanned out again, and a delivery
        already queued for the same (activity_id, inbox) is not queued twice. How many
        deliveries were queued."""
        wanted: dict[tuple[str, str], dict[str, Any]] = {}
        bodies: dict[str, dict[str, Any]] = {}  # each activity's body once
        for activity_id, body, signer, inbox in deliveries:
            bodies.setdefault(activity_id, {"id": activity_id, "body": body, "signer": signer,
                                            "created": now})
            wanted.setdefault((activity_id, inbox), {
                "activity_id": activity_id, "inbox": inbox, "attempts": 0, "created": now,
                "next_at": now})
        with self._write() as conn:  # serialized: the read of what is queued stays true
            conn.execute(delete(ap_activities).where(  # bodies no delivery needs any more
                ~exists().where(ap_deliveries.c.activity_id == ap_activities.c.id)))
            for row in bodies.values():
                conn.execute(dialect.insert_ignoring(conn, ap_activities), row)
            activities = sorted({activity for activity, _ in wanted})
            for start in range(0, len(activities), CHUNK):
                queued = conn.execute(select(ap_deliveries.c.activity_id, ap_deliveries.c.inbox)
                                      .where(ap_deliveries.c.activity_id.in_(
                                          activities[start:start + CHUNK])))
                for activity_id, inbox in queued:
                    wanted.pop((activity_id, inbox), None)
            rows = list(wanted.values())
            for start in range(0, len(rows), INSERT_CHUNK):
                conn.execute(insert(ap_deliveries), rows[start:start + INSERT_CHUNK])
            if done_through_seq is not None:
                conn.execute(delete(ap_publications)
                             .where(ap_publications.c.seq <= done_through_seq))
        return len(rows)

    def claim_deliveries(self, now: dt.datetime, limit: int, owner: str,
                         claim_seconds: float) -> list[Delivery]:
        """Up to `limit` due deliveries no live claim holds, oldest due first, claimed for
        `owner` until now + claim_seconds in the same transaction: however many processes
        claim at once, a delivery is handed to one of them (dialect.claimable). A claim
        that runs out (its process died) leaves the delivery to be claimed again."""
        query = (select(ap_deliveries)
                 .where(ap_deliveries.c.next_at <= now,
                        or_(ap_deliveries.c.claimed_until.is_(None),
                            ap_deliveries.c.claimed_until <= now))
                 .order_by(ap_deliveries.c.next_at, ap_deliveries.c.id).limit(limit))
        with self._write(serialized=False) as conn:
            rows = conn.execute(dialect.claimable(conn, query)).all()
            if not rows:
                return []
            conn.execute(update(ap_deliveries)
                         .where(ap_deliveries.c.id.in_([r.id for r in rows]))
                         .values(claimed_by=owner,
                                 claimed_until=now + dt.timedelta(seconds=claim_seconds)))
            bodies = {a.id: a for a in conn.execute(select(ap_activities).where(
                ap_activities.c.id.in_(sorted({r.activity_id for r in rows}))))}
        rows = [r for r in rows if r.activity_id in bodies]  # (every queued one has its body)
        return [Delivery(id=r.id, activity_id=r.activity_id, inbox=r.inbox,
                         body=bodies[r.activity_id].body, signer=bodies[r.activity_id].signer,
                         attempts=r.attempts, created_at=r.created, next_at=r.next_at)
                for r in rows]

    def delivered(self, id: int) -> None:
        """The inbox took it: off the queue."""
        self._remove(id)

    def retry(self, id: int, next_at: dt.datetime, error: str) -> None:
        """A failure to try again at next_at: one more attempt counted, the claim let go."""
        with self._write(serialized=False) as conn:
            conn.execute(update(ap_deliveries).where(ap_deliveries.c.id == id).values(
                attempts=ap_deliveries.c.attempts + 1, next_at=next_at, claimed_by=None,
                claimed_until=None, last_error=error))

    def drop(self, id: int) -> None:
        """Given up (a final 4xx, or retried for too long): off the queue."""
        self._remove(id)

    def queue_stats(self, now: dt.datetime) -> tuple[int, dt.datetime | None]:
        """(deliveries queued, created time of the oldest), due or not, claimed or not;
        `now` is the caller's moment (the age of the oldest is now - created)."""
        with self._read() as conn:
            depth, oldest = conn.execute(select(func.count(),
                                                func.min(ap_deliveries.c.created))).one()
        return int(depth), oldest

    def removed_entry_category(self, entry_id: str) -> str | None:
        """The category slug a removed entry had, from its tombstone (the author of its
        Delete); None when no tombstone is left."""
        with self._read() as conn:
            path = conn.execute(select(tombstones.c.entry_path).where(
                tombstones.c.entry_id == entry_id).limit(1)).scalar()
        return path.split("/", 1)[0] if path else None

    def _remove(self, id: int) -> None:
        """Off the queue (the activity's body goes with the next enqueue, once no delivery
        needs it: removing it here could race an enqueue of the same activity)."""
        with self._write(serialized=False) as conn:
            conn.execute(delete(ap_deliveries).where(ap_deliveries.c.id == id))


def record_publications(conn: Connection, publications: Sequence[Publication]) -> None:
    """Append a scan's publications to the change log (inside Store.apply's transaction)."""
    rows = [{"entry_id": p.entry_id, "kind": p.kind.value, "at": p.at} for p in publications]
    for start in range(0, len(rows), INSERT_CHUNK):
        conn.execute(insert(ap_publications), rows[start:start + INSERT_CHUNK])


def record_coming_due(conn: Connection, now: dt.datetime) -> int:
    """A CREATE (at its published time) for each stored entry that became visible since
    feeds were last computed (feeds_as_of < published <= now): a future-dated note come
    due. Called before the writes of a scan or a refresh, which then move feeds_as_of to
    now, so each entry is counted once; entries the scan itself adds are its own to
    record. How many were recorded."""
    since = state.feeds_as_of(conn)
    if since is None or since >= now:
        return 0
    due = conn.execute(select(entries.c.id, entries.c.published)
                       .where(entries.c.published > since, entries.c.published <= now)
                       .order_by(entries.c.published, entries.c.id)).all()
    record_publications(conn, [Publication(entry_id=i, kind=PublicationKind.CREATE, at=at)
                               for i, at in due])
    if due:
        logger.debug("entries came due: count=%d since=%s", len(due), since.isoformat())
    return len(due)


def _key(conn: Connection, handle: str) -> tuple[str, str] | None:
    row = conn.execute(select(ap_keys.c.private_pem, ap_keys.c.public_pem)
                       .where(ap_keys.c.handle == handle)).first()
    return None if row is None else (row.private_pem, row.public_pem)


def _remote_actor(row: Any) -> RemoteActor:
    return RemoteActor(id=row.id, key_id=row.key_id, public_key_pem=row.public_key_pem,
                       inbox=row.inbox, shared_inbox=row.shared_inbox, fetched_at=row.fetched_at)
