"""Mirror benchmark: nginx with the shipped config/nginx.conf on a `feedsvc export` tree vs
nginx with a bare config (gzip_static on) on a plain copy of the same feed file and its .gz,
side by side with wrk.

    python bench/mirror.py --notes 10000 [--duration 10] [--connections 64]
Prints req/s for GET (identity and gzip) and for a conditional GET (304) of the largest feed.
The goal (issue 9): the mirror within 10% of the plain copy.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tools"))

from common import corpus_args  # noqa: E402
from common import free_port  # noqa: E402
from common import make_corpus  # noqa: E402
from nginx_conf import render  # noqa: E402

PLAIN_CONF = """worker_processes auto;
pid {prefix}/plain.pid;
error_log {prefix}/plain-error.log warn;
{user}
events {{ worker_connections 1024; }}
http {{
    access_log off;
    sendfile on;
    tcp_nopush on;
    keepalive_requests 10000;
    gzip_static on;
    types {{ application/rss+xml rss; application/atom+xml atom; application/feed+json json; }}
    client_body_temp_path {prefix}/plain_body;
    proxy_temp_path {prefix}/plain_proxy;
    fastcgi_temp_path {prefix}/plain_fastcgi;
    uwsgi_temp_path {prefix}/plain_uwsgi;
    scgi_temp_path {prefix}/plain_scgi;
    server {{
        listen 127.0.0.1:{port};
        root {root};
    }}
}}
"""


def wait_ok(url: str, timeout: float = 15) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            with urllib.request.urlopen(url, timeout=2) as r:
                if r.status == 200:
                    return
        except OSError:
            pass
        if time.monotonic() > deadline:
            raise SystemExit(f"{url} did not answer in {timeout:.0f} s")
        time.sleep(0.1)


def wrk(url: str, args: argparse.Namespace, *headers: str) -> float:
    cmd = ["wrk", "-t2", f"-c{args.connections}", f"-d{args.duration}s", "--latency"]
    for h in headers:
        cmd += ["-H", h]
    out = subprocess.run(cmd + [url], capture_output=True, text=True, check=True).stdout
    match = re.search(r"Requests/sec:\s+([\d.]+)", out)
    if not match:
        raise SystemExit(f"no Requests/sec in wrk output:\n{out}")
    return float(match.group(1))


def etag_of(url: str) -> str:
    with urllib.request.urlopen(url, timeout=5) as r:
        return str(r.headers["ETag"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    corpus_args(parser)
    parser.add_argument("--duration", type=int, default=10, help="seconds per wrk run")
    parser.add_argument("--connections", type=int, default=64)
    args = parser.parse_args()
    for tool in ("wrk", "nginx"):
        if shutil.which(tool) is None and not Path(f"/usr/sbin/{tool}").exists():
            raise SystemExit(f"bench/mirror.py needs {tool} (Debian: apt-get install {tool})")
    nginx = shutil.which("nginx") or "/usr/sbin/nginx"
    corpus = make_corpus(args)
    with tempfile.TemporaryDirectory(prefix="feedsvc-bench-mirror-") as tmp_name:
        tmp = Path(tmp_name)
        os.chmod(tmp, 0o755)
        config = tmp / "feedsvc.toml"
        config.write_text(f'[[sources]]\nname = "bench"\npath = "{corpus}"\n'
                          f'[store]\ndata_dir = "{tmp / "data"}"\n', encoding="utf-8")
        mirror = tmp / "mirror"
        started = time.perf_counter()
        subprocess.run([sys.executable, "-m", "feedsvc", "--log-level", "WARNING", "export",
                        str(mirror), "--config", str(config)], check=True,
                       cwd=Path(__file__).resolve().parents[1])
        export_s = time.perf_counter() - started
        feed = max((mirror / "feeds").glob("*.rss"), key=lambda p: p.stat().st_size)
        plain = tmp / "plain"
        plain.mkdir()
        shutil.copy2(feed, plain / feed.name)
        shutil.copy2(feed.with_name(feed.name + ".gz"), plain / (feed.name + ".gz"))
        mirror_port, plain_port = free_port(), free_port()
        (tmp / "mirror.conf").write_text(render(root=mirror, listen=f"127.0.0.1:{mirror_port}",
                                                upstream=f"127.0.0.1:{free_port()}", prefix=tmp))
        user = "user root;" if os.geteuid() == 0 else ""
        (tmp / "plain.conf").write_text(PLAIN_CONF.format(prefix=tmp, port=plain_port, root=plain,
                                                          user=user))
        procs = [subprocess.Popen([nginx, "-c", str(tmp / f"{name}.conf"), "-p", str(tmp),
                                   "-g", "daemon off;"], stderr=subprocess.DEVNULL)
                 for name in ("mirror", "plain")]
        try:
            urls = {"mirror": f"http://127.0.0.1:{mirror_port}/feeds/{feed.name}",
                    "plain": f"http://127.0.0.1:{plain_port}/{feed.name}"}
            for url in urls.values():
                wait_ok(url)
            print(f"corpus: {args.notes} notes; export {export_s:.1f} s; feed {feed.name} "
                  f"{feed.stat().st_size / 1024:.0f} KiB; wrk -t2 -c{args.connections} "
                  f"-d{args.duration}s")
            print(f"{'case':<14}{'mirror req/s':>14}{'plain req/s':>14}{'ratio':>8}")
            cases = {"GET": (), "GET gzip": ("Accept-Encoding: gzip",)}
            for name, headers in cases.items():
                m, p = wrk(urls["mirror"], args, *headers), wrk(urls["plain"], args, *headers)
                print(f"{name:<14}{m:>14.0f}{p:>14.0f}{m / p:>8.2f}")
            m = wrk(urls["mirror"], args, f"If-None-Match: {etag_of(urls['mirror'])}")
            p = wrk(urls["plain"], args, f"If-None-Match: {etag_of(urls['plain'])}")
            print(f"{'304':<14}{m:>14.0f}{p:>14.0f}{m / p:>8.2f}")
        finally:
            for proc in procs:
                proc.terminate()
                proc.wait(10)


if __name__ == "__main__":
    main()
