"""The schema: migrations match the models, and times survive both backends as aware UTC."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from typing import cast

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import Table, bindparam, insert, update

from broadcaster.db import AuditEntry, Base, BulkStatement, Database, Zone, ZoneKind


def test_migrations_match_the_models(database_url: str) -> None:
    db = Database(database_url)
    db.upgrade()
    with db.engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn, opts={"compare_type": True}), Base.metadata)
    db.dispose()
    assert diff == []


def test_the_accounts_migration_goes_down_and_up_again(database_url: str) -> None:
    """0002 adds users, API tokens and sessions to a database of 0001, and takes them away again."""
    from alembic import command
    from sqlalchemy import inspect

    from broadcaster.db.migrations import alembic_config, upgrade

    accounts = {"users", "api_tokens", "user_sessions"}
    db = Database(database_url)
    upgrade(db.engine, "0001")
    with db.session() as s:
        s.add(Zone(id="all", name="Xã", kind=ZoneKind.COMMUNE))
    assert not accounts & set(inspect(db.engine).get_table_names())
    db.upgrade()
    assert accounts <= set(inspect(db.engine).get_table_names())
    command.downgrade(alembic_config(db.engine), "0001")
    tables = set(inspect(db.engine).get_table_names())
    assert not accounts & tables and "zones" in tables
    db.upgrade()
    with db.engine.connect() as conn:
        assert compare_metadata(MigrationContext.configure(conn, opts={"compare_type": True}), Base.metadata) == []
    with db.session() as s:
        assert s.get(Zone, "all") is not None  # what was there before stays
    db.dispose()


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


def _raw(db: Database, sql: str) -> list[tuple[object, ...]]:
    """Rows as the driver returns them, before any SQLAlchemy type turns them back into Python values."""
    with db.engine.connect() as conn:
        return [tuple(r) for r in conn.exec_driver_sql(sql).all()]


def test_bulk_statements_store_exactly_what_sqlalchemy_would(database_url: str) -> None:
    """BulkStatement skips SQLAlchemy's per-row parameter handling: times (one with no microseconds,
    which SQLite's own adapter would write differently) and enums must reach the table in the same form."""
    db = Database(database_url)
    db.upgrade()
    audit_log = cast(Table, AuditEntry.__table__)
    zones = cast(Table, Zone.__table__)
    hanoi = timezone(timedelta(hours=7))
    shared = datetime(2026, 11, 24, 17, 30, tzinfo=hanoi)
    times = [shared, shared, datetime(2026, 11, 24, 10, 0, 0, 250, tzinfo=UTC)]
    entries = [{"at": at, "actor": f"a{i}", "action": "x", "detail": "{}"} for i, at in enumerate(times)]
    with db.session() as s:
        conn = s.connection()
        conn.execute(insert(audit_log), entries)
        BulkStatement(insert(audit_log)).executemany(conn, [{**e, "actor": "bulk-" + e["actor"]} for e in entries])
        for zone_id in ("z-orm", "z-bulk"):
            s.add(Zone(id=zone_id, name="Thôn", kind=ZoneKind.COMMUNE))
        s.flush()
        s.execute(update(zones).where(zones.c.id == "z-orm").values(kind=ZoneKind.GROUP))
        kind = bindparam("z_kind", type_=zones.c.kind.type)
        bulk_update = BulkStatement(update(zones).where(zones.c.id == bindparam("z_id")).values(kind=kind))
        bulk_update.executemany(conn, [{"z_id": "z-bulk", "z_kind": ZoneKind.GROUP}])
    rows = _raw(db, "SELECT actor, at FROM audit_log ORDER BY id")
    assert [at for _, at in rows[:3]] == [at for _, at in rows[3:]]
    assert [actor for actor, _ in rows[3:]] == ["bulk-a0", "bulk-a1", "bulk-a2"]
    assert _raw(db, "SELECT kind FROM zones WHERE id IN ('z-orm', 'z-bulk')") == [("GROUP",), ("GROUP",)]
    with db.session() as s:
        assert [e.at for e in s.query(AuditEntry).order_by(AuditEntry.id)][3:] == [t.astimezone(UTC) for t in times]
    db.dispose()


def test_a_bulk_row_missing_a_column_is_refused_and_nothing_is_written(sqlite_url: str) -> None:
    db = Database(sqlite_url)
    db.upgrade()
    now = datetime(2026, 11, 24, 10, 0, tzinfo=UTC)
    with pytest.raises(ValueError, match="detail"), db.session() as s:
        s.add(AuditEntry(at=now, actor="cán bộ", action="first"))
        s.flush()
        BulkStatement(insert(cast(Table, AuditEntry.__table__))).executemany(
            s.connection(), [{"at": now, "actor": "x", "action": "y"}]
        )
    assert _raw(db, "SELECT count(*) FROM audit_log") == [(0,)]
    db.dispose()
