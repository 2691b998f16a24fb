"""`one_at_a_time`: work that reads what is there and adds what is missing (the programmes' expansion)
waits for another daemon doing the same, so a leader that wakes after another took over adds nothing
twice."""

from __future__ import annotations

import threading

from sqlalchemy import text

from broadcaster.db import Database, one_at_a_time
from tests.broadcaster.harness import wait_for

WAITING = text("SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND classid = :c AND NOT granted")


def test_a_second_transaction_waits_for_the_first_to_commit(postgres_url: str) -> None:
    db = Database(postgres_url)
    order: list[str] = []
    try:
        with db.session() as first:
            one_at_a_time(first, "expand_programmes")

            def second() -> None:
                with db.session() as s:
                    one_at_a_time(s, "expand_programmes")
                    order.append("second")

            t = threading.Thread(target=second)
            t.start()
            with db.engine.connect() as watcher:  # the second is queued behind the first's lock
                wait_for(lambda: watcher.execute(WAITING, {"c": 0x6C6F78}).scalar() == 1, 10, "the second to wait")
            order.append("first")
        t.join(10)
        assert order == ["first", "second"]
        with db.session() as other:  # another name does not wait
            one_at_a_time(other, "something else")
    finally:
        db.dispose()
