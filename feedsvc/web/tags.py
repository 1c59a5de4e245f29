"""Tag pages: /tags/<slug>, the digest of one front-matter tag, paginated like /updates and
with autodiscovery links of the tag's feeds (/feeds/tags/<slug>.rss|.atom|.json)."""

from __future__ import annotations

from flask import Blueprint
from flask import render_template
from flask import request

from feedsvc.errors import PageNotFoundError
from feedsvc.errors import TagNotFoundError
from feedsvc.store import TAG_PREFIX
from feedsvc.web.ext import get_services
from feedsvc.web.params import is_plausible_slug
from feedsvc.web.params import page_param
from feedsvc.web.params import page_value
from feedsvc.web.updates import MAX_OFFSET
from feedsvc.web.updates import UpdatesPage

bp = Blueprint("tags", __name__)


@bp.route("/tags/<slug>")
@bp.route("/tags/<slug>/page/<page_text>/")
def tag(slug: str, page_text: str | None = None) -> str:
    services = get_services()
    page = page_value(page_text) if page_text is not None else page_param(request)
    key = TAG_PREFIX + slug
    # a tag exists once its feed does (so a tag whose notes were all deleted keeps its page
    # and its tombstones, as a category does)
    if not is_plausible_slug(slug) or services.store.feed_state(key) is None:
        raise TagNotFoundError(slug)
    size = services.config.updates.page_size
    if (page - 1) * size > MAX_OFFSET:
        raise PageNotFoundError(f"page: no page {page}")
    entries, total = services.store.updates_page(category_slug=key, since=None, page=page,
                                                 page_size=size, now=services.clock())
    pages = max(1, -(-total // size))
    if page > pages:
        raise PageNotFoundError(f"page: no page {page}; there are {pages}")
    name = services.store.tag_name(slug) or slug
    return render_template("tags/tag.html", p=UpdatesPage(entries, page, pages, total, None, None),
                           tag_slug=slug, tag_name=name, feed_slug=key, feed_name=f"#{name}")
