"""The connection to SQLite or PostgreSQL, and the one way to open a transaction."""

from __future__ import annotations

import os
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import create_engine, event, text
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session, sessionmaker


def _private_file(path: Path) -> None:
    """The SQLite file holds every device's password hash and the audit log: owner-only (0600), whoever
    creates it (the daemon, or `loa` run first). SQLite gives its -wal and -shm files the mode of the
    database file, so they follow."""
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    os.close(os.open(path, os.O_RDWR | os.O_CREAT, 0o600))
    if path.stat().st_mode & 0o077:
        path.chmod(0o600)  # a file made before this rule, or by another tool


# How long the daemon waits on a PostgreSQL server it cannot hear. Without these, libpq waits for the
# operating system: a server that accepts and never answers holds a connect forever, and a link that
# drops silently (a cable, a NAT that forgot us) holds the ack writer and the reconcile loop until TCP
# gives up, fifteen minutes or more. libpq's own parameters: they apply to every connection of the pool.
PG_LINK = {
    "connect_timeout": 10,  # seconds to set up a connection, handshake and sign-in included
    "keepalives": 1,  # an idle connection is probed after 10 s, every 5 s, and given up after 3 misses
    "keepalives_idle": 10,
    "keepalives_interval": 5,
    "keepalives_count": 3,
    "tcp_user_timeout": 30_000,  # ms that sent data may stay unacknowledged (a query into a dead link)
}


def make_engine(url: str) -> Engine:
    if url.startswith("sqlite"):
        path = url.split("///", 1)[1].split("?", 1)[0] if "///" in url else ""
        if path and path != ":memory:" and not path.startswith("file:"):
            _private_file(Path(path))
        engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": 30})

        @event.listens_for(engine, "connect")
        def _pragmas(dbapi_conn: Any, _record: Any) -> None:
            # WAL lets the CLI write while the daemon reads; foreign keys are off by default in SQLite.
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA synchronous=NORMAL")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.close()

        return engine
    return create_engine(url, pool_pre_ping=True, pool_size=10, max_overflow=10, connect_args=dict(PG_LINK))


def one_at_a_time(session: Session, name: str) -> None:
    """Make the rest of `session`'s transaction wait for any other transaction that said the same `name`
    (a PostgreSQL transaction-level advisory lock, released at commit). For work that reads what is
    there and then adds what is missing, when two daemons of a cluster might do it at once (a leader that
    was paused and wakes after another took over). SQLite has one daemon and one writer: nothing to do."""
    if session.get_bind().dialect.name == "postgresql":
        key = zlib.crc32(name.encode("utf-8")) & 0x7FFFFFFF
        session.execute(text("SELECT pg_advisory_xact_lock(:c, :k)"), {"c": 0x6C6F78, "k": key})


class Database:
    """An engine plus a session factory; `session()` commits on success and rolls back on error."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.engine = make_engine(url)
        self._factory = sessionmaker(self.engine, expire_on_commit=False)

    @contextmanager
    def session(self) -> Iterator[Session]:
        s = self._factory()
        try:
            yield s
            s.commit()
        except BaseException:
            s.rollback()
            raise
        finally:
            s.close()

    def upgrade(self) -> None:
        from broadcaster.db.migrations import upgrade

        upgrade(self.engine)

    def prepare(self, *, upgrade: bool) -> None:
        """Make sure the schema is the one this code needs. A database loa never wrote to is created at the
        latest schema (a first `loa zone add`, a fresh PostgreSQL schema); one behind is migrated only when
        `upgrade` says so (`loa db upgrade`, a single daemon's start), and otherwise refused with what to
        run: several daemons and every CLI call migrating whenever they started raced each other, and a
        migration is a step to take after a backup, not on the side of `loa status`."""
        from broadcaster.db.migrations import current_revision, head_revision

        current, head = current_revision(self.engine), head_revision()
        if current == head:
            return
        if current is None or upgrade:
            self.upgrade()
            return
        from broadcaster.errors import LoaError

        raise LoaError("schema_behind", {"current": current, "head": head})

    def dispose(self) -> None:
        self.engine.dispose()
