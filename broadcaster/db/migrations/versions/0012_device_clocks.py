"""devices.clock_offset_ms / clock_delay_ms / clock_checked_at: how far each speaker's clock is from ours

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-01 16:35:00.000000

A synchronized start is only as good as each speaker's clock. Devices now measure their offset from
the daemon's clock (an NTP-style exchange over MQTT, docs/protocol.md `time`) and say it in their
status; the daemon keeps the last one said, so the device board, `loa status` and the pre-airing
check can show who is off. Rows stay NULL until a device says: "not measured".
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import broadcaster.db

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("devices", schema=None) as batch_op:
        batch_op.add_column(sa.Column("clock_offset_ms", sa.Float(), nullable=True))
        batch_op.add_column(sa.Column("clock_delay_ms", sa.Float(), nullable=True))
        batch_op.add_column(sa.Column("clock_checked_at", broadcaster.db.UTCDateTime(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("devices", schema=None) as batch_op:
        batch_op.drop_column("clock_checked_at")
        batch_op.drop_column("clock_delay_ms")
        batch_op.drop_column("clock_offset_ms")
