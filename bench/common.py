"""Shared helpers for the benchmarks: make (or reuse) a corpus with the shared generator."""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
DEFAULT_SCRIPT = REPO.parent / "shared" / "corpus" / "make_corpus.py"
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
