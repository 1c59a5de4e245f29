"""RSS 2.0 and Atom 1.0 through feedgen, with its traps avoided: entries appended in order,
an explicit feed `updated`/`lastBuildDate` (never "now"), forbidden XML characters removed
first, and RFC 6721 tombstones added to Atom after feedgen is done."""

from __future__ import annotations

import html
from collections.abc import Sequence

from feedgen.feed import FeedGenerator
from lxml import etree

from feedsvc.errors import RenderError
from feedsvc.feeds.info import FeedInfo
from feedsvc.feeds.xmlsafe import xml_safe
from feedsvc.model import Entry
from feedsvc.model import FeedFormat
from feedsvc.model import Tombstone
from feedsvc.urls import Urls

TOMBSTONE_NS = "http://purl.org/atompub/tombstones/1.0"
ATOM_NS = "http://www.w3.org/2005/Atom"


def render_syndication(fmt: FeedFormat, info: FeedInfo, entries: Sequence[Entry],
                       tombstones: Sequence[Tombstone], urls: Urls) -> bytes:
    try:
        fg = _feed(fmt, info, entries, urls)
        if fmt is FeedFormat.RSS:
            body = bytes(fg.rss_str(pretty=False))
            return _add_rss_hubs(body, info.hubs) if info.hubs else body
        body = bytes(fg.atom_str(pretty=False))
        return _add_tombstones(body, tombstones, urls) if tombstones else body
    except ValueError as e:
        raise RenderError(fmt.value, info.slug) from e


def _feed(fmt: FeedFormat, info: FeedInfo, entries: Sequence[Entry], urls: Urls) -> FeedGenerator:
    fg = FeedGenerator()
    fg.load_extension("dc", atom=False, rss=True)
    fg.id(urls.tag_uri(f"feed/{info.slug}"))
    fg.title(xml_safe(info.title))
    fg.subtitle(xml_safe(info.description))
    fg.link(href=urls.feed(info.slug, fmt), rel="self",
            type="application/rss+xml" if fmt is FeedFormat.RSS else "application/atom+xml")
    for hub in info.hubs:
        fg.link(href=hub, rel="hub")
    fg.link(href=urls.feed_home(info.slug),
            rel="alternate", type="text/html")
    fg.language(info.language)
    if info.author:
        fg.author({"name": xml_safe(info.author)})
    fg.updated(info.last_modified)
    fg.lastBuildDate(info.last_modified)
    fg.ttl(info.ttl_minutes)
    fg.generator("feedsvc", uri="https://example.invalid/feedsvc")
    for entry in entries:
        _add_entry(fg, entry, info, urls, fmt)
    return fg


def _add_entry(fg: FeedGenerator, entry: Entry, info: FeedInfo, urls: Urls,
               fmt: FeedFormat) -> None:
    fe = fg.add_entry(order="append")
    uri = urls.tag_uri(entry.id)
    fe.id(uri)
    fe.guid(uri, permalink=False)
    fe.title(xml_safe(entry.title))
    fe.link(href=urls.entry(entry.category.slug, entry.slug), rel="alternate")
    fe.published(entry.published)
    fe.updated(entry.updated)
    author = entry.author or info.author
    if author:
        fe.author({"name": xml_safe(author)})
        fe.dc.dc_creator(xml_safe(author))
    fe.category(term=entry.category.slug, label=xml_safe(entry.category.name),
                scheme=urls.updates(category=entry.category.slug))
    for tag in entry.tags:
        fe.category(term=xml_safe(tag))
    summary = xml_safe(entry.excerpt) or xml_safe(entry.title)
    # RSS <description> is read as HTML by readers: escape the plain-text excerpt for it, or
    # text such as "<script>" in an excerpt would become markup. Atom's summary is type text.
    fe.summary(html.escape(summary, quote=False) if fmt is FeedFormat.RSS else summary)
    fe.content(xml_safe(entry.html) or "<p></p>", type="html")


def _add_rss_hubs(body: bytes, hubs: Sequence[str]) -> bytes:
    """WebSub discovery inside the RSS document: feedgen writes only the `atom:link rel="self"`
    of a channel; each hub gets an `<atom:link rel="hub">` right after it."""
    root = etree.fromstring(body)
    channel = root.find("channel")
    if channel is None:
        return body
    self_link = channel.find(f"{{{ATOM_NS}}}link[@rel='self']")
    at = list(channel).index(self_link) + 1 if self_link is not None else len(channel)
    for i, hub in enumerate(hubs):
        link = etree.Element(f"{{{ATOM_NS}}}link", href=hub, rel="hub")
        channel.insert(at + i, link)
    return bytes(etree.tostring(root, xml_declaration=True, encoding="UTF-8"))


def _add_tombstones(body: bytes, tombstones: Sequence[Tombstone], urls: Urls) -> bytes:
    """RFC 6721: <at:deleted-entry ref="<entry id>" when="..."> for recently deleted entries,
    placed before the first <entry> (RFC 4287 allows extension elements only in the head)."""
    root = etree.fromstring(body)
    nsmap = dict(root.nsmap)
    nsmap["at"] = TOMBSTONE_NS
    new_root = etree.Element(root.tag, nsmap=nsmap, attrib=dict(root.attrib))
    new_root.text = root.text
    children = list(root)
    first_entry = next((i for i, c in enumerate(children) if c.tag == f"{{{ATOM_NS}}}entry"),
                       len(children))
    for child in children[:first_entry]:
        new_root.append(child)
    for stone in tombstones:
        deleted = etree.SubElement(new_root, f"{{{TOMBSTONE_NS}}}deleted-entry",
                                   ref=urls.tag_uri(stone.id),
                                   when=stone.deleted.isoformat(timespec="seconds"))
        category_slug, _, slug = stone.link.partition("/")
        etree.SubElement(deleted, f"{{{ATOM_NS}}}link", rel="alternate",
                         href=urls.entry(category_slug, slug))
        comment = etree.SubElement(deleted, f"{{{TOMBSTONE_NS}}}comment")
        comment.text = xml_safe(f"deleted: {stone.title}")
    for child in children[first_entry:]:
        new_root.append(child)
    return bytes(etree.tostring(new_root, xml_declaration=True, encoding="UTF-8"))
