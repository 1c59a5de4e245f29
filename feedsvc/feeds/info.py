"""Types shared by the feed renderers."""

from __future__ import annotations

import datetime as dt
import hashlib
from dataclasses import dataclass

from feedsvc.model import FeedFormat

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
