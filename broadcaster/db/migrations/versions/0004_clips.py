"""clips: a bulletin's chimes and spoken heading are no longer announcements

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-01 10:40:00.000000

Until this revision the frame of a bulletin was stored as announcements made by "system", which took
announcement numbers between the officer's own (#3, then #7). They move to `clips`: each becomes a
clip of the kind its broadcasts aired it as, its broadcasts point to the clip, and the announcement
row is deleted. The numbers they took stay unused; new frames take none.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import broadcaster.db

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

FRAMING_KINDS = ("chime_open", "heading", "chime_close")


def upgrade() -> None:
    op.create_table(
        "clips",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("title", sa.String(length=300), nullable=False),
        sa.Column("audio_sha256", sa.String(length=64), nullable=False),
        sa.Column("audio_size", sa.Integer(), nullable=False),
        sa.Column("audio_duration_ms", sa.Integer(), nullable=False),
        sa.Column("audio_ext", sa.String(length=8), nullable=False),
        sa.Column("engine", sa.String(length=32), nullable=True),
        sa.Column("created_at", broadcaster.db.UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("clips", schema=None) as batch_op:
        batch_op.create_index("ix_clips_kind_title", ["kind", "title"], unique=False)
    with op.batch_alter_table("broadcasts", schema=None) as batch_op:
        batch_op.add_column(sa.Column("clip_id", sa.Integer(), nullable=True))
        batch_op.create_foreign_key("fk_broadcasts_clip_id_clips", "clips", ["clip_id"], ["id"])
    _move_frames()


def _move_frames() -> None:
    """The frames stored as announcements become clips; what aired them points to the clip. Copied in
    SQL, so every value keeps the form it is stored in."""
    bind = op.get_bind()
    frames = bind.execute(
        sa.text("SELECT id FROM announcements WHERE created_by = 'system' AND audio_sha256 IS NOT NULL")
    ).scalars()
    for frame in list(frames):
        kind = bind.execute(
            sa.text("SELECT kind FROM broadcasts WHERE announcement_id = :id ORDER BY id LIMIT 1"), {"id": frame}
        ).scalar()
        if kind not in FRAMING_KINDS:
            continue  # not a frame after all: leave it be
        bind.execute(
            sa.text(
                "INSERT INTO clips (kind, title, audio_sha256, audio_size, audio_duration_ms, audio_ext, engine, "
                "created_at) SELECT :kind, title, audio_sha256, COALESCE(audio_size, 0), "
                "COALESCE(audio_duration_ms, 0), audio_ext, engine, created_at FROM announcements WHERE id = :id"
            ),
            {"kind": kind, "id": frame},
        )
        clip = bind.execute(sa.text("SELECT MAX(id) FROM clips")).scalar()  # a migration runs alone
        bind.execute(
            sa.text("UPDATE broadcasts SET clip_id = :clip, announcement_id = NULL WHERE announcement_id = :id"),
            {"clip": clip, "id": frame},
        )
        bind.execute(sa.text("DELETE FROM announcements WHERE id = :id"), {"id": frame})


def downgrade() -> None:
    """The clips go; the broadcasts that aired them keep their rows, with nothing to play (a frame that
    has not aired yet is silently skipped by dispatch, as an airing without audio is)."""
    with op.batch_alter_table("broadcasts", schema=None) as batch_op:
        batch_op.drop_constraint("fk_broadcasts_clip_id_clips", type_="foreignkey")
        batch_op.drop_column("clip_id")
    with op.batch_alter_table("clips", schema=None) as batch_op:
        batch_op.drop_index("ix_clips_kind_title")
    op.drop_table("clips")
