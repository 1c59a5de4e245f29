"""Absolute URLs, all built from site.base_url and never from a request's Host header;
entry identities as tag: URIs (RFC 4151). Used by feeds, pages and content rendering."""

from __future__ import annotations

import hashlib
import re
from urllib.parse import quote
from urllib.parse import urlencode
from urllib.parse import urlsplit

from feedsvc.model import FeedFormat

# RFC 3986 unreserved + sub-delims + ':' '@' '/' stay readable; everything else is encoded.
_SAFE_IN_PATH = "/:@!$&'()*+,;=-._~"
_URI_SCHEME = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*:\S")
TAG_DATE = "2024"
TAG_KEY_PREFIX = "tag:"  # the same as feedsvc.store.TAG_PREFIX (urls sits below store)


def object_key(entry_id: str) -> str:
    """The last segment of an entry's ActivityPub object URL: derived from its id, so it
    stays the same when the note is edited, renamed or moved to another category."""
    return hashlib.sha256(entry_id.encode("utf-8")).hexdigest()[:32]


def default_authority(base_url: str) -> str:
    """The tag: authority a store takes at first use when site.id_authority is not set."""
    return urlsplit(base_url.rstrip("/") + "/").hostname or "localhost"


class Urls:
    """Builds every absolute URL of the site from one base URL."""

    def __init__(self, base_url: str, authority: str | None = None) -> None:
        self.base = base_url.rstrip("/") + "/"
        self.authority = authority or default_authority(base_url)

    def path(self, *segments: str) -> str:
        return self.base + "/".join(quote(s, safe="") for s in segments)

    def home(self) -> str:
        return self.base

    def entry(self, category_slug: str, slug: str) -> str:
        return self.path("entries", category_slug, slug)

    def feed(self, slug: str, fmt: FeedFormat) -> str:
        """A feed by its key: "all", a category slug, or "tag:<tag slug>"."""
        if slug.startswith(TAG_KEY_PREFIX):
            return self.path("feeds", "tags", f"{slug[len(TAG_KEY_PREFIX):]}.{fmt.value}")
        return self.path("feeds", f"{slug}.{fmt.value}")

    def feed_home(self, slug: str) -> str:
        """The HTML page a feed (by key) belongs to: its tag page or its updates page."""
        if slug.startswith(TAG_KEY_PREFIX):
            return self.tag(slug[len(TAG_KEY_PREFIX):])
        return self.updates(category=None if slug == "all" else slug)

    def tag(self, slug: str, *, page: int = 1) -> str:
        """A tag page as a path URL a static mirror holds as a file: /tags/<slug>[/page/N/]
        (the query form ?page=N is served too)."""
        url = self.path("tags", slug)
        return f"{url}/page/{page}/" if page != 1 else url

    def opml(self) -> str:
        return self.path("feeds.opml")

    def updates(self, *, page: int = 1, category: str | None = None, since: str | None = None,
                json: bool = False) -> str:
        params: dict[str, str] = {}
        if category:
            params["category"] = category
        if since:
            params["since"] = since
        if page != 1:
            params["page"] = str(page)
        url = self.base + ("updates.json" if json else "updates")
        return f"{url}?{urlencode(params)}" if params else url

    def digest(self, *, page: int = 1, category: str | None = None,
               since: str | None = None) -> str:
        """A digest page as a path URL that a static mirror holds as a file:
        /updates, /updates/page/N/, /updates/category/<slug>/[page/N/]. A `since` filter
        has no file form and keeps the query URL."""
        if since:
            return self.updates(page=page, category=category, since=since)
        url = self.path("updates")
        if category:
            url += "/category/" + quote(category, safe="") + "/"
        if page != 1:
            url += ("" if category else "/") + f"page/{page}/"
        return url

    def media(self, source: str, rel_path: str) -> str:
        return self.base + "media/" + quote(source, safe="") + "/" + quote(rel_path, safe="/")

    def tag_uri(self, entry_id: str) -> str:
        """A stable, valid URI for an entry id: a URI id is kept (encoded), anything else
        becomes tag:<authority>,2024:<id> with spaces and non-ASCII percent-encoded (the
        authority is fixed once per store: see Store.id_authority)."""
        if _URI_SCHEME.match(entry_id):
            scheme, rest = entry_id.split(":", 1)
            return f"{scheme}:{quote(rest, safe=_SAFE_IN_PATH + '#?%')}"
        return f"tag:{self.authority},{TAG_DATE}:{quote(entry_id, safe=_SAFE_IN_PATH)}"

    # -- ActivityPub (DESIGN.md "Federation") -------------------------------------------

    @property
    def host(self) -> str:
        """base_url's host with its port if it has one: the domain of every acct: handle."""
        return urlsplit(self.base).netloc.rpartition("@")[2].lower()

    def acct(self, handle: str) -> str:
        """An actor's WebFinger address, as people type it after the "@": handle@host."""
        return f"{handle}@{self.host}"

    def actor(self, handle: str) -> str:
        return self.path("ap", "actors", handle)

    def actor_inbox(self, handle: str) -> str:
        return self.path("ap", "actors", handle, "inbox")

    def outbox(self, handle: str, *, page: int | None = None) -> str:
        url = self.path("ap", "actors", handle, "outbox")
        return f"{url}?page={page}" if page is not None else url

    def followers(self, handle: str) -> str:
        return self.path("ap", "actors", handle, "followers")

    def following(self, handle: str) -> str:
        return self.path("ap", "actors", handle, "following")

    def shared_inbox(self) -> str:
        return self.path("ap", "inbox")

    def object(self, entry_id: str) -> str:
        """An entry's Article: /ap/objects/<object_key(entry id)>."""
        return self.path("ap", "objects", object_key(entry_id))

    def webfinger(self) -> str:
        return self.path(".well-known", "webfinger")

    def nodeinfo(self) -> str:
        return self.path("nodeinfo", "2.1")
