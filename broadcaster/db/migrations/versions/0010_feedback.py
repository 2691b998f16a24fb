"""villagers' feedback from the QR codes on speakers and in villages

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-02 10:00:00.000000

A new table only: nothing stored before changes.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import broadcaster.db

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "feedback",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("village_id", sa.String(length=64), nullable=False),
        sa.Column("device_id", sa.String(length=64), nullable=True),
        sa.Column("category", sa.String(length=16), nullable=False),
        sa.Column("text", sa.String(length=1000), nullable=False),
        sa.Column("phone", sa.String(length=20), nullable=False),
        sa.Column("created_at", broadcaster.db.UTCDateTime(), nullable=False),
        sa.Column("client_hash", sa.String(length=32), nullable=False),
        sa.Column("handled_at", broadcaster.db.UTCDateTime(), nullable=True),
        sa.Column("handled_by", sa.String(length=100), nullable=False),
        sa.Column("reply", sa.String(length=1000), nullable=False),
        sa.ForeignKeyConstraint(["device_id"], ["devices.id"]),
        sa.ForeignKeyConstraint(["village_id"], ["zones.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_feedback_created", "feedback", ["created_at"])
    op.create_index("ix_feedback_device", "feedback", ["device_id", "handled_at"])


def downgrade() -> None:
    op.drop_index("ix_feedback_device", table_name="feedback")
    op.drop_index("ix_feedback_created", table_name="feedback")
    op.drop_table("feedback")
