"""device status events: when each device went offline and came back, for the period reports

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-02 09:00:00.000000

`devices.online` only says what is true now; the reports (#14) list every disconnection with its
times and duration, as the vendors' reports do, and chart the devices online over time. Devices
report nothing of the past, so history starts with this revision. Also an index on
`broadcasts.start_at`: a report reads a period whatever the status.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import broadcaster.db

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "device_status_events",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("device_id", sa.String(length=64), nullable=False),
        sa.Column("at", broadcaster.db.UTCDateTime(), nullable=False),
        sa.Column("online", sa.Boolean(), nullable=False),
        sa.ForeignKeyConstraint(["device_id"], ["devices.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("device_status_events", schema=None) as batch_op:
        batch_op.create_index("ix_device_status_events_device_at", ["device_id", "at"], unique=False)
    with op.batch_alter_table("broadcasts", schema=None) as batch_op:
        batch_op.create_index("ix_broadcasts_start", ["start_at"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("broadcasts", schema=None) as batch_op:
        batch_op.drop_index("ix_broadcasts_start")
    op.drop_table("device_status_events")
