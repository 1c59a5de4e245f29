"""The "LATEST UPDATES" digest: /updates (HTML) and /updates.json, plus the index page."""

from __future__ import annotations

from dataclasses import dataclass

from flask import Blueprint
from flask import Response
from flask import jsonify
from flask import render_template
from flask import request

from feedsvc.errors import CategoryNotFoundError
from feedsvc.errors import PageNotFoundError
from feedsvc.model import Entry
from feedsvc.model import FeedFormat
from feedsvc.store import TAG_PREFIX
from feedsvc.web.ext import get_services
from feedsvc.web.params import date_param
from feedsvc.web.params import is_plausible_slug
from feedsvc.web.params import page_param
from feedsvc.web.params import page_value
from feedsvc.web.params import slug_param

bp = Blueprint("updates", __name__)
MAX_OFFSET = 2**62  # SQLite and PostgreSQL OFFSET are 64-bit


@dataclass(frozen=True, slots=True)
class UpdatesPage:
    entries: list[Entry]
    page: int
    pages: int
    total: int
    category: str | None
    since: str | None


def _load_page(page_text: str | None = None, category: str | None = None) -> UpdatesPage:
    """The page named by the query (?page=&category=&since=), or by the path routes."""
    services = get_services()
    now = services.clock()
    if category is None:
        category = slug_param(request, "category")
    elif not is_plausible_slug(category):
        raise CategoryNotFoundError(category)
    since_value = date_param(request, "since", services.config.site.tz)
    page = page_value(page_text) if page_text is not None else page_param(request)
    if category is not None and (category == "all" or category.startswith(TAG_PREFIX)
                                 or services.store.feed_state(category) is None):
        raise CategoryNotFoundError(category)  # a key lookup, not a count over every entry
    since_text, since = since_value if since_value is not None else (None, None)
    size = services.config.updates.page_size
    if (page - 1) * size > MAX_OFFSET:
        raise PageNotFoundError(f"page: no page {page}")
    entries, total = services.store.updates_page(category_slug=category, since=since, page=page,
                                                 page_size=size, now=now)
    pages = max(1, -(-total // size))
    if page > pages:
        raise PageNotFoundError(f"page: no page {page}; there are {pages}")
    return UpdatesPage(entries, page, pages, total, category, since_text)


@bp.route("/updates")
@bp.route("/updates/page/<page>/")
@bp.route("/updates/category/<category>/")
@bp.route("/updates/category/<category>/page/<page>/")
def updates_html(page: str | None = None, category: str | None = None) -> str:
    """The query form (/updates?page=2) and the path form (/updates/page/2/, which a static
    mirror holds as a file) serve the same page; pages link to the path form."""
    loaded = _load_page(page, category)
    feed_name = None
    if loaded.category:
        feed_name = loaded.entries[0].category.name if loaded.entries else \
            get_services().publisher.category_name(loaded.category)
    return render_template("updates/updates.html", p=loaded, feed_slug=loaded.category or "all",
                           feed_name=feed_name or loaded.category)


@bp.route("/updates.json")
def updates_json() -> Response:
    services = get_services()
    page = _load_page()
    urls = services.urls

    def link(n: int) -> str | None:
        if n < 1 or n > page.pages:
            return None
        return urls.updates(page=n, category=page.category, since=page.since, json=True)

    return jsonify({
        "title": services.config.site.title,
        "page": page.page,
        "pages": page.pages,
        "total": page.total,
        "page_size": services.config.updates.page_size,
        "category": page.category,
        "since": page.since,
        "next": link(page.page + 1),
        "prev": link(page.page - 1),
        "items": [{
            "id": urls.tag_uri(e.id),
            "title": e.title,
            "url": urls.entry(e.category.slug, e.slug),
            "excerpt": e.excerpt,
            "category": e.category.name,
            "category_slug": e.category.slug,
            "date": services.config.site.local_date(e.published),
            "published": e.published.isoformat(timespec="seconds"),
            "updated": e.updated.isoformat(timespec="seconds"),
            "tags": list(e.tags),
        } for e in page.entries],
    })


@bp.route("/")
def index() -> str:
    services = get_services()
    now = services.clock()
    categories = services.store.categories(now)
    size = services.config.updates.page_size
    latest, total = services.store.updates_page(category_slug=None, since=None, page=1,
                                                page_size=size, now=now)
    return render_template("pages/index.html", categories=categories, latest=latest,
                           total=total, feed_slug="all", formats=list(FeedFormat))
