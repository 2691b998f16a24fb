"""announcements record the voice they are read with

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-01 14:00:00.000000

Items stored before this revision keep "" (the commune's voice, `[speech]`): they sound as before.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("announcements", schema=None) as batch_op:
        batch_op.add_column(sa.Column("voice_engine", sa.String(length=32), nullable=False, server_default=""))
        batch_op.add_column(sa.Column("voice", sa.String(length=64), nullable=False, server_default=""))
        batch_op.add_column(sa.Column("speaking_rate", sa.Float(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("announcements", schema=None) as batch_op:
        for column in ("speaking_rate", "voice", "voice_engine"):
            batch_op.drop_column(column)
