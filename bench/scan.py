"""Scan benchmark: cold scan (wall time, notes/s, peak memory of the whole process tree),
no-change rescan, a bare os.scandir walk of the same tree and, when `hugo` is on PATH, Hugo's
full-site build of the same corpus side by side (with the ratio feedsvc / hugo).

    python bench/scan.py --notes 300          # quick check that it runs and prints
    python bench/scan.py --notes 10000        # the issue's 10k figures (feedsvc vs hugo)
    python bench/scan.py --notes 100000 --no-hugo   # the 100k peak memory figure
    python bench/scan.py --notes 10000 --batch-size 500   # another insert/render batch size

Memory: a sampler process reads /proc every 50 ms and sums, over this process and every
descendant (the render pool's forked workers included), PSS from /proc/<pid>/smaps_rollup
(shared pages counted once, split between their sharers: the honest total) and RSS (shared
pages counted in every process: an upper bound). The peak of each sum is printed.

The ratio to Hugo is timed apart from that: --pairs (default 3) pairs of whole commands, a
cold `feedsvc scan` into a new store and a cold Hugo build, in turn and neither sampled (on
this machine, reading smaps_rollup every 50 ms slowed Hugo's 2 GiB build by about 17%, which
flattered the ratio before). Hugo's peak is its process's max RSS from getrusage.

Hugo's site (built in <workdir>/hugo-<notes>, cleared before every build, so the build is
cold): contentDir = the corpus itself, code highlighted with inline styles (markup.highlight
noClasses, like feedsvc), raw HTML kept (goldmark unsafe, like feedsvc keeps it and
sanitises), a page per note, a list page and an RSS feed per section, per tag and for the
home page (50 items, like feedsvc's keep_per_category). Hugo 0.111 (Debian) has no goldmark
passthrough, so math is left as text there. The command printed is the one timed:

    hugo --source <site> --destination <site>/public --cleanDestinationDir --quiet
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

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

if __name__ == "__main__" and len(sys.argv) == 5 and sys.argv[1] == "--sampler":
    pass  # the sampler process (TreeSampler) imports nothing more: it starts fast
else:
    from common import corpus_args  # noqa: E402
    from common import make_corpus  # noqa: E402

    from feedsvc.config import build_config  # noqa: E402
    from feedsvc.model import ScanJob  # noqa: E402
    from feedsvc.scan.scanner import Scanner  # noqa: E402
    from feedsvc.store import open_store  # noqa: E402

MIB = 1024 * 1024
HUGO_CONFIG = """\
baseURL = "http://localhost/"
title = "feedsvc bench"
contentDir = "{content}"
disableKinds = ["sitemap", "robotsTXT", "404"]
[markup.highlight]
  noClasses = true
  style = "friendly"
  codeFences = true
  guessSyntax = false
[markup.goldmark.renderer]
  unsafe = true
[services.rss]
  limit = 50
[taxonomies]
  tag = "tags"
"""
SINGLE = """<!doctype html><html><head><meta charset="utf-8"><title>{{ .Title }}</title></head>
<body><article><h1>{{ .Title }}</h1><time>{{ .Date }}</time>{{ .Content }}</article></body></html>
"""
LIST = """<!doctype html><html><head><meta charset="utf-8"><title>{{ .Title }}</title></head>
<body><h1>{{ .Title }}</h1><ul>{{ range .Pages }}<li><a href="{{ .RelPermalink }}">{{ .Title }}</a>
{{ .Summary }}</li>{{ end }}</ul></body></html>
"""


class TreeSampler:
    """Peak of the summed PSS and RSS of a process and all its descendants, every 50 ms, from
    a separate sampler process (so sampling takes no time from the measured process's GIL;
    the sampler leaves itself out of the sums)."""

    def __init__(self, pid: int, interval: float = 0.05, *, children_only: bool = False) -> None:
        self.pid, self.interval, self.children_only = pid, interval, children_only
        self.peak_pss = self.peak_rss = self.peak_procs = self.samples = 0
        self._proc: subprocess.Popen[str] | None = None

    def start(self) -> None:
        self._proc = subprocess.Popen([sys.executable, __file__, "--sampler", str(self.pid),
                                       str(self.interval), str(int(self.children_only))],
                                      stdin=subprocess.PIPE,
                                      stdout=subprocess.PIPE, text=True)
        assert self._proc.stdout is not None
        self._proc.stdout.readline()  # "ready": it has taken its first sample

    def stop(self) -> TreeSampler:
        assert self._proc is not None
        out, _ = self._proc.communicate("", timeout=60)  # stdin closed: print the peaks
        self.peak_pss, self.peak_rss, self.peak_procs, self.samples = map(int, out.split())
        return self

    def sample(self) -> None:
        pss, rss, procs = measure(self.pid, self.children_only)
        self.peak_pss, self.peak_rss = max(self.peak_pss, pss), max(self.peak_rss, rss)
        self.peak_procs = max(self.peak_procs, procs)
        self.samples += 1


def sampler_main(pid: int, interval: float, children_only: bool) -> None:
    import select
    peak = [0, 0, 0]
    samples = 0
    first = True
    while True:
        for i, value in enumerate(measure(pid, children_only)):
            peak[i] = max(peak[i], value)
        samples += 1
        if first:
            print("ready", flush=True)
            first = False
        if select.select([sys.stdin], [], [], interval)[0]:
            break  # stdin closed (or written to): done
    for i, value in enumerate(measure(pid, children_only)):
        peak[i] = max(peak[i], value)
    print(peak[0], peak[1], peak[2], samples + 1, flush=True)


def measure(root: int, children_only: bool = False) -> tuple[int, int, int]:
    """(PSS sum, RSS sum, process count) of root and its descendants (root left out with
    children_only), the sampler itself left out."""
    pss = rss = 0
    me = os.getpid() if root != os.getpid() else None  # in the sampler process
    pids = [p for p in tree(root) if p != me and not (children_only and p == root)]
    for pid in pids:
        try:
            with open(f"/proc/{pid}/smaps_rollup", "rb") as f:
                head = f.read(512).split(b"\n")
        except OSError:
            continue  # ended between the listing and the read
        for line in head:
            if line.startswith(b"Rss:"):
                rss += int(line.split()[1]) * 1024
            elif line.startswith(b"Pss:"):
                pss += int(line.split()[1]) * 1024
    return pss, rss, len(pids)


def tree(root: int) -> list[int]:
    out, stack = [], [root]
    while stack:
        pid = stack.pop()
        out.append(pid)
        try:
            tasks = os.listdir(f"/proc/{pid}/task")
        except OSError:
            continue
        for tid in tasks:
            try:
                with open(f"/proc/{pid}/task/{tid}/children") as f:
                    stack.extend(int(c) for c in f.read().split())
            except OSError:
                continue
    return out


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


def hugo_site(workdir: Path, corpus: Path, notes: int) -> Path:
    site = workdir / f"hugo-{notes}-{os.getpid()}"
    shutil.rmtree(site, ignore_errors=True)
    (site / "layouts" / "_default").mkdir(parents=True)
    (site / "hugo.toml").write_text(HUGO_CONFIG.format(content=corpus))
    (site / "layouts" / "_default" / "single.html").write_text(SINGLE)
    (site / "layouts" / "_default" / "list.html").write_text(LIST)
    return site


def run_hugo(hugo: str, site: Path) -> tuple[float, int, int, list[str]]:
    """One cold build, not sampled: (wall, peak RSS of the hugo process, pages, command)."""
    shutil.rmtree(site / "public", ignore_errors=True)
    shutil.rmtree(site / "resources", ignore_errors=True)
    cmd = [hugo, "--source", str(site), "--destination", str(site / "public"),
           "--cleanDestinationDir", "--quiet"]
    with open(site / "hugo.err", "wb") as err:
        start = time.perf_counter()
        proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=err)
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - start
        proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        raise SystemExit(f"hugo failed ({proc.returncode}): "
                         f"{(site / 'hugo.err').read_text()[-2000:]}")
    pages = sum(1 for _ in (site / "public").rglob("index.html"))
    return wall, usage.ru_maxrss * 1024, pages, cmd


def run_feedsvc_cli(corpus: Path, workdir: Path) -> float:
    """One cold `feedsvc scan` into a new store, the whole command timed, not sampled."""
    data = workdir / f"scan-cli-{os.getpid()}"
    shutil.rmtree(data, ignore_errors=True)
    data.mkdir(parents=True)
    config = data / "feedsvc.toml"
    config.write_text(f'[[sources]]\nname = "notes"\npath = "{corpus}"\n\n'
                      f'[store]\ndata_dir = "{data / "store"}"\n')
    cmd = [sys.executable, "-m", "feedsvc", "--log-level", "warning", "scan",
           "--config", str(config)]
    start = time.perf_counter()
    proc = subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                          cwd=Path(__file__).resolve().parents[1])
    wall = time.perf_counter() - start
    if proc.returncode != 0:
        raise SystemExit(f"feedsvc scan failed ({proc.returncode}): {proc.stderr[-2000:]!r}")
    shutil.rmtree(data, ignore_errors=True)
    return wall


def compare_with_hugo(hugo: str, corpus: Path, args: argparse.Namespace) -> None:
    """feedsvc's cold scan (the `feedsvc scan` command) against Hugo's cold build, in turn
    (A B, then B A, ...: drift of the machine's speed falls on both), neither sampled: reading
    smaps_rollup every 50 ms slowed Hugo's 2 GiB build by about 17% on this machine."""
    site = hugo_site(args.workdir, corpus, args.notes)
    version = subprocess.run([hugo, "version"], capture_output=True, text=True).stdout.split()[1]
    ratios = []
    for i in range(args.pairs):
        if i % 2 == 0:
            ours = run_feedsvc_cli(corpus, args.workdir)
            wall, peak, pages, cmd = run_hugo(hugo, site)
        else:
            wall, peak, pages, cmd = run_hugo(hugo, site)
            ours = run_feedsvc_cli(corpus, args.workdir)
        ratios.append(ours / wall)
        print(f"pair {i + 1}: feedsvc scan {ours:6.2f} s, hugo {version} {wall:6.2f} s "
              f"({pages} pages, peak {peak / MIB:.0f} MiB RSS), ratio {ours / wall:.2f}",
              flush=True)
    print(f"  commands: {sys.executable} -m feedsvc scan --config <new store>; {' '.join(cmd)}")
    print(f"feedsvc / hugo:     {statistics.median(ratios):8.2f} x  (median of {len(ratios)} "
          f"pairs, whole commands, cold; goal <= 0.8)")
    shutil.rmtree(site, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    corpus_args(parser)
    parser.add_argument("--rescans", type=int, default=5)
    parser.add_argument("--batch-size", type=int, default=None,
                        help="entries per render/insert batch (default: the pipeline's)")
    parser.add_argument("--no-hugo", action="store_true", help="skip the Hugo build")
    parser.add_argument("--pairs", type=int, default=3,
                        help="feedsvc/Hugo pairs timed for the ratio (default 3)")
    args = parser.parse_args()
    corpus = make_corpus(args)
    data = args.workdir / f"scan-store-{args.notes}-{os.getpid()}"
    shutil.rmtree(data, ignore_errors=True)
    config = build_config({"sources": [{"name": "notes", "path": str(corpus)}],
                           "store": {"data_dir": str(data)}}, base_dir=args.workdir)
    store = open_store(config.store_url)
    scanner = Scanner(config, store)
    if args.batch_size:
        scanner.pipeline.batch_size = args.batch_size

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

    base = TreeSampler(os.getpid())
    base.sample()
    sampler = TreeSampler(os.getpid())
    sampler.start()
    start = time.perf_counter()
    report = scanner.run(ScanJob(reason="bench"))
    cold = time.perf_counter() - start
    sampler.stop()
    rescans = []
    for _ in range(args.rescans):
        start = time.perf_counter()
        again = scanner.run(ScanJob(reason="bench"))
        rescans.append(time.perf_counter() - start)
        assert not again.added and not again.updated and not again.removed

    print(f"corpus: {corpus} ({args.notes} notes, {files} files)")
    print(f"cold scan:          {cold:8.2f} s  (in this process, sampled; "
          f"{len(report.added)} entries, {len(report.problems)} problems, {len(report.added) / cold:.0f} notes/s, "
          f"batch {scanner.pipeline.batch_size})")
    print(f"cold scan peak mem: {sampler.peak_pss / MIB:8.0f} MiB PSS sum, "
          f"{sampler.peak_rss / MIB:.0f} MiB RSS sum, over {sampler.peak_procs} processes "
          f"(bench process + render workers; {sampler.samples} samples at 50 ms; "
          f"before the scan: {base.peak_pss / MIB:.0f} MiB PSS)")
    print(f"no-change rescan:   {min(rescans) * 1000:8.1f} ms (best of {args.rescans}; "
          f"median {sorted(rescans)[len(rescans) // 2] * 1000:.1f} ms)")
    print(f"bare os.scandir:    {min(walks) * 1000:8.1f} ms (best of {args.rescans}, no stat)")
    print(f"os.scandir + stat:  {min(stat_walks) * 1000:8.1f} ms (best of {args.rescans})")
    print(f"rescan / bare walk: {min(rescans) / min(walks):8.1f} x")
    store.close()
    shutil.rmtree(data, ignore_errors=True)

    hugo = shutil.which("hugo")
    if args.no_hugo or hugo is None:
        print("hugo:               skipped" + ("" if args.no_hugo else " (not on PATH)"))
        return
    compare_with_hugo(hugo, corpus, args)

if __name__ == "__main__":
    if len(sys.argv) == 5 and sys.argv[1] == "--sampler":
        sampler_main(int(sys.argv[2]), float(sys.argv[3]), sys.argv[4] == "1")
    else:
        main()
