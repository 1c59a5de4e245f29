"""The CLI through click's runner: exit codes, reports, export."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from click.testing import CliRunner

from feedsvc.cli import main

from conftest import NotesDir


def run(*args: str) -> tuple[int, str]:
    """Exit code and everything printed (stdout and stderr interleaved)."""
    result = CliRunner().invoke(main, list(args))
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise result.exception
    return result.exit_code, result.output


def run_json(*args: str) -> dict:  # type: ignore[type-arg]
    result = CliRunner().invoke(main, list(args) + ["--json"])
    return json.loads(result.stdout)  # type: ignore[no-any-return]


def test_scan_prints_what_it_did(config_path: Path, notes: NotesDir) -> None:
    notes.write("NLP/a.md", "a", date="2025-01-01")
    notes.write_bytes("NLP/bad.md", b"---\ntitle: [x\n---\n")
    code, out = run("scan", "--config", str(config_path))
    assert code == 0, out
    assert "     added: 1" in out and "   skipped: 1" in out
    assert "  added: notes/NLP/a.md" in out
    assert "skipped: notes:NLP/bad.md: malformed front matter" in out
    report = run_json("scan", "--config", str(config_path))
    assert report["unchanged"] == 2 and report["added"] == []
    assert report["problems"][0]["path"] == "NLP/bad.md"


def test_check_exits_1_on_problems_and_0_when_clean(config_path: Path, notes: NotesDir) -> None:
    notes.write("NLP/a.md", "a", date="2025-01-01")
    code, out = run("check", "--config", str(config_path))
    assert code == 0, out
    assert '"secret": "********"' in out and "s3cret" not in out
    notes.write_bytes("NLP/bin.md", b"\x00\x01\x02binary")
    code, out = run("check", "--config", str(config_path))
    assert code == 1
    assert "skipped: notes:NLP/bin.md: binary file" in out
    # check writes nothing: a scan afterwards still adds the good note
    assert run_json("scan", "--config", str(config_path))["added"] == ["notes/NLP/a.md"]


def test_config_error_exits_2_naming_the_key(tmp_path: Path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text("[store]\nkeep_per_category = 'x'\n")
    code, out = run("check", "--config", str(bad))
    assert code == 2
    assert f"{bad}: store.keep_per_category: expected an integer" in out


def test_scan_of_a_missing_source_exits_1(config_path: Path, notes: NotesDir) -> None:
    notes.root.rmdir()
    code, out = run("scan", "--config", str(config_path))
    assert code == 1 and "source not applied" in out


def test_export_writes_static_files(config_path: Path, notes: NotesDir, tmp_path: Path) -> None:
    for i in range(14):
        notes.write(f"NLP/n{i}.md", f"正文 {i}", date=f"2025-01-{i + 1:02}")
    out_dir = tmp_path / "public"
    code, out = run("export", str(out_dir), "--config", str(config_path))
    assert code == 0, out
    files = {p.relative_to(out_dir).as_posix() for p in out_dir.rglob("*") if p.is_file()}
    for expected in ["index.html", "feeds.opml", "feeds/all.atom", "feeds/nlp.rss", "feeds/nlp.json",
                     "updates/index.html", "updates/page/2/index.html", "updates.json",
                     "updates/category/nlp/index.html", "updates/category/nlp/page/2/index.html",
                     "entries/nlp/n0/index.html", "static/style.css", "feeds/nlp.rss.gz"]:
        assert expected in files, expected
    assert (out_dir / "feeds" / "nlp.atom").read_bytes().startswith(b"<?xml")


def test_malloc_arena_limit_respects_the_environment(monkeypatch: Any) -> None:
    from feedsvc.memory import limit_malloc_arenas
    monkeypatch.setenv("MALLOC_ARENA_MAX", "4")
    assert limit_malloc_arenas() is False
    monkeypatch.delenv("MALLOC_ARENA_MAX")
    assert limit_malloc_arenas() is True  # glibc (Debian) accepts M_ARENA_MAX
