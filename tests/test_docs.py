"""The README stays true: every config key, CLI command and option, and endpoint is in it."""

from __future__ import annotations

import click

from feedsvc.cli import main
from feedsvc.config import iter_settings

from conftest import REPO

README = (REPO / "README.md").read_text(encoding="utf-8")


def test_every_config_key_is_documented() -> None:
    missing = [key for key, _ in iter_settings()
               if f"`{key.replace('<Name>', '<Name>')}`" not in README]
    assert missing == []


def test_every_config_key_has_help() -> None:
    assert all(f.metadata.get("help") for _, f in iter_settings())


def test_every_cli_command_and_option_is_documented() -> None:
    assert isinstance(main, click.Group)
    for name, command in main.commands.items():
        assert f"`feedsvc {name}" in README, name
        for param in command.params:
            if isinstance(param, click.Option):
                for opt in param.opts:
                    if opt.startswith("--"):
                        assert opt in README, f"{name} {opt}"


def test_every_endpoint_is_documented() -> None:
    for path in ["`/`", "`/updates`", "`/updates.json`", "`/entries/<category-slug>/<entry-slug>`",
                 "`/feeds/<slug>.rss`", "`/feeds.opml`", "`/media/<source>/<path>`",
                 "`/hooks/refresh`", "`/healthz`"]:
        assert path in README, path


def test_the_two_setup_commands_are_in_the_readme_and_makefile() -> None:
    makefile = (REPO / "Makefile").read_text()
    assert "make run" in README and "make test" in README
    assert "\nrun: install\n" in makefile and "\ntest: install-test\n" in makefile
    assert "make test" in (REPO / ".ci" / "run").read_text()
