"""Scan benchmark: cold scan, no-change rescan, and a bare os.scandir walk of the same tree.

    python bench/scan.py --notes 10000
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import corpus_args  # noqa: E402
from common import make_corpus  # noqa: E402

from feedsvc.config import build_config  # noqa: E402
from feedsvc.scan import Scanner  # noqa: E402
from feedsvc.store import open_store  # noqa: E402


def bare_walk(root: Path, with_stat: bool) -> int:
    count = 0
    stack = [str(root)]
    while stack:
        with os.scandir(stack.pop()) as it:
            for entry in it:
                if entry.is_dir(follow_symlinks=False):
                    stack.append(entry.path)
                else:
                    if with_stat:
                        entry.stat()
                    count += 1
    return count


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    corpus_args(parser)
    parser.add_argument("--rescans", type=int, default=5)
    args = parser.parse_args()
    corpus = make_corpus(args)
    data = args.workdir / f"store-{args.notes}"
    shutil.rmtree(data, ignore_errors=True)
    config = build_config({"sources": [{"name": "notes", "path": str(corpus)}],
                           "store": {"data_dir": str(data)}}, base_dir=args.workdir)
    store = open_store(config.store_url)
    scanner = Scanner(config, store)

    walks = []
    for _ in range(args.rescans):
        start = time.perf_counter()
        files = bare_walk(corpus, with_stat=False)
        walks.append(time.perf_counter() - start)
    stat_walks = []
    for _ in range(args.rescans):
        start = time.perf_counter()
        bare_walk(corpus, with_stat=True)
        stat_walks.append(time.perf_counter() - start)

    start = time.perf_counter()
    report = scanner.run(reason="bench")
    cold = time.perf_counter() - start
    rescans = []
    for _ in range(args.rescans):
        start = time.perf_counter()
        again = scanner.run(reason="bench")
        rescans.append(time.perf_counter() - start)
        assert not again.added and not again.updated and not again.removed

    print(f"corpus: {corpus} ({args.notes} notes, {files} files)")
    print(f"cold scan:          {cold:8.2f} s  ({len(report.added)} entries, "
          f"{len(report.problems)} problems, {len(report.added) / cold:.0f} notes/s)")
    print(f"no-change rescan:   {min(rescans) * 1000:8.1f} ms (best of {args.rescans}; "
          f"median {sorted(rescans)[len(rescans) // 2] * 1000:.1f} ms)")
    print(f"bare os.scandir:    {min(walks) * 1000:8.1f} ms (best of {args.rescans}, no stat)")
    print(f"os.scandir + stat:  {min(stat_walks) * 1000:8.1f} ms (best of {args.rescans})")
    print(f"rescan / bare walk: {min(rescans) / min(walks):8.1f} x")
    store.close()


if __name__ == "__main__":
    main()
