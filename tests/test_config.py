"""Config loading: defaults, env overrides, relative paths, and errors that name the key."""

from __future__ import annotations

from pathlib import Path

import pytest

from feedsvc.config import load_config
from feedsvc.config import redacted
from feedsvc.errors import ConfigError


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "conf" / "feedsvc.toml"
    path.parent.mkdir(exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def test_defaults(tmp_path: Path) -> None:
    config = load_config(write(tmp_path, ""), env={})
    assert config.site.title == "INCOMING TRANSMISSION"
    assert config.store.keep_per_category == 50
    assert config.store.max_delete_fraction == 0.5
    assert config.scheduler.poll_seconds == 60
    assert config.excerpt.length == 350
    assert config.updates.page_size == 12
    assert (config.feeds.cache_max_age, config.feeds.tombstone_days) == (900, 30)
    assert config.store_url == f"sqlite:///{tmp_path / 'conf' / 'data' / 'feedsvc.db'}"


def test_sources_resolve_relative_to_the_config_file(tmp_path: Path) -> None:
    config = load_config(write(tmp_path, '[[sources]]\nname = "n"\npath = "../notes"\n'
                                         'pull = "git"\nmax_file_bytes = 10\n'), env={})
    [source] = config.sources
    assert source.root == tmp_path / "conf" / ".." / "notes"
    assert (source.pull, source.max_file_bytes, source.default_category) == ("git", 10, None)


def test_env_overrides_file(tmp_path: Path) -> None:
    path = write(tmp_path, '[webhook]\nsecret = "file"\n[store]\nkeep_per_category = 5\n')
    config = load_config(path, env={"FEEDSVC_WEBHOOK_SECRET": "env",
                                    "FEEDSVC_STORE_KEEP_PER_CATEGORY": "7",
                                    "FEEDSVC_STORE_URL": "sqlite:////tmp/x.db",
                                    "FEEDSVC_WEBHOOK_ALLOW_UNAUTHENTICATED": "true",
                                    "FEEDSVC_WEBSUB_HUBS": "https://a.example/,https://b.example/"})
    assert config.webhook.secret == "env" and config.webhook.allow_unauthenticated is True
    assert config.store.keep_per_category == 7
    assert config.store_url == "sqlite:////tmp/x.db"
    assert config.websub.hubs == ("https://a.example/", "https://b.example/")


def test_config_path_from_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = write(tmp_path, '[site]\ntitle = "From env"\n')
    monkeypatch.setenv("FEEDSVC_CONFIG", str(path))
    assert load_config().site.title == "From env"


@pytest.mark.parametrize("text, key, fragment", [
    ("[site]\ntitel = 'x'\n", "site.titel", "unknown key"),
    ("[nope]\n", "nope", "unknown section"),
    ("[store]\nkeep_per_category = 'many'\n", "store.keep_per_category", "expected an integer"),
    ("[store]\nkeep_per_category = 0\n", "store.keep_per_category", "positive"),
    ("[store]\nmax_delete_fraction = 2\n", "store.max_delete_fraction", "0..1"),
    ("[site]\nbase_url = 'example.org'\n", "site.base_url", "absolute"),
    ("[site]\ntimezone = 'Mars/Base'\n", "site.timezone", "unknown time zone"),
    ("[webhook]\nallow_unauthenticated = 'yes'\n", "webhook.allow_unauthenticated", "true or false"),
    ("[[sources]]\npath = 'x'\n", "sources[0].name", "required"),
    ("[[sources]]\nname = 'a'\npath = 'x'\nmax_file_bytes = 'big'\n",
     "sources[0].max_file_bytes", "expected an integer, got 'big'"),
    ("[[sources]]\nname = 'a'\npath = 'x'\ncolour = 1\n", "sources[0].colour", "unknown key"),
    ("[[sources]]\nname = 'a'\npath = 'x'\n[[sources]]\nname = 'a'\npath = 'y'\n",
     "sources[1].name", "duplicate"),
    ("[websub]\nhubs = ['ftp://x']\n", "websub.hubs[0]", "http(s) URL"),
    ("[categories.NLP]\nslug = 3\n", 'categories."NLP".slug', "expected a string"),
    ("site = [", "config", "invalid TOML"),
])
def test_errors_name_the_key_and_file(tmp_path: Path, text: str, key: str, fragment: str) -> None:
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as info:
        load_config(path, env={})
    message = str(info.value)
    assert info.value.key == key
    assert message.startswith(f"{path}: {key}: ") and fragment in message


def test_bad_env_value_names_the_variable(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="FEEDSVC_SCHEDULER_POLL_SECONDS"):
        load_config(write(tmp_path, ""), env={"FEEDSVC_SCHEDULER_POLL_SECONDS": "soon"})


def test_missing_file_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="file not found"):
        load_config(tmp_path / "absent.toml", env={})


def test_secret_is_redacted(tmp_path: Path) -> None:
    config = load_config(write(tmp_path, '[webhook]\nsecret = "hunter2"\n'), env={})
    assert redacted(config)["webhook"]["secret"] == "********"
    assert "hunter2" not in repr(redacted(config))
