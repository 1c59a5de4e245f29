"""Load and validate the config: defaults < TOML file < FEEDSVC_<SECTION>_<KEY> env < CLI flags.

The schema is declared once, as dataclasses whose fields carry a help line; the loader, the
README check and `feedsvc check` all read it. Every error names its dotted key and file."""

from __future__ import annotations

import dataclasses
import json
import os
import re
import tomllib
import typing
from dataclasses import dataclass
from dataclasses import field
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo
from zoneinfo import ZoneInfoNotFoundError

from feedsvc.errors import ConfigError
from feedsvc.model import Source

DEFAULT_CONFIG_PATH = Path("config/feedsvc.toml")
DEFAULT_MAX_FILE_BYTES = 5 * 1024 * 1024
HANDLE = re.compile(r"[a-z0-9_][a-z0-9_.-]*")  # an ActivityPub handle (the acct: user part)


def _opt(default: Any, help: str, *, secret: bool = False) -> Any:
    return field(default=default, metadata={"help": help, "secret": secret})


@dataclass(frozen=True, slots=True, kw_only=True)
class SiteConfig:
    title: str = _opt("INCOMING TRANSMISSION", "site title shown in the banner and feeds")
    base_url: str = _opt("http://127.0.0.1:8080/", "absolute URL the site is reached at")
    language: str = _opt("zh-CN", "language of the notes (feeds' language)")
    timezone: str = _opt("UTC", "zone for dates written without an offset, and for display")
    author: str = _opt("", "author named in feeds")
    description: str = _opt("Notes, published as feeds", "feed subtitle / description")
    id_authority: str = _opt(
        "", "naming authority of entry ids (tag:<authority>,2024:...); empty: the host of the "
            "first base_url; fixed in the store at first use")

    @property
    def tz(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    def local_date(self, moment: datetime) -> str:
        """YYYY-MM-DD in the site's time zone (what pages and the digest show)."""
        return moment.astimezone(self.tz).strftime("%Y-%m-%d")


@dataclass(frozen=True, slots=True, kw_only=True)
class StoreConfig:
    url: str = _opt("", "SQLAlchemy URL; empty means sqlite:///<data_dir>/feedsvc.db")
    data_dir: str = _opt("data", "folder for the SQLite store and the scheduler lock")
    keep_per_category: int = _opt(50, "newest entries per category that feeds hold")
    max_delete_fraction: float = _opt(
        0.5, "a scan removing more than this share of a source's entries is not applied"
    )


@dataclass(frozen=True, slots=True, kw_only=True)
class SchedulerConfig:
    poll_seconds: int = _opt(60, "seconds between polls of the sources; 0 turns polling off")
    lease_seconds: float = _opt(
        30.0, "scanner lease length; a dead holder is replaced within this many seconds")


@dataclass(frozen=True, slots=True, kw_only=True)
class WebhookConfig:
    secret: str = _opt("", "shared secret for POST /hooks/refresh", secret=True)
    allow_unauthenticated: bool = _opt(False, "accept unsigned webhooks when no secret is set")
    min_interval_seconds: float = _opt(
        0.5, "a lone webhook scans at once; webhooks sooner than this after the last webhook "
             "scan's start merge into one scan at the end of the interval")


@dataclass(frozen=True, slots=True, kw_only=True)
class ExcerptConfig:
    length: int = _opt(350, "excerpt length in characters before '...'")
    code_placeholder: str = _opt("[代码]", "what a code block becomes in an excerpt")
    display_math_placeholder: str = _opt("[公式]", "what display math becomes in an excerpt")
    inline_math_placeholder: str = _opt("[Math]", "what inline math becomes in an excerpt")


@dataclass(frozen=True, slots=True, kw_only=True)
class UpdatesConfig:
    page_size: int = _opt(12, "entries per /updates page")


@dataclass(frozen=True, slots=True, kw_only=True)
class FeedsConfig:
    cache_max_age: int = _opt(900, "Cache-Control max-age of feeds, seconds")
    tombstone_days: int = _opt(30, "days a deleted entry stays as an Atom tombstone")


@dataclass(frozen=True, slots=True, kw_only=True)
class WebSubConfig:
    hubs: tuple[str, ...] = _opt((), "WebSub hub URLs pinged when a feed changes")


@dataclass(frozen=True, slots=True, kw_only=True)
class MetricsConfig:
    token: str = _opt("", "when set, GET /metrics needs 'Authorization: Bearer <token>'",
                      secret=True)


@dataclass(frozen=True, slots=True, kw_only=True)
class PublishConfig:
    dir: str = _opt("", "static mirror folder kept current after every change; relative to "
                        "the config file; empty: none")


@dataclass(frozen=True, slots=True, kw_only=True)
class ActivityPubConfig:
    enabled: bool = _opt(False, "follow categories from Mastodon and other ActivityPub servers")
    site_handle: str = _opt("all", "handle of the site actor, which announces every category's "
                                   "posts")
    delivery_concurrency: int = _opt(8, "deliveries in flight at once")
    retry_base_seconds: float = _opt(60.0, "first retry of a failed delivery after this many "
                                           "seconds; doubled for each retry after it")
    retry_days: float = _opt(3.0, "a delivery still failing after this many days is dropped")
    allow_private_addresses: bool = _opt(
        False, "allow fetches and deliveries to loopback, private and link-local addresses "
               "(tests, private networks)")


@dataclass(frozen=True, slots=True, kw_only=True)
class CategoryConfig:
    slug: str = _opt("", "URL slug overriding the derived one")
    handle: str = _opt("", "ActivityPub handle of the category's actor, for a category whose "
                           "slug is not ASCII ([a-z0-9_][a-z0-9_.-]*)")


@dataclass(frozen=True, slots=True, kw_only=True)
class SourceConfig:
    name: str = _opt("", "source name, used in /media URLs and ids")
    path: str = _opt("", "folder of notes; relative to the config file")
    default_category: str = _opt("", "category of notes directly in the root")
    max_file_bytes: int = _opt(DEFAULT_MAX_FILE_BYTES, "larger notes are skipped")
    pull: str = _opt("", "'git' runs git pull --ff-only before a webhook scan")
    watch: bool = _opt(False, "watch the folder for saved files (watchfiles) and scan them")


@dataclass(frozen=True, slots=True, kw_only=True)
class Config:
    site: SiteConfig = field(default_factory=SiteConfig)
    sources: tuple[Source, ...] = ()
    categories: dict[str, CategoryConfig] = field(default_factory=dict)
    store: StoreConfig = field(default_factory=StoreConfig)
    scheduler: SchedulerConfig = field(default_factory=SchedulerConfig)
    webhook: WebhookConfig = field(default_factory=WebhookConfig)
    excerpt: ExcerptConfig = field(default_factory=ExcerptConfig)
    updates: UpdatesConfig = field(default_factory=UpdatesConfig)
    feeds: FeedsConfig = field(default_factory=FeedsConfig)
    websub: WebSubConfig = field(default_factory=WebSubConfig)
    metrics: MetricsConfig = field(default_factory=MetricsConfig)
    publish: PublishConfig = field(default_factory=PublishConfig)
    activitypub: ActivityPubConfig = field(default_factory=ActivityPubConfig)
    path: Path | None = None  # the file it was loaded from

    @property
    def store_url(self) -> str:
        if self.store.url:
            return self.store.url
        return f"sqlite:///{Path(self.store.data_dir) / 'feedsvc.db'}"

    def source(self, name: str) -> Source:
        for source in self.sources:
            if source.name == name:
                return source
        raise KeyError(name)


SECTIONS: dict[str, type] = {
    "site": SiteConfig,
    "store": StoreConfig,
    "scheduler": SchedulerConfig,
    "webhook": WebhookConfig,
    "excerpt": ExcerptConfig,
    "updates": UpdatesConfig,
    "feeds": FeedsConfig,
    "websub": WebSubConfig,
    "metrics": MetricsConfig,
    "publish": PublishConfig,
    "activitypub": ActivityPubConfig,
}


def iter_settings() -> typing.Iterator[tuple[str, dataclasses.Field[Any]]]:
    """Every documented key as (dotted name, field): the one table the docs test reads."""
    for section, cls in SECTIONS.items():
        for f in dataclasses.fields(cls):
            yield f"{section}.{f.name}", f
    for f in dataclasses.fields(SourceConfig):
        yield f"sources.{f.name}", f
    for f in dataclasses.fields(CategoryConfig):
        yield f"categories.<Name>.{f.name}", f


def category_handle(slug: str, name: str, config: Config) -> str | None:
    """A category's ActivityPub handle (DESIGN.md "Federation"): its configured
    `[categories."<Name>"] handle`, else its slug when the slug is ASCII ([a-z0-9_][a-z0-9_.-]*);
    None when it has neither or when that is the site actor's handle. The configured handle
    comes first, so setting it also renames a category whose ASCII slug clashes."""
    configured = config.categories.get(name)
    if configured is not None and configured.handle:
        handle: str | None = configured.handle
    else:
        handle = slug if HANDLE.fullmatch(slug) else None
    return None if handle == config.activitypub.site_handle else handle


def find_config_path(explicit: str | os.PathLike[str] | None) -> Path | None:
    """--config, else FEEDSVC_CONFIG, else ./config/feedsvc.toml if it exists."""
    if explicit:
        return Path(explicit)
    env = os.environ.get("FEEDSVC_CONFIG")
    if env:
        return Path(env)
    return DEFAULT_CONFIG_PATH if DEFAULT_CONFIG_PATH.exists() else None


def load_config(
    path: str | os.PathLike[str] | None = None,
    *,
    env: typing.Mapping[str, str] | None = None,
    overrides: dict[str, dict[str, Any]] | None = None,
) -> Config:
    """Read, merge and validate the config; raise ConfigError naming the key on any fault."""
    env = os.environ if env is None else env
    config_path = find_config_path(path)
    raw: dict[str, Any] = {}
    label = str(config_path) if config_path else "<defaults>"
    if config_path is not None:
        try:
            raw = tomllib.loads(config_path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise ConfigError("config", "file not found", file=label) from None
        except (OSError, UnicodeDecodeError) as e:
            raise ConfigError("config", f"cannot read: {e}", file=label) from None
        except tomllib.TOMLDecodeError as e:
            raise ConfigError("config", f"invalid TOML: {e}", file=label) from None
    base_dir = config_path.resolve().parent if config_path else Path.cwd()
    return build_config(raw, base_dir=base_dir, label=label, env=env, overrides=overrides,
                        path=config_path)


def build_config(
    raw: dict[str, Any],
    *,
    base_dir: Path,
    label: str = "<config>",
    env: typing.Mapping[str, str] | None = None,
    overrides: dict[str, dict[str, Any]] | None = None,
    path: Path | None = None,
) -> Config:
    """Turn a parsed TOML mapping into a Config (also used by tests with a dict)."""
    env = {} if env is None else env
    known = set(SECTIONS) | {"sources", "categories"}
    for key in raw:
        if key not in known:
            raise ConfigError(key, "unknown section or key", file=label)
    sections: dict[str, Any] = {}
    for name, cls in SECTIONS.items():
        table = raw.get(name, {})
        if not isinstance(table, dict):
            raise ConfigError(name, "expected a table", file=label)
        table = dict(table)
        table.update(_env_values(name, cls, env, label))
        table.update((overrides or {}).get(name, {}))
        sections[name] = _build_section(name, cls, table, label)

    store: StoreConfig = sections["store"]
    data_dir = _resolve(base_dir, store.data_dir)
    sections["store"] = dataclasses.replace(store, data_dir=str(data_dir))
    publish: PublishConfig = sections["publish"]
    if publish.dir:
        sections["publish"] = dataclasses.replace(publish, dir=str(_resolve(base_dir, publish.dir)))
    _validate(sections, label)

    sources = _build_sources(raw.get("sources", []), base_dir, label)
    categories = _build_categories(raw.get("categories", {}), label)
    return Config(sources=sources, categories=categories, path=path, **sections)


def _resolve(base_dir: Path, value: str) -> Path:
    p = Path(value).expanduser()
    return p if p.is_absolute() else (base_dir / p)


def _env_values(section: str, cls: type, env: typing.Mapping[str, str], label: str) -> dict[str, Any]:
    values: dict[str, Any] = {}
    hints = typing.get_type_hints(cls)
    for f in dataclasses.fields(cls):
        name = f"FEEDSVC_{section.upper()}_{f.name.upper()}"
        if name in env:
            values[f.name] = _coerce_env(f"{section}.{f.name}", hints[f.name], env[name], name)
    return values


def _coerce_env(key: str, hint: Any, text: str, env_name: str) -> Any:
    try:
        if hint is bool:
            lowered = text.strip().lower()
            if lowered in ("1", "true", "yes", "on"):
                return True
            if lowered in ("0", "false", "no", "off", ""):
                return False
            raise ValueError(text)
        if hint is int:
            return int(text)
        if hint is float:
            return float(text)
        if typing.get_origin(hint) is tuple:
            text = text.strip()
            if text.startswith("["):
                return json.loads(text)
            return [part.strip() for part in text.split(",") if part.strip()]
    except ValueError:
        raise ConfigError(key, f"bad value {text!r} in env {env_name}") from None
    return text


def _build_section(name: str, cls: type, table: dict[str, Any], label: str) -> Any:
    hints = typing.get_type_hints(cls)
    names = {f.name for f in dataclasses.fields(cls)}
    values: dict[str, Any] = {}
    for key, value in table.items():
        dotted = f"{name}.{key}"
        if key not in names:
            raise ConfigError(dotted, "unknown key", file=label)
        values[key] = _check_type(dotted, hints[key], value, label)
    return cls(**values)


def _check_type(key: str, hint: Any, value: Any, label: str) -> Any:
    def bad(expected: str) -> ConfigError:
        return ConfigError(key, f"expected {expected}, got {value!r}", file=label)

    if hint is bool:
        if not isinstance(value, bool):
            raise bad("true or false")
        return value
    if hint is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise bad("an integer")
        return value
    if hint is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise bad("a number")
        return float(value)
    if hint is str:
        if not isinstance(value, str):
            raise bad("a string")
        return value
    if typing.get_origin(hint) is tuple:
        if not isinstance(value, (list, tuple)) or not all(isinstance(v, str) for v in value):
            raise bad("a list of strings")
        return tuple(value)
    raise TypeError(f"unsupported config type {hint!r} for {key}")


_ID_AUTHORITY = re.compile(r"([A-Za-z0-9._%+-]+@)?[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?"
                           r"(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?)*")


def _validate(sections: dict[str, Any], label: str) -> None:
    site: SiteConfig = sections["site"]
    parts = urlsplit(site.base_url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ConfigError("site.base_url", f"expected an absolute http(s) URL, got {site.base_url!r}",
                          file=label)
    if site.id_authority and not _ID_AUTHORITY.fullmatch(site.id_authority):
        raise ConfigError("site.id_authority", "expected a domain name or an e-mail address "
                          f"(RFC 4151 taggingEntity), got {site.id_authority!r}", file=label)
    try:
        ZoneInfo(site.timezone)
    except (ZoneInfoNotFoundError, ValueError):
        raise ConfigError("site.timezone", f"unknown time zone {site.timezone!r}", file=label) from None
    positive = {
        "store.keep_per_category": sections["store"].keep_per_category,
        "updates.page_size": sections["updates"].page_size,
        "excerpt.length": sections["excerpt"].length,
    }
    for key, value in positive.items():
        if value < 1:
            raise ConfigError(key, f"expected a positive integer, got {value!r}", file=label)
    non_negative = {
        "webhook.min_interval_seconds": sections["webhook"].min_interval_seconds,
        "scheduler.poll_seconds": sections["scheduler"].poll_seconds,
        "feeds.cache_max_age": sections["feeds"].cache_max_age,
        "feeds.tombstone_days": sections["feeds"].tombstone_days,
    }
    for key, value in non_negative.items():
        if value < 0:
            raise ConfigError(key, f"expected zero or more, got {value!r}", file=label)
    if sections["scheduler"].lease_seconds < 1:
        raise ConfigError("scheduler.lease_seconds",
                          f"expected at least 1 second, got {sections['scheduler'].lease_seconds!r}",
                          file=label)
    fraction = sections["store"].max_delete_fraction
    if not 0.0 <= fraction <= 1.0:
        raise ConfigError("store.max_delete_fraction", f"expected 0..1, got {fraction!r}", file=label)
    ap: ActivityPubConfig = sections["activitypub"]
    if not HANDLE.fullmatch(ap.site_handle):
        raise ConfigError("activitypub.site_handle", "expected an ASCII handle "
                          f"([a-z0-9_][a-z0-9_.-]*), got {ap.site_handle!r}", file=label)
    if ap.delivery_concurrency < 1:
        raise ConfigError("activitypub.delivery_concurrency",
                          f"expected a positive integer, got {ap.delivery_concurrency!r}", file=label)
    for key, number in (("activitypub.retry_base_seconds", ap.retry_base_seconds),
                        ("activitypub.retry_days", ap.retry_days)):
        if number <= 0:
            raise ConfigError(key, f"expected a positive number, got {number!r}", file=label)
    for i, hub in enumerate(sections["websub"].hubs):
        hp = urlsplit(hub)
        if hp.scheme not in ("http", "https") or not hp.netloc:
            raise ConfigError(f"websub.hubs[{i}]", f"expected an http(s) URL, got {hub!r}", file=label)


def _build_sources(raw: Any, base_dir: Path, label: str) -> tuple[Source, ...]:
    if not isinstance(raw, list):
        raise ConfigError("sources", "expected an array of tables ([[sources]])", file=label)
    sources: list[Source] = []
    seen: set[str] = set()
    for i, table in enumerate(raw):
        key = f"sources[{i}]"
        if not isinstance(table, dict):
            raise ConfigError(key, "expected a table", file=label)
        cfg: SourceConfig = _build_section(key, SourceConfig, table, label)
        if not cfg.name:
            raise ConfigError(f"{key}.name", "required", file=label)
        if not cfg.name.replace("-", "").replace("_", "").isalnum():
            raise ConfigError(f"{key}.name", f"use letters, digits, '-' or '_', got {cfg.name!r}",
                              file=label)
        if cfg.name in seen:
            raise ConfigError(f"{key}.name", f"duplicate source name {cfg.name!r}", file=label)
        seen.add(cfg.name)
        if not cfg.path:
            raise ConfigError(f"{key}.path", "required", file=label)
        if cfg.max_file_bytes < 1:
            raise ConfigError(f"{key}.max_file_bytes", f"expected a positive integer, got "
                              f"{cfg.max_file_bytes!r}", file=label)
        if cfg.pull not in ("", "git"):
            raise ConfigError(f"{key}.pull", f"expected \"git\", got {cfg.pull!r}", file=label)
        sources.append(Source(
            name=cfg.name,
            root=_resolve(base_dir, cfg.path),
            default_category=cfg.default_category or None,
            max_file_bytes=cfg.max_file_bytes,
            pull="git" if cfg.pull == "git" else None,
            watch=cfg.watch,
        ))
    return tuple(sources)


def _build_categories(raw: Any, label: str) -> dict[str, CategoryConfig]:
    if not isinstance(raw, dict):
        raise ConfigError("categories", "expected a table", file=label)
    out: dict[str, CategoryConfig] = {}
    for name, table in raw.items():
        key = f'categories."{name}"'
        if not isinstance(table, dict):
            raise ConfigError(key, "expected a table", file=label)
        out[name] = category = _build_section(key, CategoryConfig, table, label)
        if category.handle and not HANDLE.fullmatch(category.handle):
            raise ConfigError(f"{key}.handle", "expected an ASCII handle "
                              f"([a-z0-9_][a-z0-9_.-]*), got {category.handle!r}", file=label)
    return out


def redacted(config: Config) -> dict[str, dict[str, Any]]:
    """The settings as a dict with secrets masked, for `feedsvc check` and logs."""
    out: dict[str, dict[str, Any]] = {}
    for section, cls in SECTIONS.items():
        obj = getattr(config, section)
        values: dict[str, Any] = {}
        for f in dataclasses.fields(cls):
            value = getattr(obj, f.name)
            if f.metadata.get("secret") and value:
                value = "********"
            values[f.name] = list(value) if isinstance(value, tuple) else value
        out[section] = values
    return out
