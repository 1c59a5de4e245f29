"""Federation across real processes: `python -m feedsvc serve` subprocesses (each its own
process group, all stopped after the test), a real store (SQLite, or the suite's PostgreSQL)
and the peer (peer.py: a second ActivityPub server with its own keys and signature code).
A follow is accepted and a webhook's new note reaches the follower; queued deliveries survive
a SIGKILL and a SIGTERM of the whole serve and go out exactly once per inbox after the
restart; of two serves on one store only the scanner-lease holder delivers, and the standby
takes over what was pending when the holder is SIGKILLed; a `--role web` process takes a
Follow whose Accept the lease holder of another process sends. 127.0.0.1 only; every wait
is bounded."""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as dt
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.parse
from collections.abc import Callable
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from typing import TypeVar

import pytest
import requests
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import create_engine
from sqlalchemy import select

from feedsvc.store.schema import ap_deliveries
from feedsvc.store.schema import locks
from feedsvc.web.webhook import sign

from conftest import BASE_URL
from conftest import REPO
from conftest import NotesDir
from conftest import write_config
from peer import Peer
from pg import PostgresServer
from pg import free_port

SECRET = "s3cret"  # write_config's webhook.secret
LEASE_SECONDS = 3  # a SIGKILLed holder's lease runs out this soon (renewed every 1 s)
RETRY_BASE_SECONDS = 3  # a refused delivery waits 3 s, then 6 s, ...
START_SECONDS = 60  # a serve answers /healthz (and has scanned) within this
DELIVERY_SECONDS = 15  # an activity reaches the peer within this
SETTLE_SECONDS = 1.5  # longer than the delivery worker's idle wait (1 s): time for a duplicate
T = TypeVar("T")


def wait_for(what: str, predicate: Callable[[], T | None], timeout: float,
             interval: float = 0.05) -> T:
    """The first truthy value of `predicate` within `timeout` seconds, else a failure."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"{what}: not within {timeout} s")


def site_config(tmp_path: Path, notes: NotesDir, *, base_url: str,
                store_url: str | None = None) -> Path:
    """The suite's config with federation on, this test's base_url (and store)."""
    path = write_config(tmp_path, notes.root, extra=f"""
[scheduler]
poll_seconds = 0
lease_seconds = {LEASE_SECONDS}

[activitypub]
enabled = true
allow_private_addresses = true
retry_base_seconds = {RETRY_BASE_SECONDS}
""")
    text = path.read_text(encoding="utf-8").replace(BASE_URL, base_url)
    if store_url is not None:
        sqlite = f'url = "sqlite:///{(tmp_path / "feedsvc.db").as_posix()}"'
        assert sqlite in text
        text = text.replace(sqlite, f'url = "{store_url}"')
    path.write_text(text, encoding="utf-8")
    return path


@dataclasses.dataclass
class Serve:
    """One `feedsvc serve` in its own process group, on a 127.0.0.1 port, logging to a file."""

    name: str
    port: int
    process: subprocess.Popen[bytes]
    log: Path

    @classmethod
    def start(cls, config_path: Path, log: Path, *, port: int | None = None, role: str = "all",
              workers: int = 1) -> Serve:
        port = port or free_port()
        env = {k: v for k, v in os.environ.items() if k != "PROMETHEUS_MULTIPROC_DIR"}
        env["PYTHONPATH"] = str(REPO)  # each serve keeps its own metrics folder
        with log.open("ab") as out:  # the child keeps its own copy of the descriptor
            process = subprocess.Popen(
                [sys.executable, "-m", "feedsvc", "serve", "--config", str(config_path),
                 "--port", str(port), "--role", role, "--workers", str(workers),
                 "--threads", "4"], stdout=out, stderr=subprocess.STDOUT, env=env, cwd=REPO,
                start_new_session=True)
        return cls(name=log.stem, port=port, process=process, log=log)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def health(self) -> dict[str, Any] | None:
        """The /healthz body, None while it does not answer 200."""
        try:
            response = requests.get(f"{self.url}/healthz", timeout=3)
        except requests.RequestException:
            return None
        return response.json() if response.status_code == 200 else None

    def wait_up(self, *, scanned: bool = True) -> dict[str, Any]:
        """/healthz once it answers (and, by default, once the store has a scan)."""
        def up() -> dict[str, Any] | None:
            if self.process.poll() is not None:
                raise AssertionError(f"{self.name} exited {self.process.returncode}")
            state = self.health()
            return state if state and (state["last_scan"] or not scanned) else None
        try:
            return wait_for(f"{self.name} up", up, START_SECONDS, interval=0.2)
        except AssertionError as e:
            raise AssertionError(f"{e}\n{self.output()}") from None

    def holds_lease(self) -> bool:
        return bool((self.health() or {}).get("scheduler", {}).get("this_process"))

    def queue_depth(self) -> int:
        state = self.health()
        assert state is not None, self.name
        return int(state["activitypub"]["queue_depth"])

    def counter(self, family: str, outcome: str) -> float:
        """One sample of a counter on this serve's /metrics (summed over its processes)."""
        text = requests.get(f"{self.url}/metrics", timeout=5).text
        return sum(sample.value for metric in text_string_to_metric_families(text)
                   if metric.name == family for sample in metric.samples
                   if sample.name == f"{family}_total" and sample.labels["outcome"] == outcome)

    def kill(self, sig: signal.Signals) -> None:
        """SIGKILL the whole process group, or SIGTERM the serve (it stops its children)."""
        if sig is signal.SIGKILL:
            os.killpg(self.process.pid, sig)
        else:
            self.process.send_signal(sig)
        self.process.wait(20)

    def stop(self) -> None:
        """SIGTERM, then SIGKILL to whatever of its group is left: sent before the serve
        is reaped, so its id (the group's) cannot have been reused by then."""
        if self.process.returncode is not None:
            return
        self.process.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and not os.waitid(
                os.P_PID, self.process.pid, os.WEXITED | os.WNOHANG | os.WNOWAIT):
            time.sleep(0.05)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait(5)

    def output(self) -> str:
        return f"--- {self.name}\n" + self.log.read_text(errors="replace")[-6000:]


@pytest.fixture
def serves() -> Iterator[list[Serve]]:
    """The serves a test started, all stopped afterwards; none may log a traceback."""
    started: list[Serve] = []
    yield started
    for serve in started:
        serve.stop()
    logs = "".join(s.output() for s in started)
    assert "Traceback" not in logs, logs


class Front:
    """The site's public address, as nginx would be in front: a TCP relay on a free
    127.0.0.1 port to the first of `backends` that takes the connection, so the peer
    reaches whichever serve is alive at the one base_url they all share."""

    def __init__(self) -> None:
        self.backends: list[int] = []
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self.listener.getsockname()[1]}"
        self.thread = threading.Thread(target=self._accept, daemon=True)

    def __enter__(self) -> Front:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.listener.shutdown(socket.SHUT_RDWR)  # wakes the accept() (close alone does not)
        self.listener.close()
        self.thread.join(5)

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:  # closed
                return
            threading.Thread(target=self._relay, args=(client,), daemon=True).start()

    def _relay(self, client: socket.socket) -> None:
        for port in list(self.backends):
            try:
                upstream = socket.create_connection(("127.0.0.1", port), timeout=2)
            except OSError:  # refused: that serve is down, try the next
                continue
            upstream.settimeout(None)
            back = threading.Thread(target=_pipe, args=(upstream, client), daemon=True)
            back.start()
            _pipe(client, upstream)
            back.join(15)
            upstream.close()
            break
        client.close()


def _pipe(source: socket.socket, target: socket.socket) -> None:
    with contextlib.suppress(OSError):
        while data := source.recv(65536):
            target.sendall(data)
    with contextlib.suppress(OSError):
        target.shutdown(socket.SHUT_WR)


# -- what the peer and the store saw -----------------------------------------------------

def taken(peer: Peer, kind: str, since: int = 0) -> list[tuple[str, str]]:
    """(inbox path, object id) of each verified `kind` received from index `since` on."""
    with peer.lock:
        found = peer.received[since:]
    return sorted((r.inbox, _object_id(r.activity)) for r in found
                  if r.verified and r.activity.get("type") == kind)


def unverified(peer: Peer) -> list[str]:
    """Why each POST the peer refused failed to verify (none should)."""
    with peer.lock:
        return [f"{r.inbox}: {r.reason}" for r in peer.received if not r.verified]


def _object_id(activity: dict[str, Any]) -> str:
    value = activity.get("object")
    return str(value.get("id") if isinstance(value, dict) else value)


def answer_with(peer: Peer, status: int) -> int:
    """Make the peer's inboxes answer `status` from now on; how many POSTs it had before."""
    with peer.lock:
        peer.status = status
        return len(peer.received)


def read_store(store_url: str, query: Any) -> list[Any]:
    """Rows of one query, read from the store as an operator would, from outside."""
    engine = create_engine(store_url)
    try:
        with engine.connect() as conn:
            return list(conn.execute(query).all())
    finally:
        engine.dispose()


def queued(store_url: str) -> list[Any]:
    """The delivery queue: (inbox path, attempts, claimed_until, next_at), by inbox."""
    rows = read_store(store_url, select(ap_deliveries.c.inbox, ap_deliveries.c.attempts,
                                        ap_deliveries.c.claimed_until, ap_deliveries.c.next_at))
    return sorted((urllib.parse.urlsplit(inbox).path, *rest) for inbox, *rest in rows)


def lease_owner(store_url: str) -> str | None:
    rows = read_store(store_url, select(locks.c.owner).where(locks.c.name == "scheduler"))
    return str(rows[0][0]) if rows else None


def between_attempts(store_url: str, inboxes: list[str]) -> bool:
    """Every delivery of `inboxes` refused at least once, none claimed (in flight), none due
    within the next second: a moment to kill a serve without a claim left behind (a claim
    of a dead process runs 60 s before another may send)."""
    soon = dt.datetime.now(dt.timezone.utc) + dt.timedelta(seconds=1)
    rows = queued(store_url)
    return [inbox for inbox, *_ in rows] == inboxes and all(
        attempts >= 1 and claimed is None and next_at > soon for _, attempts, claimed, next_at
        in rows)


def one_holder(serves: list[Serve]) -> list[Serve] | None:
    holders = [s for s in serves if s.holds_lease()]
    return holders if len(holders) == 1 else None


def post_webhook(base: str) -> None:
    body = b"{}"
    response = requests.post(f"{base}/hooks/refresh", data=body, timeout=10,
                             headers={"X-Hub-Signature-256": sign(SECRET, body)})
    assert response.status_code == 202, response.text


def follow_nlp(peer: Peer, base: str, names: tuple[str, ...]) -> dict[str, str]:
    """New actors of the peer (alice with a shared inbox, bob without) follow the nlp actor
    through our shared inbox; the Follows' ids."""
    follows = {}
    for name in names:
        peer.add_actor(name, shared_inbox=name != "bob")
        status, follows[name] = peer.follow(name, f"{base}/ap/actors/nlp", f"{base}/ap/inbox")
        assert status == 202, name
    return follows


# -- the tests -----------------------------------------------------------------------------

@pytest.mark.timeout(120)
def test_follow_then_a_webhook_scan_delivers_the_create(tmp_path: Path, notes: NotesDir,
                                                        serves: list[Serve]) -> None:
    notes.write("NLP/old.md", "旧的。", title="Old", date="2025-01-01")
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    config_path = site_config(tmp_path, notes, base_url=base + "/")
    with Peer() as peer:
        serves.append(Serve.start(config_path, tmp_path / "serve.log", port=port, workers=2))
        serves[0].wait_up()
        follow_id = follow_nlp(peer, base, ("alice",))["alice"]
        accepts = wait_for("the Accept", lambda: taken(peer, "Accept"), DELIVERY_SECONDS)
        assert accepts == [("/users/alice/inbox", follow_id)]

        notes.write("NLP/new.md", "新的 **笔记**。", title="New", date="2026-01-01")
        post_webhook(base)
        [(inbox, article_id)] = wait_for("the Create", lambda: taken(peer, "Create"),
                                         DELIVERY_SECONDS)
        [create] = peer.verified("Create")
        assert inbox == "/inbox"  # alice's instance's shared inbox
        assert (create["actor"], create["object"]["name"]) == (f"{base}/ap/actors/nlp", "New")
        fetched = requests.get(article_id, headers={"Accept": "application/activity+json"},
                               timeout=10).json()  # the Article answers at its id
        assert (fetched["id"], fetched["content"]) == (article_id, create["object"]["content"])
        assert wait_for("an empty queue", lambda: serves[0].queue_depth() == 0, 5)
        assert unverified(peer) == []


@pytest.mark.slow
@pytest.mark.timeout(120)
@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGTERM], ids=["sigkill", "sigterm"])
def test_queued_deliveries_survive_a_restart_and_go_once(
        tmp_path: Path, notes: NotesDir, serves: list[Serve], sig: signal.Signals) -> None:
    notes.write("NLP/old.md", "旧的。", title="Old", date="2025-01-01")
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    config_path = site_config(tmp_path, notes, base_url=base + "/")
    store_url = f"sqlite:///{(tmp_path / 'feedsvc.db').as_posix()}"
    inboxes = ["/inbox", "/users/bob/inbox"]  # alice's shared inbox; bob has none
    with Peer() as peer:
        first = Serve.start(config_path, tmp_path / "first.log", port=port)
        serves.append(first)
        first.wait_up()
        follow_nlp(peer, base, ("alice", "bob"))
        wait_for("both Accepts", lambda: len(taken(peer, "Accept")) == 2, DELIVERY_SECONDS)

        answer_with(peer, 503)
        notes.write("NLP/new.md", "新的。", title="New", date="2026-01-01")
        post_webhook(base)
        wait_for("both Creates refused once, waiting for their retry",
                 lambda: between_attempts(store_url, inboxes), DELIVERY_SECONDS)
        assert first.queue_depth() == 2
        holder = lease_owner(store_url)
        assert holder is not None
        first.kill(sig)
        # SIGKILL leaves the lease to run out; SIGTERM stops cleanly and lets it go
        assert lease_owner(store_url) == (holder if sig is signal.SIGKILL else None)
        assert first.process.returncode == (-signal.SIGKILL if sig is signal.SIGKILL else 0)
        assert [inbox for inbox, *_ in queued(store_url)] == inboxes
        refused = taken(peer, "Create")
        assert sorted({inbox for inbox, _ in refused}) == inboxes
        [article_id] = sorted({article for _, article in refused})

        mark = answer_with(peer, 202)  # nothing sends now: no serve runs
        second = Serve.start(config_path, tmp_path / "second.log", port=port)
        serves.append(second)
        second.wait_up()
        wait_for("the Creates after the restart",
                 lambda: len(taken(peer, "Create", mark)) == 2, DELIVERY_SECONDS)
        assert wait_for("an empty queue", lambda: second.queue_depth() == 0, 5)
        time.sleep(SETTLE_SECONDS)  # a duplicate would have come by now
        assert taken(peer, "Create", mark) == [(inbox, article_id) for inbox in inboxes]
        assert second.counter("feedsvc_activitypub_deliveries", "delivered") == 2
        assert queued(store_url) == []
        assert unverified(peer) == []


@pytest.mark.slow
@pytest.mark.timeout(150)
def test_only_the_lease_holder_delivers_and_the_standby_takes_over(
        tmp_path: Path, notes: NotesDir, pg_server: PostgresServer,
        serves: list[Serve]) -> None:
    notes.write("NLP/old.md", "旧的。", title="Old", date="2025-01-01")
    store_url = pg_server.database()
    inboxes = ["/inbox", "/users/bob/inbox"]
    with Front() as front, Peer() as peer:
        config_path = site_config(tmp_path, notes, base_url=front.url + "/", store_url=store_url)
        serves.extend(Serve.start(config_path, tmp_path / f"{name}.log") for name in ("a", "b"))
        for serve in serves:
            serve.wait_up()
        [holder] = wait_for("one lease holder", lambda: one_holder(serves), 10, 0.2)
        [standby] = [s for s in serves if s is not holder]
        front.backends = [holder.port, standby.port]
        follow_nlp(peer, front.url, ("alice", "bob"))
        wait_for("both Accepts", lambda: len(taken(peer, "Accept")) == 2, DELIVERY_SECONDS)

        notes.write("NLP/one.md", "一。", title="One", date="2026-01-01")
        post_webhook(front.url)
        wait_for("the first Creates", lambda: len(taken(peer, "Create")) == 2, DELIVERY_SECONDS)
        time.sleep(SETTLE_SECONDS)
        creates = taken(peer, "Create")
        [first_article] = sorted({article for _, article in creates})
        assert creates == [(inbox, first_article) for inbox in inboxes]  # once per inbox
        assert len(taken(peer, "Accept")) == 2
        assert holder.counter("feedsvc_activitypub_deliveries", "delivered") == 4
        assert standby.counter("feedsvc_activitypub_deliveries", "delivered") == 0

        seen = answer_with(peer, 503)
        notes.write("NLP/two.md", "二。", title="Two", date="2026-01-02")
        post_webhook(front.url)
        wait_for("both Creates refused once, waiting for their retry",
                 lambda: between_attempts(store_url, inboxes), DELIVERY_SECONDS)
        owner = lease_owner(store_url)
        holder.kill(signal.SIGKILL)
        mark = answer_with(peer, 202)
        assert lease_owner(store_url) == owner  # still the dead one's: nobody sent meanwhile
        refused = taken(peer, "Create", seen)
        assert sorted({inbox for inbox, _ in refused}) == inboxes
        [second_article] = sorted({article for _, article in refused})
        assert second_article != first_article

        assert wait_for("the standby's takeover", standby.holds_lease, LEASE_SECONDS + 10, 0.2)
        wait_for("the pending Creates", lambda: len(taken(peer, "Create", mark)) == 2,
                 DELIVERY_SECONDS)
        assert wait_for("an empty queue", lambda: standby.queue_depth() == 0, 5)
        time.sleep(SETTLE_SECONDS)
        assert taken(peer, "Create", mark) == [(inbox, second_article) for inbox in inboxes]
        assert standby.counter("feedsvc_activitypub_deliveries", "delivered") == 2
        assert len(taken(peer, "Accept")) == 2
        assert unverified(peer) == []


@pytest.mark.slow
@pytest.mark.timeout(120)
def test_a_follow_taken_by_a_web_process_is_accepted_by_the_lease_holder(
        tmp_path: Path, notes: NotesDir, pg_server: PostgresServer,
        serves: list[Serve]) -> None:
    notes.write("NLP/old.md", "旧的。", title="Old", date="2025-01-01")
    store_url = pg_server.database()
    with Front() as front, Peer() as peer:
        config_path = site_config(tmp_path, notes, base_url=front.url + "/", store_url=store_url)
        scanner = Serve.start(config_path, tmp_path / "scanner.log", role="scanner")
        web = Serve.start(config_path, tmp_path / "web.log", role="web")
        serves.extend([scanner, web])
        front.backends = [scanner.port]  # the peer fetches our actors from the scanner serve
        scanner.wait_up()
        state = web.wait_up()
        assert (state["role"], state["scheduler"]["this_process"]) == ("web", False)
        assert wait_for("the scanner's lease", scanner.holds_lease, 10, 0.2)

        alice = peer.add_actor("alice")
        inbox = f"{front.url}/ap/inbox"
        follow = {"@context": "https://www.w3.org/ns/activitystreams", "id": f"{alice}/follows/1",
                  "type": "Follow", "actor": alice, "object": f"{front.url}/ap/actors/nlp"}
        body = json.dumps(follow).encode()
        headers = peer.signed_headers("alice", "POST", inbox, body)  # Host: the public one
        path = urllib.parse.urlsplit(inbox).path
        answer = requests.post(web.url + path, data=body, headers=headers, timeout=10)
        assert answer.status_code == 202, answer.text
        assert web.counter("feedsvc_activitypub_inbox_requests", "followed") == 1
        assert (web.health() or {})["activitypub"]["followers"] == {"nlp": 1}

        accepts = wait_for("the Accept", lambda: taken(peer, "Accept"), DELIVERY_SECONDS)
        assert accepts == [("/users/alice/inbox", follow["id"])]
        [accept] = peer.verified("Accept")
        assert accept["actor"] == f"{front.url}/ap/actors/nlp"
        assert wait_for("an empty queue", lambda: scanner.queue_depth() == 0, 5)
        assert scanner.counter("feedsvc_activitypub_deliveries", "delivered") == 1
        assert web.counter("feedsvc_activitypub_deliveries", "delivered") == 0
        assert unverified(peer) == []
