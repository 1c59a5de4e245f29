"""Soak: the production server under mixed load while notes change on disk.

    python bench/soak.py --minutes 10 [--notes 2000] [--clients 6]

`feedsvc serve` (granian) runs on a copy of a corpus; clients on 127.0.0.1 fetch feeds,
send conditional GETs, read pages and send signed webhooks, while a writer adds, edits and
deletes notes. At the end it prints the request count, errors (must be 0), the server's memory
at start and end, and checks that every served feed equals a fresh scan of the final folder.
Exit status 1 if there were errors, memory grew 10% or more, or the feeds differ.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import random
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import requests
from lxml import etree

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import corpus_args  # noqa: E402
from common import free_port  # noqa: E402
from common import make_corpus  # noqa: E402
from common import wait_for_first_scan  # noqa: E402

from feedsvc.config import load_config  # noqa: E402
from feedsvc.content import ContentSettings  # noqa: E402
from feedsvc.content import read_note  # noqa: E402
from feedsvc.errors import NoteError  # noqa: E402
from feedsvc.model import FeedFormat  # noqa: E402
from feedsvc.model import NoteFile  # noqa: E402
from feedsvc.scan.scanner import Scanner  # noqa: E402
from feedsvc.store import open_store  # noqa: E402
from feedsvc.urls import Urls  # noqa: E402
from feedsvc.web import create_app  # noqa: E402
from feedsvc.web.webhook import sign  # noqa: E402
from feedsvc.model import ScanJob

REPO = Path(__file__).resolve().parents[1]
SECRET = "soak-secret"


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0



class Stats:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.requests = 0
        self.by_kind: dict[str, int] = {}
        self.errors: list[str] = []

    def record(self, kind: str, ok: bool, detail: str = "") -> None:
        with self.lock:
            self.requests += 1
            self.by_kind[kind] = self.by_kind.get(kind, 0) + 1
            if not ok:
                self.errors.append(f"{kind}: {detail}")


def client_loop(base: str, deadline: float, stats: Stats, seed: int) -> None:
    rng = random.Random(seed)
    session = requests.Session()
    etags: dict[str, str] = {}
    slugs = ["all"]
    while time.monotonic() < deadline:
        roll = rng.random()
        try:
            if roll < 0.35:
                url = f"{base}/feeds/{rng.choice(slugs)}.{rng.choice(['rss', 'atom', 'json'])}"
                r = session.get(url, timeout=30)
                ok = r.status_code in (200, 404)  # a category may vanish between polls
                if r.status_code == 200:
                    etags[url] = r.headers["ETag"]
                stats.record("feed", ok, f"{url} {r.status_code}")
            elif roll < 0.65 and etags:
                url = rng.choice(list(etags))
                r = session.get(url, headers={"If-None-Match": etags[url]}, timeout=30)
                stats.record("conditional", r.status_code in (200, 304, 404), f"{url} {r.status_code}")
            elif roll < 0.8:
                r = session.get(f"{base}/updates.json?page={rng.randint(1, 5)}", timeout=30)
                ok = r.status_code in (200, 404)
                if r.status_code == 200:
                    slugs = ["all"] + sorted({i["category_slug"] for i in r.json()["items"]})
                    if r.json()["items"]:
                        entry = rng.choice(r.json()["items"])["url"]
                        page = session.get(entry, timeout=30)
                        stats.record("entry", page.status_code in (200, 404), f"{entry} {page.status_code}")
                stats.record("updates", ok, str(r.status_code))
            elif roll < 0.95:
                r = session.get(f"{base}/updates?page={rng.randint(1, 3)}", timeout=30)
                stats.record("page", r.status_code in (200, 404), str(r.status_code))
            else:
                body = json.dumps({"ref": "refs/heads/main", "n": rng.random()}).encode()
                r = session.post(f"{base}/hooks/refresh", data=body, timeout=30,
                                 headers={"X-Hub-Signature-256": sign(SECRET, body)})
                stats.record("webhook", r.status_code == 202, str(r.status_code))
        except requests.RequestException as e:
            stats.record("exception", False, repr(e))


def writer_loop(root: Path, deadline: float, seed: int, counts: dict[str, int],
                edited: set[str]) -> None:
    rng = random.Random(seed)
    mine: list[Path] = []
    originals = sorted(root.rglob("*.md"))
    rng.shuffle(originals)
    i = 0
    while time.monotonic() < deadline:
        action = rng.random()
        if action < 0.5 or not mine:
            path = root / "Soak" / f"soak-{i:05}.md"
            path.parent.mkdir(exist_ok=True)
            moment = dt.datetime(2025, 6, 1, tzinfo=dt.timezone.utc) + dt.timedelta(minutes=i)
            path.write_text(f"---\ntitle: soak {i}\ndate: {moment.isoformat()}\n"
                            f"tags: [soak]\n---\n\n## 第 {i} 篇\n\n正文 $x_{{{i}}}$\n\n```python\nprint({i})\n```\n",
                            encoding="utf-8")
            mine.append(path)
            counts["added"] += 1
        elif action < 0.8:
            path = rng.choice(mine)
            path.write_text(path.read_text(encoding="utf-8") + f"\n追加 {i}\n", encoding="utf-8")
            edited.add(path.relative_to(root).as_posix())
            counts["edited"] += 1
        elif originals:
            originals.pop().unlink()
            counts["deleted"] += 1
        i += 1
        time.sleep(rng.uniform(0.2, 0.8))


def comparable(items: list[dict[str, Any]], undated: set[str],
               edited: set[str]) -> list[dict[str, Any]]:
    """Feed items without what depends on a store's history rather than on the folder: the
    first-seen date of an undated note, and the edit time of a note edited during the soak (a
    fresh store never saw the edit, so for it `updated` is the publication date)."""
    for item in items:
        if item["id"] in undated:
            item.pop("date_published", None)
            item.pop("date_modified", None)
        if item["id"] in edited:
            item.pop("date_modified", None)
    return items


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    corpus_args(parser)
    parser.set_defaults(notes=2000)
    parser.add_argument("--minutes", type=float, default=10.0)
    parser.add_argument("--clients", type=int, default=6)
    args = parser.parse_args()
    corpus = make_corpus(args)
    work = Path(tempfile.mkdtemp(prefix="feedsvc-soak-"))
    root = work / "notes"
    shutil.copytree(corpus, root)
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    config_path = work / "feedsvc.toml"
    config_path.write_text(f'[site]\nbase_url = "{base}/"\n\n[[sources]]\nname = "notes"\n'
                           f'path = "{root}"\n\n[store]\ndata_dir = "{work / "data"}"\n\n'
                           f'[scheduler]\npoll_seconds = 10\n\n[webhook]\nsecret = "{SECRET}"\n'
                           f'min_interval_seconds = 2\n')
    server = subprocess.Popen([sys.executable, "-m", "feedsvc", "--log-level", "WARNING", "serve",
                               "--config", str(config_path), "--port", str(port)],
                              env={**os.environ, "PYTHONPATH": str(REPO)},
                              stderr=(work / "serve.log").open("wb"))
    try:
        wait_for_first_scan(base, 300)
        print(f"soak: {args.minutes} min, {args.clients} clients, corpus {args.notes} notes "
              f"(copy in {work}), server pid {server.pid}")
        deadline = time.monotonic() + args.minutes * 60
        stats = Stats()
        counts = {"added": 0, "edited": 0, "deleted": 0}
        edited_paths: set[str] = set()
        warmup_end = time.monotonic() + min(30.0, args.minutes * 6)
        threads = [threading.Thread(target=client_loop, args=(base, deadline, stats, n))
                   for n in range(args.clients)]
        threads.append(threading.Thread(target=writer_loop, args=(root, deadline, 99, counts, edited_paths)))
        for t in threads:
            t.start()
        while time.monotonic() < warmup_end:
            time.sleep(0.5)
        memory_start = rss_kib(server.pid)
        samples = [memory_start]
        while any(t.is_alive() for t in threads):
            time.sleep(1)
            if (len(samples) * 30) <= time.monotonic() - warmup_end:
                samples.append(rss_kib(server.pid))
        for t in threads:
            t.join()
        memory_end = rss_kib(server.pid)

        # settle: one more webhook after the last change, then wait for it to be applied
        body = b"{}"
        requests.post(f"{base}/hooks/refresh", data=body, timeout=30,
                      headers={"X-Hub-Signature-256": sign(SECRET, body)})
        time.sleep(3)
        settle = time.monotonic()
        last = None
        while time.monotonic() - settle < 120:
            health = requests.get(f"{base}/healthz", timeout=10).json()
            if health["last_scan"] and last == health["revision"] and \
                    health["last_scan"]["added"] + health["last_scan"]["updated"] + \
                    health["last_scan"]["removed"] == 0:
                break
            last = health["revision"]
            time.sleep(2.5)

        settings = ContentSettings()
        undated: set[str] = set()
        urls = Urls(base + "/")
        for path in root.rglob("*.md"):
            rel = path.relative_to(root).as_posix()
            note = NoteFile(source="notes", rel_path=rel, abs_path=str(path), size=0, mtime_ns=0)
            try:
                header = read_note(note, path.read_bytes(), settings).header
            except NoteError:
                continue
            if header.published is None:
                undated.add(urls.tag_uri(header.note_id or f"notes/{rel}"))

        session = requests.Session()
        fresh_config = load_config(config_path, env={"FEEDSVC_STORE_DATA_DIR": str(work / "fresh")})
        fresh_store = open_store(fresh_config.store_url)
        Scanner(fresh_config, fresh_store).run(ScanJob(reason="soak-fresh"))
        fresh_client = create_app(fresh_config, store=fresh_store).test_client()
        slugs = ["all"] + [c.slug for c, _ in fresh_store.categories(fresh_client.application
                                                                      .extensions["feedsvc"].clock())]
        live_opml = etree.fromstring(session.get(f"{base}/feeds.opml", timeout=10).content)
        live_feeds = [o.get("xmlUrl") for o in live_opml.iter("outline")]
        mismatched = [] if live_feeds == [urls.feed(slug, FeedFormat.ATOM) for slug in slugs] \
            else ["opml"]
        edited = {urls.tag_uri(f"notes/{rel}") for rel in edited_paths}
        for slug in slugs:
            live = json.loads(session.get(f"{base}/feeds/{slug}.json", timeout=10).content)["items"]
            fresh = json.loads(fresh_client.get(f"/feeds/{slug}.json").data)["items"]
            if comparable(live, undated, edited) != comparable(fresh, undated, edited):
                mismatched.append(slug)
        fresh_store.close()

        minutes = args.minutes
        growth = (memory_end - memory_start) / memory_start * 100 if memory_start else 0.0
        print(f"requests: {stats.requests} ({stats.requests / (minutes * 60):.0f}/s) "
              f"{dict(sorted(stats.by_kind.items()))}")
        print(f"errors: {len(stats.errors)}" + (f" first: {stats.errors[:5]}" if stats.errors else ""))
        print(f"notes changed on disk: {counts}")
        print(f"server memory (VmRSS): start {memory_start / 1024:.1f} MiB (after "
              f"{warmup_end - deadline + args.minutes * 60:.0f} s of warm-up), end "
              f"{memory_end / 1024:.1f} MiB, growth {growth:+.1f}%")
        print("VmRSS every 30 s (MiB): " + " ".join(f"{k / 1024:.0f}" for k in samples))
        print(f"final feeds vs fresh scan: {len(slugs)} feeds compared, "
              f"{'all equal' if not mismatched else 'DIFFERENT: ' + ', '.join(mismatched)}")
        failed = bool(stats.errors) or growth >= 10 or bool(mismatched)
        print("result:", "FAIL" if failed else "ok")
        raise SystemExit(1 if failed else 0)
    finally:
        server.terminate()
        server.wait(15)
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
