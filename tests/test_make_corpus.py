"""tools/make_corpus.py: the same seed gives the same tree whatever --jobs, a small corpus is
the start of a bigger one, the notes look like the real knowledge base (Chinese prose, code,
math, front matter variants), and `feedsvc scan` publishes every one of them without a problem."""

from __future__ import annotations

import datetime as dt
import importlib.util
import json
import os
import re
import sqlite3
import statistics
import struct
import subprocess
import sys
import time
import zlib
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
import yaml

from conftest import REPO
from conftest import write_config

SCRIPT = REPO / "tools" / "make_corpus.py"
FRONT_MATTER = re.compile(r"\A---\n(.*?)^---\n", re.S | re.M)
CJK = re.compile(r"[\u4e00-\u9fff]")
FENCE = re.compile(r"^(```|~~~)", re.M)
INLINE_MATH = re.compile(r"(?<![$\d])\$[^$\s][^$\n]*(?<=\S)\$(?![$\d])")


def generator() -> Any:
    spec = importlib.util.spec_from_file_location("make_corpus", SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules.setdefault("make_corpus", module)
    spec.loader.exec_module(module)
    return module


def run(out: Path, *args: str) -> None:
    subprocess.run([sys.executable, str(SCRIPT), str(out), *args], check=True,
                   capture_output=True, timeout=120)


def tree(root: Path) -> dict[str, tuple[bytes, int]]:
    """Every file below root: its bytes and mtime."""
    return {p.relative_to(root).as_posix(): (p.read_bytes(), p.stat().st_mtime_ns)
            for p in sorted(root.rglob("*")) if p.is_file()}


def front_matter(path: Path) -> tuple[dict[str, Any], str]:
    text = path.read_text(encoding="utf-8")
    match = FRONT_MATTER.match(text)
    assert match, f"{path}: no front matter block"
    fields = yaml.safe_load(match.group(1)) or {}
    assert isinstance(fields, dict), path
    return fields, text[match.end():]


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """1,000 notes with images (what the statistics below are about)."""
    root = tmp_path_factory.mktemp("corpus") / "notes"
    generator().make_corpus(root, 1000, 3, images=True)
    return root


def test_same_seed_gives_the_same_bytes_and_mtimes(tmp_path: Path) -> None:
    run(tmp_path / "a", "--notes", "120", "--seed", "5", "--images")
    run(tmp_path / "b", "--notes", "120", "--seed", "5", "--images")
    run(tmp_path / "c", "--notes", "120", "--seed", "6", "--images")
    a = tree(tmp_path / "a")
    assert sum(name.endswith(".md") for name in a) == 120
    assert a == tree(tmp_path / "b")
    assert a != tree(tmp_path / "c")


def test_jobs_do_not_change_the_output(tmp_path: Path) -> None:
    run(tmp_path / "one", "--notes", "400", "--seed", "2", "--images", "--jobs", "1")
    run(tmp_path / "two", "--notes", "400", "--seed", "2", "--images", "--jobs", "2")
    assert tree(tmp_path / "one") == tree(tmp_path / "two")


def test_a_smaller_corpus_is_the_start_of_a_bigger_one(tmp_path: Path) -> None:
    run(tmp_path / "small", "--notes", "50", "--seed", "4", "--images")
    run(tmp_path / "big", "--notes", "100", "--seed", "4", "--images")
    small, big = tree(tmp_path / "small"), tree(tmp_path / "big")
    assert sum(name.endswith(".md") for name in big) == 100
    assert {name: big.get(name) for name in small} == small


def test_force_replaces_and_no_mtime_leaves_the_time_of_writing(tmp_path: Path) -> None:
    out = tmp_path / "c"
    run(out, "--notes", "5", "--seed", "1")
    refused = subprocess.run([sys.executable, str(SCRIPT), str(out), "--notes", "5"],
                             capture_output=True, text=True)
    assert refused.returncode != 0 and "--force" in refused.stderr
    (out / "stray.md").write_text("x")
    run(out, "--notes", "5", "--seed", "1", "--force", "--no-mtime")
    assert not (out / "stray.md").exists()
    assert all(p.stat().st_mtime > time.time() - 600 for p in out.rglob("*.md"))


def test_category_folders(tmp_path: Path) -> None:
    gen = generator()
    gen.make_corpus(tmp_path / "k25", 300, 1, categories=25)
    folders = sorted(p.name for p in (tmp_path / "k25").iterdir())
    assert len(folders) == 25
    assert {"Computer Vision", "NLP", "Large Model", "Deep Learning", "Python", "3D Model",
            "Generative Model", "Topic 21", "Topic 25"} <= set(folders)
    sizes = sorted(len(list((tmp_path / "k25" / f).glob("*.md"))) for f in folders)
    assert sizes[-1] > 4 * max(sizes[0], 1)  # skewed, not uniform


def test_notes_look_like_the_knowledge_base(corpus: Path) -> None:
    gen = generator()
    names = gen.category_names(10)
    notes = sorted(corpus.rglob("*.md"))
    assert len(notes) == 1000
    seen: Counter[str] = Counter()
    for path in notes:
        fields, body = front_matter(path)  # every note's front matter is a YAML mapping
        index = int(path.stem.rsplit("-", 1)[1], 36)
        _, folder, _, title, stem = gen.identity(3, index, names)
        assert (path.parent.name, path.stem) == (folder, stem)
        if "title" in fields:
            assert fields["title"] == title  # quoting reads back exactly
            quoted = re.search(r"^title: [\"']", path.read_text(encoding="utf-8"), re.M)
            seen["quoted title with :"] += ":" in title and quoted is not None
        else:
            seen["no title"] += 1
        if "date" in fields:
            when = dt.datetime.fromisoformat(str(fields["date"]).replace("Z", "+00:00"))
            if when.tzinfo is not None:
                seen["date with offset"] += 1
                mtime = path.stat().st_mtime
                assert when.timestamp() <= mtime <= when.timestamp() + 30 * 86400, path
        else:
            seen["no date"] += 1
        seen["flow tags"] += isinstance(fields.get("tags"), list) and "tags: [" in path.read_text()
        seen["block tags"] += isinstance(fields.get("tags"), list) and "tags:\n" in path.read_text()
        seen["id"] += "id" in fields
        seen["category override"] += fields.get("category") not in (None, folder)
        seen["draft"] += fields.get("draft") is True
        seen["empty front matter"] += not fields
        seen["cjk"] += bool(CJK.search(body))
        seen["cjk file name"] += bool(CJK.search(path.name))
        seen["code"] += bool(FENCE.search(body))
        seen["~~~"] += "\n~~~" in body
        seen["python"] += "```python\n" in body
        seen["bash/yaml/json"] += bool(re.search(r"^(```|~~~)(bash|yaml|json)$", body, re.M))
        seen["inline math"] += bool(INLINE_MATH.search(body))
        seen["display math"] += "\n$$\n" in body
        seen["heading"] += bool(re.search(r"^#{2,3} ", body, re.M))
        seen["image"] += "](images/" in body
        seen["list"] += bool(re.search(r"^([-*]|\d+\.) ", body, re.M))
        seen["link"] += bool(re.search(r"\]\(https://|<https://", body))
        seen["wiki link"] += "[[" in body
        seen["table"] += "| --- |" in body
    share = {key: count / len(notes) for key, count in seen.items()}
    for key, low in {"cjk": 0.95, "code": 0.6, "python": 0.5, "inline math": 0.7,
                     "display math": 0.4, "heading": 0.7, "image": 0.5, "list": 0.4,
                     "link": 0.4, "table": 0.2, "date with offset": 0.8, "id": 0.3}.items():
        assert share[key] >= low, (key, share[key])
    for key, (low, high) in {"no title": (0.02, 0.1), "no date": (0.02, 0.1),
                             "draft": (0.005, 0.04), "category override": (0.01, 0.06),
                             "cjk file name": (0.05, 0.2), "~~~": (0.02, 0.3)}.items():
        assert low <= share[key] <= high, (key, share[key])
    for key in ("quoted title with :", "flow tags", "block tags", "empty front matter",
                "bash/yaml/json", "wiki link"):
        assert seen[key] > 0, key
    sizes = [p.stat().st_size for p in notes]
    assert 1000 <= min(sizes) and max(sizes) <= 24_000
    assert 2500 <= statistics.median(sizes) <= 6000 < max(sizes)  # long tail


def test_images_are_valid_pngs_and_every_reference_has_one(corpus: Path) -> None:
    referenced = {(path.parent, name) for path in corpus.rglob("*.md")
                  for name in re.findall(r"images/([^)\"]+\.png)", path.read_text(encoding="utf-8"))}
    written = {(p.parent.parent, p.name) for p in corpus.rglob("images/*.png")}
    assert referenced == written and len(written) > 800
    for folder, name in sorted(written)[:200]:
        data = (folder / "images" / name).read_bytes()
        assert data.startswith(b"\x89PNG\r\n\x1a\n") and len(data) < 300
        pos, kinds = 8, []
        while pos < len(data):
            (length,) = struct.unpack(">I", data[pos:pos + 4])
            kind, body = data[pos + 4:pos + 8], data[pos + 8:pos + 8 + length]
            assert struct.unpack(">I", data[pos + 8 + length:pos + 12 + length])[0] == \
                zlib.crc32(kind + body)
            kinds.append(kind)
            pos += 12 + length
        assert kinds[0] == b"IHDR" and kinds[-1] == b"IEND" and b"IDAT" in kinds


def test_feedsvc_publishes_every_note_without_a_problem(tmp_path: Path) -> None:
    root = tmp_path / "notes"
    run(root, "--notes", "200", "--seed", "11", "--images")
    expected = {}
    for path in sorted(root.rglob("*.md")):
        fields, _ = front_matter(path)
        if not fields.get("draft"):
            rel = path.relative_to(root).as_posix()
            expected[rel] = fields.get("category") or path.parent.name
    assert 180 <= len(expected) < 200  # some drafts
    config = write_config(tmp_path, root)
    result = subprocess.run([sys.executable, "-m", "feedsvc", "scan", "--json", "--config",
                             str(config)], env={**os.environ, "PYTHONPATH": str(REPO)},
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["problems"] == [] and report["source_errors"] == []
    assert len(report["added"]) == len(expected)
    db = sqlite3.connect(tmp_path / "feedsvc.db")
    try:
        rows = dict(db.execute("SELECT rel_path, category_name FROM entries").fetchall())
    finally:
        db.close()
    assert rows == expected
