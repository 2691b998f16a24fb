"""news feeds: the feeds the commune follows, and every article address they named

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-02 10:00:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import broadcaster.db

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "feeds",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("url", sa.String(length=2000), nullable=False),
        sa.Column("title", sa.String(length=300), nullable=False),
        sa.Column("targets", sa.Text(), nullable=False),
        sa.Column("poll_every_s", sa.Integer(), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("etag", sa.String(length=500), nullable=False),
        sa.Column("last_modified", sa.String(length=100), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("error_key", sa.String(length=64), nullable=False),
        sa.Column("error_params", sa.Text(), nullable=False),
        sa.Column("last_result", sa.Text(), nullable=False),
        sa.Column("checked_at", broadcaster.db.UTCDateTime(), nullable=True),
        sa.Column("ok_at", broadcaster.db.UTCDateTime(), nullable=True),
        sa.Column("next_poll_at", broadcaster.db.UTCDateTime(), nullable=True),
        sa.Column("created_at", broadcaster.db.UTCDateTime(), nullable=False),
        sa.Column("created_by", sa.String(length=100), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("url", name="uq_feeds_url"),
    )
    op.create_table(
        "feed_items",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("feed_id", sa.Integer(), nullable=False),
        sa.Column("url", sa.Text(), nullable=False),
        sa.Column("url_key", sa.String(length=64), nullable=False),
        sa.Column("content_sha256", sa.String(length=64), nullable=False),
        sa.Column("announcement_id", sa.Integer(), nullable=True),
        sa.Column("outcome", sa.String(length=16), nullable=False),
        sa.Column("reason", sa.String(length=64), nullable=False),
        sa.Column("reason_params", sa.Text(), nullable=False),
        sa.Column("seen_at", broadcaster.db.UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(["announcement_id"], ["announcements.id"]),
        sa.ForeignKeyConstraint(["feed_id"], ["feeds.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("url_key", name="uq_feed_items_url_key"),
    )
    op.create_index("ix_feed_items_content", "feed_items", ["content_sha256"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_feed_items_content", table_name="feed_items")
    op.drop_table("feed_items")
    op.drop_table("feeds")
