"""Federation benchmark: a real `feedsvc serve --workers 2` on 127.0.0.1 with [activitypub] on,
remote instances stood in for by bench/fedpeer.py processes (asyncio, 202 to any POST, each POST
counted and timed; actor documents for the inbox mode), bounded in time. Prints each figure next
to its goal (the issue's numbers are the defaults):

    python bench/federation.py --notes 10000 [--mode fanout,inbox,latency,memory] [--quick]

- fanout: --followers (10,000) of one category actor inserted into the store before serve
  starts: --instances (1,000) with a shared inbox and --per-instance (4) followers each, the
  rest with personal inboxes only (7,000 distinct inboxes), spread over --receivers (2) fedpeer
  processes. A new note in that category, the webhook, and the time from the webhook to the
  last of those POSTs (goal: all within 60 s), while a poller sends a conditional GET of
  another category's JSON feed every --poll-ms (20) on one keep-alive connection: its p50/p99
  during the fan-out against --idle-seconds of idle polls just before.
- inbox: --actors (100) remote actors whose documents fedpeer serves (keys made once, kept
  under --workdir); each posts one ignored activity first, so its key is fetched and cached;
  then --requests (4,000) pre-signed Follows, then their Undos, by --clients (8) threads on
  keep-alive connections to /ap/inbox: requests/s and the status mix (goal >= 300/s, all 202).
  Then a flood of Follows with garbage signatures under cached keyIds by --flood-clients
  threads for --flood-seconds: its rate and statuses (all 401), the signer refetches it caused,
  and feed polls during it against idle (goal: p50 and p99 at most 2x idle).
- latency: one follower (personal inbox); a note of its category is created, then edited
  --edits (10) times, --gap (3) seconds apart, each followed by the webhook: webhook -> the
  Update POST received (goal p50 <= 1 s).
- memory: PSS (/proc/<pid>/smaps_rollup) of the scanner process, at rest, with 0 and with
  --memory-followers (100,000; same shape as fanout) followers, each after its start-up scan
  and after one new note was published (and, with followers, fanned out and delivered; the
  peak during that too). Goal: the followers and their queue add < 50 MiB. Mind the disk:
  the queue keeps each delivery's whole body (about 17 KiB for a median note here), so one
  note to 70,000 inboxes writes over 1 GiB to the store.

--quick runs every mode small (300 notes, 500 followers, 10 actors...) to check the script.
The corpus comes from tools/make_corpus.py (bench/common.py); a hard-linked copy and a store
scanned once are kept under --workdir/federation-<notes>/ and copied for each mode. base_url
is fixed (http://127.0.0.1:8080/), so signed requests carry that Host whatever the port.
"""

from __future__ import annotations

import argparse
import base64
import datetime as dt
import http.client
import json
import math
import os
import random
import re
import shutil
import statistics
import subprocess
import sys
import threading
import time
import uuid
from collections import Counter
from contextlib import ExitStack
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import corpus_args  # noqa: E402
from common import free_port  # noqa: E402
from common import make_corpus  # noqa: E402
from common import wait_for_first_scan  # noqa: E402

from feedsvc.model import Follower  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
FEDPEER = Path(__file__).resolve().with_name("fedpeer.py")
MODES = ("fanout", "inbox", "latency", "memory")
BASE_URL = "http://127.0.0.1:8080/"
SECRET = "bench-federation"
AS_CONTEXT = "https://www.w3.org/ns/activitystreams"
MiB = 1024 * 1024
QUICK = {"notes": 300, "followers": 500, "instances": 50, "idle_seconds": 2.0, "actors": 10,
         "requests": 200, "flood_seconds": 2.0, "edits": 3, "gap": 1.0,
         "memory_followers": 500, "rest": 1.5}
SUMMARY: list[str] = []
NOTE_DATE = (dt.datetime.now(dt.timezone.utc) - dt.timedelta(minutes=1)).isoformat(
    timespec="seconds")  # one date for the notes written here: an edit moves only `updated`


def now_utc() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)


def say(mode: str, text: str, *, summary: bool = False) -> None:
    print(f"[{mode}] {text}", flush=True)
    if summary:
        SUMMARY.append(f"[{mode}] {text}")


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[max(0, min(len(ordered) - 1, math.ceil(q * len(ordered)) - 1))]


def ms(values: list[float]) -> str:
    if not values:
        return "no samples"
    return (f"p50 {statistics.median(values) * 1000:7.1f} ms  p99 {pct(values, 0.99) * 1000:7.1f} "
            f"ms  ({len(values)} polls)")


# -- processes ----------------------------------------------------------------------------

def get_json(port: int, path: str, timeout: float = 10) -> Any:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        conn.request("GET", path, headers={"Accept": "application/activity+json"})
        response = conn.getresponse()
        body = response.read()
        if response.status != 200:
            raise SystemExit(f"GET {path} on port {port} answered {response.status}")
        return json.loads(body)
    finally:
        conn.close()


class Peer:
    """A bench/fedpeer.py process: stands for many instances on one port."""

    def __init__(self, actors_file: Path | None = None) -> None:
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        extra = ["--actors", str(actors_file)] if actors_file else []
        self.process = subprocess.Popen([sys.executable, str(FEDPEER), "--port", str(self.port),
                                         *extra], stdout=subprocess.PIPE)
        assert self.process.stdout is not None
        if self.process.stdout.readline().strip() != b"ready":
            self.stop()
            raise SystemExit(f"fedpeer on port {self.port} did not start")

    def stats(self) -> dict[str, Any]:
        stats: dict[str, Any] = get_json(self.port, "/stats")
        return stats

    def times(self, start: int) -> list[float]:
        times: list[float] = get_json(self.port, f"/times?from={start}")
        return times

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(10)


def start_peers(stack: ExitStack, count: int) -> list[Peer]:
    """`count` fedpeer processes, each stopped when `stack` closes."""
    peers: list[Peer] = []
    for _ in range(count):
        peers.append(Peer())
        stack.callback(peers[-1].stop)
    return peers


class Serve:
    """`feedsvc serve --workers N` on a free port, its log next to its config."""

    def __init__(self, args: argparse.Namespace, config: Path) -> None:
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        with (config.parent / "serve.log").open("ab") as out:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "feedsvc", "--log-level", args.log_level, "serve",
                 "--config", str(config), "--port", str(self.port), "--workers",
                 str(args.workers)], env={**os.environ, "PYTHONPATH": str(REPO)}, stdout=out,
                stderr=subprocess.STDOUT)
        try:
            wait_for_first_scan(self.base, max(180.0, args.notes / 20))
        except BaseException:
            self.stop()
            raise

    def health(self) -> dict[str, Any]:
        health: dict[str, Any] = get_json(self.port, "/healthz")
        return health

    def scanner_pid(self) -> int:
        """The scanner process: the child of the serve without granian's tokio threads (the
        first one started, before the workers)."""
        kids = children(self.process.pid)
        plain = [p for p in kids if not any(
            read(f"/proc/{p}/task/{t}/comm").startswith("tokio")
            for t in os.listdir(f"/proc/{p}/task"))]
        return min(plain or kids, key=lambda p: int(read(f"/proc/{p}/stat").rsplit(")", 1)[1]
                                                    .split()[19]))

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(20)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(5)


def read(path: str) -> str:
    with open(path, encoding="utf-8", errors="replace") as f:
        return f.read()


def children(pid: int) -> list[int]:
    out = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                if int(read(f"/proc/{entry}/stat").rsplit(")", 1)[1].split()[1]) == pid:
                    out.append(int(entry))
            except (OSError, ValueError, IndexError):
                continue
    return out


def pss(pid: int) -> int:
    for line in read(f"/proc/{pid}/smaps_rollup").splitlines():
        if line.startswith("Pss:"):
            return int(line.split()[1]) * 1024
    raise SystemExit(f"no Pss in /proc/{pid}/smaps_rollup")


# -- the corpus, the stores, the notes ------------------------------------------------------

def config_text(args: argparse.Namespace, notes: Path, data: Path) -> str:
    return (f'[site]\nbase_url = "{BASE_URL}"\n\n[[sources]]\nname = "notes"\npath = "{notes}"\n\n'
            f'[store]\ndata_dir = "{data}"\n\n[scheduler]\npoll_seconds = 0\n\n'
            f'[webhook]\nsecret = "{SECRET}"\n\n[activitypub]\nenabled = true\n'
            f'allow_private_addresses = true\n'
            f'delivery_concurrency = {args.delivery_concurrency}\n')


def prepare(args: argparse.Namespace) -> tuple[Path, Path, dict[str, Any]]:
    """(work folder, notes folder, actors {"site", "categories": {name: handle}}): a
    hard-linked copy of the corpus and a store scanned from it, with every actor's key pair
    made (as the first fetch of its actor document would), once per corpus size."""
    corpus = make_corpus(args)
    work = args.workdir / f"federation-{args.notes}"
    notes = work / "notes"
    if not (work / ".ready").exists():
        shutil.rmtree(work, ignore_errors=True)
        (work / "base").mkdir(parents=True)
        subprocess.run(["cp", "-al", str(corpus), str(notes)], check=True)
        config = work / "base" / "feedsvc.toml"
        config.write_text(config_text(args, notes, work / "base" / "data"))
        print(f"building the store once: feedsvc scan ({args.notes} notes) in {work}", flush=True)
        subprocess.run([sys.executable, "-m", "feedsvc", "--log-level", "WARNING", "scan",
                        "--config", str(config)], check=True, stdout=subprocess.DEVNULL,
                       env={**os.environ, "PYTHONPATH": str(REPO)})
        (work / "actors.json").write_text(json.dumps(make_actor_keys(config)))
        (work / ".ready").write_text("ok")
    remove_notes(notes)  # left by an interrupted run
    return work, notes, json.loads((work / "actors.json").read_text())


def make_actor_keys(config: Path) -> dict[str, Any]:
    from feedsvc.config import load_config
    from feedsvc.federation.actors import ActorDirectory
    from feedsvc.federation.keys import generate_key_pair
    from feedsvc.store import open_store

    loaded = load_config(config)
    store = open_store(loaded.store_url)
    try:
        directory = ActorDirectory(loaded, store, now_utc, keys=store.federation,
                                   generate_key_pair=generate_key_pair)
        actors = directory.actors()
        for actor in actors.all:
            directory.key_pair(actor.handle)
        return {"site": actors.site.handle,
                "categories": {a.category.name: a.handle for a in actors.categories
                               if a.category is not None}}
    finally:
        store.close()


def fresh_store(args: argparse.Namespace, work: Path, notes: Path, name: str) -> Path:
    """A config for one run with its own copy of the scanned store."""
    folder = work / name
    shutil.rmtree(folder, ignore_errors=True)
    shutil.copytree(work / "base" / "data", folder / "data")
    config = folder / "feedsvc.toml"
    config.write_text(config_text(args, notes, folder / "data"))
    return config


def add_followers(config: Path, followers: list[Follower]) -> float:
    """Insert followers with store.federation.add_follower; the seconds it took."""
    from feedsvc.config import load_config
    from feedsvc.store import open_store

    store = open_store(load_config(config).store_url)
    started = time.monotonic()
    try:
        for follower in followers:
            store.federation.add_follower(follower)
    finally:
        store.close()
    return time.monotonic() - started


def population(peers: list[Peer], actor: str, count: int, instances: int,
               per_instance: int) -> tuple[list[Follower], int]:
    """(followers, distinct inboxes): `instances` instances with a shared inbox and
    `per_instance` followers each, the rest with a personal inbox only."""
    shared = min(instances, count // per_instance)
    at = now_utc()
    out = []
    for n in range(shared):
        base = peers[n % len(peers)].base
        out += [Follower(actor=actor, follower=f"{base}/s/{n}/users/{k}",
                         inbox=f"{base}/s/{n}/users/{k}/inbox", shared_inbox=f"{base}/s/{n}/inbox",
                         followed_at=at) for k in range(per_instance)]
    personal = count - shared * per_instance
    out += [Follower(actor=actor, follower=f"{peers[m % len(peers)].base}/i/{m}",
                     inbox=f"{peers[m % len(peers)].base}/i/{m}/inbox", followed_at=at)
            for m in range(personal)]
    return out, shared + personal


def write_note(notes: Path, category: str, name: str, marker: str) -> str:
    """Write (or rewrite) notes/<category>/fedbench-<name>.md with a typical body (that of
    the folder's note of median size) and `marker`; write + os.replace. Its source path."""
    folder = notes / category
    sizes = sorted((p.stat().st_size, p.name) for p in folder.glob("*.md")
                   if not p.name.startswith("fedbench-"))
    sample = folder / sizes[len(sizes) // 2][1]
    body = sample.read_text(encoding="utf-8").split("---", 2)[-1].strip()
    path = folder / f"fedbench-{name}.md"
    tmp = folder / f".fedbench-{name}.{uuid.uuid4().hex[:8]}.tmp"
    tmp.write_text(f"---\ntitle: fedbench {name}\ndate: {NOTE_DATE}\n---\n\n{body}\n\n{marker}\n",
                   encoding="utf-8")
    os.replace(tmp, path)
    return f"{category}/{path.name}"


def remove_notes(notes: Path) -> None:
    """The notes this benchmark wrote: the copy of the corpus is the scanned store's again."""
    for path in notes.rglob("*fedbench-*"):
        path.unlink()


def fire(port: int, rel: str) -> None:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    conn.request("POST", "/hooks/refresh", body=json.dumps({"source": "notes", "paths": [rel]}),
                 headers={"Authorization": f"Bearer {SECRET}", "Content-Type": "application/json"})
    response = conn.getresponse()
    response.read()
    conn.close()
    if response.status != 202:
        raise SystemExit(f"webhook answered {response.status}")


def data_bytes(config: Path) -> tuple[int, int]:
    """Sizes of the store's SQLite file and its write-ahead log."""
    data = config.parent / "data"
    return tuple(p.stat().st_size if p.exists() else 0  # type: ignore[return-value]
                 for p in (data / "feedsvc.db", data / "feedsvc.db-wal"))


# -- feed polls -------------------------------------------------------------------------------

class FeedPolls:
    """A conditional GET of one feed every `period` s on one keep-alive connection, on a
    thread; response times kept per window (`window(label)` switches, None keeps none)."""

    def __init__(self, port: int, path: str, period: float) -> None:
        self.port, self.path, self.period = port, path, period
        self.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        self.etag = ""
        self.label: str | None = None
        self.windows: dict[str, list[float]] = {}
        self.statuses: Counter[int] = Counter()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> FeedPolls:
        self._get()  # the first answer is a 200 with the ETag
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(30)
        self.conn.close()

    def window(self, label: str | None) -> None:
        self.label = label

    def _get(self) -> int:
        headers = {"Accept-Encoding": "identity", **({"If-None-Match": self.etag}
                                                     if self.etag else {})}
        for attempt in (1, 2):
            try:
                self.conn.request("GET", self.path, headers=headers)
                response = self.conn.getresponse()
                response.read()
                break
            except (http.client.HTTPException, ConnectionError):
                self.conn.close()  # closed while idle: a new one, as any client does
                self.conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
                if attempt == 2:
                    raise
        if response.status == 200:
            self.etag = response.headers.get("ETag", "")
        return response.status

    def _run(self) -> None:
        next_at = time.perf_counter()
        while not self._stop.is_set():
            label = self.label
            started = time.perf_counter()
            self.statuses[self._get()] += 1
            if label is not None:
                self.windows.setdefault(label, []).append(time.perf_counter() - started)
            next_at += self.period
            delay = next_at - time.perf_counter()
            if delay > 0:
                self._stop.wait(delay)
            else:
                next_at = time.perf_counter()  # late: no burst to catch up


def compare_polls(mode: str, polls: FeedPolls, busy: str, limit: float | None) -> None:
    """Feed polls during `busy` against the "idle" window; a verdict when there is a limit."""
    a, b = polls.windows.get("idle", []), polls.windows.get(busy, [])
    say(mode, f"feed polls idle:          {ms(a)}", summary=True)
    say(mode, f"feed polls during {busy:8}: {ms(b)}", summary=True)
    if a and b:
        r50, r99 = statistics.median(b) / statistics.median(a), pct(b, 0.99) / pct(a, 0.99)
        goal = ("the same serve keeps answering" if limit is None else
                f"at most {limit:g}x idle: {'ok' if max(r50, r99) <= limit else 'MISSED'}")
        say(mode, f"ratio {busy}/idle: p50 {r50:.2f}x  p99 {r99:.2f}x  (goal: {goal})",
            summary=True)
    say(mode, f"poll statuses {dict(sorted(polls.statuses.items()))}")


# -- modes ------------------------------------------------------------------------------------

def wait_posts(peers: list[Peer], expected: int, timeout: float,
               probe: Any = None) -> list[dict[str, Any]]:
    """Poll the peers' stats until `expected` POSTs in all (or the timeout)."""
    deadline = time.monotonic() + timeout
    while True:
        stats = [p.stats() for p in peers]
        if probe is not None:
            probe()
        if sum(s["posts"] for s in stats) >= expected or time.monotonic() > deadline:
            return stats
        time.sleep(0.05)


def run_fanout(args: argparse.Namespace, work: Path, notes: Path, actors: dict[str, Any]) -> None:
    mode, handle = "fanout", actors["categories"][args.category]
    config = fresh_store(args, work, notes, mode)
    with ExitStack() as stack:
        peers = start_peers(stack, args.receivers)
        followers, expected = population(peers, handle, args.followers, args.instances,
                                         args.per_instance)
        took = add_followers(config, followers)
        say(mode, f"{len(followers)} followers of @{handle} inserted in {took:.1f} s; "
                  f"{expected} distinct inboxes over {len(peers)} receivers")
        serve = Serve(args, config)
        stack.callback(serve.stop)
        stack.callback(remove_notes, notes)
        counted = sum(serve.health()["activitypub"]["followers"].values())
        if counted != len(followers):
            raise SystemExit(f"/healthz counts {counted} followers, not {len(followers)}")
        polls = stack.enter_context(FeedPolls(serve.port, f"/feeds/{args.poll_category}.json",
                                              args.poll_ms / 1000))
        polls.window("idle")
        time.sleep(args.idle_seconds)
        polls.window(None)
        size_before = data_bytes(config)
        size_peak = list(size_before)

        def probe() -> None:
            size_peak[:] = map(max, size_peak, data_bytes(config))

        rel = write_note(notes, args.category, "fanout", uuid.uuid4().hex)
        polls.window("fan-out")
        started = time.monotonic()
        fire(serve.port, rel)
        stats = wait_posts(peers, expected, args.fanout_timeout, probe)
        polls.window(None)
        left = serve.health()["activitypub"]["queue_depth"]
        time.sleep(1.0)  # anything more (a duplicate) would arrive now
        stats = [p.stats() for p in peers]
    posts, distinct = sum(s["posts"] for s in stats), sum(s["distinct"] for s in stats)
    first = min((s["first"] for s in stats if s["first"] is not None), default=None)
    last = max((s["last"] for s in stats if s["last"] is not None), default=None)
    say(mode, f"POSTs received {posts} ({distinct} distinct inboxes; expected {expected}); "
              f"queue left {left}", summary=True)
    if first is not None and last is not None:
        total = last - started
        say(mode, f"webhook -> first POST {first - started:.2f} s; webhook -> POST {posts} "
                  f"{total:.2f} s ({posts / max(last - first, 1e-9):.0f} POSTs/s after the "
                  f"first)  (goal: {expected} within 60 s: "
                  f"{'ok' if total <= 60 and posts >= expected else 'MISSED'})", summary=True)
    body = sum(s["bytes"] for s in stats) / max(posts, 1)
    say(mode, f"activity body {body / 1024:.1f} KiB per POST; store file {size_before[0] / MiB:.1f}"
              f" MiB before, {size_peak[0] / MiB:.1f} MiB at most during the fan-out (its WAL "
              f"{size_peak[1] / MiB:.1f} MiB at most)", summary=True)
    compare_polls(mode, polls, "fan-out", None)


def activity(kind: str, id: str, actor: str, obj: object) -> dict[str, Any]:
    return {"@context": AS_CONTEXT, "id": id, "type": kind, "actor": actor, "object": obj}


def sign_all(items: list[tuple[str, dict[str, Any]]], keys: dict[str, str],
             peer: Peer) -> list[tuple[bytes, dict[str, str]]]:
    """(body, headers) for each (actor name, activity), signed by the actor's key (with
    feedsvc's own signer: the tests check it against an independent one)."""
    from feedsvc.federation.signatures import sign_request

    out, at = [], now_utc()
    for name, doc in items:
        body = json.dumps(doc).encode()
        headers = sign_request("POST", BASE_URL + "ap/inbox", key_id=f"{peer.base}/users/{name}"
                               "#main-key", private_pem=keys[name], body=body, now=at)
        headers["Content-Type"] = "application/activity+json"
        out.append((body, headers))
    return out


def post_all(port: int, signed: list[tuple[bytes, dict[str, str]]], clients: int,
             until: float | None = None) -> tuple[float, Counter[int | str]]:
    """POST `signed` to /ap/inbox from `clients` threads on keep-alive connections (over and
    over until the monotonic time `until`, if given): (seconds, statuses)."""
    statuses: Counter[int | str] = Counter()
    lock = threading.Lock()

    def client(mine: list[tuple[bytes, dict[str, str]]]) -> None:
        seen: Counter[int | str] = Counter()
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        while True:
            for body, headers in mine:
                try:
                    conn.request("POST", "/ap/inbox", body=body, headers=headers)
                    response = conn.getresponse()
                    response.read()
                    seen[response.status] += 1
                except (http.client.HTTPException, ConnectionError, TimeoutError) as e:
                    seen[type(e).__name__] += 1
                    conn.close()
                    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
                if until is not None and time.monotonic() >= until:
                    break
            if until is None or time.monotonic() >= until:
                break
        conn.close()
        with lock:
            statuses.update(seen)

    threads = [threading.Thread(target=client, args=(signed[i::clients],))
               for i in range(clients)]
    started = time.monotonic()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return time.monotonic() - started, statuses


def actor_keys(args: argparse.Namespace, work: Path) -> dict[str, str]:
    """name -> private PEM of --actors remote actors, made once and kept under --workdir."""
    from feedsvc.federation.keys import generate_key_pair

    path = args.workdir / f"federation-actor-keys-{args.actors}.json"
    if not path.exists():
        print(f"making {args.actors} RSA key pairs once: {path}", flush=True)
        path.write_text(json.dumps({f"a{i}": generate_key_pair()[0] for i in range(args.actors)}))
    keys: dict[str, str] = json.loads(path.read_text())
    return keys


def public_pems(keys: dict[str, str]) -> dict[str, str]:
    from cryptography.hazmat.primitives import serialization

    from feedsvc.federation.keys import load_private_key

    return {name: load_private_key(pem).public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo).decode()
        for name, pem in keys.items()}


def run_inbox(args: argparse.Namespace, work: Path, notes: Path, actors: dict[str, Any]) -> None:
    mode = "inbox"
    keys = actor_keys(args, work)
    (work / "inbox-actors.json").write_text(json.dumps(public_pems(keys)))
    config = fresh_store(args, work, notes, mode)
    targets = [BASE_URL + f"ap/actors/{h}" for h in
               [actors["site"], *sorted(actors["categories"].values())]]
    with ExitStack() as stack:
        peer = Peer(work / "inbox-actors.json")
        stack.callback(peer.stop)
        serve = Serve(args, config)
        stack.callback(serve.stop)
        names = sorted(keys, key=lambda n: int(n[1:]))
        ids = {n: f"{peer.base}/users/{n}" for n in names}
        warm = sign_all([(n, activity("Like", f"{ids[n]}/likes/0", ids[n], targets[0]))
                         for n in names], keys, peer)
        took, statuses = post_all(serve.port, warm, args.clients)
        say(mode, f"warm-up: {len(warm)} actors fetched and cached in {took:.2f} s, statuses "
                  f"{dict(statuses)}, actor documents fetched {peer.stats()['gets']}")
        pairs = [(n, t) for t in targets for n in names][:max(1, args.requests // 2)]
        follows = [(n, activity("Follow", f"{ids[n]}/follows/{i}", ids[n], t))
                   for i, (n, t) in enumerate(pairs)]
        undos = [(n, activity("Undo", f"{f['id']}/undo", ids[n],
                              {k: v for k, v in f.items() if k != "@context"}))
                 for n, f in follows]
        started = time.monotonic()
        signed_follows, signed_undos = sign_all(follows, keys, peer), sign_all(undos, keys, peer)
        say(mode, f"{len(follows)} Follows and {len(undos)} Undos signed in "
                  f"{time.monotonic() - started:.1f} s ({len(set(n for n, _ in pairs))} actors, "
                  f"{len(set(t for _, t in pairs))} of our actors followed)")
        results = []
        for label, signed in (("Follow", signed_follows), ("Undo", signed_undos)):
            took, statuses = post_all(serve.port, signed, args.clients)
            results.append((took, statuses))
            followers = sum(serve.health()["activitypub"]["followers"].values())
            say(mode, f"{len(signed)} {label}s by {args.clients} clients: {took:.2f} s, "
                      f"{len(signed) / took:.0f} requests/s, statuses {dict(statuses)}; "
                      f"followers now {followers}", summary=True)
        total = sum(len(s) for s in (signed_follows, signed_undos))
        took = sum(t for t, _ in results)
        mix = sum((s for _, s in results), Counter())
        verdict = "ok" if total / took >= 300 and set(mix) == {202} else "MISSED"
        say(mode, f"Follow+Undo: {total / took:.0f} requests/s verified and stored (goal: >= 300/s,"
                  f" all 202: {verdict})", summary=True)
        deadline = time.monotonic() + 120
        while serve.health()["activitypub"]["queue_depth"] and time.monotonic() < deadline:
            time.sleep(0.5)  # the Accepts go out first: the flood is measured on its own
        say(mode, f"Accepts delivered to the actors' inboxes: {peer.stats()['posts']}")
        flood = [(body, {**headers, "Signature": re.sub(
            r'signature="[^"]*"', 'signature="' + base64.b64encode(random.randbytes(256)).decode()
            + '"', headers["Signature"])}) for body, headers in signed_follows[:200]]
        polls = stack.enter_context(FeedPolls(serve.port, f"/feeds/{args.poll_category}.json",
                                              args.poll_ms / 1000))
        polls.window("idle")
        time.sleep(args.idle_seconds)
        gets_before = peer.stats()["gets"]
        polls.window("flood")
        took, statuses = post_all(serve.port, flood, args.flood_clients,
                                  until=time.monotonic() + args.flood_seconds)
        polls.window(None)
        sent = sum(statuses.values())
        say(mode, f"bad-signature flood: {sent} requests in {took:.1f} s ({sent / took:.0f}/s) by "
                  f"{args.flood_clients} clients, statuses {dict(statuses)}; the signer's actor "
                  f"fetched again {peer.stats()['gets'] - gets_before} times", summary=True)
    compare_polls(mode, polls, "flood", 2.0)


def run_latency(args: argparse.Namespace, work: Path, notes: Path,
                actors: dict[str, Any]) -> None:
    mode, handle = "latency", actors["categories"][args.category]
    config = fresh_store(args, work, notes, mode)
    samples: list[float | None] = []
    with ExitStack() as stack:
        peer = Peer()
        stack.callback(peer.stop)
        add_followers(config, [Follower(actor=handle, follower=f"{peer.base}/i/0",
                                        inbox=f"{peer.base}/i/0/inbox", followed_at=now_utc())])
        serve = Serve(args, config)
        stack.callback(serve.stop)
        stack.callback(remove_notes, notes)
        for i in range(args.edits + 1):  # 0: the note is created; then its edits
            if i:
                time.sleep(args.gap)
            rel = write_note(notes, args.category, "latency", f"edit {i} {uuid.uuid4().hex}")
            started = time.monotonic()
            fire(serve.port, rel)
            posts = wait_posts([peer], i + 1, args.timeout)[0]["posts"]
            seen = peer.times(i)[0] - started if posts > i else None
            if i == 0:
                say(mode, "new note: webhook -> Create received " +
                    (f"{seen * 1000:.0f} ms" if seen is not None else "never (timed out)"))
                if seen is None:
                    break
            else:
                samples.append(seen)
    seen_ms = sorted(s * 1000 for s in samples if s is not None)
    if not seen_ms:
        say(mode, "no Update arrived", summary=True)
        return
    p50, missed = statistics.median(seen_ms), len(samples) - len(seen_ms)
    say(mode, f"{args.notes} notes, {len(samples)} edits {args.gap:g} s apart: webhook -> Update "
              f"received p50 {p50:.0f} ms  p90 {pct(seen_ms, 0.9):.0f} ms  max {seen_ms[-1]:.0f} "
              f"ms{f'  ({missed} timed out)' if missed else ''}  (goal: p50 <= 1000 ms: "
              f"{'ok' if p50 <= 1000 and not missed else 'MISSED'})", summary=True)


def memory_phase(args: argparse.Namespace, work: Path, notes: Path, handle: str,
                 count: int) -> dict[str, float]:
    """Scanner PSS at rest after the start-up scan, after one new note (fanned out to `count`
    followers and delivered), its peak meanwhile, and at the deepest queue."""
    mode = "memory"
    config = fresh_store(args, work, notes, f"memory-{count}")
    out: dict[str, float] = {}
    with ExitStack() as stack:
        peers = start_peers(stack, args.receivers if count else 0)
        expected = 0
        if count:
            followers, expected = population(peers, handle, count, count // 10, args.per_instance)
            say(mode, f"{count} followers inserted in {add_followers(config, followers):.1f} s")
        serve = Serve(args, config)
        stack.callback(serve.stop)
        stack.callback(remove_notes, notes)
        scanner = serve.scanner_pid()
        time.sleep(args.rest)
        out["rest"] = pss(scanner)
        revision = serve.health()["revision"]
        rel = write_note(notes, args.category, "memory", uuid.uuid4().hex)
        fire(serve.port, rel)
        out["peak"], out["deepest"], out["at_deepest"] = out["rest"], 0, out["rest"]
        deadline = time.monotonic() + args.memory_timeout
        for tick in range(sys.maxsize):  # PSS every 0.25 s; the queue (a count) every second
            now_pss = pss(scanner)
            out["peak"] = max(out["peak"], now_pss)
            if tick % 4 == 0:
                health = serve.health()
                depth = health["activitypub"]["queue_depth"]
                if depth > out["deepest"]:
                    out["deepest"], out["at_deepest"] = depth, now_pss
                received = sum(p.stats()["posts"] for p in peers)
                if health["revision"] != revision and received >= expected and not depth:
                    break
            if time.monotonic() > deadline:
                break
            time.sleep(0.25)
        out["delivered"] = sum(p.stats()["posts"] for p in peers)
        out["expected"] = expected
        time.sleep(args.rest)
        out["after"] = pss(scanner)
        out["peak"] = max(out["peak"], out["after"])
    return out


def run_memory(args: argparse.Namespace, work: Path, notes: Path, actors: dict[str, Any]) -> None:
    mode, handle = "memory", actors["categories"][args.category]
    none = memory_phase(args, work, notes, handle, 0)
    many = memory_phase(args, work, notes, handle, args.memory_followers)
    n = args.memory_followers

    def mib(value: float) -> str:
        return f"{value / MiB:6.1f} MiB"

    say(mode, f"scanner PSS at rest after start-up: 0 followers {mib(none['rest'])}, {n} "
              f"followers {mib(many['rest'])} ({(many['rest'] - none['rest']) / MiB:+.1f} MiB)",
        summary=True)
    say(mode, f"scanner PSS at rest after one new note: 0 followers {mib(none['after'])}, {n} "
              f"followers {mib(many['after'])} ({(many['after'] - none['after']) / MiB:+.1f} MiB;"
              f" {many['delivered']:.0f} of {many['expected']:.0f} deliveries made)", summary=True)
    say(mode, f"scanner PSS during the fan-out: peak {mib(many['peak'])} "
              f"({(many['peak'] - none['after']) / MiB:+.1f} MiB), at the deepest queue "
              f"({many['deepest']:.0f} deliveries) {mib(many['at_deepest'])}", summary=True)
    added = max(many["rest"] - none["rest"], many["after"] - none["after"],
                many["at_deepest"] - none["after"])
    say(mode, f"added by {n} followers and their queue: {added / MiB:+.1f} MiB (goal: < 50 MiB: "
              f"{'ok' if added < 50 * MiB else 'MISSED'})", summary=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    corpus_args(parser)
    add = parser.add_argument
    add("--mode", default=",".join(MODES), help=f"comma-separated, of {', '.join(MODES)}")
    add("--quick", action="store_true", help="every mode at a small size, to check the script")
    add("--workers", type=int, default=2)
    add("--delivery-concurrency", type=int, default=8, help="activitypub.delivery_concurrency")
    add("--category", default="NLP", help="the followed category (a corpus folder)")
    add("--poll-category", default="python", help="slug of the feed polled meanwhile")
    add("--poll-ms", type=float, default=20.0)
    add("--idle-seconds", type=float, default=10.0, help="idle polls before the load")
    add("--followers", type=int, default=10000)
    add("--instances", type=int, default=1000, help="followers' instances with a shared inbox")
    add("--per-instance", type=int, default=4)
    add("--receivers", type=int, default=2, help="fedpeer processes")
    add("--fanout-timeout", type=float, default=300.0)
    add("--actors", type=int, default=100, help="remote actors signing Follows (inbox mode)")
    add("--requests", type=int, default=4000, help="signed Follows + Undos")
    add("--clients", type=int, default=8)
    add("--flood-clients", type=int, default=4)
    add("--flood-seconds", type=float, default=10.0)
    add("--edits", type=int, default=10)
    add("--gap", type=float, default=3.0, help="seconds between edits")
    add("--timeout", type=float, default=15.0, help="seconds per edit at most")
    add("--memory-followers", type=int, default=100000)
    add("--memory-timeout", type=float, default=900.0, help="seconds for the fan-out at most")
    add("--rest", type=float, default=5.0, help="seconds at rest before a memory figure")
    add("--log-level", default="WARNING", help="of the serve (its log: next to its config)")
    args = parser.parse_args()
    if args.quick:
        for key, value in QUICK.items():
            if parser.get_default(key) == getattr(args, key):
                setattr(args, key, value)
    modes = [m.strip() for m in args.mode.split(",") if m.strip()]
    for mode in modes:
        if mode not in MODES:
            parser.error(f"--mode: unknown mode {mode!r}; use {', '.join(MODES)}")
    started = time.monotonic()
    work, notes, actors = prepare(args)
    if args.category not in actors["categories"]:
        parser.error(f"--category: {args.category!r} has no actor; "
                     f"of {sorted(actors['categories'])}")
    runs = {"fanout": run_fanout, "inbox": run_inbox, "latency": run_latency, "memory": run_memory}
    for mode in modes:
        runs[mode](args, work, notes, actors)
    print(f"\nsummary ({args.notes} notes, serve --workers {args.workers}, "
          f"{time.monotonic() - started:.0f} s in all):")
    for line in SUMMARY:
        print(line)


if __name__ == "__main__":
    main()
