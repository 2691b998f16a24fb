"""the officer's desk: the approval of announcements, the commune's lexicon, the LED slogans

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-01 10:30:00.000000

Announcements stored before this revision were planned the moment they were made: they become
`APPROVED` (with an empty `approved_via`), so they read as scheduled, aired or recalled as before.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import broadcaster.db

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

STATE = sa.Enum(
    "DRAFT", "AWAITING_APPROVAL", "APPROVED", "REJECTED", name="announcementstate", native_enum=False, length=24
)


def upgrade() -> None:
    with op.batch_alter_table("announcements", schema=None) as batch_op:
        batch_op.add_column(sa.Column("state", STATE, nullable=False, server_default="APPROVED"))
        batch_op.add_column(sa.Column("targets", sa.Text(), nullable=False, server_default="[]"))
        batch_op.add_column(sa.Column("start_at", broadcaster.db.UTCDateTime(), nullable=True))
        batch_op.add_column(sa.Column("bulletin_id", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("order_key", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("updated_at", broadcaster.db.UTCDateTime(), nullable=True))
        batch_op.add_column(sa.Column("submitted_at", broadcaster.db.UTCDateTime(), nullable=True))
        batch_op.add_column(sa.Column("submitted_by", sa.String(length=100), nullable=False, server_default=""))
        batch_op.add_column(sa.Column("decided_at", broadcaster.db.UTCDateTime(), nullable=True))
        batch_op.add_column(sa.Column("decided_by", sa.String(length=100), nullable=False, server_default=""))
        batch_op.add_column(sa.Column("decision_reason", sa.String(length=500), nullable=False, server_default=""))
        batch_op.add_column(sa.Column("approved_via", sa.String(length=16), nullable=False, server_default=""))
        batch_op.create_index("ix_announcements_state", ["state"], unique=False)

    op.create_table(
        "lexicon",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("written", sa.String(length=100), nullable=False),
        sa.Column("written_key", sa.String(length=100), nullable=False),
        sa.Column("spoken", sa.String(length=300), nullable=False),
        sa.Column("created_at", broadcaster.db.UTCDateTime(), nullable=False),
        sa.Column("created_by", sa.String(length=100), nullable=False),
        sa.Column("updated_at", broadcaster.db.UTCDateTime(), nullable=False),
        sa.Column("updated_by", sa.String(length=100), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("written_key", name="uq_lexicon_written_key"),
    )
    op.create_table(
        "slogans",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("text", sa.String(length=2000), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("zones", sa.Text(), nullable=False),
        sa.Column("created_at", broadcaster.db.UTCDateTime(), nullable=False),
        sa.Column("created_by", sa.String(length=100), nullable=False),
        sa.Column("updated_at", broadcaster.db.UTCDateTime(), nullable=False),
        sa.Column("updated_by", sa.String(length=100), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )


def downgrade() -> None:
    op.drop_table("slogans")
    op.drop_table("lexicon")
    with op.batch_alter_table("announcements", schema=None) as batch_op:
        batch_op.drop_index("ix_announcements_state")
        for column in (
            "approved_via",
            "decision_reason",
            "decided_by",
            "decided_at",
            "submitted_by",
            "submitted_at",
            "updated_at",
            "order_key",
            "bulletin_id",
            "start_at",
            "targets",
            "state",
        ):
            batch_op.drop_column(column)
