"""entry_tags: one row per (entry, tag slug), for the tag feeds and pages; filled from the
`tags` JSON of the entries already stored.

Revision ID: 0004
Revises: 0003
"""

from __future__ import annotations

import json
import re
import unicodedata

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

# The tag slug rule as it was when this migration was written (feedsvc/content/slugs.py):
# a migration keeps its own copy, so later changes to the app cannot change what it did.
_NOT_WORD = re.compile(r"[\W_]+", re.UNICODE)
MAX_SLUG_CHARS = 120
BATCH = 500


def tag_slug(name: str) -> str:
    text = unicodedata.normalize("NFC", name).lower()
    return _NOT_WORD.sub("-", text).strip("-")[:MAX_SLUG_CHARS].strip("-")


def tag_rows(entry_id: str, tags_json: str | None) -> list[dict[str, str]]:
    try:
        names = json.loads(tags_json or "[]")
    except ValueError:
        return []
    rows: dict[str, dict[str, str]] = {}
    for name in names if isinstance(names, list) else []:
        slug = tag_slug(name) if isinstance(name, str) else ""
        if slug and slug not in rows:
            rows[slug] = {"entry_id": entry_id, "tag_slug": slug, "tag_name": name}
    return list(rows.values())


def upgrade() -> None:
    entry_tags = op.create_table(
        "entry_tags",
        sa.Column("entry_id", sa.String(1000), primary_key=True),
        sa.Column("tag_slug", sa.String(300), primary_key=True),
        sa.Column("tag_name", sa.Text(), nullable=False),
    )
    op.create_index("ix_entry_tags_slug", "entry_tags", ["tag_slug"])
    entries = sa.table("entries", sa.column("id", sa.String()), sa.column("tags", sa.Text()))
    conn = op.get_bind()
    batch: list[dict[str, str]] = []
    rows = conn.execute(sa.select(entries.c.id, entries.c.tags).order_by(entries.c.id)).all()
    for entry_id, tags_json in rows:
        batch.extend(tag_rows(entry_id, tags_json))
        if len(batch) >= BATCH:
            op.bulk_insert(entry_tags, batch)
            batch = []
    if batch:
        op.bulk_insert(entry_tags, batch)


def downgrade() -> None:
    op.drop_index("ix_entry_tags_slug", table_name="entry_tags")
    op.drop_table("entry_tags")
