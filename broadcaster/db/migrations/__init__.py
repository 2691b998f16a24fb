"""Alembic migrations, run by `loa db upgrade` and by a single daemon at start-up (never by the other CLI
commands, and never by a cluster's daemons: docs/deployment.md).

The scripts live inside the package so an installed daemon can migrate without the source tree.
"""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config as AlembicConfig
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy.engine import Engine

HERE = Path(__file__).parent


def alembic_config(engine: Engine) -> AlembicConfig:
    cfg = AlembicConfig()
    cfg.set_main_option("script_location", str(HERE))
    cfg.set_main_option("sqlalchemy.url", engine.url.render_as_string(hide_password=False).replace("%", "%%"))
    cfg.attributes["engine"] = engine
    return cfg


def upgrade(engine: Engine, revision: str = "head") -> None:
    command.upgrade(alembic_config(engine), revision)


def head_revision() -> str:
    """The schema this code needs."""
    head = ScriptDirectory(str(HERE)).get_current_head()
    assert head is not None
    return head


def current_revision(engine: Engine) -> str | None:
    """The schema the database is at; None for a database loa has never written to."""
    with engine.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()
