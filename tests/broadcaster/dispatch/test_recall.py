"""A recall on its way to the devices: what reaches a device's command topic after an officer recalls an
announcement, against a real broker and database, with the clock in the test's hand.

The recall itself is the service's (broadcaster.services.recall), writing the database only, as the CLI
does; the dispatcher learns of it at its next reconcile, as the running daemon does.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import func, select

from broadcaster import protocol
from broadcaster.broker.managed import ManagedBroker
from broadcaster.db import Broadcast, BroadcastStatus, Command, Delivery, DeliveryStatus
from broadcaster.dispatch.recall import stop_id
from broadcaster.services import Services
from broadcaster.services.recall import recall
from schedules.clock import FakeClock
from tests.broadcaster.conftest import make_services
from tests.broadcaster.dispatch.test_dispatch import T0, Listener, Rig, make_rig, plan
from tests.broadcaster.harness import wait_for

START = T0 + timedelta(seconds=20)  # within the rig's lead time: due now


@pytest.fixture
def rig(tmp_path: Path, broker: ManagedBroker, database_url: str) -> Iterator[Rig]:
    yield from make_rig(tmp_path, broker, database_url, FakeClock(T0))


@pytest.fixture
def svc(tmp_path: Path, rig: Rig) -> Iterator[Services]:
    services = make_services(tmp_path, rig.db.url, rig.clock)
    yield services
    services.db.dispose()


def _announcement(rig: Rig, broadcast_id: int) -> int:
    with rig.db.session() as s:
        b = s.get(Broadcast, broadcast_id)
        assert b is not None and b.announcement_id is not None
        return b.announcement_id


def _of_type(listener: Listener, ctype: str) -> list[dict[str, object]]:
    return [c for c in listener.got if c["type"] == ctype]


def _delivery(rig: Rig, device_id: str) -> Delivery:
    with rig.db.session() as s:
        return s.scalars(select(Delivery).where(Delivery.device_id == device_id)).one()


def test_a_recalled_play_gets_one_signed_stop_naming_it(rig: Rig, svc: Services) -> None:
    listener = Listener(rig.broker, "thon-1-loa")
    try:
        bid = plan(rig.db, START, zone="thon-1")
        assert rig.dispatcher.dispatch(bid) == 1
        wait_for(lambda: _of_type(listener, "play"), 5, "the play")
        (play,) = _of_type(listener, "play")

        result = recall(svc, _announcement(rig, bid), actor="chủ tịch xã", reason="Báo nhầm")
        assert (result["cancelled_after_dispatch"], result["devices_to_stop"]) == (1, 1)
        rig.dispatcher.reconcile()
        wait_for(lambda: _of_type(listener, "stop"), 5, "the stop")
        (stop,) = _of_type(listener, "stop")
        keys = {rig.signer.kid: rig.signer.private.public_key()}
        protocol.check_command(stop, keys, T0, recipients={"thon-1-loa"})  # a device takes it
        assert stop["body"] == {"cmd": play["id"]} and stop["id"] == stop_id(str(play["id"]))
        assert stop["priority"] == "emergency" and stop["expires_at"] == play["expires_at"]

        rig.dispatcher.reconcile()  # a second pass (the loop, a poke, a restart) adds none
        with rig.db.session() as s:
            assert s.scalar(select(func.count()).select_from(Command).where(Command.type == "stop")) == 1

        # The speaker obeys, as the device core does: the play cut, the stop done.
        ack = protocol.Topics().ack("thon-1-loa")
        for message in (
            protocol.make_ack(str(play["id"]), "failed", T0, reason="stopped"),
            protocol.make_ack(str(stop["id"]), "done", T0),
        ):
            listener.client.publish(ack, protocol.encode(message), qos=1).wait_for_publish()
        wait_for(lambda: _delivery(rig, "thon-1-loa").status is DeliveryStatus.FAILED, 5, "the delivery ends")
        assert _delivery(rig, "thon-1-loa").reason == "stopped"
        with rig.db.session() as s:
            assert s.get(Broadcast, bid).status is BroadcastStatus.CANCELLED  # type: ignore[union-attr]
        assert rig.writer.flush()
        before = len(listener.got)
        assert rig.dispatcher.resend_pending(only_unsent=False) == 0  # nothing left to say to it
        assert len(listener.got) == before
    finally:
        listener.close()


def test_a_device_back_after_the_recall_gets_the_stop_and_never_the_play(rig: Rig, svc: Services) -> None:
    """It was away during the dispatch and the recall, with no session at the broker: both were lost on
    the way, and only the outbox remembers. When it comes back, the revoked play must not go out again."""
    bid = plan(rig.db, START, zone="thon-1")
    assert rig.dispatcher.dispatch(bid) == 1  # nobody listening
    recall(svc, _announcement(rig, bid), actor="cán bộ", reason="Báo nhầm")
    rig.dispatcher.reconcile()
    with rig.db.session() as s:
        play = s.scalars(select(Command).where(Command.type == "play")).one()
    listener = Listener(rig.broker, "thon-1-loa")
    try:
        online = protocol.encode(protocol.make_status(True, T0))
        listener.client.publish(protocol.Topics().status("thon-1-loa"), online, qos=1, retain=True)
        wait_for(lambda: _of_type(listener, "stop"), 5, "the stop, re-sent when the device came back")
        assert [c["type"] for c in listener.got] == ["stop"]
        assert listener.got[0]["body"] == {"cmd": play.id}
        rig.dispatcher.resend_pending(only_unsent=False)  # and however often the outbox is re-read
        wait_for(lambda: len(listener.got) == 2, 5, "the stop again")
        assert [c["type"] for c in listener.got] == ["stop", "stop"]
    finally:
        listener.close()


def test_a_recalled_planned_broadcast_never_reaches_a_device(rig: Rig, svc: Services) -> None:
    listener = Listener(rig.broker, "thon-1-loa")
    try:
        recalled = plan(rig.db, T0 + timedelta(minutes=2), zone="thon-1")
        rig.dispatcher.reconcile()  # on the timer now
        assert f"dispatch:{recalled}" in rig.dispatcher.timer.scheduled_ids()
        result = recall(svc, _announcement(rig, recalled), actor="cán bộ", reason="Báo nhầm")
        assert (result["cancelled_before_dispatch"], result["devices_to_stop"]) == (1, 0)
        rig.clock.advance(timedelta(minutes=2))
        assert rig.dispatcher.dispatch(recalled) == 0  # what the timer's wake-up does
        other = plan(rig.db, rig.clock.now() + timedelta(seconds=10), zone="thon-1")
        rig.dispatcher.reconcile()
        wait_for(lambda: listener.got, 5, "the item that was not recalled")
        assert [c["type"] for c in listener.got] == ["play"]
        with rig.db.session() as s:
            sent = s.scalars(select(Delivery.broadcast_id)).all()
        assert sent == [other]
    finally:
        listener.close()


def test_deliveries_nobody_can_confirm_end_as_recalled(rig: Rig, svc: Services) -> None:
    """A delivery a crash left without a command, and one whose device never answered the stop."""
    commanded = plan(rig.db, START, zone="thon-1")
    rig.dispatcher.dispatch(commanded)
    uncommanded = plan(rig.db, START, zone="thon-2")
    with rig.db.session() as s:
        b = s.get(Broadcast, uncommanded)
        assert b is not None
        b.status = BroadcastStatus.DISPATCHED
        s.add(Delivery(broadcast_id=uncommanded, device_id="thon-2-loa", updated_at=T0))
    for bid in (commanded, uncommanded):
        recall(svc, _announcement(rig, bid), actor="cán bộ")
    rig.dispatcher.reconcile()
    assert _delivery(rig, "thon-2-loa").status is DeliveryStatus.QUEUED  # its dispatch may still be running
    rig.clock.advance(timedelta(seconds=11))
    rig.dispatcher.reconcile()
    closed = _delivery(rig, "thon-2-loa")
    assert (closed.status, closed.reason) == (DeliveryStatus.FAILED, "recalled")
    with rig.db.session() as s:  # and it is never finished as an interrupted dispatch
        assert s.scalar(select(func.count()).select_from(Command).where(Command.device_id == "thon-2-loa")) == 0
    assert _delivery(rig, "thon-1-loa").status is not DeliveryStatus.FAILED
    rig.clock.advance(timedelta(minutes=15))  # past the play's validity, the stop never confirmed
    rig.dispatcher.reconcile()
    ended = _delivery(rig, "thon-1-loa")
    assert (ended.status, ended.reason) == (DeliveryStatus.FAILED, "recalled")
