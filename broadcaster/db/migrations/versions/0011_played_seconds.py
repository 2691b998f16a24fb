"""deliveries.played_s: the seconds a device says it played (a relay: relayed)

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-01 14:00:00.000000

A relay's `done` used to be the only record of it, and a relay whose stream never opened could be
`done` with nobody having heard a second. Devices now say, in the final ack of a play, how many seconds
of sound they gave out (docs/protocol.md, `played_s`); reports count a relay as heard only when it
relayed something. Rows stored before stay NULL: "not said", which reports read as before.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("deliveries", schema=None) as batch_op:
        batch_op.add_column(sa.Column("played_s", sa.Float(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("deliveries", schema=None) as batch_op:
        batch_op.drop_column("played_s")
