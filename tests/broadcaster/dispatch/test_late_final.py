"""A device's own final outcome replaces the daemon's `expired: no_ack` guess, and nothing else moves a
final record (broadcaster.dispatch.events `advances`; docs/protocol.md, "Final outcomes, said again")."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import select

from broadcaster import protocol
from broadcaster.broker.managed import ManagedBroker
from broadcaster.db import Command, Delivery, DeliveryStatus
from broadcaster.services.reports import heard
from schedules.clock import FakeClock
from tests.broadcaster.dispatch.test_dispatch import T0, Rig, make_rig, plan


@pytest.fixture
def rig(tmp_path: Path, broker: ManagedBroker, database_url: str) -> Iterator[Rig]:
    yield from make_rig(tmp_path, broker, database_url, FakeClock(T0))


def _commands(rig: Rig, bid: int) -> dict[str, str]:
    with rig.db.session() as s:
        rows = s.execute(select(Command.device_id, Command.id).join(Delivery).where(Delivery.broadcast_id == bid))
        return {device: cid for device, cid in rows}


def _record(rig: Rig, bid: int, device_id: str) -> tuple[DeliveryStatus, str, float | None, datetime]:
    with rig.db.session() as s:
        d = s.scalars(select(Delivery).where(Delivery.broadcast_id == bid, Delivery.device_id == device_id)).one()
        return d.status, d.reason, d.played_s, d.updated_at


def _ack(rig: Rig, device_id: str, cid: str, state: str, **extra: object) -> None:
    rig.writer.put("ack", device_id, protocol.make_ack(cid, state, rig.clock.now(), **extra))  # type: ignore[arg-type]
    assert rig.writer.flush()


def _expire(rig: Rig) -> None:
    """Past the commands' expiry (ten minutes): reconcile closes what is still open as `expired: no_ack`."""
    rig.clock.advance(timedelta(minutes=11))
    rig.dispatcher.reconcile()


def test_a_late_done_replaces_the_no_ack_guess_but_no_device_outcome(rig: Rig) -> None:
    bid = plan(rig.db, T0 + timedelta(seconds=10))
    rig.dispatcher.dispatch(bid)
    assert rig.writer.flush()
    cmd = _commands(rig, bid)
    _ack(rig, "thon-1-loa", cmd["thon-1-loa"], "received")  # its `done` will be lost with a killed broker
    _ack(rig, "thon-2-loa", cmd["thon-2-loa"], "done", played_s=1.0)
    _expire(rig)
    assert _record(rig, bid, "thon-1-loa")[:2] == (DeliveryStatus.EXPIRED, "no_ack")
    assert _record(rig, bid, "thon-2-loa")[:2] == (DeliveryStatus.DONE, "")  # the guess never replaces a device

    # The writer still remembers thon-1 as `received`: the database's guard must let the final ack in.
    _ack(rig, "thon-1-loa", cmd["thon-1-loa"], "done", played_s=1.0)
    status, reason, played, first = _record(rig, bid, "thon-1-loa")
    assert (status, reason, played) == (DeliveryStatus.DONE, "", 1.0)
    assert heard(status, played, "announcement")  # the report counts it

    rig.clock.advance(timedelta(seconds=5))  # a duplicate, or any other word, changes nothing now
    _ack(rig, "thon-1-loa", cmd["thon-1-loa"], "done", played_s=1.0)
    _ack(rig, "thon-1-loa", cmd["thon-1-loa"], "failed", reason="playback_failed: x")
    _ack(rig, "thon-2-loa", cmd["thon-2-loa"], "failed", reason="playback_failed: x")
    assert _record(rig, bid, "thon-1-loa") == (DeliveryStatus.DONE, "", 1.0, first)
    assert _record(rig, bid, "thon-2-loa")[:2] == (DeliveryStatus.DONE, "")


def test_a_late_outcome_read_from_the_database_replaces_the_guess(rig: Rig) -> None:
    bid = plan(rig.db, T0 + timedelta(seconds=10))
    rig.dispatcher.dispatch(bid)
    assert rig.writer.flush()
    cmd = _commands(rig, bid)
    _expire(rig)  # no ack at all came back
    rig.writer.rows.clear()  # e.g. a restarted daemon: the rows come from the database
    _ack(rig, "thon-1-loa", cmd["thon-1-loa"], "done")
    _ack(rig, "thon-2-loa", cmd["thon-2-loa"], "failed", reason="download_failed: HTTP 404")
    assert _record(rig, bid, "thon-1-loa")[:2] == (DeliveryStatus.DONE, "")
    assert _record(rig, bid, "thon-2-loa")[:2] == (DeliveryStatus.FAILED, "download_failed: HTTP 404")
    rig.writer.rows.clear()
    _ack(rig, "thon-2-loa", cmd["thon-2-loa"], "done")  # the device's own word is final
    _ack(rig, "thon-2-loa", cmd["thon-2-loa"], "playing")
    assert _record(rig, bid, "thon-2-loa")[:2] == (DeliveryStatus.FAILED, "download_failed: HTTP 404")
