"""The JSON documents of federation, as plain dicts: actors, Articles and the activities that
carry them, collections, WebFinger's JRD and NodeInfo. Pure: no Flask, no store, no clock;
the same entry always gives the same document. Vocabulary: ActivityStreams 2.0, as Mastodon
reads it (docs.joinmastodon.org/spec/activitypub, /spec/webfinger)."""

from __future__ import annotations

import html
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from datetime import timezone
from typing import Any

from feedsvc.config import SiteConfig
from feedsvc.content.slugs import tag_slugs
from feedsvc.federation.actors import Actor
from feedsvc.model import Entry
from feedsvc.urls import Urls

AS_CONTEXT = "https://www.w3.org/ns/activitystreams"
SECURITY_CONTEXT = "https://w3id.org/security/v1"
ACTOR_CONTEXT = [AS_CONTEXT, SECURITY_CONTEXT]
PUBLIC = "https://www.w3.org/ns/activitystreams#Public"
ACTIVITY_JSON = "application/activity+json"
LD_JSON = "application/ld+json"
JRD_JSON = "application/jrd+json"
PROFILE_PAGE = "http://webfinger.net/rel/profile-page"
NODEINFO_SCHEMA = "http://nodeinfo.diaspora.software/ns/schema/2.1"
NODEINFO_JSON = f'application/json; profile="{NODEINFO_SCHEMA}#"'
OUTBOX_PAGE_SIZE = 20
Document = dict[str, Any]


@dataclass(frozen=True, slots=True, kw_only=True)
class Icon:
    """An actor's avatar: a static asset of the site."""

    url: str
    media_type: str


def iso(moment: datetime) -> str:
    """A timestamp as Mastodon writes them: UTC, seconds, "Z"."""
    return moment.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def with_context(document: Document, context: str | list[str] = AS_CONTEXT) -> Document:
    """A top-level document: `@context` first, then the document's own fields."""
    return {"@context": context, **document}


def actor_document(actor: Actor, *, public_key_pem: str, urls: Urls, site: SiteConfig,
                   icon: Icon | None = None) -> Document:
    """The `Service` actor (with its @context), public key included; never the private one."""
    url = urls.actor(actor.handle)
    doc: Document = {
        "@context": ACTOR_CONTEXT,
        "id": url,
        "type": "Service",
        "preferredUsername": actor.handle,
        "name": actor.name,
        "summary": actor_summary(actor, site=site, urls=urls),
        "url": actor.page(urls),
    }
    if icon is not None:
        doc["icon"] = {"type": "Image", "mediaType": icon.media_type, "url": icon.url}
    doc.update({
        "inbox": urls.actor_inbox(actor.handle),
        "outbox": urls.outbox(actor.handle),
        "followers": urls.followers(actor.handle),
        "following": urls.following(actor.handle),
        "endpoints": {"sharedInbox": urls.shared_inbox()},
        "manuallyApprovesFollowers": False,
        "discoverable": True,
        "publicKey": {"id": url + "#main-key", "owner": url, "publicKeyPem": public_key_pem},
    })
    return doc


def actor_summary(actor: Actor, *, site: SiteConfig, urls: Urls) -> str:
    """The profile's bio (HTML, as Mastodon shows it)."""
    home = f'<a href="{html.escape(urls.home())}">{html.escape(site.title)}</a>'
    if actor.is_site:
        return f"<p>{html.escape(site.description)}: every new note on {home}.</p>"
    return f"<p>New notes in {html.escape(actor.name)} on {home}.</p>"


def article(entry: Entry, *, author: Actor, urls: Urls) -> Document:
    """An entry as an `Article` (no @context: see with_context). Its content is the entry's
    stored HTML, byte for byte what the feeds carry (MathML, inline-styled code, absolute
    links; feeds/jsonfeed.py's content_html); no `summary`, which Mastodon shows as a
    content warning."""
    return {
        "id": urls.object(entry.id),
        "type": "Article",
        "attributedTo": urls.actor(author.handle),
        "name": entry.title,
        "content": entry.html,
        "url": urls.entry(entry.category.slug, entry.slug),
        "published": iso(entry.published),
        "updated": iso(entry.updated),
        "to": [PUBLIC],
        "cc": [urls.followers(author.handle)],
        "tag": hashtags(entry.tags, urls),
    }


def hashtags(tags: Sequence[str], urls: Urls) -> list[Document]:
    """A `Hashtag` per tag that has a page (one per tag slug, the first name kept). Mastodon
    takes a hashtag's name up to the first space, so spaces are dropped from the name."""
    return [{"type": "Hashtag", "href": urls.tag(slug), "name": "#" + "".join(name.split())}
            for slug, name in tag_slugs(tags)]


def create_activity(entry: Entry, *, author: Actor, urls: Urls) -> Document:
    """The `Create` of an entry's Article by its author; id: the object's + "#create"."""
    obj = article(entry, author=author, urls=urls)
    return {"id": obj["id"] + "#create", "type": "Create", "actor": obj["attributedTo"],
            "published": obj["published"], "to": obj["to"], "cc": obj["cc"], "object": obj}


def announce_activity(entry: Entry, *, site: Actor, author: Actor, urls: Urls) -> Document:
    """The site actor's boost of an entry's Article; id: the object's + "#announce"."""
    obj = urls.object(entry.id)
    return {"id": obj + "#announce", "type": "Announce", "actor": urls.actor(site.handle),
            "published": iso(entry.published), "to": [PUBLIC],
            "cc": [urls.followers(site.handle), urls.actor(author.handle)], "object": obj}


def update_activity(entry: Entry, *, author: Actor, urls: Urls) -> Document:
    """The `Update` of an edited entry's Article; one id per `updated`, so each edit is news
    to a receiver that drops activities it has seen."""
    obj = article(entry, author=author, urls=urls)
    stamp = entry.updated.astimezone(timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    return {"id": f"{obj['id']}#update-{stamp}", "type": "Update", "actor": obj["attributedTo"],
            "published": obj["updated"], "to": obj["to"], "cc": obj["cc"], "object": obj}


def delete_activity(entry_id: str, *, author: Actor, audience: Sequence[Actor],
                    urls: Urls) -> Document:
    """The `Delete` of a removed entry (a `Tombstone`), cc the followers of `audience`."""
    obj = urls.object(entry_id)
    return {"id": obj + "#delete", "type": "Delete", "actor": urls.actor(author.handle),
            "to": [PUBLIC], "cc": [urls.followers(a.handle) for a in audience],
            "object": {"id": obj, "type": "Tombstone"}}


def outbox_collection(actor: Actor, *, total: int, urls: Urls) -> Document:
    """The outbox itself: its size and its first and last pages (page 1 even when empty)."""
    return with_context({
        "id": urls.outbox(actor.handle), "type": "OrderedCollection", "totalItems": total,
        "first": urls.outbox(actor.handle, page=1),
        "last": urls.outbox(actor.handle, page=page_count(total)),
    })


def outbox_page(actor: Actor, *, page: int, total: int, items: Sequence[Document],
                urls: Urls) -> Document:
    """One page of the outbox: activities newest first, with its neighbours."""
    doc: Document = {"id": urls.outbox(actor.handle, page=page),
                     "type": "OrderedCollectionPage", "partOf": urls.outbox(actor.handle),
                     "totalItems": total}
    if page > 1:
        doc["prev"] = urls.outbox(actor.handle, page=page - 1)
    if page < page_count(total):
        doc["next"] = urls.outbox(actor.handle, page=page + 1)
    doc["orderedItems"] = list(items)
    return with_context(doc)


def page_count(total: int) -> int:
    return max(1, -(-total // OUTBOX_PAGE_SIZE))


def followers_collection(actor: Actor, *, total: int, urls: Urls) -> Document:
    """The followers' number only: who follows is nobody else's business."""
    return with_context({"id": urls.followers(actor.handle), "type": "OrderedCollection",
                         "totalItems": total})


def following_collection(actor: Actor, *, urls: Urls) -> Document:
    return with_context({"id": urls.following(actor.handle), "type": "OrderedCollection",
                         "totalItems": 0, "orderedItems": []})


def webfinger(actor: Actor, *, urls: Urls) -> Document:
    """The JRD (RFC 7033) of an actor, shaped as Mastodon's."""
    page = actor.page(urls)
    url = urls.actor(actor.handle)
    return {
        "subject": "acct:" + urls.acct(actor.handle),
        "aliases": [page, url],
        "links": [
            {"rel": "self", "type": ACTIVITY_JSON, "href": url},
            {"rel": PROFILE_PAGE, "type": "text/html", "href": page},
        ],
    }


def nodeinfo_links(urls: Urls) -> Document:
    """/.well-known/nodeinfo: where the NodeInfo document is."""
    return {"links": [{"rel": NODEINFO_SCHEMA, "href": urls.nodeinfo()}]}


def nodeinfo(*, version: str, actors: int, local_posts: int, site: SiteConfig) -> Document:
    """NodeInfo 2.1 (nodeinfo.diaspora.software/schema): actors count as users."""
    return {
        "version": "2.1",
        "software": {"name": "feedsvc", "version": version},
        "protocols": ["activitypub"],
        "services": {"inbound": [], "outbound": ["atom1.0", "rss2.0"]},
        "openRegistrations": False,
        "usage": {"users": {"total": actors}, "localPosts": local_posts},
        "metadata": {"nodeName": site.title, "nodeDescription": site.description},
    }
