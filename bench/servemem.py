"""Serve memory benchmark: `feedsvc serve --workers 2` on a corpus, every feed (category, `all`,
tag; every format), the OPML, every digest and tag page and the entry pages (all, or
--entries N of them) with the media they show requested, then the memory of the whole process
tree (the granian master, its workers and the scanner process): RSS and PSS summed.

    python bench/servemem.py --notes 100000 [--entries N] [--tag-pages N] [--digest-pages N]
                             [--clients 4]

The store is built once by `feedsvc scan` under --workdir (webside-servemem-<notes>/) and
reused by later runs (a first scan of 100k notes takes minutes); the serve's own start-up scan
then changes nothing. The goal (issue 9): < 400 MiB for all processes together at 100k,
measured at rest (--rest seconds after the last request); the figure right after the last
request and the peak are printed too.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import random
import re
import shutil
import subprocess
import sys
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import requests

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import corpus_args  # noqa: E402
from common import free_port  # noqa: E402
from common import make_corpus  # noqa: E402
from common import wait_for_first_scan  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
MEDIA = re.compile(r'\ssrc="(?:https?://[^/"]+)?(/media/[^"]+)"')
MiB = 1024 * 1024


def seed_store(args: argparse.Namespace, work: Path) -> None:
    """Start from a store bench/latency.py finished on the same corpus (same paths, bytes,
    mtimes and base_url, source "notes"): the serve's start-up scan then changes nothing,
    as with a store this script built, and a first scan of minutes is saved."""
    for other in sorted(args.workdir.glob(f"webside-latency-{args.notes}-*")):
        if (other / ".scanned").exists() and (other / "data" / "feedsvc.db").exists():
            shutil.copytree(other / "data", work / "data")
            (work / ".scanned").write_text(f"seeded from {other}")
            print(f"store seeded from {other / 'data'}", flush=True)
            return


def prepare(args: argparse.Namespace, port: int) -> Path:
    corpus = make_corpus(args)
    work = args.workdir / f"webside-servemem-{args.notes}"
    work.mkdir(parents=True, exist_ok=True)
    config = work / "feedsvc.toml"
    # a fixed base_url: the store built once stays valid whatever port this run listens on
    config.write_text(f'[site]\nbase_url = "http://127.0.0.1:8080/"\n\n'
                      f'[[sources]]\nname = "notes"\npath = "{corpus}"\n\n'
                      f'[store]\ndata_dir = "{work / "data"}"\n\n[scheduler]\npoll_seconds = 0\n')
    if not (work / ".scanned").exists() and not (work / "data").exists():
        seed_store(args, work)
    if not (work / ".scanned").exists():
        print(f"building the store once: feedsvc scan ({args.notes} notes) in {work}", flush=True)
        started = time.monotonic()
        subprocess.run([sys.executable, "-m", "feedsvc", "--log-level", "WARNING", "scan",
                        "--config", str(config)], check=True, stdout=subprocess.DEVNULL,
                       env={**os.environ, "PYTHONPATH": str(REPO)})
        print(f"store built in {time.monotonic() - started:.0f} s", flush=True)
        (work / ".scanned").write_text("ok")
    return config


def tree(pid: int) -> list[int]:
    """pid and all its descendants."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as f:
                    ppid = int(f.read().rsplit(")", 1)[1].split()[1])
            except (OSError, ValueError, IndexError):
                continue
            children.setdefault(ppid, []).append(int(entry))
    out, stack = [], [pid]
    while stack:
        p = stack.pop()
        out.append(p)
        stack.extend(children.get(p, []))
    return out


def memory(pid: int) -> dict[int, tuple[int, int, str]]:
    """pid -> (RSS, PSS, name) in bytes for the process tree of pid."""
    out = {}
    for p in tree(pid):
        try:
            fields = {}
            with open(f"/proc/{p}/smaps_rollup") as f:
                for line in f:
                    parts = line.split()
                    if len(parts) >= 2 and parts[0] in ("Rss:", "Pss:"):
                        fields[parts[0]] = int(parts[1]) * 1024
            with open(f"/proc/{p}/cmdline", "rb") as f:
                name = f.read().replace(b"\0", b" ").decode(errors="replace")[:60]
            with open(f"/proc/{p}/comm") as f:
                name = f"{f.read().strip()}: {name}"
            out[p] = (fields.get("Rss:", 0), fields.get("Pss:", 0), name)
        except OSError:
            continue
    return out


def summary(label: str, pid: int, peak: list[int]) -> tuple[int, int]:
    mem = memory(pid)
    rss, pss = sum(m[0] for m in mem.values()), sum(m[1] for m in mem.values())
    print(f"{label:34} RSS {rss / MiB:7.1f} MiB   PSS {pss / MiB:7.1f} MiB   "
          f"({len(mem)} processes; peak RSS so far {max(peak[0], rss) / MiB:.1f} MiB)", flush=True)
    return rss, pss


def site_paths(config: Path) -> dict[str, list[str]]:
    """The live URL paths by family, from the app's own lists (those of the static mirror)."""
    from feedsvc.config import load_config
    from feedsvc.store import open_store
    from feedsvc.web import create_app
    from feedsvc.web import mirror

    loaded = load_config(config)
    store = open_store(loaded.store_url)
    app = create_app(loaded, store=store)
    services = app.extensions["feedsvc"]
    now = dt.datetime.now(dt.timezone.utc)
    names = {"_fixed": "feeds", "_feeds": "feeds", "_digest": "digest pages",
             "_entries": "entry pages", "_tags": "tag feeds and pages"}
    out: dict[str, list[str]] = {}
    for family in mirror.FAMILIES:
        paths = [p for p, _ in family(services, now) if p]
        out.setdefault(names.get(family.__name__, family.__name__), []).extend(paths)
    store.close()
    return out


def fetch_all(base: str, paths: list[str], clients: int, media: set[str] | None,
              statuses: Counter[int]) -> None:
    local = threading.local()

    def get(path: str) -> None:
        session = getattr(local, "session", None)
        if session is None:
            session = local.session = requests.Session()
        response = session.get(base + path, timeout=60, headers={"Accept-Encoding": "gzip, br"})
        statuses[response.status_code] += 1
        if media is not None and response.headers.get("Content-Type", "").startswith("text/html"):
            media.update(MEDIA.findall(response.text))

    with ThreadPoolExecutor(clients) as pool:
        list(pool.map(get, paths))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    corpus_args(parser)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--entries", type=int, default=0,
                        help="entry pages to request (a random sample); 0 = all")
    parser.add_argument("--tag-pages", type=int, default=0,
                        help="tag pages (digest style) to request (a random sample); 0 = all")
    parser.add_argument("--digest-pages", type=int, default=0,
                        help="digest pages to request (the first N); 0 = all")
    parser.add_argument("--clients", type=int, default=4, help="concurrent keep-alive clients")
    parser.add_argument("--limit-mib", type=float, default=400.0)
    parser.add_argument("--rest", type=float, default=3.0,
                        help="seconds to wait after the last request before the final figure")
    args = parser.parse_args()
    port = free_port()
    config = prepare(args, port)
    families = site_paths(config)
    log = config.parent / "serve.log"
    with log.open("ab") as out:
        server = subprocess.Popen(
            [sys.executable, "-m", "feedsvc", "--log-level", "WARNING", "serve", "--config",
             str(config), "--port", str(port), "--workers", str(args.workers)],
            env={**os.environ, "PYTHONPATH": str(REPO)}, stdout=out, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    peak = [0]
    stop = threading.Event()

    def sample() -> None:
        while not stop.wait(0.25):
            peak[0] = max(peak[0], sum(m[0] for m in memory(server.pid).values()))

    sampler = threading.Thread(target=sample, daemon=True)
    statuses: Counter[int] = Counter()
    try:
        wait_for_first_scan(base, max(300.0, args.notes / 50))
        time.sleep(1.0)
        sampler.start()
        summary("after the start-up scan", server.pid, peak)
        entries = families.get("entry pages", [])
        if args.entries and args.entries < len(entries):
            entries = random.Random(args.seed).sample(entries, args.entries)
        tags = families.get("tag feeds and pages", [])
        tag_feeds = [p for p in tags if p.startswith("/feeds/")]
        tag_pages = [p for p in tags if not p.startswith("/feeds/")]
        if args.tag_pages and args.tag_pages < len(tag_pages):
            tag_pages = random.Random(args.seed).sample(tag_pages, args.tag_pages)
        digests = families.get("digest pages", [])
        if args.digest_pages:
            digests = digests[:args.digest_pages]
        media: set[str] = set()
        for label, paths, found in (
                ("feeds", families.get("feeds", []), None),
                ("tag feeds", tag_feeds, None),
                ("tag pages", tag_pages, None),
                ("digest pages", digests, None),
                ("entry pages", entries, media)):
            started = time.monotonic()
            fetch_all(base, paths, args.clients, found, statuses)
            summary(f"after {len(paths)} {label} ({time.monotonic() - started:.0f} s)",
                    server.pid, peak)
        started = time.monotonic()
        fetch_all(base, sorted(media), args.clients, None, statuses)
        summary(f"after {len(media)} media files ({time.monotonic() - started:.0f} s)",
                server.pid, peak)
        # everything once more: the caches are full now; this is the steady state
        again = families.get("feeds", []) + tag_feeds + families.get("digest pages", [])[:2000]
        fetch_all(base, again + tag_pages[:2000] + entries[:2000], args.clients, None, statuses)
        busy_rss, busy_pss = summary("after a second round", server.pid, peak)
        time.sleep(args.rest)
        rss, pss = summary(f"at rest, {args.rest:.0f} s later", server.pid, peak)
        stop.set()
        print("\nper process:")
        for pid, (p_rss, p_pss, name) in sorted(memory(server.pid).items()):
            print(f"  {pid:>7}  RSS {p_rss / MiB:7.1f} MiB  PSS {p_pss / MiB:7.1f} MiB  {name}")
        print(f"\nresponses: {dict(sorted(statuses.items()))}")
        verdict = "ok" if pss < args.limit_mib * MiB else "OVER"
        print(f"serve --workers {args.workers}, {args.notes} notes: all processes together "
              f"at rest RSS {rss / MiB:.1f} MiB, PSS {pss / MiB:.1f} MiB; right after the last "
              f"request PSS {busy_pss / MiB:.1f} MiB (RSS {busy_rss / MiB:.1f}); "
              f"peak RSS {peak[0] / MiB:.1f} MiB (goal < {args.limit_mib:.0f} MiB at rest: {verdict})")
    finally:
        stop.set()
        server.terminate()
        try:
            server.wait(20)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait(5)


if __name__ == "__main__":
    main()
