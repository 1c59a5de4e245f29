"""Tables of the store (SQLAlchemy Core). Private to feedsvc.store."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import BigInteger
from sqlalchemy import Column
from sqlalchemy import DateTime
from sqlalchemy import Dialect
from sqlalchemy import Index
from sqlalchemy import LargeBinary
from sqlalchemy import Integer
from sqlalchemy import MetaData
from sqlalchemy import String
from sqlalchemy import Table
from sqlalchemy import Text
from sqlalchemy import TypeDecorator
from sqlalchemy import UniqueConstraint


class UTCDateTime(TypeDecorator[dt.datetime]):
    """Stored as naive UTC (portable across SQLite and PostgreSQL), returned aware."""

    impl = DateTime
    cache_ok = True

    def process_bind_param(self, value: dt.datetime | None, dialect: Dialect) -> Any:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to the store")
        return value.astimezone(dt.timezone.utc).replace(tzinfo=None)

    def process_result_value(self, value: Any, dialect: Dialect) -> dt.datetime | None:
        if value is None:
            return None
        moment: dt.datetime = value
        return moment.replace(tzinfo=dt.timezone.utc)


metadata = MetaData()

notes = Table(
    "notes", metadata,
    Column("source", String(200), primary_key=True),
    Column("rel_path", String(1000), primary_key=True),
    Column("size", BigInteger, nullable=False),
    Column("mtime_ns", BigInteger, nullable=False),
    Column("file_hash", String(64), nullable=False),
    Column("problem", Text),
    Column("entry_id", String(1000)),
)

entries = Table(
    "entries", metadata,
    Column("id", String(1000), primary_key=True),
    Column("source", String(200), nullable=False),
    Column("rel_path", String(1000), nullable=False),
    Column("category_name", String(300), nullable=False),
    Column("category_slug", String(300), nullable=False),
    Column("slug", String(300), nullable=False),
    Column("title", Text, nullable=False),
    Column("published", UTCDateTime, nullable=False),
    Column("updated", UTCDateTime, nullable=False),
    Column("html", Text, nullable=False),
    Column("excerpt", Text, nullable=False),
    Column("content_hash", String(64), nullable=False),
    Column("tags", Text, nullable=False, default="[]"),
    Column("author", Text),
    # revision 0005: hash of what a feed shows of the entry (digest.entry_digest); NULL only
    # in a row an older release wrote during a rolling upgrade
    Column("digest", String(32)),
    UniqueConstraint("category_slug", "slug", name="uq_entries_category_slug"),
)
# revision 0005: both end with the digest, so a feed's (id, digest, updated) are read off the
# index alone (in the row the digest sits behind the html's overflow pages)
Index("ix_entries_order", entries.c.published.desc(), entries.c.updated.desc(), entries.c.id,
      entries.c.digest)
Index("ix_entries_category_order", entries.c.category_slug, entries.c.published.desc(),
      entries.c.updated.desc(), entries.c.id, entries.c.digest)
Index("ix_entries_source_path", entries.c.source, entries.c.rel_path)

links = Table(
    "links", metadata,
    Column("entry_id", String(1000), primary_key=True),
    Column("target", String(1100), primary_key=True),
)
Index("ix_links_target", links.c.target)

entry_tags = Table(
    "entry_tags", metadata,
    Column("entry_id", String(1000), primary_key=True),
    Column("tag_slug", String(300), primary_key=True),
    Column("tag_name", Text, nullable=False),
    # revision 0005: the entry's order columns and digest, so a tag feed is read off one index;
    # NULL only in a row an older release wrote during a rolling upgrade (the next write
    # fills it)
    Column("published", UTCDateTime),
    Column("updated", UTCDateTime),
    Column("digest", String(32)),
)
Index("ix_entry_tags_order", entry_tags.c.tag_slug, entry_tags.c.published.desc(),
      entry_tags.c.updated.desc(), entry_tags.c.entry_id, entry_tags.c.digest)
Index("ix_entry_tags_unordered", entry_tags.c.entry_id,
      sqlite_where=entry_tags.c.published.is_(None),
      postgresql_where=entry_tags.c.published.is_(None))

first_seen = Table(
    "first_seen", metadata,
    Column("entry_id", String(1000), primary_key=True),
    Column("seen_at", UTCDateTime, nullable=False),
)

tombstones = Table(
    "tombstones", metadata,
    Column("entry_id", String(1000), primary_key=True),
    Column("category_slug", String(300), primary_key=True),
    Column("title", Text, nullable=False),
    Column("entry_path", Text, nullable=False),  # "<category-slug>/<slug>"
    Column("deleted", UTCDateTime, nullable=False),
)

feed_states = Table(
    "feed_states", metadata,
    Column("slug", String(300), primary_key=True),
    Column("signature", String(64), nullable=False),
    Column("last_modified", UTCDateTime, nullable=False),
)

meta = Table(
    "meta", metadata,
    Column("key", String(100), primary_key=True),
    Column("value", Text, nullable=False),
)

locks = Table(
    "locks", metadata,
    Column("name", String(100), primary_key=True),
    Column("owner", String(200), nullable=False),
    Column("expires", UTCDateTime, nullable=False),
)

# revision 0002: media copied into the store, content-addressed (one blob per distinct file)
media_blobs = Table(
    "media_blobs", metadata,
    Column("hash", String(64), primary_key=True),  # sha256 hex of data
    Column("data", LargeBinary, nullable=False),
    Column("size", BigInteger, nullable=False),
)

media = Table(
    "media", metadata,
    Column("source", String(200), primary_key=True),
    Column("rel_path", String(1000), primary_key=True),
    Column("hash", String(64), nullable=False),
    Column("size", BigInteger, nullable=False),
    Column("mtime_ns", BigInteger, nullable=False),
    Column("media_type", String(200), nullable=False),
    Column("last_modified", UTCDateTime, nullable=False),
)
Index("ix_media_hash", media.c.hash)


scan_requests = Table(
    "scan_requests", metadata,  # webhooks taken by a process that is not the scanner
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("source", String(200)),  # NULL: every source
    Column("paths", Text),  # JSON list of paths relative to the source; NULL: walk it
    Column("reason", String(100), nullable=False),
    Column("created", UTCDateTime, nullable=False),
)

# revision 0006: ActivityPub (federation.py). Handles are ASCII (config.HANDLE); actor ids,
# key ids and inboxes are URIs. The two autoincrement keys are never reused (SQLite
# AUTOINCREMENT): a publication's seq and a delivery's id name one row for ever.
ap_keys = Table(
    "ap_keys", metadata,  # each actor's RSA key pair; the private key never leaves the store
    Column("handle", String(100), primary_key=True),
    Column("private_pem", Text, nullable=False),
    Column("public_pem", Text, nullable=False),
    Column("created", UTCDateTime, nullable=False),
)

ap_followers = Table(
    "ap_followers", metadata,
    Column("actor", String(100), primary_key=True),  # our actor's handle
    Column("follower", String(1000), primary_key=True),  # the remote actor's id
    Column("inbox", String(1000), nullable=False),
    Column("shared_inbox", String(1000)),
    Column("followed_at", UTCDateTime, nullable=False),
)
Index("ix_ap_followers_inbox", ap_followers.c.inbox)
Index("ix_ap_followers_shared_inbox", ap_followers.c.shared_inbox)

ap_remote_actors = Table(
    "ap_remote_actors", metadata,  # signers' public keys, as fetched
    Column("id", String(1000), primary_key=True),
    Column("key_id", String(1000), nullable=False),
    Column("public_key_pem", Text, nullable=False),
    Column("inbox", String(1000), nullable=False),
    Column("shared_inbox", String(1000)),
    Column("fetched_at", UTCDateTime, nullable=False),
    UniqueConstraint("key_id", name="uq_ap_remote_actors_key_id"),
)

ap_publications = Table(
    "ap_publications", metadata,  # the change log apply() writes and the fan-out consumes
    Column("seq", Integer, primary_key=True, autoincrement=True),
    Column("entry_id", String(1000), nullable=False),
    Column("kind", String(20), nullable=False),  # PublicationKind
    Column("at", UTCDateTime, nullable=False),
    sqlite_autoincrement=True,
)

ap_activities = Table(
    "ap_activities", metadata,  # an activity's body once, however many inboxes it goes to
    Column("id", String(1000), primary_key=True),
    Column("body", LargeBinary, nullable=False),
    Column("signer", String(100), nullable=False),
    Column("created", UTCDateTime, nullable=False),
)

ap_deliveries = Table(
    "ap_deliveries", metadata,  # the queue: one signed POST of one activity to one inbox
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("activity_id", String(1000), nullable=False),
    Column("inbox", String(1000), nullable=False),
    Column("attempts", Integer, nullable=False),
    Column("created", UTCDateTime, nullable=False),
    Column("next_at", UTCDateTime, nullable=False),
    Column("claimed_by", String(200)),
    Column("claimed_until", UTCDateTime),
    Column("last_error", Text),
    UniqueConstraint("activity_id", "inbox", name="uq_ap_deliveries_activity_inbox"),
    sqlite_autoincrement=True,
)
Index("ix_ap_deliveries_next_at", ap_deliveries.c.next_at)

__all__ = ["metadata", "notes", "entries", "links", "entry_tags", "first_seen", "tombstones",
           "feed_states", "meta", "locks", "media_blobs", "media", "scan_requests", "ap_keys",
           "ap_followers", "ap_remote_actors", "ap_publications", "ap_activities",
           "ap_deliveries"]
