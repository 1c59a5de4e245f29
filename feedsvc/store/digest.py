"""The digest of an entry row: a hash of every column a feed shows of it, written with the
row (entries.digest, revision 0005, whose migration keeps its own copy). Feed validators hash
their entries' ids and digests, not the whole rows. Private to feedsvc.store."""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Mapping
from typing import Any

DIGEST_FIELDS = ("published", "updated", "title", "category_name", "category_slug", "slug",
                 "tags", "excerpt", "html", "author")


def entry_digest(row: Mapping[str, Any]) -> str:
    """A hash of every column a feed shows of an entry (migration 0005 keeps a copy): feed
    validators hash the ids and digests of their entries instead of the whole rows."""
    digest = hashlib.sha256()
    for name in DIGEST_FIELDS:
        value = row[name]
        if isinstance(value, dt.datetime):
            if value.tzinfo is None:  # read back naive UTC
                value = value.replace(tzinfo=dt.timezone.utc)
            value = value.astimezone(dt.timezone.utc).isoformat()
        digest.update(("" if value is None else str(value)).encode("utf-8", "surrogatepass"))
        digest.update(b"\x1f")
    return digest.hexdigest()[:32]
