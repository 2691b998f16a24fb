"""A PostgreSQL server the daemon cannot hear is an error in bounded time, not a wait for ever."""

from __future__ import annotations

import socket
import threading

import pytest
from sqlalchemy import text
from sqlalchemy.exc import OperationalError

from broadcaster.db import Database
from broadcaster.db.engine import PG_LINK


def test_a_server_that_accepts_and_never_answers_is_given_up_on() -> None:
    """What a half-dead server or a proxy in front of a dead one does: the TCP connection is made, and
    nothing ever comes back. libpq would wait for it for ever; the daemon's ack writer and reconcile
    loop with it."""
    mute = socket.create_server(("127.0.0.1", 0))
    held: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        mute.settimeout(0.2)
        while not stop.is_set():
            try:
                held.append(mute.accept()[0])  # kept open, never read nor answered
            except TimeoutError:
                continue

    acceptor = threading.Thread(target=accept, daemon=True)
    acceptor.start()
    db = Database(f"postgresql+psycopg://loa@127.0.0.1:{mute.getsockname()[1]}/test")
    outcome: list[BaseException | None] = []

    def connect() -> None:
        try:
            with db.engine.connect() as conn:
                conn.execute(text("SELECT 1"))
            outcome.append(None)
        except BaseException as exc:  # what the writer's retry loop would see
            outcome.append(exc)

    worker = threading.Thread(target=connect, daemon=True)
    worker.start()
    worker.join(timeout=PG_LINK["connect_timeout"] * 3)  # generous under load; unbounded without the limit
    try:
        assert not worker.is_alive(), "still waiting on a server that never answers"
        assert held, "the connection was never made: this tested nothing"
        with pytest.raises(OperationalError):
            raise outcome[0]  # type: ignore[misc]
    finally:
        stop.set()
        acceptor.join(timeout=5)
        db.dispose()
        for conn in held:
            conn.close()
        mute.close()
