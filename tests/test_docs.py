"""The docs stay true: every config key (with its default) is in docs/configuration.md, every
CLI command and option and every endpoint in the README, and the MkDocs site builds strictly
(a broken link or anchor fails)."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import click

from feedsvc.cli import main
from feedsvc.config import iter_settings

from conftest import REPO

README = (REPO / "README.md").read_text(encoding="utf-8")
DOCS = REPO / "docs"
CONFIGURATION = (DOCS / "configuration.md").read_text(encoding="utf-8")
README_MAX_LINES = 300
SECTIONS = ["[site]", "[[sources]]", '[categories."<Name>"]', "[store]", "[scheduler]",
            "[webhook]", "[excerpt]", "[updates]", "[feeds]", "[websub]", "[metrics]",
            "[publish]", "[activitypub]"]


def config_rows() -> dict[str, list[str]]:
    """The rows of the key tables in docs/configuration.md: `key` -> its cells."""
    rows: dict[str, list[str]] = {}
    for line in CONFIGURATION.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if line.startswith("| `") and len(cells) >= 3:
            key = cells[0].strip("`")
            assert key not in rows, f"{key} documented twice"
            rows[key] = cells
    return rows


def shown_default(value: Any) -> str | None:
    """How a default is written in the table, or None where the page describes it in words
    (empty strings: 'required', 'none', a derived value)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return f"{value:g}" if isinstance(value, float) else str(value)
    if isinstance(value, tuple):
        return "[]" if not value else None
    if isinstance(value, str):
        return value or None
    raise AssertionError(f"no way to show the default {value!r}")


def section_name(header: str) -> str:
    """`[site]` -> site, `[[sources]]` -> sources, `[categories."<Name>"]` -> categories."""
    match = re.match(r"\[+([a-z]+)", header)
    assert match is not None, header
    return match.group(1)


def test_every_config_key_is_documented_with_its_default() -> None:
    rows = config_rows()
    missing = [key for key, _ in iter_settings() if key not in rows]
    assert missing == []
    wrong = []
    for key, field in iter_settings():
        default, meaning = rows[key][1], rows[key][2]
        expected = shown_default(field.default)
        if expected is not None and f"`{expected}`" not in default:
            wrong.append((key, expected, default))
        if not meaning:
            wrong.append((key, "a meaning", meaning))
    assert wrong == []


def test_no_config_key_is_documented_that_does_not_exist() -> None:
    assert sorted(set(config_rows()) - {key for key, _ in iter_settings()}) == []


def test_every_config_key_has_help() -> None:
    assert all(f.metadata.get("help") for _, f in iter_settings())


def test_the_readme_names_every_config_section_and_links_the_reference() -> None:
    assert {section_name(s) for s in SECTIONS} == {key.split(".")[0] for key, _ in iter_settings()}
    assert [s for s in SECTIONS if f"`{s}`" not in README] == []
    assert "(docs/configuration.md)" in README


def test_every_cli_command_and_option_is_documented() -> None:
    assert isinstance(main, click.Group)
    for name, command in main.commands.items():
        assert f"`feedsvc {name}" in README, name
        for param in command.params:
            if isinstance(param, click.Option):
                for opt in param.opts:
                    if opt.startswith("--"):
                        assert opt in README, f"{name} {opt}"
    for param in main.params:
        if isinstance(param, click.Option):
            for opt in param.opts:
                if opt.startswith("--") and opt != "--version":
                    assert opt in README, opt


def test_every_endpoint_is_documented() -> None:
    for path in ["`/`", "`/updates`", "`/updates.json`", "`/entries/<category-slug>/<entry-slug>`",
                 "`/feeds/<slug>.rss`", "`/feeds.opml`", "`/media/<source>/<path>`",
                 "`/hooks/refresh`", "`/healthz`", "`/metrics`", "`/tags/<tag-slug>`"]:
        assert path in README, path


def test_the_two_setup_commands_are_in_the_readme_and_makefile() -> None:
    makefile = (REPO / "Makefile").read_text()
    assert "make run" in README and "make test" in README
    assert "\nrun: install\n" in makefile and "\ntest: install-test\n" in makefile
    assert "make test" in (REPO / ".ci" / "run").read_text()


def test_the_readme_is_a_front_door() -> None:
    assert len(README.splitlines()) <= README_MAX_LINES


def test_the_readme_links_only_to_files_that_exist() -> None:
    links = re.findall(r"\]\(([^)\s]+)\)", README)
    local = [link.split("#")[0] for link in links if not re.match(r"[a-z]+:", link)]
    assert local, "the README links to the docs"
    assert [link for link in local if not (REPO / link).is_file()] == []


def test_every_docs_page_is_in_the_readme_and_the_nav() -> None:
    mkdocs_yml = (REPO / "mkdocs.yml").read_text(encoding="utf-8")
    pages = sorted(p.name for p in DOCS.glob("*.md"))
    assert [p for p in pages if p != "index.md" and f"(docs/{p})" not in README] == []
    assert [p for p in pages if f": {p}\n" not in mkdocs_yml] == []


def test_the_docs_site_builds_strictly(tmp_path: Path) -> None:
    """`mkdocs build --strict`: a broken link, anchor or a page left out of the nav fails."""
    result = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--config-file",
         str(REPO / "mkdocs.yml"), "--site-dir", str(tmp_path / "site")],
        cwd=REPO, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr
    assert (tmp_path / "site" / "configuration" / "index.html").is_file()
