"""Scale-out benchmark on one corpus: cold scan time on SQLite vs PostgreSQL (a throw-away
server from deploy/cluster.py), then feed GET / 304 requests per second through nginx with one
vs two `--role web` processes (wrk, Debian package `wrk`).

    python bench/scale.py --notes 10000 [--seconds 10] [--connections 16]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import requests

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "deploy"))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from cluster import Cluster  # noqa: E402
from common import corpus_args  # noqa: E402
from common import make_corpus  # noqa: E402
from serve import wrk  # noqa: E402

REPO = Path(__file__).resolve().parents[1]


def cold_scan(corpus: Path, store_url: str, work: Path) -> float:
    config = work / f"scan-{abs(hash(store_url))}.toml"
    config.write_text(f'[[sources]]\nname = "notes"\npath = "{corpus}"\n\n'
                      f'[store]\nurl = "{store_url}"\n')
    start = time.perf_counter()
    subprocess.run([sys.executable, "-m", "feedsvc", "--log-level", "WARNING", "scan",
                    "--config", str(config)], check=True, stdout=subprocess.DEVNULL,
                   env={**os.environ, "PYTHONPATH": str(REPO)})
    return time.perf_counter() - start


def load_through_nginx(cluster: Cluster, args: argparse.Namespace, label: str) -> None:
    url = f"{cluster.url}/feeds/{args.feed}.atom"
    deadline = time.monotonic() + 600
    while requests.get(url, timeout=10).status_code != 200:
        if time.monotonic() > deadline:
            raise SystemExit(f"{url} never answered 200")
        time.sleep(0.5)
    etag = requests.get(url, timeout=10).headers["ETag"]
    for case, headers in (("GET", {"Accept-Encoding": "gzip"}),
                          ("304", {"If-None-Match": etag, "Accept-Encoding": "gzip"})):
        result = wrk(url, args.seconds, args.connections, headers)
        print(f"nginx -> {label:22} {case}: {result['rps']:9.0f} req/s   p50 {result['p50']:6.2f} ms"
              f"   errors {result['errors']:.0f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    corpus_args(parser)
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--feed", default="all", help="category slug to load")
    args = parser.parse_args()
    corpus = make_corpus(args)
    work = Path(tempfile.mkdtemp(prefix="feedsvc-scale-"))
    sqlite_seconds = cold_scan(corpus, f"sqlite:///{work / 'cold.db'}", work)
    print(f"cold scan, {args.notes} notes, SQLite:     {sqlite_seconds:7.2f} s")
    for webs in (1, 2):
        with Cluster(notes=corpus, poll_seconds=0) as cluster:
            cluster.start_postgres()
            if webs == 1:
                pg_seconds = cold_scan(corpus, cluster.store_url, work)
                print(f"cold scan, {args.notes} notes, PostgreSQL: {pg_seconds:7.2f} s "
                      f"(ratio PG/SQLite {pg_seconds / sqlite_seconds:.2f})")
            cluster.write_config()
            cluster.add_node("scanner", "scanner")
            for i in range(webs):
                cluster.add_node(f"web{i + 1}", "web")
            cluster.start_nginx([n for n in cluster.nodes if n.role == "web"])
            load_through_nginx(cluster, args, f"{webs} web process{'es' if webs > 1 else ''}")


if __name__ == "__main__":
    main()
