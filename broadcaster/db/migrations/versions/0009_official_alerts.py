"""official alerts: their sources, what was received, and scoped API tokens

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-01 15:00:00.000000

`alert_sources` holds each configured source's last status and reason; `received_alerts` each CAP alert
or TT39 bulletin received, unique by (sender, identifier, sent), so a replay is refused and an Update or
a Cancel finds what it refers to. `api_tokens.scopes` lets an admin give a program's token the right
to post alerts (`alerts:ingest`) and nothing more than its role; existing tokens get none.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import broadcaster.db

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "alert_sources",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("name", sa.String(length=40), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("url", sa.String(length=2000), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("last_error", sa.String(length=500), nullable=False),
        sa.Column("last_seen_at", broadcaster.db.UTCDateTime(), nullable=True),
        sa.Column("last_ok_at", broadcaster.db.UTCDateTime(), nullable=True),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("name", name="uq_alert_sources_name"),
    )
    op.create_table(
        "received_alerts",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("source", sa.String(length=40), nullable=False),
        sa.Column("sender", sa.String(length=300), nullable=False),
        sa.Column("identifier", sa.String(length=300), nullable=False),
        sa.Column("sent", broadcaster.db.UTCDateTime(), nullable=False),
        sa.Column("msg_type", sa.String(length=16), nullable=False),
        sa.Column("references", sa.Text(), nullable=False),
        sa.Column("severity", sa.String(length=16), nullable=False),
        sa.Column("urgency", sa.String(length=16), nullable=False),
        sa.Column("certainty", sa.String(length=16), nullable=False),
        sa.Column("headline", sa.String(length=300), nullable=False),
        sa.Column("expires", broadcaster.db.UTCDateTime(), nullable=True),
        sa.Column("received_at", broadcaster.db.UTCDateTime(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("reason", sa.String(length=500), nullable=False),
        sa.Column("announcement_id", sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(["announcement_id"], ["announcements.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("sender", "identifier", "sent", name="uq_received_alerts_key"),
    )
    op.create_index("ix_received_alerts_identifier", "received_alerts", ["sender", "identifier"])
    with op.batch_alter_table("api_tokens", schema=None) as batch_op:
        batch_op.add_column(sa.Column("scopes", sa.String(length=200), nullable=False, server_default=""))


def downgrade() -> None:
    with op.batch_alter_table("api_tokens", schema=None) as batch_op:
        batch_op.drop_column("scopes")
    op.drop_index("ix_received_alerts_identifier", table_name="received_alerts")
    op.drop_table("received_alerts")
    op.drop_table("alert_sources")
