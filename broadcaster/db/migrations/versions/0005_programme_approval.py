"""programmes wait for approval like announcements

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-01 11:30:00.000000

Programmes stored before this revision were expanded the moment they were made: they become
`APPROVED` (nobody decided), so they go on airing as before.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import broadcaster.db

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

STATE = sa.Enum(
    "DRAFT", "AWAITING_APPROVAL", "APPROVED", "REJECTED", name="announcementstate", native_enum=False, length=24
)


def upgrade() -> None:
    with op.batch_alter_table("programmes", schema=None) as batch_op:
        batch_op.add_column(sa.Column("state", STATE, nullable=False, server_default="APPROVED"))
        batch_op.add_column(sa.Column("decided_at", broadcaster.db.UTCDateTime(), nullable=True))
        batch_op.add_column(sa.Column("decided_by", sa.String(length=100), nullable=False, server_default=""))
        batch_op.add_column(sa.Column("decision_reason", sa.String(length=500), nullable=False, server_default=""))


def downgrade() -> None:
    with op.batch_alter_table("programmes", schema=None) as batch_op:
        for column in ("decision_reason", "decided_by", "decided_at", "state"):
            batch_op.drop_column(column)
