"""What a POST to an inbox does (DESIGN.md "Federation": following, signatures, bad input).

Checks, in the contract's order: an inbox of an actor that does not exist here is a 404, a
body over 1 MiB a 413, an unsigned or badly signed POST a 401 (the key must belong to the
activity's `actor`), a body that is not a JSON object a 400; a request that fails any check
changes nothing. Then Follow (stored, answered with a signed Accept through the delivery
queue), Undo of a Follow and Delete of an actor change the store; everything else is
acknowledged (202) and ignored. The signer's actor is fetched by keyId with a signed GET,
cached in the store and fetched again once when a signature fails to verify (a rotated key).
No Flask here: views.py hands in the request."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from feedsvc.errors import FetchError
from feedsvc.errors import SignatureError
from feedsvc.federation import objects
from feedsvc.federation.actors import Actor
from feedsvc.federation.actors import ActorDirectory
from feedsvc.federation.fetch import RemoteClient
from feedsvc.federation.signatures import key_id_of
from feedsvc.federation.signatures import sign_request
from feedsvc.federation.signatures import verify_request
from feedsvc.model import Clock
from feedsvc.model import Follower
from feedsvc.model import RemoteActor
from feedsvc.store.federation import FederationStore
from feedsvc.urls import Urls

logger = logging.getLogger(__name__)
MAX_BODY_BYTES = 1024 * 1024
REFETCH_AFTER = dt.timedelta(minutes=5)  # a signer's key is fetched again at most this often
ACTOR_TYPES = frozenset({"Person", "Service", "Application", "Group", "Organization"})


@dataclass(frozen=True, slots=True)
class InboxRequest:
    """A POST as received: `target` is its path and query, `body` at most 1 MiB + 1 byte."""

    method: str
    target: str
    headers: Mapping[str, str]
    body: bytes


@dataclass(frozen=True, slots=True)
class InboxAnswer:
    """The status to answer, the outcome /metrics counts, and why (for the log)."""

    status: int
    outcome: str
    reason: str = ""


class Inbox:
    """The inboxes of every actor of one app (thread-safe: the store and the client are)."""

    def __init__(self, *, store: FederationStore, directory: ActorDirectory, client: RemoteClient,
                 urls: Urls, clock: Clock) -> None:
        self.store = store
        self.directory = directory
        self.client = client
        self.urls = urls
        self.clock = clock

    def receive(self, handle: str | None, request: InboxRequest) -> InboxAnswer:
        """One POST to the inbox of `handle` (None: the shared inbox)."""
        if handle is not None and self.directory.actors().get(handle) is None:
            return InboxAnswer(404, "not_found", f"no actor {handle!r} here")
        if len(request.body) > MAX_BODY_BYTES:
            return InboxAnswer(413, "too_large", "body over 1 MiB")
        try:
            key_id = key_id_of(request.headers)
        except SignatureError as e:
            return InboxAnswer(401, "unsigned", e.message)
        activity = _json_object(request.body)
        try:
            signer = self._verified_signer(key_id, request)
        except FetchError as e:
            if activity is not None and activity.get("type") == "Delete" and \
                    activity.get("actor") == activity.get("object"):
                # an actor deleting itself: its key is gone with it, and an actor we never
                # fetched has nothing here to remove
                return InboxAnswer(202, "ignored", f"signer gone: {e.message}")
            return InboxAnswer(401, "bad_signature", f"signer not fetched: {e.message}")
        except SignatureError as e:
            return InboxAnswer(401, "bad_signature", e.message)
        host = next((v for k, v in request.headers.items() if k.lower() == "host"), "")
        if host.lower() != self.urls.host:
            return InboxAnswer(401, "bad_signature", "signed for another host than this one")
        if activity is None:
            return InboxAnswer(400, "bad_json", "body is not a JSON object")
        if activity.get("actor") != signer.id:
            return InboxAnswer(401, "bad_signature", "signed by a key of another actor than "
                                                     "the activity's")
        return self._act(handle, activity, signer, self.directory.actors().all)

    # -- signature ---------------------------------------------------------------------

    def _verified_signer(self, key_id: str, request: InboxRequest) -> RemoteActor:
        """The remote actor whose key signed the request, its signature verified."""
        cached = self.store.remote_actor_by_key(key_id)
        signer = cached if cached is not None else self._fetch_signer(key_id)
        try:
            self._verify(signer, request)
        except SignatureError:
            if cached is None or self.clock() - cached.fetched_at < REFETCH_AFTER:
                raise  # fetched lately: a flood of bad signatures makes no request of ours
            signer = self._fetch_signer(key_id)  # the key may have been rotated: once more
            self._verify(signer, request)
        return signer

    def _verify(self, signer: RemoteActor, request: InboxRequest) -> None:
        verify_request(method=request.method, target=request.target, headers=request.headers,
                       body=request.body, public_pem=signer.public_key_pem, now=self.clock())

    def _fetch_signer(self, key_id: str) -> RemoteActor:
        """The actor owning `key_id`, fetched (signed GET by the site actor) and cached."""
        url = key_id.split("#", 1)[0]
        doc = self.client.get_json(url, sign=self._signer())
        if doc.get("type") not in ACTOR_TYPES and isinstance(doc.get("owner"), str):
            doc = self.client.get_json(doc["owner"], sign=self._signer())  # a key document
        key = doc.get("publicKey")
        if isinstance(key, list):
            key = next((k for k in key if isinstance(k, dict) and k.get("id") == key_id), None)
        actor_id, inbox = doc.get("id"), doc.get("inbox")
        endpoints = doc.get("endpoints") if isinstance(doc.get("endpoints"), dict) else {}
        shared = endpoints.get("sharedInbox") if endpoints else None
        if not isinstance(key, dict) or key.get("id") != key_id or \
                not isinstance(key.get("publicKeyPem"), str) or not isinstance(actor_id, str) \
                or not isinstance(inbox, str) or key.get("owner", actor_id) != actor_id:
            raise SignatureError("the keyId's document names no such key of an actor",
                                 key_id=key_id)
        if urlsplit(actor_id).netloc != urlsplit(key_id).netloc:
            raise SignatureError("the key and its actor are on different hosts", key_id=key_id)
        actor = RemoteActor(id=actor_id, key_id=key_id, public_key_pem=key["publicKeyPem"],
                            inbox=inbox, shared_inbox=shared if isinstance(shared, str) else None,
                            fetched_at=self.clock())
        self.store.save_remote_actor(actor)
        return actor

    def _signer(self) -> Any:
        """Signs this process's GETs with the site actor's key (Mastodon's authorized fetch)."""
        site = self.directory.actors().site
        private_pem = self.directory.key_pair(site.handle)[0]
        key_id = self.urls.actor(site.handle) + "#main-key"

        def sign(method: str, url: str, body: bytes | None) -> dict[str, str]:
            return sign_request(method, url, key_id=key_id, private_pem=private_pem, body=body,
                                now=self.clock())
        return sign

    # -- activities ----------------------------------------------------------------------

    def _act(self, handle: str | None, activity: dict[str, Any], signer: RemoteActor,
             actors: tuple[Actor, ...]) -> InboxAnswer:
        kind = activity.get("type")
        if kind == "Follow":
            target = self._local(activity.get("object"), actors)
            if target is None or (handle is not None and target.handle != handle):
                return InboxAnswer(202, "ignored", "a Follow of no actor of this inbox")
            return self._follow(target, activity, signer)
        if kind == "Undo":
            undone = activity.get("object")
            if isinstance(undone, dict) and undone.get("type") == "Follow":
                target = self._local(undone.get("object"), actors)
                if target is not None and undone.get("actor") in (None, signer.id):
                    removed = self.store.remove_follower(target.handle, signer.id)
                    logger.info("unfollowed: actor=%s follower=%s", target.handle, signer.id)
                    return InboxAnswer(202, "unfollowed" if removed else "ignored")
            elif isinstance(undone, str) and handle is not None:
                removed = self.store.remove_follower(handle, signer.id)
                return InboxAnswer(202, "unfollowed" if removed else "ignored")
            return InboxAnswer(202, "ignored", "an Undo of nothing followed here")
        if kind == "Delete":
            gone = activity.get("object")
            gone_id = gone.get("id") if isinstance(gone, dict) else gone
            if gone_id == signer.id:
                follows = self.store.remove_actor_everywhere(signer.id)
                logger.info("remote actor deleted: actor=%s follows=%d", signer.id, follows)
                return InboxAnswer(202, "deleted")
        return InboxAnswer(202, "ignored", f"{str(kind)[:40]} acknowledged")

    def _local(self, value: object, actors: tuple[Actor, ...]) -> Actor | None:
        url = value.get("id") if isinstance(value, dict) else value
        return next((a for a in actors if self.urls.actor(a.handle) == url), None)

    def _follow(self, target: Actor, activity: dict[str, Any],
                signer: RemoteActor) -> InboxAnswer:
        now = self.clock()
        new = self.store.add_follower(Follower(actor=target.handle, follower=signer.id,
                                               inbox=signer.inbox,
                                               shared_inbox=signer.shared_inbox,
                                               followed_at=now))
        accept = accept_activity(target, activity, self.urls)
        # delivered to the follower's own inbox, as Mastodon does, through the queue
        self.store.enqueue(None, [(accept["id"], json.dumps(accept).encode(), target.handle,
                                   signer.inbox)], now)
        logger.info("followed: actor=%s follower=%s new=%s", target.handle, signer.id, new)
        return InboxAnswer(202, "followed")


def accept_activity(target: Actor, follow: dict[str, Any], urls: Urls) -> dict[str, Any]:
    """The Accept of a Follow; its id is stable for one Follow (a repeat is a duplicate)."""
    follow_id = str(follow.get("id") or json.dumps(follow, sort_keys=True))
    tag = hashlib.sha256(follow_id.encode()).hexdigest()[:24]
    actor = urls.actor(target.handle)
    return objects.with_context({"id": f"{actor}#accepts/{tag}", "type": "Accept",
                                 "actor": actor, "object": follow})


def _json_object(body: bytes) -> dict[str, Any] | None:
    try:
        value = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        return None
    return value if isinstance(value, dict) else None
