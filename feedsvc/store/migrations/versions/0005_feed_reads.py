"""Feeds read without reading whole rows: entries.digest, one hash of everything a feed shows of
an entry, written with the row, so a feed's validator is a hash of its entries' ids and digests
(a one-note scan no longer reads and hashes the html of every entry of the feeds it touched);
and entry_tags.published/updated/digest with an index in feed order, so a tag's newest entries
come off one index instead of a sort through the entries table. The feed order indexes carry
the digest, so no feed query walks an html's overflow pages to reach it. Filled for the rows
stored.

Revision ID: 0005
Revises: 0004
"""

from __future__ import annotations

import datetime as dt
import hashlib

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None
BATCH = 500

# The digest as it was when this migration was written (feedsvc/store/writes.py
# entry_digest): a migration keeps its own copy, so later changes cannot change what it did.
FIELDS = ("published", "updated", "title", "category_name", "category_slug", "slug", "tags",
          "excerpt", "html", "author")


def entry_digest(row: dict[str, object]) -> str:
    digest = hashlib.sha256()
    for name in FIELDS:
        value = row[name]
        if isinstance(value, dt.datetime):
            if value.tzinfo is None:  # read back naive UTC
                value = value.replace(tzinfo=dt.timezone.utc)
            value = value.astimezone(dt.timezone.utc).isoformat()
        digest.update(("" if value is None else str(value)).encode("utf-8", "surrogatepass"))
        digest.update(b"\x1f")
    return digest.hexdigest()[:32]


def upgrade() -> None:
    op.add_column("entries", sa.Column("digest", sa.String(32), nullable=True))
    fill_digests()
    # the feed order indexes end with the digest: a feed's (id, digest, updated) come off the
    # index alone (the column sits after the html in the row, behind its overflow pages)
    op.drop_index("ix_entries_order", table_name="entries")
    op.drop_index("ix_entries_category_order", table_name="entries")
    op.create_index("ix_entries_order", "entries", [
        sa.text("published DESC"), sa.text("updated DESC"), "id", "digest"])
    op.create_index("ix_entries_category_order", "entries", [
        "category_slug", sa.text("published DESC"), sa.text("updated DESC"), "id", "digest"])
    for name, kind in (("published", sa.DateTime()), ("updated", sa.DateTime()),
                       ("digest", sa.String(32))):
        op.add_column("entry_tags", sa.Column(name, kind, nullable=True))
    op.execute("UPDATE entry_tags SET "
               "published = (SELECT e.published FROM entries e WHERE e.id = entry_tags.entry_id), "
               "updated = (SELECT e.updated FROM entries e WHERE e.id = entry_tags.entry_id), "
               "digest = (SELECT e.digest FROM entries e WHERE e.id = entry_tags.entry_id)")
    op.create_index("ix_entry_tags_order", "entry_tags", [
        "tag_slug", sa.text("published DESC"), sa.text("updated DESC"), "entry_id", "digest"])
    op.drop_index("ix_entry_tags_slug", table_name="entry_tags")  # the order index leads with it
    op.create_index("ix_entry_tags_unordered", "entry_tags", ["entry_id"],
                    sqlite_where=sa.text("published IS NULL"),
                    postgresql_where=sa.text("published IS NULL"))


def fill_digests() -> None:
    entries = sa.table("entries", sa.column("id", sa.String()), sa.column("digest", sa.String()),
                       sa.column("published", sa.DateTime()), sa.column("updated", sa.DateTime()),
                       *(sa.column(name, sa.Text()) for name in FIELDS[2:]))
    conn = op.get_bind()
    last = None
    while True:  # in id order, a batch at a time: never every html at once
        query = sa.select(entries).order_by(entries.c.id).limit(BATCH)
        if last is not None:
            query = query.where(entries.c.id > last)
        rows = [dict(r._mapping) for r in conn.execute(query)]
        if not rows:
            break
        conn.execute(sa.update(entries).where(entries.c.id == sa.bindparam("entry_id"))
                     .values(digest=sa.bindparam("entry_digest")),
                     [{"entry_id": row["id"], "entry_digest": entry_digest(row)} for row in rows])
        last = rows[-1]["id"]


def downgrade() -> None:
    op.drop_index("ix_entry_tags_unordered", table_name="entry_tags")
    op.drop_index("ix_entry_tags_order", table_name="entry_tags")
    op.create_index("ix_entry_tags_slug", "entry_tags", ["tag_slug"])
    with op.batch_alter_table("entry_tags") as batch:
        batch.drop_column("digest")
        batch.drop_column("updated")
        batch.drop_column("published")
    op.drop_index("ix_entries_order", table_name="entries")
    op.drop_index("ix_entries_category_order", table_name="entries")
    with op.batch_alter_table("entries") as batch:
        batch.drop_column("digest")
    op.create_index("ix_entries_order", "entries", [
        sa.text("published DESC"), sa.text("updated DESC"), "id"])
    op.create_index("ix_entries_category_order", "entries", [
        "category_slug", sa.text("published DESC"), sa.text("updated DESC"), "id"])
