"""The "LATEST UPDATES" digest: /updates (HTML) and /updates.json, plus the index page."""

from __future__ import annotations

import datetime as dt
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
from feedsvc.web.ext import get_services

bp = Blueprint("updates", __name__)


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
    category = category or request.args.get("category") or None
    since_text = request.args.get("since") or None
    try:
        page = int(page_text if page_text is not None else request.args.get("page", "1"))
    except ValueError:
        raise PageNotFoundError("page must be a whole number") from None
    if page < 1 or page > 2**31:  # a huge page is a 404, not an integer overflow in SQL
        raise PageNotFoundError(f"no page {page}")
    if category is not None and (category == "all" or services.store.feed_state(category) is None):
        raise CategoryNotFoundError(category)  # a key lookup, not a count over every entry
    since = None
    if since_text is not None:
        try:
            day = dt.date.fromisoformat(since_text)
        except ValueError:
            raise PageNotFoundError("since must be a date, YYYY-MM-DD") from None
        since = dt.datetime(day.year, day.month, day.day, tzinfo=services.config.site.tz)
    size = services.config.updates.page_size
    entries, total = services.store.updates_page(category_slug=category, since=since, page=page,
                                                 page_size=size, now=now)
    pages = max(1, -(-total // size))
    if page > pages:
        raise PageNotFoundError(f"no page {page}; there are {pages}")
    return UpdatesPage(entries, page, pages, total, category, since_text)


@bp.route("/updates")
@bp.route("/updates/page/<page>/")
@bp.route("/updates/category/<category>/")
@bp.route("/updates/category/<category>/page/<page>/")
def updates_html(page: str | None = None, category: str | None = None) -> str:
    """The query form (/updates?page=2) and the path form (/updates/page/2/, which a static
    mirror holds as a file) serve the same page; pages link to the path form."""
    loaded = _load_page(page, category)
    return render_template("updates/updates.html", p=loaded, feed_slug=loaded.category or "all")


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
