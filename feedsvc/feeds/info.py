"""Types shared by the feed renderers."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from dataclasses import dataclass

from feedsvc.config import Config
from feedsvc.model import FeedFormat

# bump when the renderers' output changes for the same entries, so every feed's validators
# move (a new Last-Modified) on the first scan after an upgrade
FEED_FORMAT_VERSION = "2"

MEDIA_TYPES = {
    FeedFormat.RSS: "application/rss+xml; charset=utf-8",
    FeedFormat.ATOM: "application/atom+xml; charset=utf-8",
    FeedFormat.JSON: "application/feed+json; charset=utf-8",
}
OPML_MEDIA_TYPE = "text/x-opml; charset=utf-8"


@dataclass(frozen=True, slots=True, kw_only=True)
class FeedInfo:
    """What a feed says about itself."""

    slug: str
    title: str
    description: str
    language: str
    author: str
    last_modified: dt.datetime
    hubs: tuple[str, ...] = ()
    ttl_minutes: int = 60


@dataclass(frozen=True, slots=True, kw_only=True)
class RenderedFeed:
    body: bytes
    media_type: str
    etag: str  # strong validator, quoted, from the bytes
    last_modified: dt.datetime


def etag_for(body: bytes) -> str:
    return '"' + hashlib.sha256(body).hexdigest()[:32] + '"'


def ttl_minutes(config: Config) -> int:
    poll = config.scheduler.poll_seconds
    return max(1, (poll + 59) // 60) if poll else 60


def feed_context(config: Config) -> str:
    """Everything besides the entries that a feed's bytes depend on (site metadata, hubs,
    base URL, ttl, format version), as a short hash for the feed signature."""
    site = config.site
    parts = [FEED_FORMAT_VERSION, site.title, site.description, site.language, site.author,
             site.base_url, list(config.websub.hubs), ttl_minutes(config),
             {name: c.slug for name, c in sorted(config.categories.items())}]
    return hashlib.sha256(json.dumps(parts, ensure_ascii=False).encode()).hexdigest()[:16]
