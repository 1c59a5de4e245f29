"""JSON Feed 1.1 (https://jsonfeed.org/version/1.1)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from feedsvc.feeds.info import FeedInfo
from feedsvc.model import Entry
from feedsvc.model import FeedFormat
from feedsvc.urls import Urls


def render_json_feed(info: FeedInfo, entries: Sequence[Entry], urls: Urls) -> bytes:
    return assemble_json_feed(info, [json_item(entry, info, urls) for entry in entries], urls)


def json_item(entry: Entry, info: FeedInfo, urls: Urls) -> bytes:
    """One item's JSON: a feed is its head and its items' bytes joined, so a publisher can
    keep the items of unchanged entries and encode only the changed one. Of `info`, only the
    site author (the fallback of an entry without one) is read."""
    return _dumps(_item(entry, info, urls))


def assemble_json_feed(info: FeedInfo, items: Sequence[bytes], urls: Urls) -> bytes:
    """The feed from its items' bytes: byte for byte what json.dumps of the whole gives."""
    head = _dumps(_head(info, urls))
    return b"".join((head[:-1], b',"items":[', b",".join(items), b"]}"))


def _dumps(value: dict[str, Any]) -> bytes:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


def _head(info: FeedInfo, urls: Urls) -> dict[str, Any]:
    feed: dict[str, Any] = {
        "version": "https://jsonfeed.org/version/1.1",
        "title": info.title,
        "home_page_url": urls.feed_home(info.slug),
        "feed_url": urls.feed(info.slug, FeedFormat.JSON),
        "description": info.description,
        "language": info.language,
    }
    if info.author:
        feed["authors"] = [{"name": info.author}]
    if info.hubs:
        feed["hubs"] = [{"type": "WebSub", "url": hub} for hub in info.hubs]
    return feed


def _item(entry: Entry, info: FeedInfo, urls: Urls) -> dict[str, Any]:
    item: dict[str, Any] = {
        "id": urls.tag_uri(entry.id),
        "url": urls.entry(entry.category.slug, entry.slug),
        "title": entry.title,
        "content_html": entry.html,
        "summary": entry.excerpt,
        "date_published": entry.published.isoformat(timespec="seconds"),
        "date_modified": entry.updated.isoformat(timespec="seconds"),
        "tags": [entry.category.name, *entry.tags],
    }
    author = entry.author or info.author
    if author:
        item["authors"] = [{"name": author}]
    return item
