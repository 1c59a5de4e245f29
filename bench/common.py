"""Shared helpers for the benchmarks: make (or reuse) a corpus with tools/make_corpus.py."""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
DEFAULT_SCRIPT = REPO / "tools" / "make_corpus.py"
CACHE = Path("/tmp/feedsvc-bench")


def corpus_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--notes", type=int, default=10000, help="corpus size")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--corpus-script", type=Path, default=DEFAULT_SCRIPT)
    parser.add_argument("--workdir", type=Path, default=CACHE)


def make_corpus(args: argparse.Namespace) -> Path:
    """The corpus folder for (notes, seed), generated once and reused (it is deterministic)."""
    out = args.workdir / f"corpus-{args.notes}-seed{args.seed}"
    marker = out / ".complete"
    if not marker.exists():
        args.workdir.mkdir(parents=True, exist_ok=True)
        subprocess.run([sys.executable, str(args.corpus_script), str(out), "--notes",
                        str(args.notes), "--seed", str(args.seed), "--images", "--jobs", "2",
                        "--force"], check=True)
        marker.write_text("ok")
    return out


def free_port() -> int:
    import socket
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_for_first_scan(base: str, timeout: float) -> None:
    """Poll /healthz until the server reports a finished scan."""
    import time

    import requests
    deadline = time.monotonic() + timeout
    while True:
        try:
            if requests.get(f"{base}/healthz", timeout=2).json().get("last_scan"):
                return
        except requests.RequestException:
            pass
        if time.monotonic() > deadline:
            raise SystemExit(f"{base} did not finish its first scan in {timeout:.0f} s")
        time.sleep(0.3)
