"""Media in the store, content-addressed: media_blobs holds each distinct file once (by
SHA-256), media maps (source, rel_path) to a blob with the file's size, mtime, type and
Last-Modified, so a web node serves /media without the notes folder.

Revision ID: 0002
Revises: 0001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "media_blobs",
        sa.Column("hash", sa.String(64), primary_key=True),
        sa.Column("data", sa.LargeBinary, nullable=False),
        sa.Column("size", sa.BigInteger, nullable=False),
    )
    op.create_table(
        "media",
        sa.Column("source", sa.String(200), primary_key=True),
        sa.Column("rel_path", sa.String(1000), primary_key=True),
        sa.Column("hash", sa.String(64), nullable=False),
        sa.Column("size", sa.BigInteger, nullable=False),
        sa.Column("mtime_ns", sa.BigInteger, nullable=False),
        sa.Column("media_type", sa.String(200), nullable=False),
        sa.Column("last_modified", sa.DateTime, nullable=False),
    )
    op.create_index("ix_media_hash", "media", ["hash"])


def downgrade() -> None:
    op.drop_index("ix_media_hash", table_name="media")
    op.drop_table("media")
    op.drop_table("media_blobs")
