"""Entries -> feed bytes (RSS 2.0, Atom 1.0, JSON Feed 1.1, OPML 2.0). Pure: the caller
passes entries, tombstones and the feed's Last-Modified, so two renders of the same data give
the same bytes (and the same ETag)."""

from __future__ import annotations

from collections.abc import Sequence

from feedsvc.feeds.info import MEDIA_TYPES
from feedsvc.feeds.info import OPML_MEDIA_TYPE
from feedsvc.feeds.info import FeedInfo
from feedsvc.feeds.info import RenderedFeed
from feedsvc.feeds.info import etag_for
from feedsvc.feeds.jsonfeed import render_json_feed
from feedsvc.feeds.opml import render_opml
from feedsvc.feeds.syndication import render_syndication
from feedsvc.model import Entry
from feedsvc.model import FeedFormat
from feedsvc.model import Tombstone
from feedsvc.urls import Urls

__all__ = ["FeedInfo", "RenderedFeed", "MEDIA_TYPES", "OPML_MEDIA_TYPE", "etag_for",
           "render_feed", "render_opml"]

def render_feed(fmt: FeedFormat, info: FeedInfo, entries: Sequence[Entry],
                tombstones: Sequence[Tombstone], urls: Urls) -> RenderedFeed:
    """Render one feed; raises RenderError (wrapping feedgen/lxml's ValueError)."""
    if fmt is FeedFormat.JSON:
        body = render_json_feed(info, entries, urls)
    else:
        body = render_syndication(fmt, info, entries, tombstones, urls)
    return RenderedFeed(body=body, media_type=MEDIA_TYPES[fmt], etag=etag_for(body),
                        last_modified=info.last_modified)
