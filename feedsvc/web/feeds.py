"""Feed endpoints: /feeds/<slug>.rss|.atom|.json and /feeds.opml."""

from __future__ import annotations

from flask import Blueprint
from flask import Response
from flask import request

from feedsvc.errors import CategoryNotFoundError
from feedsvc.errors import NotFoundError
from feedsvc.errors import TagNotFoundError
from feedsvc.model import FeedFormat
from feedsvc.store import TAG_PREFIX
from feedsvc.web.caching import cached_response
from feedsvc.web.caching import pick_coding
from feedsvc.web.ext import get_services
from feedsvc.web.params import is_plausible_slug

bp = Blueprint("feeds", __name__)


@bp.route("/feeds/<slug>.<ext>", methods=["GET", "HEAD"])
def feed(slug: str, ext: str) -> Response:
    if not is_plausible_slug(slug) or slug.startswith(TAG_PREFIX):
        raise CategoryNotFoundError(slug[:80])
    return _feed_response(slug, ext)


@bp.route("/feeds/tags/<slug>.<ext>", methods=["GET", "HEAD"])
def tag_feed(slug: str, ext: str) -> Response:
    """A tag's feed: same validators, caching and order as a category's (key "tag:<slug>")."""
    if not is_plausible_slug(slug):
        raise TagNotFoundError(slug)
    return _feed_response(TAG_PREFIX + slug, ext)


def _feed_response(key: str, ext: str) -> Response:
    try:
        fmt = FeedFormat(ext)
    except ValueError:
        raise NotFoundError(f"no feed format {ext[:20]!r}; use rss, atom or json") from None
    services = get_services()
    # a gzip (or br) request waits for gzip if the background pass has not made it yet
    served = services.publisher.feed(key, fmt, need_gzip=pick_coding(request, has_br=False)
                                     is not None)
    links = [f'<{services.urls.feed(key, fmt)}>; rel="self"']
    links += [f'<{hub}>; rel="hub"' for hub in services.config.websub.hubs]
    return cached_response(
        request, body=served.rendered.body, media_type=served.rendered.media_type,
        etag=served.rendered.etag, last_modified=served.rendered.last_modified,
        max_age=services.config.feeds.cache_max_age, gzip_body=served.gzip, br_body=served.br,
        extra_headers={"Link": ", ".join(links)})


@bp.route("/feeds.opml", methods=["GET", "HEAD"])
def opml() -> Response:
    services = get_services()
    rendered = services.publisher.opml()
    return cached_response(request, body=rendered.body, media_type=rendered.media_type,
                           etag=rendered.etag, last_modified=rendered.last_modified,
                           max_age=services.config.feeds.cache_max_age)
