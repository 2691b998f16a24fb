"""Which daemon leads: a PostgreSQL advisory lock on a session of its own (broadcaster.runtime.leader),
on a real PostgreSQL. The polls are driven by hand (`check`), so nothing here depends on timing."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import create_engine, select, text

from broadcaster import protocol
from broadcaster.broker.managed import ManagedBroker
from broadcaster.config import DispatchConfig
from broadcaster.db import Broadcast, BroadcastStatus, Database, DeviceKind
from broadcaster.errors import LoaError
from broadcaster.protocol.mqtt import BrokerAddress
from broadcaster.runtime.leader import Leadership
from broadcaster.runtime.path import DevicePath
from broadcaster.services.zones import add_device, add_village, ensure_commune
from schedules.clock import SystemClock
from tests.broadcaster.dispatch.test_dispatch import plan
from tests.broadcaster.harness import wait_for

NEVER = 3600.0  # the polling thread's interval: the tests poll by hand


class Contender:
    """A Leadership with a record of what it was told."""

    def __init__(self, url: str, instance: str, **kw: float) -> None:
        self.events: list[str] = []
        self.lead = Leadership(
            url,
            instance=instance,
            on_gain=lambda: self.events.append("gain"),
            on_loss=lambda: self.events.append("loss"),
            poll_s=NEVER,
            **kw,  # type: ignore[arg-type]
        )


def _end_session(url: str, pid: int | None) -> None:
    """What PostgreSQL does when the leader's process dies (kill -9 closes its socket) or its keepalives
    or `idle_session_timeout` run out: the session ends, and its locks with it."""
    assert pid is not None
    engine = create_engine(url)
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:  # a fresh look each time
        assert conn.execute(text("SELECT pg_terminate_backend(:p)"), {"p": pid}).scalar()
        gone = text("SELECT count(*) = 0 FROM pg_stat_activity WHERE pid = :p")  # its locks go with it
        wait_for(lambda: conn.execute(gone, {"p": pid}).scalar(), 10, "the session to end")
    engine.dispose()


@pytest.fixture
def contenders(postgres_url: str) -> Iterator[tuple[Contender, Contender]]:
    a, b = Contender(postgres_url, "a"), Contender(postgres_url, "b")
    yield a, b
    for c in (a, b):
        c.lead.stop()


def test_one_daemon_leads_and_another_takes_over_when_its_lock_session_ends(
    contenders: tuple[Contender, Contender], postgres_url: str
) -> None:
    a, b = contenders
    a.lead.start()
    b.lead.start()
    assert a.lead.leading and a.events == ["gain"]
    assert not b.lead.leading and b.events == []
    b.lead.check()
    assert not b.lead.leading  # the lock is held

    _end_session(postgres_url, a.lead._pid)  # the leader is killed
    b.lead.check()
    assert b.lead.leading and b.events == ["gain"]
    a.lead.check()  # the old leader notices at its next poll and stops its parts
    assert not a.lead.leading and a.events == ["gain", "loss"]
    a.lead.check()  # and, connected again, follows
    assert not a.lead.leading and a.events == ["gain", "loss"]

    b.lead.stop()  # a leader that stops frees the lock at once
    assert b.events == ["gain", "loss"]
    a.lead.check()
    assert a.lead.leading and a.events == ["gain", "loss", "gain"]


def test_the_lock_session_is_ended_by_postgresql_when_it_falls_silent(postgres_url: str) -> None:
    c = Contender(postgres_url, "a", lock_timeout_s=7)
    c.lead.start()
    try:
        conn = c.lead._conn
        assert conn is not None
        # A paused leader's kernel still answers keepalives: only the server's idle timeout ends it.
        assert conn.execute(text("SHOW idle_session_timeout")).scalar() == "7s"
        assert conn.execute(text("SHOW tcp_keepalives_idle")).scalar() in ("5", "0")  # 0: a Unix socket
    finally:
        c.lead.stop()


def test_the_lock_session_speaks_while_the_leaders_parts_start(postgres_url: str) -> None:
    """Catching up after a failover may take longer than the lock's silence allowance."""
    slow = Leadership(
        postgres_url,
        instance="a",
        on_gain=lambda: time.sleep(3.0),  # three times the allowance below
        on_loss=lambda: None,
        poll_s=0.3,
        lock_timeout_s=1,
    )
    slow._stop.set()  # no polling thread: this test polls by hand
    try:
        slow.check()
        assert slow.leading
        slow.check()  # the session is still there
        assert slow.leading
    finally:
        slow.stop()


def test_a_leader_whose_parts_fail_to_start_gives_the_lead_up(postgres_url: str) -> None:
    def broken() -> None:
        raise RuntimeError("no timer today")

    events: list[str] = []
    a = Leadership(postgres_url, instance="a", on_gain=broken, on_loss=lambda: events.append("loss"), poll_s=NEVER)
    b = Contender(postgres_url, "b")
    try:
        a.start()
        assert not a.leading and events == ["loss"]
        b.lead.start()
        assert b.lead.leading  # the lock was freed for another daemon
    finally:
        a.stop()
        b.lead.stop()


def test_a_second_daemon_with_the_same_instance_name_is_refused(postgres_url: str) -> None:
    first, second = Contender(postgres_url, "xa-1"), Contender(postgres_url, "xa-1")
    first.lead.start()
    try:
        with pytest.raises(LoaError) as refused:
            second.lead.start()
        assert refused.value.code == "instance_taken" and "xa-1" in refused.value.message("en")
    finally:
        first.lead.stop()
        second.lead.stop()


@pytest.fixture
def path(tmp_path: Path, broker: ManagedBroker, postgres_url: str) -> Iterator[DevicePath]:
    db = Database(postgres_url)
    db.upgrade()
    with db.session() as s:
        ensure_commune(s, "Xã thử")
        add_village(s, "thon-1", "Thôn 1")
        add_device(s, "thon-1-loa", DeviceKind.SPEAKER, "thon-1")
    p = DevicePath.build(
        db,
        SystemClock(),
        DispatchConfig(lead_s=30, validity_s=600, reconcile_s=0.1),
        protocol.load_or_create_signer(tmp_path / "k.pem"),
        BrokerAddress.parse(broker.url),
        lambda sha, ext: f"http://127.0.0.1:1/audio/{sha}.{ext}",
    )
    p.start(dispatch=False)
    yield p
    p.stop()
    db.dispose()


def _status(db: Database, bid: int) -> BroadcastStatus:
    with db.session() as s:
        return s.scalars(select(Broadcast.status).where(Broadcast.id == bid)).one()


def test_a_leader_whose_lock_session_ended_dispatches_nothing(
    path: DevicePath, contenders: tuple[Contender, Contender], postgres_url: str
) -> None:
    a, b = contenders
    a.lead.start()
    b.lead.start()
    outbox = path.dispatcher.outbox
    outbox.fence = a.lead.fence
    bid = plan(path.dispatcher.db, SystemClock().now() + timedelta(seconds=10))

    # Paused past its lock's end: its session is gone and another daemon leads, but it has not polled yet
    # and still thinks it leads.
    _end_session(postgres_url, a.lead._pid)
    b.lead.check()
    assert a.lead.leading and b.lead.leading
    assert outbox.dispatch(bid) == 0
    assert _status(path.dispatcher.db, bid) is BroadcastStatus.PLANNED  # left for the new leader

    outbox.fence = b.lead.fence
    assert outbox.dispatch(bid) == 1
    assert _status(path.dispatcher.db, bid) is BroadcastStatus.DISPATCHED


def test_a_daemon_that_lost_the_lead_and_took_it_back_fires_again(path: DevicePath) -> None:
    path.lead()
    path.follow()
    assert not path.dispatcher.timer.running  # type: ignore[attr-defined]
    path.lead()
    # Planned after the start's catch-up: only the (new) reconcile loop can find it.
    bid = plan(path.dispatcher.db, SystemClock().now() + timedelta(seconds=5))  # due: within its lead time
    wait_for(lambda: _status(path.dispatcher.db, bid) is BroadcastStatus.DISPATCHED, 10, "the dispatch")
