"""The request that first renders a changed feed: with brotli made inline before the answer
(before: render + gzip + brotli q9) and in the background (now: render + gzip; brotli ready a
little later), for the feed nearest 100 KB and the largest feed, through the app's own WSGI
stack (fast path included), on a built store.

    python bench/firstrender.py --notes 10000 [--rounds 5]
"""

from __future__ import annotations

import argparse
import datetime as dt
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import corpus_args  # noqa: E402
from common import make_corpus  # noqa: E402

from feedsvc.config import build_config  # noqa: E402
from feedsvc.model import FeedFormat  # noqa: E402
from feedsvc.scan.scanner import Scanner  # noqa: E402
from feedsvc.store import open_store  # noqa: E402
from feedsvc.web import create_app  # noqa: E402
from feedsvc.model import ScanJob  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    corpus_args(parser)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    corpus = make_corpus(args)
    data = args.workdir / f"webside-store-{args.notes}" / "data"
    config = build_config({"site": {"base_url": "http://127.0.0.1:8080/"},
                           "sources": [{"name": "notes", "path": str(corpus)}],
                           "store": {"data_dir": str(data)}}, base_dir=args.workdir)
    store = open_store(config.store_url)
    if not (data / ".scanned").exists():
        Scanner(config, store).run(ScanJob(reason="bench"))
        (data / ".scanned").write_text("ok")
    app = create_app(config, store=store)
    services = app.extensions["feedsvc"]
    publisher, fast = services.publisher, app.wsgi_app
    client = app.test_client()
    sizes: dict[tuple[str, FeedFormat], int] = {}
    for slug in publisher.feed_slugs():
        for fmt in FeedFormat:
            sizes[(slug, fmt)] = len(publisher.feed(slug, fmt).rendered.body)
    publisher.wait_compressed(120)
    near_100k = min(sizes, key=lambda k: abs(sizes[k] - 100_000))
    largest = max(sizes, key=lambda k: sizes[k])
    print(f"{args.notes} notes; {len(sizes)} feeds; as of {dt.datetime.now():%H:%M:%S}")
    for label, (slug, fmt) in (("~100 KB feed", near_100k), ("largest feed", largest)):
        path = services.urls.feed(slug, fmt)[len(services.urls.base.rstrip("/")):]
        for background in (False, True):
            publisher.background_br = background
            firsts, ready = [], []
            for _ in range(args.rounds):
                publisher.forget()  # as after a change of this feed
                fast.forget()
                started = time.perf_counter()
                response = client.get(path, headers={"Accept-Encoding": "br, gzip"})
                firsts.append(time.perf_counter() - started)
                coding = response.headers.get("Content-Encoding")
                publisher.wait_compressed(30)
                ready.append(time.perf_counter() - started)
            name = "brotli in the background (now)" if background else "brotli inline (before)"
            print(f"{label} {path} ({sizes[(slug, fmt)] / 1024:.0f} KB), {name:32}: first request "
                  f"p50 {statistics.median(firsts) * 1000:7.1f} ms  min {min(firsts) * 1000:7.1f} ms"
                  f"  (answered {coding}; br ready after "
                  f"{statistics.median(ready) * 1000:.1f} ms)", flush=True)
    store.close()


if __name__ == "__main__":
    main()
