"""Migration 0003 (the desk: approval, the lexicon, the slogans) on a database that already has
announcements, on SQLite and PostgreSQL: they stay, read as planned the way they were, and the revision
goes down and up again."""

from __future__ import annotations

from datetime import UTC, datetime

from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import inspect, text

from broadcaster.db import Announcement, AnnouncementState, Base, Database
from broadcaster.db.migrations import alembic_config, upgrade


def test_announcements_made_before_approval_read_as_approved_and_the_revision_goes_down_and_up(
    database_url: str,
) -> None:
    db = Database(database_url)
    upgrade(db.engine, "0002")
    with db.engine.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO announcements (title, text, priority, created_at, created_by, audio_ext) "
                "VALUES ('Họp thôn', 'Họp thôn lúc 19h.', 'normal', :at, 'can-bo', 'mp3')"
            ),
            {"at": datetime(2026, 11, 20, 3, 0)},
        )
    db.upgrade()
    tables = set(inspect(db.engine).get_table_names())
    assert {"lexicon", "slogans"} <= tables
    with db.session() as s:
        old = s.get(Announcement, 1)
        assert old is not None
        assert (old.state, old.approved_via, old.targets) == (AnnouncementState.APPROVED, "", "[]")
        assert old.created_at == datetime(2026, 11, 20, 3, 0, tzinfo=UTC)

    command.downgrade(alembic_config(db.engine), "0002")
    assert not {"lexicon", "slogans"} & set(inspect(db.engine).get_table_names())
    assert "state" not in {c["name"] for c in inspect(db.engine).get_columns("announcements")}
    db.upgrade()
    with db.engine.connect() as conn:
        assert compare_metadata(MigrationContext.configure(conn, opts={"compare_type": True}), Base.metadata) == []
    with db.session() as s:
        assert s.get(Announcement, 1) is not None  # what was there before stays
    db.dispose()
