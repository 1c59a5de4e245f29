"""ActivityPub: each actor's key pair (ap_keys), who follows which actor (ap_followers), the
cached keys and inboxes of remote actors (ap_remote_actors), the change log that drives
publishing (ap_publications, written by apply) and the delivery queue (ap_deliveries).
All new tables, empty: nothing stored before is touched.

Revision ID: 0006
Revises: 0005
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "ap_keys",
        sa.Column("handle", sa.String(100), primary_key=True),
        sa.Column("private_pem", sa.Text(), nullable=False),
        sa.Column("public_pem", sa.Text(), nullable=False),
        sa.Column("created", sa.DateTime(), nullable=False),
    )
    op.create_table(
        "ap_followers",
        sa.Column("actor", sa.String(100), primary_key=True),
        sa.Column("follower", sa.String(1000), primary_key=True),
        sa.Column("inbox", sa.String(1000), nullable=False),
        sa.Column("shared_inbox", sa.String(1000), nullable=True),
        sa.Column("followed_at", sa.DateTime(), nullable=False),
    )
    op.create_index("ix_ap_followers_inbox", "ap_followers", ["inbox"])
    op.create_index("ix_ap_followers_shared_inbox", "ap_followers", ["shared_inbox"])
    op.create_table(
        "ap_remote_actors",
        sa.Column("id", sa.String(1000), primary_key=True),
        sa.Column("key_id", sa.String(1000), nullable=False),
        sa.Column("public_key_pem", sa.Text(), nullable=False),
        sa.Column("inbox", sa.String(1000), nullable=False),
        sa.Column("shared_inbox", sa.String(1000), nullable=True),
        sa.Column("fetched_at", sa.DateTime(), nullable=False),
        sa.UniqueConstraint("key_id", name="uq_ap_remote_actors_key_id"),
    )
    # AUTOINCREMENT on SQLite: a seq or an id is never given to a second row
    op.create_table(
        "ap_publications",
        sa.Column("seq", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("entry_id", sa.String(1000), nullable=False),
        sa.Column("kind", sa.String(20), nullable=False),
        sa.Column("at", sa.DateTime(), nullable=False),
        sqlite_autoincrement=True,
    )
    op.create_table(  # each activity's body once, however many inboxes it goes to
        "ap_activities",
        sa.Column("id", sa.String(1000), primary_key=True),
        sa.Column("body", sa.LargeBinary(), nullable=False),
        sa.Column("signer", sa.String(100), nullable=False),
        sa.Column("created", sa.DateTime(), nullable=False),
    )
    op.create_table(
        "ap_deliveries",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("activity_id", sa.String(1000), nullable=False),
        sa.Column("inbox", sa.String(1000), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("created", sa.DateTime(), nullable=False),
        sa.Column("next_at", sa.DateTime(), nullable=False),
        sa.Column("claimed_by", sa.String(200), nullable=True),
        sa.Column("claimed_until", sa.DateTime(), nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.UniqueConstraint("activity_id", "inbox", name="uq_ap_deliveries_activity_inbox"),
        sqlite_autoincrement=True,
    )
    op.create_index("ix_ap_deliveries_next_at", "ap_deliveries", ["next_at"])


def downgrade() -> None:
    op.drop_index("ix_ap_deliveries_next_at", table_name="ap_deliveries")
    op.drop_table("ap_deliveries")
    op.drop_table("ap_activities")
    op.drop_table("ap_publications")
    op.drop_table("ap_remote_actors")
    op.drop_index("ix_ap_followers_shared_inbox", table_name="ap_followers")
    op.drop_index("ix_ap_followers_inbox", table_name="ap_followers")
    op.drop_table("ap_followers")
    op.drop_table("ap_keys")
