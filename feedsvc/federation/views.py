"""The read side of federation over HTTP: WebFinger, NodeInfo, actors, their outboxes and
collections, and entries as Articles. Thin views: each reads its arguments strictly (a bad
one is a 4xx, never a 500), asks the store and the actor directory, and answers with a
document from objects.py. A browser asking for an actor or an object is sent to its page."""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Protocol
from typing import cast
from urllib.parse import urlsplit

from flask import Blueprint
from flask import Flask
from flask import Response
from flask import current_app
from flask import g
from flask import redirect
from flask import request
from werkzeug.wrappers import Response as BaseResponse

import feedsvc
from feedsvc import metrics
from feedsvc.config import Config
from feedsvc.errors import FeedsvcError
from feedsvc.errors import NotFoundError
from feedsvc.errors import QueryParameterError
from feedsvc.federation import objects
from feedsvc.federation.actors import Actor
from feedsvc.federation.actors import ActorDirectory
from feedsvc.federation.actors import ActorSet
from feedsvc.federation.actors import KeyStore
from feedsvc.federation.fetch import RemoteClient
from feedsvc.federation.inbox import MAX_BODY_BYTES
from feedsvc.federation.inbox import Inbox
from feedsvc.federation.inbox import InboxRequest
from feedsvc.federation.keys import generate_key_pair
from feedsvc.federation.objects import Icon
from feedsvc.model import Clock
from feedsvc.model import Entry
from feedsvc.store import Store
from feedsvc.urls import Urls
from feedsvc.urls import object_key

bp = Blueprint("federation", __name__)
MAX_PARAM_CHARS = 1000
MAX_PAGE_DIGITS = 9
_OBJECT_KEY = re.compile(r"[0-9a-f]{32}")
_DIGITS = re.compile(r"[0-9]+")
AP_MEDIA_TYPES = (objects.ACTIVITY_JSON, objects.LD_JSON)
ICON_FILES = (("favicon.png", "image/png"), ("favicon.svg", "image/svg+xml"),
              ("favicon.ico", "image/x-icon"), ("icon.png", "image/png"))


class SiteServices(Protocol):
    """What federation takes from the web app's services (app.extensions["feedsvc"])."""

    config: Config
    store: Store
    clock: Clock
    urls: Urls


class ObjectLookup:
    """Entries by object key (object_key of their id). The key is a hash, so the store cannot
    look it up: a map of every entry's key to its place is built from the store's entry refs
    and built again when the store's revision moves (every scan that changed something)."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self._revision: int | None = None
        self._places: dict[str, tuple[str, str]] = {}
        self._lock = threading.Lock()

    def find(self, key: str, now: datetime) -> Entry | None:
        """The visible entry whose object key is `key`, or None."""
        revision = self.store.revision()
        if revision != self._revision:
            with self._lock:
                if revision != self._revision:
                    self._places = {object_key(ref.id): (ref.category_slug, ref.slug)
                                    for ref in self.store.entry_refs()}
                    self._revision = revision
        place = self._places.get(key)
        if place is None:
            return None
        entry = self.store.entry(place[0], place[1], now)
        # a scan between the map and this read may have put another entry at that place
        return entry if entry is not None and object_key(entry.id) == key else None


@dataclass
class Federation:
    """The federation services of one app, on app.extensions["federation"]."""

    config: Config
    store: Store
    clock: Clock
    urls: Urls
    directory: ActorDirectory
    lookup: ObjectLookup
    icon: Icon | None
    inbox: Inbox


def install(app: Flask, *, keys: KeyStore | None = None,
            make_key_pair: Callable[[], tuple[str, str]] = generate_key_pair) -> Federation:
    """Serve federation's GET endpoints on a web app (built by web.create_app), and give its
    templates `activitypub` (the handles pages show). Starts nothing."""
    services = cast(SiteServices, app.extensions["feedsvc"])
    directory = ActorDirectory(services.config, services.store, services.clock,
                               keys=keys if keys is not None else services.store.federation,
                               generate_key_pair=make_key_pair)
    client = RemoteClient(allow_private=services.config.activitypub.allow_private_addresses)
    inbox = Inbox(store=services.store.federation, directory=directory, client=client,
                  urls=services.urls, clock=services.clock)
    federation = Federation(config=services.config, store=services.store, clock=services.clock,
                            urls=services.urls, directory=directory,
                            lookup=ObjectLookup(services.store),
                            icon=find_icon(app.static_folder, services.urls), inbox=inbox)
    app.extensions["federation"] = federation
    app.register_blueprint(bp)

    @app.context_processor
    def activitypub_globals() -> dict[str, object]:
        return {"activitypub": PageHandles(federation)}

    return federation


def find_icon(static_folder: str | None, urls: Urls) -> Icon | None:
    """The actors' avatar: the site's favicon among the static assets, if it has one."""
    for name, media_type in ICON_FILES:
        if static_folder and (Path(static_folder) / name).is_file():
            return Icon(url=urls.path("static", name), media_type=media_type)
    return None


class PageHandles:
    """What a page shows of federation: the actor of a category (None: it has none) and the
    site actor; the actors are read once per request, on first use."""

    def __init__(self, federation: Federation) -> None:
        self._federation = federation

    def _actors(self) -> ActorSet:
        if "activitypub_actors" not in g:
            g.activitypub_actors = self._federation.directory.actors()
        actors: ActorSet = g.activitypub_actors
        return actors

    def of_category(self, slug: str) -> Actor | None:
        return self._actors().of_category(slug)

    @property
    def site(self) -> Actor:
        return self._actors().site


def get_federation() -> Federation:
    federation: Federation = current_app.extensions["federation"]
    return federation


# -- answers ------------------------------------------------------------------------------

def document(doc: objects.Document, media_type: str = objects.ACTIVITY_JSON,
             status: int = 200) -> Response:
    body = json.dumps(doc, ensure_ascii=False, separators=(",", ":"))
    content_type = media_type if ";" in media_type else f"{media_type}; charset=utf-8"
    return Response(body, status=status, content_type=content_type)


@bp.errorhandler(NotFoundError)
@bp.errorhandler(QueryParameterError)
def federation_error(error: FeedsvcError) -> Response:
    """A JSON answer, as a fediverse server expects (any other error: web/errors.py's)."""
    status = 404 if isinstance(error, NotFoundError) else 400
    return document({"error": error.message, "status": status}, "application/json", status)


def wants_activity_json() -> bool:
    """Accept names activity+json or ld+json (not through */*): a fediverse server, not a
    browser (Mastodon's own rule for its actor and status URLs)."""
    return any(quality > 0 and value.split(";")[0].strip().lower() in AP_MEDIA_TYPES
               for value, quality in request.accept_mimetypes)


def negotiated(doc: objects.Document, page: str) -> BaseResponse:
    """The document for a fediverse server, a 302 to its page for a browser."""
    response: BaseResponse = document(doc) if wants_activity_json() else redirect(page, 302)
    response.vary.add("Accept")
    return response


def text_param(name: str) -> str | None:
    """One query value, None when absent or empty; twice with different values, absurdly
    long, or holding control characters: a 400 naming the parameter."""
    values = [v for v in request.args.getlist(name) if v != ""]
    if not values:
        return None
    if any(v != values[0] for v in values[1:]):
        raise QueryParameterError(name, "given more than once with different values")
    if len(values[0]) > MAX_PARAM_CHARS:
        raise QueryParameterError(name, f"longer than {MAX_PARAM_CHARS} characters")
    if any(ord(c) < 32 or ord(c) == 127 for c in values[0]):
        raise QueryParameterError(name, "holds control characters")
    return values[0]


def find_actor(actors: ActorSet, handle: str) -> Actor:
    actor = actors.get(handle)
    if actor is None:
        raise NotFoundError(f"no actor {handle[:80]!r}")
    return actor


# -- discovery ----------------------------------------------------------------------------

@bp.get("/.well-known/webfinger")
def webfinger() -> Response:
    """RFC 7033 for acct:<handle>@<host> or an actor's URL; `rel` narrows the links."""
    federation = get_federation()
    resource = text_param("resource")
    if resource is None:
        raise QueryParameterError("resource", "required: acct:<handle>@<host>")
    handle = handle_of_resource(resource, federation.urls)
    actor = federation.directory.actors().get(handle) if handle is not None else None
    if actor is None:
        raise NotFoundError("resource: no such actor here")
    jrd = objects.webfinger(actor, urls=federation.urls)
    rels = [r for r in request.args.getlist("rel") if r]
    if rels:
        jrd["links"] = [link for link in jrd["links"] if link["rel"] in rels]
    response = document(jrd, objects.JRD_JSON)
    response.headers["Access-Control-Allow-Origin"] = "*"  # RFC 7033 section 5
    return response


def handle_of_resource(resource: str, urls: Urls) -> str | None:
    """The handle a WebFinger resource names on this site, None when it names one elsewhere;
    QueryParameterError when it is neither an acct: URI nor an http(s) URL. Handles and the
    host compare without case, as Mastodon's do."""
    if resource[:5].lower() == "acct:":
        user, at, host = resource[5:].removeprefix("@").partition("@")
        if not (user and at and host) or "@" in host:
            raise QueryParameterError("resource", "expected acct:<handle>@<host>")
        return user.lower() if host.lower() == urls.host else None
    parts = urlsplit(resource)
    if parts.scheme.lower() not in ("http", "https") or not parts.netloc:
        raise QueryParameterError("resource", "expected acct:<handle>@<host> or an actor URL")
    prefix = urls.actor("")
    if resource.startswith(prefix) and "/" not in resource[len(prefix):]:
        return resource[len(prefix):]
    return None


@bp.get("/.well-known/nodeinfo")
def nodeinfo_links() -> Response:
    return document(objects.nodeinfo_links(get_federation().urls), "application/json")


@bp.get("/nodeinfo/2.1")
def nodeinfo() -> Response:
    federation = get_federation()
    counts = federation.store.categories(federation.clock())
    actors = federation.directory.actors(c for c, _ in counts)
    doc = objects.nodeinfo(version=feedsvc.__version__, actors=len(actors.all),
                           local_posts=sum(n for _, n in counts), site=federation.config.site)
    return document(doc, objects.NODEINFO_JSON)


# -- actors -------------------------------------------------------------------------------

@bp.get("/ap/actors/<handle>")
def actor(handle: str) -> BaseResponse:
    federation = get_federation()
    found = find_actor(federation.directory.actors(), handle)
    doc = objects.actor_document(found, public_key_pem=federation.directory.public_key_pem(
        found.handle), urls=federation.urls, site=federation.config.site, icon=federation.icon)
    return negotiated(doc, found.page(federation.urls))


@bp.get("/ap/actors/<handle>/outbox")
def outbox(handle: str) -> Response:
    """The collection (totalItems, first, last), or with ?page=N one page of 20 activities:
    a category actor's are Creates, the site actor's Announces of every category's."""
    federation = get_federation()
    now = federation.clock()
    counts = federation.store.categories(now)
    actors = federation.directory.actors(c for c, _ in counts)
    found = find_actor(actors, handle)
    slug = found.category.slug if found.category else None
    total = sum(n for c, n in counts if slug is None or c.slug == slug)
    page_text = text_param("page")
    if page_text is None:
        return document(objects.outbox_collection(found, total=total, urls=federation.urls))
    page = page_number(page_text)
    if page > objects.page_count(total):
        raise NotFoundError(f"page: no page {page}; there are {objects.page_count(total)}")
    entries, total = federation.store.updates_page(category_slug=slug, since=None, page=page,
                                                   page_size=objects.OUTBOX_PAGE_SIZE, now=now)
    items = [activity(found, entry, actors, federation.urls) for entry in entries]
    return document(objects.outbox_page(found, page=page, total=total, items=items,
                                        urls=federation.urls))


def page_number(text: str) -> int:
    if not _DIGITS.fullmatch(text) or len(text) > MAX_PAGE_DIGITS or int(text) < 1:
        raise QueryParameterError("page", "expected a whole number from 1")
    return int(text)


def activity(outbox_actor: Actor, entry: Entry, actors: ActorSet,
             urls: Urls) -> objects.Document:
    author = actors.author_of(entry.category)
    if outbox_actor.is_site:
        return objects.announce_activity(entry, site=outbox_actor, author=author, urls=urls)
    return objects.create_activity(entry, author=author, urls=urls)


@bp.get("/ap/actors/<handle>/followers")
def followers(handle: str) -> Response:
    federation = get_federation()
    found = find_actor(federation.directory.actors(), handle)
    total = federation.store.federation.follower_counts().get(found.handle, 0)
    return document(objects.followers_collection(found, total=total, urls=federation.urls))


@bp.get("/ap/actors/<handle>/following")
def following(handle: str) -> Response:
    federation = get_federation()
    found = find_actor(federation.directory.actors(), handle)
    return document(objects.following_collection(found, urls=federation.urls))


# -- objects ------------------------------------------------------------------------------

@bp.get("/ap/objects/<key>")
def article(key: str) -> BaseResponse:
    federation = get_federation()
    entry = federation.lookup.find(key, federation.clock()) if _OBJECT_KEY.fullmatch(key) \
        else None
    if entry is None:
        raise NotFoundError(f"no object {key[:80]!r}")
    author = federation.directory.actors().author_of(entry.category)
    doc = objects.with_context(objects.article(entry, author=author, urls=federation.urls))
    return negotiated(doc, federation.urls.entry(entry.category.slug, entry.slug))


# -- inboxes ------------------------------------------------------------------------------

@bp.post("/ap/actors/<handle>/inbox")
def actor_inbox(handle: str) -> Response:
    return receive(handle)


@bp.post("/ap/inbox")
def shared_inbox() -> Response:
    return receive(None)


def receive(handle: str | None) -> Response:
    """A POST to an inbox (inbox.py decides); the body is read up to 1 MiB + 1 byte."""
    federation = get_federation()
    body = request.stream.read(MAX_BODY_BYTES + 1)  # bounded, whatever Content-Length says
    target = request.full_path if request.query_string else request.path
    answer = federation.inbox.receive(handle, InboxRequest(
        method=request.method, target=target, headers=dict(request.headers.items()),
        body=body))
    metrics.record_inbox(answer.outcome)
    if answer.status >= 400:
        return document({"error": answer.reason or answer.outcome, "status": answer.status},
                        "application/json", answer.status)
    return Response(status=answer.status)
