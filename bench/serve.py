"""Serve benchmark: the same feed bytes from `feedsvc serve --workers 2` (granian), from a plain
Flask app under gunicorn (2 sync workers) and from nginx serving a copied file, loaded from
127.0.0.1 with wrk (Debian package `wrk`), side by side in one run, bounded in time.

    python bench/serve.py --notes 10000 [--seconds 10] [--connections 16]

Measures a GET and a conditional GET (If-None-Match -> 304) on each, prints requests/s with
p50/p99 latency and the ratios feedsvc / the others, for the feed nearest 100 KB and the
largest feed; then runs bench/mirror.py (nginx on the static mirror vs on a copied file).
Needs gunicorn (pip) and nginx (Debian).
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
from feedsvc.model import ScanJob  # noqa: E402
from feedsvc.scan.scanner import Scanner  # noqa: E402
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
        Scanner(loaded, store).run(ScanJob(reason="bench"))
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


PLAIN_FLASK = """
import os
from flask import Flask, Response, request
BODY = open(os.environ["BENCH_BODY"], "rb").read()
ETAG = os.environ["BENCH_ETAG"]
app = Flask(__name__)

@app.get("/feed")
def feed():
    if request.headers.get("If-None-Match") == ETAG:
        return Response(status=304, headers={"ETag": ETAG})
    return Response(BODY, content_type="application/atom+xml; charset=utf-8",
                    headers={"ETag": ETAG})
"""


def start_nginx(root: Path, body: Path, port: int) -> subprocess.Popen[bytes]:
    prefix = root / "nginx"
    (prefix / "tmp").mkdir(parents=True, exist_ok=True)
    shutil.copy(body, prefix / "feed.atom")
    conf = prefix / "nginx.conf"
    conf.write_text(f"""daemon off;
worker_processes 2;
pid {prefix}/nginx.pid;
error_log {prefix}/error.log warn;
events {{ worker_connections 1024; }}
http {{
    access_log off;
    client_body_temp_path {prefix}/tmp/body;
    proxy_temp_path {prefix}/tmp/proxy;
    fastcgi_temp_path {prefix}/tmp/fastcgi;
    uwsgi_temp_path {prefix}/tmp/uwsgi;
    scgi_temp_path {prefix}/tmp/scgi;
    types {{ application/atom+xml atom; }}
    server {{ listen 127.0.0.1:{port}; root {prefix}; etag on; }}
}}
""")
    os.chmod(prefix, 0o755)
    return subprocess.Popen(["nginx", "-c", str(conf), "-p", str(prefix)])


def wait_up(url: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            requests.get(url, timeout=2)
            return
        except requests.RequestException:
            time.sleep(0.2)
    raise SystemExit(f"{url} did not come up")


def entries(body: bytes) -> int:
    return body.count(b"<entry>") or body.count(b"<item>") or body.count(b'"content_html"')


def pick_feeds(base: str) -> list[str]:
    """The feed (any format) nearest 100 KB and the largest, as "<slug>.<ext>"."""
    opml = requests.get(f"{base}/feeds.opml", timeout=10).text
    slugs = ["all"] + sorted(set(re.findall(r"/feeds/([^/\".]+)\.rss", opml)))
    sizes = {}
    for slug in slugs:
        for ext in ("rss", "atom", "json"):
            response = requests.get(f"{base}/feeds/{slug}.{ext}", timeout=30,
                                    headers={"Accept-Encoding": "identity"})
            sizes[f"{slug}.{ext}"] = len(response.content)
    near = min(sizes, key=lambda k: abs(sizes[k] - 100_000))
    largest = max(sizes, key=lambda k: sizes[k])
    return [near] if near == largest else [near, largest]


def compare(args: argparse.Namespace, base: str, feed: str, work: Path,
            env: dict[str, str]) -> None:
    """feedsvc vs plain Flask vs nginx on one feed's bytes."""
    servers: list[subprocess.Popen[bytes]] = []
    url = f"{base}/feeds/{feed if '.' in feed else feed + '.atom'}"
    try:
        first = requests.get(url, timeout=10, headers={"Accept-Encoding": "identity"})
        etag = first.headers["ETag"]
        body = work / "feed.atom"
        body.write_bytes(first.content)
        flask_port, nginx_port = free_port(), free_port()
        (work / "plainapp.py").write_text(PLAIN_FLASK)
        gunicorn = Path(sys.executable).parent / "gunicorn"
        servers.append(subprocess.Popen(
            [str(gunicorn), "-w", "2", "-k", "sync", "-b", f"127.0.0.1:{flask_port}",
             "--log-level", "warning", "--chdir", str(work), "plainapp:app"],
            env={**env, "BENCH_BODY": str(body), "BENCH_ETAG": etag}))
        servers.append(start_nginx(work, body, nginx_port))
        wait_up(f"http://127.0.0.1:{flask_port}/feed")
        wait_up(f"http://127.0.0.1:{nginx_port}/feed.atom")
        nginx_etag = requests.get(f"http://127.0.0.1:{nginx_port}/feed.atom", timeout=5).headers["ETag"]
        load = wrk if shutil.which("wrk") else python_load
        print(f"feed: {url} ({len(first.content)} bytes, {entries(first.content)} entries), "
              f"{args.notes}-note corpus; load: {'wrk' if load is wrk else 'python clients'}, "
              f"{args.connections} connections, {args.seconds} s each")
        targets = [
            (f"feedsvc (granian, --workers {args.workers})", url, etag),
            ("plain Flask + gunicorn (2 sync workers)", f"http://127.0.0.1:{flask_port}/feed", etag),
            ("nginx, copied file", f"http://127.0.0.1:{nginx_port}/feed.atom", nginx_etag),
        ]
        results: dict[tuple[str, str], float] = {}
        for name, target, tag in targets:
            for case, headers in (("GET", {"Accept-Encoding": "identity"}),
                                  ("304", {"If-None-Match": tag, "Accept-Encoding": "identity"})):
                result = load(target, args.seconds, args.connections, headers)
                results[(name, case)] = result["rps"]
                print(f"{name:42} {case:4} {result['rps']:9.0f} req/s   p50 {result['p50']:7.2f} ms"
                      f"   p99 {result['p99']:7.2f} ms   errors {result['errors']:.0f}")
        ours = targets[0][0]
        for name, _, _ in targets[1:]:
            for case in ("GET", "304"):
                print(f"ratio feedsvc / {name} ({case}): "
                      f"{results[(ours, case)] / max(results[(name, case)], 1e-9):.2f}x")
        probe = requests.get(url, headers={"If-None-Match": etag}, timeout=5)
        print(f"check: conditional GET answers {probe.status_code}; "
              f"Connection: {probe.headers.get('Connection', '(none: kept alive)')}")
    finally:
        for server in servers:
            server.terminate()
            server.wait(10)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    corpus_args(parser)
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--workers", type=int, default=2, help="feedsvc serve --workers")
    parser.add_argument("--feed", default="auto",
                        help="<slug>.<ext> to load (default: the one nearest 100 KB and the largest)")
    parser.add_argument("--no-mirror", action="store_true",
                        help="skip nginx on the static mirror vs on a copied file (bench/mirror.py)")
    args = parser.parse_args()
    port = free_port()
    config = prepare(args, port)
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    servers = [subprocess.Popen([sys.executable, "-m", "feedsvc", "--log-level", "WARNING", "serve",
                                 "--config", str(config), "--port", str(port),
                                 "--workers", str(args.workers)], env=env)]
    base = f"http://127.0.0.1:{port}"
    try:
        wait_for_first_scan(base, 120)
        feeds = [args.feed] if args.feed != "auto" else pick_feeds(base)
        for feed in feeds:
            compare(args, base, feed, Path(str(config)).parent, env)
    finally:
        for server in servers:
            server.terminate()
            server.wait(10)
    if not args.no_mirror:  # nginx on the mirror vs nginx on a copied file (goal: within 10%)
        print("\nnginx on the static mirror (config/nginx.conf) vs on a copied file:", flush=True)
        subprocess.run([sys.executable, str(Path(__file__).with_name("mirror.py")), "--notes",
                        str(args.notes), "--seed", str(args.seed), "--workdir", str(args.workdir),
                        "--duration", str(args.seconds)], check=True)


if __name__ == "__main__":
    main()
