"""Freshness benchmark: edit one note, fire the webhook, poll the note's category JSON feed until
the edit shows; the time from the webhook (or, for `watch`, from the save) to the first
response holding the edit, through a real `feedsvc serve --workers 2`.

    python bench/latency.py --notes 10000 [--mode payload,git,bare,watch] [--gap 8 --gap 1]
                            [--samples 20]

Modes: `payload` (a plain folder, webhook body {"source", "paths": [rel]}), `git` (a `pull =
"git"` source cloned from an upstream repo made from the corpus: edit + commit upstream, bare
webhook; the scan's pull finds the file), `bare` (plain folder, no payload: a full walk),
`watch` (`watch = true`, no webhook at all). Each mode works on its own copy of the shared
corpus (`cp -al`; an edit writes a new file and os.replace()s it, so the shared inode is never
touched) with its own store, both kept under --workdir and reused by later runs (the first scan
of 100k notes takes minutes). Edits change the body of a note that is in its category's JSON feed
(picked from the feeds after the first scan) to hold a unique marker; the poll is a conditional GET
(If-None-Match) on one keep-alive connection every --poll-ms. Prints p50/p90/max per mode and
gap, in ms.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import random
import re
import shutil
import statistics
import subprocess
import sys
import time
import urllib.parse
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import corpus_args  # noqa: E402
from common import free_port  # noqa: E402
from common import make_corpus  # noqa: E402
from common import wait_for_first_scan  # noqa: E402

from feedsvc.content.slugs import slugify  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
MODES = ("payload", "git", "bare", "watch")
SECRET = "bench-latency"
MARK = re.compile(r"\n\nLATENCYMARK[0-9a-f]+\n\Z")
GIT_ENV = {"GIT_AUTHOR_NAME": "bench", "GIT_AUTHOR_EMAIL": "bench@localhost",
           "GIT_COMMITTER_NAME": "bench", "GIT_COMMITTER_EMAIL": "bench@localhost"}


def git(cwd: Path, *args: str) -> None:
    subprocess.run(["git", "-c", "gc.auto=0", *args], cwd=cwd, check=True,
                   env={**os.environ, **GIT_ENV}, stdout=subprocess.DEVNULL)


def prepare(args: argparse.Namespace, mode: str, port: int) -> tuple[Path, Path, Path]:
    """(config, the folder edits go to, the source folder) for `mode`, made once."""
    corpus = make_corpus(args)
    work = args.workdir / f"webside-latency-{args.notes}-{mode}"
    notes, upstream = work / "notes", work / "upstream"
    if not (work / ".ready").exists():
        shutil.rmtree(work, ignore_errors=True)
        work.mkdir(parents=True)
        print(f"[{mode}] copying the corpus (cp -al) into {work}", flush=True)
        if mode == "git":
            subprocess.run(["cp", "-al", str(corpus), str(upstream)], check=True)
            (upstream / ".complete").unlink(missing_ok=True)  # hard link: unlink is safe
            git(upstream, "init", "-q", "-b", "main")
            git(upstream, "add", "-A")
            git(upstream, "commit", "-q", "-m", "corpus")
            # packed, as a served repository is: a clone of loose objects has the first
            # fetch start git's auto gc, a repack in the background of the timed edits
            git(upstream, "repack", "-adq")
            git(work, "clone", "-q", str(upstream), str(notes))
            copy_mtimes(upstream, notes)
        else:
            subprocess.run(["cp", "-al", str(corpus), str(notes)], check=True)
        seed_store(args, work)
        (work / ".ready").write_text("ok")
    config = work / "feedsvc.toml"
    extra = {"git": 'pull = "git"\n', "watch": "watch = true\n"}.get(mode, "")
    # a fixed base_url: a store made once stays valid whatever port a run listens on (and
    # can seed bench/servemem.py's)
    config.write_text(f'[site]\nbase_url = "http://127.0.0.1:8080/"\n\n'
                      f'[[sources]]\nname = "notes"\npath = "{notes}"\n{extra}\n'
                      f'[store]\ndata_dir = "{work / "data"}"\n\n'
                      f'[scheduler]\npoll_seconds = 0\n\n[webhook]\nsecret = "{SECRET}"\n')
    return config, upstream if mode == "git" else notes, notes


def copy_mtimes(origin: Path, clone: Path) -> None:
    """Give the clone's files the corpus's mtimes (git checks files out with the time of the
    clone), so a store made from the corpus in another mode matches them (seed_store)."""
    for path in origin.rglob("*"):
        if ".git" in path.parts or not path.is_file():
            continue
        target = clone / path.relative_to(origin)
        if target.is_file():
            st = path.stat()
            os.utime(target, ns=(st.st_atime_ns, st.st_mtime_ns))


def seed_store(args: argparse.Namespace, work: Path) -> None:
    """Start from another mode's store when one is ready: the same corpus (same paths, bytes
    and mtimes, source "notes"), so this mode's first scan changes nothing instead of taking
    minutes at 100k notes. Only the set-up is shortened; what is timed is the same."""
    for other in sorted(args.workdir.glob(f"webside-latency-{args.notes}-*")):
        data = other / "data"
        if other != work and (other / ".scanned").exists() and (data / "feedsvc.db").exists():
            shutil.copytree(data, work / "data")
            print(f"[{work.name}] store seeded from {data}", flush=True)
            return


def notes_in_feeds(port: int, root: Path, count: int, seed: int) -> list[tuple[str, str]]:
    """(rel path, category slug) of `count` notes that are in their category's JSON feed now,
    spread over the categories: read off the feeds themselves (an entry id without a
    front-matter id ends in <source>/<path>), so every edit has a feed to show up in."""
    picks: list[tuple[str, str]] = []
    for folder in sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith(".")):
        slug = slugify(folder.name)
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        conn.request("GET", f"/feeds/{slug}.json")
        response = conn.getresponse()
        body = response.read()
        conn.close()
        if response.status != 200:
            continue
        found = []
        for item in json.loads(body).get("items", []):
            tail = urllib.parse.unquote(str(item.get("id", "")).split(":", 2)[-1])
            if tail.startswith("notes/") and (root / tail[len("notes/"):]).is_file():
                found.append((tail[len("notes/"):], slug))
        picks.extend(found[:10])
    random.Random(seed).shuffle(picks)
    return picks[:count] or picks


def edit(root: Path, rel: str) -> str:
    """Give the note a new unique marker at the end of its body; write new + os.replace."""
    path = root / rel
    text = MARK.sub("", path.read_text(encoding="utf-8"))
    marker = f"LATENCYMARK{uuid.uuid4().hex[:12]}"
    tmp = path.with_name(f".{path.name}.{marker}.tmp")  # hidden: no walk, no watch reads it
    tmp.write_text(f"{text.rstrip()}\n\n{marker}\n", encoding="utf-8")
    os.replace(tmp, path)
    return marker


def fire(port: int, payload: dict[str, object] | None) -> None:
    body = json.dumps(payload).encode() if payload is not None else b""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    conn.request("POST", "/hooks/refresh", body=body, headers={
        "Authorization": f"Bearer {SECRET}", "Content-Type": "application/json"})
    response = conn.getresponse()
    response.read()
    conn.close()
    if response.status != 202:
        raise SystemExit(f"webhook answered {response.status}")


class Poller:
    """Conditional GETs of one feed on one keep-alive connection."""

    def __init__(self, port: int, path: str) -> None:
        self.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        self.port = port
        self.path = path
        self.etag = ""
        self.body = b""

    def get(self) -> bytes:
        headers = {"Accept-Encoding": "identity"}
        if self.etag:
            headers["If-None-Match"] = self.etag
        try:
            self.conn.request("GET", self.path, headers=headers)
            response = self.conn.getresponse()
        except (http.client.RemoteDisconnected, ConnectionError):
            # the server closed the idle keep-alive connection: a new one, as any client does
            self.conn.close()
            self.conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
            self.conn.request("GET", self.path, headers=headers)
            response = self.conn.getresponse()
        data = response.read()
        if response.status == 200:
            self.etag, self.body = response.headers.get("ETag", ""), data
        elif response.status != 304:
            raise SystemExit(f"{self.path} answered {response.status}")
        return self.body


def run_mode(args: argparse.Namespace, mode: str) -> dict[float, list[float | None]]:
    port = free_port()
    config, edit_root, source_root = prepare(args, mode, port)
    log = config.parent / "serve.log"
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    with log.open("ab") as out:
        server = subprocess.Popen(
            [sys.executable, "-m", "feedsvc", "--log-level", args.log_level, "serve", "--config",
             str(config), "--port", str(port), "--workers", str(args.workers)],
            env=env, stdout=out, stderr=subprocess.STDOUT)
    results: dict[float, list[float | None]] = {}
    try:
        started = time.monotonic()
        wait_for_first_scan(f"http://127.0.0.1:{port}", max(180.0, args.notes / 20))
        print(f"[{mode}] first scan done in {time.monotonic() - started:.1f} s", flush=True)
        (config.parent / ".scanned").write_text("ok")  # its store may seed another mode's
        picks = notes_in_feeds(port, source_root, max(args.samples, 1), args.seed)
        pollers = {slug: Poller(port, f"/feeds/{slug}.json") for _, slug in picks}
        for poller in pollers.values():
            poller.get()
        time.sleep(1.0)  # the watcher is set up, start-up work is over
        for gap in args.gap:
            samples: list[float | None] = []
            for i in range(args.samples):
                rel, slug = picks[i % len(picks)]
                t_edit = time.monotonic()
                marker = edit(edit_root, rel).encode()
                if mode == "git":
                    git(edit_root, "commit", "-q", "-am", marker.decode())
                t0 = time.monotonic()
                if mode == "payload":
                    fire(port, {"source": "notes", "paths": [rel]})
                elif mode in ("git", "bare"):
                    fire(port, None)
                else:
                    t0 = t_edit  # watch: from the save itself
                poller, deadline, seen = pollers[slug], t0 + args.timeout, None
                while time.monotonic() < deadline:
                    if marker in poller.get():
                        seen = time.monotonic() - t0
                        break
                    time.sleep(args.poll_ms / 1000)
                samples.append(seen)
                rest = gap - (time.monotonic() - t_edit)
                if rest > 0 and i + 1 < args.samples:
                    time.sleep(rest)
            results[gap] = samples
            report(mode, args.notes, gap, samples)
    finally:
        server.terminate()
        try:
            server.wait(20)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait(5)
    return results


def report(mode: str, notes: int, gap: float, samples: list[float | None]) -> None:
    seen = sorted(s * 1000 for s in samples if s is not None)
    missed = len(samples) - len(seen)
    if not seen:
        print(f"{mode:8} notes={notes} gap={gap:g}s: no edit became visible ({missed} timed out)")
        return
    p90 = seen[min(len(seen) - 1, int(round(0.9 * (len(seen) - 1))))]
    print(f"{mode:8} notes={notes} gap={gap:g}s samples={len(samples)}: "
          f"p50 {statistics.median(seen):7.1f} ms  p90 {p90:7.1f} ms  max {seen[-1]:7.1f} ms"
          + (f"  ({missed} not visible within the timeout)" if missed else ""), flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    corpus_args(parser)
    parser.add_argument("--mode", default=",".join(MODES),
                        help=f"comma-separated, of {', '.join(MODES)} (default: all)")
    parser.add_argument("--gap", type=float, action="append",
                        help="seconds from one edit to the next (repeatable; default 8 and 1)")
    parser.add_argument("--samples", type=int, default=20, help="edits per mode and gap")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--poll-ms", type=float, default=2.0)
    parser.add_argument("--timeout", type=float, default=15.0, help="seconds per edit at most")
    parser.add_argument("--log-level", default="WARNING",
                        help="of the serve (INFO logs each scan's seconds to serve.log)")
    args = parser.parse_args()
    args.gap = args.gap or [8.0, 1.0]
    modes = [m.strip() for m in args.mode.split(",") if m.strip()]
    for mode in modes:
        if mode not in MODES:
            parser.error(f"--mode: unknown mode {mode!r}; use {', '.join(MODES)}")
    if "git" in modes and shutil.which("git") is None:
        parser.error("--mode git needs git")
    everything = {mode: run_mode(args, mode) for mode in modes}
    print(f"\nsummary, {args.notes} notes, webhook (watch: save) -> visible in the category "
          f"JSON feed, --workers {args.workers}:")
    for mode, by_gap in everything.items():
        for gap, samples in by_gap.items():
            report(mode, args.notes, gap, samples)


if __name__ == "__main__":
    main()
