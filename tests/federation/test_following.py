"""Following and publishing with a real second ActivityPub server (peer.py: its own keys, its
own HTTP-signature code): a signed Follow is stored and answered with a signed Accept the
peer verifies; a scan's new, edited and removed notes reach the followers' inboxes once per
distinct inbox, signed, as Create + Announce, Update and Delete; Undo and a Delete of the
actor remove follows; 410 Gone removes an instance's followers; failures are retried later;
and every bad inbox request is refused with its status and changes nothing. Real HTTP on
127.0.0.1 both ways, a real store."""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from feedsvc.config import Config
from feedsvc.config import load_config
from feedsvc.federation.delivery import DeliveryWorker
from feedsvc.model import ScanJob
from feedsvc.serve.app import build_app
from feedsvc.store import Store
from feedsvc.store import open_store

from conftest import LiveServer
from conftest import NotesDir
from conftest import with_base_url
from conftest import write_config
from peer import Peer

EXTRA = """
[activitypub]
enabled = true
allow_private_addresses = true
retry_base_seconds = 30
"""


@dataclasses.dataclass
class Site:
    """feedsvc behind a live server, its scanner, a delivery worker, and the peer."""

    live: LiveServer
    store: Store
    config: Config
    worker: DeliveryWorker
    peer: Peer
    notes: NotesDir

    def url(self, path: str) -> str:
        return self.live.url + path

    def actor(self, handle: str) -> str:
        return self.url(f"/ap/actors/{handle}")

    def scan(self) -> Any:
        return self.live.app.extensions["feedsvc"].scanner.run(ScanJob(reason="test"))

    def followers(self, handle: str) -> int:
        doc = requests.get(self.actor(handle) + "/followers", timeout=10,
                           headers={"Accept": "application/activity+json"}).json()
        return int(doc["totalItems"])


@pytest.fixture
def site(tmp_path: Path, notes: NotesDir) -> Iterator[Site]:
    notes.write("NLP/old.md", "旧的。", title="Old", date="2025-01-01")
    config = load_config(write_config(tmp_path, notes.root, extra=EXTRA), env={})
    store = open_store(config.store_url)
    live = LiveServer()
    config = with_base_url(config, live.url + "/")
    live.app = build_app(config, store=store)
    worker = DeliveryWorker.for_store(config, store, live.app.extensions["feedsvc"].clock)
    with live, Peer() as peer:
        site = Site(live=live, store=store, config=config, worker=worker, peer=peer,
                    notes=notes)
        site.scan()  # the first import: published nothing
        yield site
        live.app.extensions["feedsvc"].scanner.wait_idle(10)
    worker.stop()
    store.close()


def test_a_follow_is_stored_and_accepted_with_a_signature_the_peer_verifies(site: Site) -> None:
    alice = site.peer.add_actor("alice")
    status, follow_id = site.peer.follow("alice", site.actor("nlp"), site.actor("nlp") + "/inbox")
    assert status == 202
    assert site.followers("nlp") == 1 and site.followers("all") == 0
    assert site.worker.run_once() == 1
    [accept] = site.peer.verified("Accept")
    assert accept["actor"] == site.actor("nlp") and accept["object"]["id"] == follow_id
    assert [r.inbox for r in site.peer.received] == ["/users/alice/inbox"]  # her own inbox
    # a repeated Follow is idempotent
    assert site.peer.follow("alice", site.actor("nlp"), site.url("/ap/inbox"))[0] == 202
    assert site.followers("nlp") == 1
    assert site.store.federation.remote_actor(alice) is not None


def test_a_new_note_reaches_each_inbox_once_edits_and_deletes_follow(site: Site) -> None:
    for name in ("alice", "bob"):  # one instance, one shared inbox
        site.peer.add_actor(name)
        site.peer.follow(name, site.actor("nlp"), site.url("/ap/inbox"))
    site.peer.add_actor("carol", shared_inbox=False)
    site.peer.follow("carol", site.actor("all"), site.url("/ap/inbox"))
    site.worker.run_once()  # the Accepts
    site.peer.received.clear()
    assert site.store.federation.queue_stats(dt.datetime.now(dt.timezone.utc))[0] == 0

    site.notes.write("NLP/new.md", "新的 **笔记**。", title="New", date="2026-01-01")
    report = site.scan()
    assert report.added == ("notes/NLP/new.md",)
    site.worker.run_once()
    creates = site.peer.verified("Create")
    announces = site.peer.verified("Announce")
    assert [r.inbox for r in site.peer.received] in (["/inbox", "/users/carol/inbox"],
                                                      ["/users/carol/inbox", "/inbox"])
    assert all(r.verified for r in site.peer.received), [r.reason for r in site.peer.received]
    [create] = creates
    article = create["object"]
    assert (create["actor"], article["type"], article["name"]) == (site.actor("nlp"), "Article",
                                                                   "New")
    assert "<strong>笔记</strong>" in article["content"]
    assert [a["object"] for a in announces] == [article["id"]]
    assert announces[0]["actor"] == site.actor("all")
    # the object's id answers with the same Article
    fetched = requests.get(article["id"], headers={"Accept": "application/activity+json"},
                           timeout=10).json()
    assert fetched["id"] == article["id"] and fetched["content"] == article["content"]

    site.peer.received.clear()
    site.notes.write("NLP/new.md", "改过的笔记。", title="New", date="2026-01-01",
                     updated="2026-01-02")
    site.scan()
    site.worker.run_once()
    updates = site.peer.verified("Update")  # to the followers of both actors
    assert len(updates) == 2 and updates[0] == updates[1]
    assert updates[0]["object"]["id"] == article["id"] and "改过" in updates[0]["object"]["content"]
    assert sorted(r.inbox for r in site.peer.received) == ["/inbox", "/users/carol/inbox"]

    site.peer.received.clear()
    site.notes.remove("NLP/new.md")
    site.scan()
    site.worker.run_once()
    deletes = site.peer.verified("Delete")
    assert {d["object"]["id"] for d in deletes} == {article["id"]}
    assert {d["object"]["type"] for d in deletes} == {"Tombstone"}
    assert sorted(r.inbox for r in site.peer.received) == ["/inbox", "/users/carol/inbox"]


def test_notes_present_before_and_the_first_import_are_not_pushed(site: Site) -> None:
    site.peer.add_actor("alice")
    site.peer.follow("alice", site.actor("nlp"), site.url("/ap/inbox"))
    site.worker.run_once()
    site.peer.received.clear()
    site.scan()  # nothing changed
    assert site.worker.run_once() == 0 and site.peer.received == []


def test_undo_and_a_deleted_actor_remove_follows(site: Site) -> None:
    alice = site.peer.add_actor("alice")
    follow_status, follow_id = site.peer.follow("alice", site.actor("nlp"), site.url("/ap/inbox"))
    site.peer.follow("alice", site.actor("all"), site.url("/ap/inbox"))
    assert site.followers("nlp") == 1 and site.followers("all") == 1
    undo = {"@context": "https://www.w3.org/ns/activitystreams", "id": follow_id + "/undo",
            "type": "Undo", "actor": alice,
            "object": {"id": follow_id, "type": "Follow", "actor": alice,
                       "object": site.actor("nlp")}}
    assert site.peer.post("alice", site.url("/ap/inbox"), undo)[0] == 202
    assert site.followers("nlp") == 0 and site.followers("all") == 1
    delete = {"@context": "https://www.w3.org/ns/activitystreams", "id": alice + "#delete",
              "type": "Delete", "actor": alice, "object": alice}
    assert site.peer.post("alice", site.url("/ap/inbox"), delete)[0] == 202
    assert site.followers("all") == 0
    assert site.store.federation.remote_actor(alice) is None


def test_an_inbox_answering_410_loses_its_followers(site: Site) -> None:
    for name in ("alice", "bob"):
        site.peer.add_actor(name)
        site.peer.follow(name, site.actor("nlp"), site.url("/ap/inbox"))
    site.worker.run_once()  # Accepts go to personal inboxes
    site.peer.status = 410
    site.notes.write("NLP/new.md", "新。", title="New", date="2026-01-01")
    site.scan()
    site.worker.run_once()
    assert site.followers("nlp") == 0  # the shared inbox is gone: the whole instance
    assert site.store.federation.queue_stats(dt.datetime.now(dt.timezone.utc))[0] == 0


def test_a_failing_inbox_is_tried_again_later_then_delivered(site: Site) -> None:
    site.peer.add_actor("alice")
    site.peer.follow("alice", site.actor("nlp"), site.url("/ap/inbox"))
    site.peer.status = 503
    site.worker.run_once()  # the Accept fails
    depth, _ = site.store.federation.queue_stats(dt.datetime.now(dt.timezone.utc))
    assert depth == 1
    assert site.worker.run_once() == 0  # not due yet: retry_base_seconds = 30
    later = dt.datetime.now(dt.timezone.utc) + dt.timedelta(seconds=31)
    [due] = site.store.federation.claim_deliveries(later, 10, "test", 1)
    assert due.attempts == 1
    site.store.federation.retry(due.id, dt.datetime.now(dt.timezone.utc), "test: due now")
    site.peer.status = 202
    assert site.worker.run_once() == 1
    assert len(site.peer.verified("Accept")) == 2  # refused once (503), then taken


def test_a_claim_left_by_a_dead_sender_runs_out_and_another_sends(site: Site) -> None:
    site.peer.add_actor("alice")
    site.peer.follow("alice", site.actor("nlp"), site.url("/ap/inbox"))
    now = dt.datetime.now(dt.timezone.utc)
    [claimed] = site.store.federation.claim_deliveries(now, 10, "a process that died", 0.5)
    assert site.worker.run_once() == 0  # claimed by someone else: not sent twice at once
    later = now + dt.timedelta(seconds=1)
    assert [d.id for d in site.store.federation.claim_deliveries(later, 10, "next", 60)] == \
        [claimed.id]


# -- bad input: refused, nothing changed, never a 500 ----------------------------------------

def post_raw(site: Site, path: str, body: bytes, headers: dict[str, str]) -> requests.Response:
    return requests.post(site.url(path), data=body, headers=headers, timeout=10)


def test_every_bad_inbox_request_is_refused_and_changes_nothing(site: Site) -> None:
    alice = site.peer.add_actor("alice")
    mallory = site.peer.add_actor("mallory")
    follow = {"@context": "https://www.w3.org/ns/activitystreams", "id": alice + "/f1",
              "type": "Follow", "actor": alice, "object": site.actor("nlp")}
    body = json.dumps(follow).encode()
    inbox = site.url("/ap/inbox")

    def signed(name: str, data: bytes, target: str = inbox) -> dict[str, str]:
        return site.peer.signed_headers(name, "POST", target, data)

    cases: list[tuple[str, bytes, dict[str, str], int]] = [
        ("/ap/actors/nobody/inbox", body, signed("alice", body, site.url("/ap/actors/nobody/inbox")), 404),
        ("/ap/inbox", b"{" + b" " * (1024 * 1024) + b"}", {"Content-Type": "application/json"}, 413),
        ("/ap/inbox", body, {"Content-Type": "application/activity+json"}, 401),  # unsigned
        ("/ap/inbox", body.replace(b"f1", b"f2"), signed("alice", body), 401),  # digest
        ("/ap/inbox", body, signed("mallory", body), 401),  # signed by another actor
        ("/ap/inbox", body, {**signed("alice", body), "Signature": 'keyId="x",signature="AA=="'}, 401),
        ("/ap/inbox", body, signed("alice", body, "http://other.example/ap/inbox"), 401),  # replayed
        ("/ap/inbox", b"[1, 2]", signed("alice", b"[1, 2]"), 400),  # not a JSON object
        ("/ap/inbox", b"\xff\xfe", signed("alice", b"\xff\xfe"), 400),
    ]
    old = dt.datetime.now(dt.timezone.utc) - dt.timedelta(hours=13)
    cases.append(("/ap/inbox", body, site.peer.signed_headers("alice", "POST", inbox, body, old),
                  401))  # a Date 13 hours old
    for path, data, headers, status in cases:
        answer = post_raw(site, path, data, headers)
        assert answer.status_code == status, (path, headers.get("Signature", "")[:40], answer.text)
        assert answer.headers["Content-Type"].split(";")[0] == "application/json"
        assert answer.json()["status"] == status
    assert site.followers("nlp") == 0 and site.followers("all") == 0
    assert site.store.federation.queue_stats(dt.datetime.now(dt.timezone.utc))[0] == 0
    assert mallory  # (her key signed one of the refused requests)


def test_a_signer_on_a_private_address_is_refused_without_a_request(
        tmp_path: Path, notes: NotesDir) -> None:
    notes.write("NLP/a.md", "a", title="A", date="2025-01-01")
    extra = EXTRA.replace("allow_private_addresses = true", "allow_private_addresses = false")
    config = load_config(write_config(tmp_path, notes.root, extra=extra), env={})
    store = open_store(config.store_url)
    live = LiveServer()
    live.app = build_app(with_base_url(config, live.url + "/"), store=store)
    with live, Peer() as peer:
        alice = peer.add_actor("alice")
        live.app.extensions["feedsvc"].scanner.run()
        status, _ = peer.follow("alice", f"{live.url}/ap/actors/nlp", f"{live.url}/ap/inbox")
        assert status == 401
        assert peer.gets == []  # refused before any request
        assert store.federation.remote_actor(alice) is None
        assert store.federation.follower_counts() == {}
    store.close()


def test_unknown_federation_paths_and_methods_are_json_errors(site: Site) -> None:
    for method, path, status in (("GET", "/ap/actors/nlp/nothing", 404),
                                 ("GET", "/.well-known/nothing", 404),
                                 ("PUT", "/ap/inbox", 405), ("GET", "/ap/inbox", 405)):
        answer = requests.request(method, site.url(path), timeout=10)
        assert answer.status_code == status, path
        assert answer.json() == {"error": answer.json()["error"], "status": status}


def test_a_rotated_key_is_fetched_again_but_not_more_than_every_five_minutes(site: Site) -> None:
    from cryptography.hazmat.primitives.asymmetric import rsa

    alice = site.peer.add_actor("alice")
    site.peer.follow("alice", site.actor("nlp"), site.url("/ap/inbox"))
    fetches = len(site.peer.gets)
    site.peer.actors["alice"].key = rsa.generate_private_key(public_exponent=65537,
                                                             key_size=2048)  # rotated
    follow_all = site.peer.follow("alice", site.actor("all"), site.url("/ap/inbox"))
    assert follow_all[0] == 401  # the cached key was fetched moments ago: no new request
    assert len(site.peer.gets) == fetches and site.followers("all") == 0
    cached = site.store.federation.remote_actor(alice)
    assert cached is not None
    site.store.federation.save_remote_actor(dataclasses.replace(
        cached, fetched_at=cached.fetched_at - dt.timedelta(minutes=6)))
    assert site.peer.follow("alice", site.actor("all"), site.url("/ap/inbox"))[0] == 202
    assert len(site.peer.gets) == fetches + 1 and site.followers("all") == 1
