"""Serve benchmark: the production server (`feedsvc serve`, waitress) on a scanned corpus,
loaded from 127.0.0.1 with wrk (Debian package `wrk`), bounded in time.

    python bench/serve.py --notes 10000 [--seconds 10] [--connections 16]

Measures a plain GET, a gzip GET and a conditional GET (If-None-Match -> 304) of a category
feed, and prints requests/s with p50/p99 latency for each. Falls back to a Python keep-alive
client when wrk is not installed.
"""

from __future__ import annotations

import argparse
import http.client
import os
import re
import shutil
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

import requests

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import corpus_args  # noqa: E402
from common import free_port  # noqa: E402
from common import make_corpus  # noqa: E402
from common import wait_for_first_scan  # noqa: E402

from feedsvc.config import load_config  # noqa: E402
from feedsvc.scan import Scanner  # noqa: E402
from feedsvc.store import open_store  # noqa: E402

REPO = Path(__file__).resolve().parents[1]



def prepare(args: argparse.Namespace, port: int) -> Path:
    corpus = make_corpus(args)
    work = args.workdir / f"serve-{args.notes}"
    work.mkdir(parents=True, exist_ok=True)
    config = work / "feedsvc.toml"
    config.write_text(f'[site]\nbase_url = "http://127.0.0.1:{port}/"\n\n[[sources]]\nname = "notes"\n'
                      f'path = "{corpus}"\n\n[store]\ndata_dir = "{work / "data"}"\n\n'
                      f'[scheduler]\npoll_seconds = 0\n')
    if not (work / "scanned").exists():
        loaded = load_config(config)
        store = open_store(loaded.store_url)
        Scanner(loaded, store).run(reason="bench")
        store.close()
        (work / "scanned").write_text("ok")
    return config


def wrk(url: str, seconds: int, connections: int, headers: dict[str, str]) -> dict[str, float]:
    cmd = ["wrk", "-t2", f"-c{connections}", f"-d{seconds}s", "--latency", "--timeout", "5s"]
    for name, value in headers.items():
        cmd += ["-H", f"{name}: {value}"]
    out = subprocess.run(cmd + [url], capture_output=True, text=True, check=True,
                         timeout=seconds + 30).stdout

    def ms(label: str) -> float:
        m = re.search(rf"^\s*{label}%\s+([\d.]+)(us|ms|s)\s*$", out, re.M)
        assert m, out
        return float(m.group(1)) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[m.group(2)]
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    socket_errors = re.search(r"Socket errors: .*", out)
    return {"rps": rps, "p50": ms("50"), "p99": ms("99"),
            "errors": float(errors.group(1)) if errors else 0.0,
            "socket_errors": 1.0 if socket_errors else 0.0}


def python_load(url: str, seconds: int, connections: int, headers: dict[str, str]) -> dict[str, float]:
    """Keep-alive clients in threads: a stand-in when wrk is not installed."""
    host, port = url.split("//")[1].split("/")[0].split(":")
    path = "/" + url.split("//")[1].split("/", 1)[1]
    latencies: list[float] = []
    errors = [0]
    deadline = time.monotonic() + seconds

    def client() -> None:
        conn = http.client.HTTPConnection(host, int(port), timeout=5)
        mine: list[float] = []
        while time.monotonic() < deadline:
            start = time.perf_counter()
            conn.request("GET", path, headers=headers)
            response = conn.getresponse()
            response.read()
            mine.append(time.perf_counter() - start)
            if response.status >= 400:
                errors[0] += 1
        latencies.extend(mine)
    threads = [threading.Thread(target=client) for _ in range(connections)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    latencies.sort()
    return {"rps": len(latencies) / seconds, "p50": statistics.median(latencies) * 1000,
            "p99": latencies[int(len(latencies) * 0.99)] * 1000, "errors": float(errors[0]),
            "socket_errors": 0.0}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    corpus_args(parser)
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--threads", type=int, default=8, help="waitress worker threads")
    parser.add_argument("--feed", default="3d-model", help="category slug to load")
    args = parser.parse_args()
    port = free_port()
    config = prepare(args, port)
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    server = subprocess.Popen([sys.executable, "-m", "feedsvc", "--log-level", "WARNING", "serve",
                               "--config", str(config), "--port", str(port),
                               "--threads", str(args.threads)], env=env)
    base = f"http://127.0.0.1:{port}"
    try:
        wait_for_first_scan(base, 120)
        url = f"{base}/feeds/{args.feed}.atom"
        first = requests.get(url, timeout=10, headers={"Accept-Encoding": "identity"})
        etag = first.headers["ETag"]
        load = wrk if shutil.which("wrk") else python_load
        print(f"server: feedsvc serve (waitress, {args.threads} threads), {args.notes}-note corpus; "
              f"load: {'wrk' if load is wrk else 'python keep-alive clients'}, "
              f"{args.connections} connections, {args.seconds} s each")
        print(f"feed: {url} ({len(first.content)} bytes, "
              f"{first.content.count(b'<entry>')} entries)")
        cases = [("GET (identity)", {"Accept-Encoding": "identity"}),
                 ("GET (gzip)", {"Accept-Encoding": "gzip"}),
                 ("conditional GET -> 304", {"If-None-Match": etag, "Accept-Encoding": "gzip"})]
        for label, headers in cases:
            result = load(url, args.seconds, args.connections, headers)
            print(f"{label:24} {result['rps']:9.0f} req/s   p50 {result['p50']:7.2f} ms   "
                  f"p99 {result['p99']:7.2f} ms   errors {result['errors']:.0f}")
        status = requests.get(url, headers={"If-None-Match": etag}, timeout=5).status_code
        print(f"check: conditional GET answers {status}")
    finally:
        server.terminate()
        server.wait(10)


if __name__ == "__main__":
    main()
