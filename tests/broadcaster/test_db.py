"""The schema: migrations match the models, and times survive both backends as aware UTC."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from broadcaster.db import AuditEntry, Base, Database


def test_migrations_match_the_models(database_url: str) -> None:
    db = Database(database_url)
    db.upgrade()
    with db.engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn, opts={"compare_type": True}), Base.metadata)
    db.dispose()
    assert diff == []


def test_times_are_stored_utc_and_read_back_aware(database_url: str) -> None:
    db = Database(database_url)
    db.upgrade()
    hanoi = timezone(timedelta(hours=7))
    with db.session() as s:
        s.add(AuditEntry(at=datetime(2026, 11, 24, 17, 30, tzinfo=hanoi), actor="cán bộ", action="test"))
    with db.session() as s:
        entry = s.query(AuditEntry).one()
        assert entry.at == datetime(2026, 11, 24, 10, 30, tzinfo=UTC)
        assert entry.at.tzinfo is not None
        assert entry.actor == "cán bộ"
    db.dispose()


def test_upgrade_twice_is_harmless(sqlite_url: str) -> None:
    db = Database(sqlite_url)
    db.upgrade()
    db.upgrade()
    db.dispose()
