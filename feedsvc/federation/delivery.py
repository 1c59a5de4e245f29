"""The delivery queue's worker (DESIGN.md "Federation": publishing, delivery).

Run only by the process that holds the scanner lease. Each round it turns the store's change
log (what scans published, changed or removed) into activities and queues one delivery per
distinct inbox (shared inboxes preferred) in one transaction, then sends the due deliveries,
at most `delivery_concurrency` at a time, each a signed POST with a 10 s timeout. A 2xx is
done; `410 Gone` removes the followers delivered through that inbox; a timeout, a refused
connection, a 5xx, 408 or 429 is tried again after retry_base_seconds, doubled each time,
until retry_days have passed; any other 4xx is final. Deliveries are claimed in the store
before they are sent, so no two processes send one at once, and one left claimed by a
process that died is claimable again once its claim runs out."""

from __future__ import annotations

import datetime as dt
import json
import logging
import os
import threading
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED
from concurrent.futures import Future
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import wait
from typing import Any

from feedsvc import metrics
from feedsvc.config import ActivityPubConfig
from feedsvc.config import Config
from feedsvc.errors import FetchError
from feedsvc.federation import objects
from feedsvc.federation.actors import ActorDirectory
from feedsvc.federation.actors import ActorSet
from feedsvc.federation.fetch import RemoteClient
from feedsvc.federation.keys import generate_key_pair
from feedsvc.federation.signatures import sign_request
from feedsvc.model import Clock
from feedsvc.model import Delivery
from feedsvc.model import Publication
from feedsvc.model import PublicationKind
from feedsvc.store import Store
from feedsvc.urls import Urls

logger = logging.getLogger(__name__)
RETRYABLE = frozenset({408, 429})
CLAIM_SECONDS = 60.0  # a claim outlives any one send (10 s timeout) by far
FAN_OUT_BATCH = 200  # publications turned into deliveries per transaction
IDLE_SECONDS = 1.0  # how often an idle worker looks at the queue again


def outcome(status: int | None) -> str:
    """What a POST's answer means: "delivered", "gone", "retry" or "failed" (final)."""
    if status is None or status in RETRYABLE or status >= 500:
        return "retry"
    if 200 <= status < 300:
        return "delivered"
    return "gone" if status == 410 else "failed"


def next_attempt(delivery: Delivery, now: dt.datetime, config: ActivityPubConfig
                 ) -> dt.datetime | None:
    """When to try a failed delivery again (base, doubled per attempt), or None to give up
    once retry_days have passed since it was queued."""
    wait = config.retry_base_seconds * 2 ** min(delivery.attempts, 30)
    at = now + dt.timedelta(seconds=wait)
    if at - delivery.created_at > dt.timedelta(days=config.retry_days):
        return None
    return at


class DeliveryWorker:
    """Fans publications out and sends deliveries; `run_once` is one round (tests call it),
    `start` runs rounds on a thread while `is_leader()` holds."""

    def __init__(self, *, store: Store, directory: ActorDirectory, client: RemoteClient,
                 urls: Urls, clock: Clock, config: ActivityPubConfig,
                 owner: str | None = None) -> None:
        self.store = store
        self.directory = directory
        self.client = client
        self.urls = urls
        self.clock = clock
        self.config = config
        self.owner = owner or f"{os.getpid()}-{id(self):x}"
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._pool = ThreadPoolExecutor(max_workers=config.delivery_concurrency,
                                        thread_name_prefix="feedsvc-deliver")

    # -- one round -----------------------------------------------------------------------

    def run_once(self) -> int:
        """Fan out what scans published, then send every due delivery; how many were sent
        (whatever their outcome)."""
        while self.fan_out():
            pass
        sent = 0
        in_flight: set[Future[str]] = set()
        room = self.config.delivery_concurrency * 2  # claimed at most: sending + next up
        while True:
            if len(in_flight) < room:  # claim more as sends end: a slow inbox holds one slot
                for delivery in self.store.federation.claim_deliveries(
                        self.clock(), room - len(in_flight), self.owner, CLAIM_SECONDS):
                    in_flight.add(self._pool.submit(self.send, delivery))
            if not in_flight:
                return sent
            done, in_flight = wait(in_flight, return_when=FIRST_COMPLETED)
            sent += len(done)
            for future in done:
                future.result()  # a bug in send stays loud

    def fan_out(self) -> int:
        """One batch of the change log as deliveries; how many publications it took."""
        taken = self.store.federation.take_publications(FAN_OUT_BATCH)
        if not taken:
            return 0
        actors = self.directory.actors()
        deliveries: list[tuple[str, bytes, str, str]] = []
        for _, publication in taken:
            for activity, signer, audience in self.activities(publication, actors):
                body = json.dumps(objects.with_context(activity), ensure_ascii=False).encode()
                for inbox in self.store.federation.delivery_inboxes(audience):
                    deliveries.append((activity["id"], body, signer, inbox))
        self.store.federation.enqueue(taken[-1][0], deliveries, self.clock())
        return len(taken)

    def activities(self, publication: Publication, actors: ActorSet
                   ) -> list[tuple[dict[str, Any], str, list[str]]]:
        """(activity, signing actor's handle, handles whose followers get it) for one
        publication: a Create by the author and the site actor's Announce; an Update or a
        Delete by the author to the followers of both."""
        site = actors.site
        if publication.kind is PublicationKind.DELETE:
            slug = self.store.federation.removed_entry_category(publication.entry_id)
            author = (actors.of_category(slug) if slug else None) or site
            audience = sorted({author.handle, site.handle})
            return [(objects.delete_activity(publication.entry_id, author=author,
                                             audience=[a for a in actors.all
                                                       if a.handle in audience],
                                             urls=self.urls), author.handle, audience)]
        refs = self.store.entry_refs_by_ids([publication.entry_id])
        ref = refs.get(publication.entry_id)
        entry = self.store.entry(ref.category_slug, ref.slug, self.clock()) if ref else None
        if entry is None:
            return []  # gone again, or not visible (a later publication says what happened)
        author = actors.author_of(entry.category)
        if publication.kind is PublicationKind.UPDATE:
            audience = sorted({author.handle, site.handle})
            return [(objects.update_activity(entry, author=author, urls=self.urls),
                     author.handle, audience)]
        made = [(objects.create_activity(entry, author=author, urls=self.urls), author.handle,
                 [author.handle])]
        if author.handle != site.handle:
            made.append((objects.announce_activity(entry, site=site, author=author,
                                                   urls=self.urls), site.handle, [site.handle]))
        return made

    def send(self, delivery: Delivery) -> str:
        """One signed POST and what it leaves in the queue; its outcome."""
        federation = self.store.federation
        private_pem = self.directory.key_pair(delivery.signer)[0]
        headers = sign_request("POST", delivery.inbox,
                               key_id=self.urls.actor(delivery.signer) + "#main-key",
                               private_pem=private_pem, body=delivery.body, now=self.clock())
        headers["Content-Type"] = objects.ACTIVITY_JSON
        status: int | None = None
        error = ""
        try:
            status = self.client.post(delivery.inbox, delivery.body, headers)
            error = f"HTTP {status}"
        except FetchError as e:
            error = e.message
        result = outcome(status)
        if result == "delivered":
            federation.delivered(delivery.id)
        elif result == "gone":
            removed = federation.remove_inbox(delivery.inbox)
            federation.drop(delivery.id)
            logger.info("inbox gone: inbox=%s followers_removed=%d", delivery.inbox, removed)
        elif result == "retry":
            at = next_attempt(delivery, self.clock(), self.config)
            if at is None:
                result = "dropped"
                federation.drop(delivery.id)
                logger.warning("delivery dropped after %s days: inbox=%s activity=%s error=%s",
                               self.config.retry_days, delivery.inbox, delivery.activity_id,
                               error)
            else:
                federation.retry(delivery.id, at, error)
        else:
            federation.drop(delivery.id)
            logger.warning("delivery refused: inbox=%s activity=%s error=%s", delivery.inbox,
                           delivery.activity_id, error)
        metrics.record_delivery(result)
        return result

    # -- the thread ----------------------------------------------------------------------

    def start(self, is_leader: Callable[[], bool]) -> None:
        """Run rounds on a daemon thread, while this process holds the scanner lease."""
        def loop() -> None:
            while not self._stop.is_set():
                if is_leader():
                    try:
                        self.run_once()
                    except Exception:  # the worker outlives any one round's failure
                        logger.exception("delivery round failed")
                self._wake.wait(IDLE_SECONDS)
                self._wake.clear()
        self._thread = threading.Thread(target=loop, name="feedsvc-delivery", daemon=True)
        self._thread.start()

    def wake(self) -> None:
        """A scan applied something: look at the change log now."""
        self._wake.set()

    @classmethod
    def for_store(cls, config: Config, store: Store, clock: Clock) -> DeliveryWorker:
        """The worker of a scanner process: its own directory of actors and client."""
        directory = ActorDirectory(config, store, clock, keys=store.federation,
                                   generate_key_pair=generate_key_pair)
        client = RemoteClient(allow_private=config.activitypub.allow_private_addresses)
        return cls(store=store, directory=directory, client=client,
                   urls=Urls(config.site.base_url), clock=clock, config=config.activitypub)

    def stop(self, timeout: float = 15.0) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout)
        self._pool.shutdown(wait=True, cancel_futures=True)
