"""The schema of the release before schema versions (feedsvc/store/schema.py as it was),
frozen here: a new store gets exactly these tables; a store that release wrote already has
them, and create_all(checkfirst=True) adds only what it lacks, so it is recognised and
stamped 0001 with every row in place, never recreated.

Revision ID: 0001
Revises:
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

baseline = sa.MetaData()

sa.Table(
    "notes", baseline,
    sa.Column("source", sa.String(200), primary_key=True),
    sa.Column("rel_path", sa.String(1000), primary_key=True),
    sa.Column("size", sa.BigInteger, nullable=False),
    sa.Column("mtime_ns", sa.BigInteger, nullable=False),
    sa.Column("file_hash", sa.String(64), nullable=False),
    sa.Column("problem", sa.Text),
    sa.Column("entry_id", sa.String(1000)),
)

_entries = sa.Table(
    "entries", baseline,
    sa.Column("id", sa.String(1000), primary_key=True),
    sa.Column("source", sa.String(200), nullable=False),
    sa.Column("rel_path", sa.String(1000), nullable=False),
    sa.Column("category_name", sa.String(300), nullable=False),
    sa.Column("category_slug", sa.String(300), nullable=False),
    sa.Column("slug", sa.String(300), nullable=False),
    sa.Column("title", sa.Text, nullable=False),
    sa.Column("published", sa.DateTime, nullable=False),
    sa.Column("updated", sa.DateTime, nullable=False),
    sa.Column("html", sa.Text, nullable=False),
    sa.Column("excerpt", sa.Text, nullable=False),
    sa.Column("content_hash", sa.String(64), nullable=False),
    sa.Column("tags", sa.Text, nullable=False),
    sa.Column("author", sa.Text),
    sa.UniqueConstraint("category_slug", "slug", name="uq_entries_category_slug"),
)
sa.Index("ix_entries_order", _entries.c.published.desc(), _entries.c.updated.desc(),
         _entries.c.id)
sa.Index("ix_entries_category_order", _entries.c.category_slug, _entries.c.published.desc(),
         _entries.c.updated.desc(), _entries.c.id)
sa.Index("ix_entries_source_path", _entries.c.source, _entries.c.rel_path)

_links = sa.Table(
    "links", baseline,
    sa.Column("entry_id", sa.String(1000), primary_key=True),
    sa.Column("target", sa.String(1100), primary_key=True),
)
sa.Index("ix_links_target", _links.c.target)

sa.Table(
    "first_seen", baseline,
    sa.Column("entry_id", sa.String(1000), primary_key=True),
    sa.Column("seen_at", sa.DateTime, nullable=False),
)

sa.Table(
    "tombstones", baseline,
    sa.Column("entry_id", sa.String(1000), primary_key=True),
    sa.Column("category_slug", sa.String(300), primary_key=True),
    sa.Column("title", sa.Text, nullable=False),
    sa.Column("entry_path", sa.Text, nullable=False),
    sa.Column("deleted", sa.DateTime, nullable=False),
)

sa.Table(
    "feed_states", baseline,
    sa.Column("slug", sa.String(300), primary_key=True),
    sa.Column("signature", sa.String(64), nullable=False),
    sa.Column("last_modified", sa.DateTime, nullable=False),
)

sa.Table(
    "meta", baseline,
    sa.Column("key", sa.String(100), primary_key=True),
    sa.Column("value", sa.Text, nullable=False),
)

sa.Table(
    "locks", baseline,
    sa.Column("name", sa.String(100), primary_key=True),
    sa.Column("owner", sa.String(200), nullable=False),
    sa.Column("expires", sa.DateTime, nullable=False),
)


def upgrade() -> None:
    baseline.create_all(op.get_bind(), checkfirst=True)


def downgrade() -> None:
    baseline.drop_all(op.get_bind())
