"""`feedsvc export`: fetch every public URL of the app in-process and write it as a file,
for serving from nginx or a CDN."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import unquote

from flask import Flask

from feedsvc.model import FeedFormat
from feedsvc.web.ext import Services


def export_site(app: Flask, out_dir: Path) -> list[Path]:
    services: Services = app.extensions["feedsvc"]
    now = services.clock()
    urls: dict[str, Path] = {"/": Path("index.html"), "/feeds.opml": Path("feeds.opml")}
    for slug in services.publisher.feed_slugs():
        for fmt in FeedFormat:
            urls[f"/feeds/{slug}.{fmt.value}"] = Path("feeds") / f"{slug}.{fmt.value}"
    size = services.config.updates.page_size
    categories = [None] + [c.slug for c, _ in services.store.categories(now)]
    for category in categories:
        _, total = services.store.updates_page(category_slug=category, since=None, page=1,
                                               page_size=size, now=now)
        pages = max(1, -(-total // size))
        base = Path("updates") if category is None else Path("updates") / "category" / category
        query = f"category={category}&" if category else ""
        for page in range(1, pages + 1):
            urls[f"/updates?{query}page={page}"] = base / "page" / str(page) / "index.html"
            urls[f"/updates.json?{query}page={page}"] = base / "page" / str(page) / "updates.json"
        urls[f"/updates?{query}".rstrip("?&")] = base / "index.html"
    for tag, _, count in services.store.tags(now):  # tag feeds and pages (linked from entries)
        for fmt in FeedFormat:
            urls[f"/feeds/tags/{tag}.{fmt.value}"] = Path("feeds") / "tags" / f"{tag}.{fmt.value}"
        urls[f"/tags/{tag}"] = Path("tags") / tag / "index.html"
        for page in range(1, max(1, -(-count // size)) + 1):
            urls[f"/tags/{tag}?page={page}"] = Path("tags") / tag / "page" / str(page) / "index.html"
    for page in range(1, 10**9):
        entries, _ = services.store.updates_page(category_slug=None, since=None, page=page,
                                                 page_size=500, now=now)
        if not entries:
            break
        for e in entries:
            urls[f"/entries/{e.category.slug}/{e.slug}"] = Path("entries") / e.category.slug / \
                e.slug / "index.html"
    written: list[Path] = []
    client = app.test_client()
    for url, rel in urls.items():
        response = client.get(url)
        if response.status_code != 200:
            continue
        target = out_dir / unquote(str(rel))
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(response.get_data())
        written.append(target)
    return written
