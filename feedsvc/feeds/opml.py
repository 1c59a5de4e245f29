"""OPML 2.0 listing every category feed, so a reader subscribes to the notebook at once. The
`all` feed is not listed: an importing reader would get every entry twice (it stays
discoverable on every page)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from email.utils import format_datetime

from lxml import etree

from feedsvc.feeds.xmlsafe import xml_safe
from feedsvc.model import Category
from feedsvc.model import FeedFormat
from feedsvc.urls import Urls


def render_opml(title: str, categories: Sequence[Category], urls: Urls,
                modified: dt.datetime, fmt: FeedFormat = FeedFormat.ATOM) -> bytes:
    root = etree.Element("opml", version="2.0")
    head = etree.SubElement(root, "head")
    etree.SubElement(head, "title").text = xml_safe(title)
    etree.SubElement(head, "dateModified").text = format_datetime(modified, usegmt=True)
    body = etree.SubElement(root, "body")
    for category in categories:
        name = xml_safe(category.name)
        etree.SubElement(body, "outline", type="rss", text=name, title=name,
                         xmlUrl=urls.feed(category.slug, fmt),
                         htmlUrl=urls.updates(category=category.slug))
    return bytes(etree.tostring(root, xml_declaration=True, encoding="UTF-8", pretty_print=True))
