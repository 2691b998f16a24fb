"""render_jobs: background renders and their progress, in the database

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-01 17:05:00.000000

A render started on the desk (`POST /api/v1/renders`) lived in the memory of the daemon that took the
request: with several daemons behind one proxy, the next poll of its progress went to another one and
was answered 404. Jobs are now rows any daemon reads; they are a convenience before announcing, so
nothing older than a day is kept.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import broadcaster.db

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "render_jobs",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("done", sa.Integer(), nullable=False),
        sa.Column("total", sa.Integer(), nullable=False),
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("duration_ms", sa.Integer(), nullable=False),
        sa.Column("engine", sa.String(length=64), nullable=False),
        sa.Column("error_key", sa.String(length=100), nullable=False),
        sa.Column("error_params", sa.Text(), nullable=False),
        sa.Column("error_fallback", sa.Text(), nullable=False),
        sa.Column("created_at", broadcaster.db.UTCDateTime(), nullable=False),
        sa.Column("updated_at", broadcaster.db.UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_render_jobs_created_at", "render_jobs", ["created_at"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_render_jobs_created_at", table_name="render_jobs")
    op.drop_table("render_jobs")
