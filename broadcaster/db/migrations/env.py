"""Alembic environment: uses the engine handed over by `broadcaster.db.migrations.upgrade`."""

from __future__ import annotations

from alembic import context
from sqlalchemy import create_engine

from broadcaster.db.models import Base

config = context.config
engine = config.attributes.get("engine") or create_engine(config.get_main_option("sqlalchemy.url") or "")

with engine.connect() as connection:
    # SQLite's batch mode copies a table into a new one and drops the old. With foreign keys enforced (the
    # engine turns them on), dropping a table other rows point to (broadcasts, under deliveries) failed on
    # every database with records in it (tests/broadcaster/db/test_upgrade_from_first_schema.py). So they
    # are off while migrating (a PRAGMA takes effect only outside a transaction), checked before the
    # commit, and on again after.
    sqlite = connection.dialect.name == "sqlite"
    if sqlite:
        connection.exec_driver_sql("PRAGMA foreign_keys=OFF")
        connection.commit()
    try:
        with connection.begin():
            context.configure(
                connection=connection,
                target_metadata=Base.metadata,
                render_as_batch=sqlite,
                compare_type=True,
            )
            with context.begin_transaction():
                context.run_migrations()
            if sqlite:
                dangling = connection.exec_driver_sql("PRAGMA foreign_key_check").fetchall()
                if dangling:  # rolled back: a migration must not leave rows that point nowhere
                    raise RuntimeError(f"the migration left rows pointing nowhere: {dangling[:5]}")
    finally:
        if sqlite:
            connection.exec_driver_sql("PRAGMA foreign_keys=ON")
            connection.commit()
