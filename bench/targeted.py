"""Targeted-scan benchmark: the scan of one edited note, named by path (what a webhook with
a payload, a git diff or a watcher asks for), against the same edit found by a walk.

    python bench/targeted.py --notes 10000 [--edits 20] [--profile out.html] [--mode walk]

The corpus is hard-linked into a private copy (the shared one is never touched: an edit
writes a new file and renames it over the link); the cold scan's store is kept next to it
and reused by later runs (--fresh to redo it). Prints the p50/p90 of the one-note scan.
`--mode walk` times a plain rescan of the source instead (what every webhook did before,
and what a code without targeted scans can run: the figure to compare against).
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, os.environ.get("FEEDSVC_CODE", str(Path(__file__).resolve().parents[1])))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import corpus_args  # noqa: E402
from common import make_corpus  # noqa: E402

from feedsvc.config import build_config  # noqa: E402
from feedsvc.scan.scanner import Scanner  # noqa: E402
from feedsvc.store import open_store  # noqa: E402
from feedsvc.model import ScanJob  # noqa: E402


def notes_of(root: Path, count: int) -> list[str]:
    out: list[str] = []
    for folder in sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith(".")):
        for note in sorted(folder.glob("*.md")):
            out.append(note.relative_to(root).as_posix())
            if len(out) >= count:
                return out
    return out


def edit(root: Path, rel: str, n: int) -> None:
    path = root / rel
    text = path.read_text(encoding="utf-8")
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text + f"\n\nEdit number {n} at {time.time_ns()}.\n", encoding="utf-8")
    os.replace(tmp, path)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    corpus_args(parser)
    parser.add_argument("--edits", type=int, default=20)
    parser.add_argument("--mode", choices=("paths", "walk"), default="paths")
    parser.add_argument("--profile", type=Path, help="pyinstrument HTML of the timed scans")
    parser.add_argument("--fresh", action="store_true", help="redo the copy and the cold scan")
    parser.add_argument("--recent", action=argparse.BooleanOptionalAction, default=True,
                        help="edit the newest notes (seen in feeds); --no-recent: the first by path")
    parser.add_argument("--cprofile", type=int, default=0,
                        help="print the top N functions by CPU time (cProfile, process_time)")
    parser.add_argument("--cache-memory", action="store_true",
                        help="also measure the memory the kept site cache takes (tracemalloc)")
    parser.add_argument("--place", type=Path, default=None,
                        help="where the copy and its store live (default: workdir)")
    args = parser.parse_args()
    corpus = make_corpus(args)
    place = args.place or args.workdir / f"targeted-{args.notes}"
    tree, data = place / "notes", place / "data"
    if args.fresh or not (place / ".scanned").exists():
        shutil.rmtree(place, ignore_errors=True)
        place.mkdir(parents=True)
        subprocess.run(["cp", "-al", str(corpus), str(tree)], check=True)
    config = build_config({"sources": [{"name": "notes", "path": str(tree)}],
                           "store": {"data_dir": str(data)}}, base_dir=place)
    store = open_store(config.store_url)
    scanner = Scanner(config, store)
    if not (place / ".scanned").exists():
        start = time.perf_counter()
        scanner.run(ScanJob(reason="cli"))
        print(f"cold scan: {time.perf_counter() - start:.1f} s")
        (place / ".scanned").write_text("ok")
    # the newest notes: an edit shows in its feeds (their validators and the OPML's move)
    import datetime as dt
    newest = store.latest_entries("all", dt.datetime.now(dt.timezone.utc), limit=args.edits + 1)
    targets = [e.rel_path for e in newest] if args.recent else notes_of(tree, args.edits + 1)
    run: Any = scanner.run
    # the first targeted scan builds the kept site cache: not timed, as in a running server
    edit(tree, targets[0], 0)
    warm = time.perf_counter()
    if args.mode == "paths":
        run(ScanJob(sources=("notes",), reason="webhook", paths={"notes": (targets[0],)}))
    else:
        run(ScanJob(sources=("notes",), reason="webhook"))
    print(f"first scan after start (builds what is kept): {(time.perf_counter() - warm) * 1000:.0f} ms")
    import cProfile
    cpu_profile = cProfile.Profile(time.process_time) if args.cprofile else None
    profiler = None
    if args.profile:
        from pyinstrument import Profiler
        profiler = Profiler(interval=0.0005)
    times: list[float] = []
    cpu: list[float] = []
    for n, rel in enumerate(targets[1:], start=1):
        edit(tree, rel, n)
        if profiler is not None:
            profiler.start()
        if cpu_profile is not None:
            cpu_profile.enable()
        start, cpu_start = time.perf_counter(), time.process_time()
        if args.mode == "paths":
            report = run(ScanJob(sources=("notes",), reason="webhook", paths={"notes": (rel,)}))
        else:
            report = run(ScanJob(sources=("notes",), reason="webhook"))
        times.append(time.perf_counter() - start)
        cpu.append(time.process_time() - cpu_start)
        if profiler is not None:
            profiler.stop()
        if cpu_profile is not None:
            cpu_profile.disable()
        assert len(report.updated) == 1, (rel, report)
    times.sort()
    p50 = statistics.median(times) * 1000
    p90 = times[min(len(times) - 1, int(len(times) * 0.9))] * 1000
    print(f"one-note scan, mode={args.mode}, notes={args.notes}, edits={len(times)}: "
          f"p50 {p50:.1f} ms, p90 {p90:.1f} ms, min {times[0] * 1000:.1f} ms; "
          f"CPU p50 {statistics.median(cpu) * 1000:.1f} ms")
    if cpu_profile is not None:
        import pstats
        stats = pstats.Stats(cpu_profile)
        stats.sort_stats("cumulative").print_stats(args.cprofile)
        stats.print_callees("pipeline.py.*\\(_scan\\)")
        stats.print_callees("pipeline.py.*\\(_plan_and_render\\)")
        stats.print_callees("_refresh_feeds")
        stats.print_callers("base.py.*\\(execute\\)")
    if args.cache_memory:
        import gc
        import tracemalloc
        from feedsvc.scan.kept import KeptState
        gc.collect()
        tracemalloc.start()
        base = tracemalloc.get_traced_memory()[0]
        kept = KeptState(store, scanner.pipeline.urls, ["notes"])  # as a scan leaves it
        kept.check(store.stamp())
        kept.note_stats("notes")
        kept.media_stats("notes")
        entries = sum(kept.site({}).counts.values())
        gc.collect()
        size = tracemalloc.get_traced_memory()[0] - base
        tracemalloc.stop()
        print(f"kept state: {size / 2**20:.1f} MiB for {entries} entries, "
              f"{size / max(entries, 1) / 1024:.2f} KiB per note (stats, link index, counts)")
    if profiler is not None:
        args.profile.write_text(profiler.output_html())
        print(profiler.output_text(unicode=False, color=False, show_all=False))
    store.close()


if __name__ == "__main__":
    main()
