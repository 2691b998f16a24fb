"""One device cannot silence the others: whatever it sends on its own topics, the daemon's MQTT loop and
its event writer keep running and every other device's records are written (docs/security.md, "The
daemon's side of the wire"). Real broker, real database (SQLite and PostgreSQL), the daemon's own parts."""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
import pytest
from sqlalchemy import select

from broadcaster import protocol
from broadcaster.broker.managed import ManagedBroker
from broadcaster.db import Command, Database, Delivery, DeliveryStatus, Device
from broadcaster.dispatch.events import EventWriter, Metrics
from broadcaster.dispatch.link import DeviceLink
from broadcaster.protocol.mqtt import BrokerAddress, connect, new_client
from schedules.clock import FakeClock
from tests.broadcaster.dispatch.test_dispatch import T0, Rig, make_rig, plan
from tests.broadcaster.harness import wait_for

EVIL, GOOD = "thon-1-loa", "thon-2-loa"
TOPICS = protocol.Topics()
NEST = b"[" * 1000 + b"]" * 1000


@pytest.fixture
def rig(tmp_path: Path, broker: ManagedBroker, database_url: str) -> Iterator[Rig]:
    yield from make_rig(tmp_path, broker, database_url, FakeClock(T0))


def _commands(db: Database) -> dict[str, str]:
    """device -> its command id."""
    with db.session() as s:
        return {c.device_id: c.id for c in s.scalars(select(Command))}


def _delivery(db: Database, device_id: str) -> Delivery:
    with db.session() as s:
        return s.scalars(
            select(Delivery).join(Command, Command.delivery_id == Delivery.id).where(Command.device_id == device_id)
        ).one()


def _device(db: Database, device_id: str) -> Device:
    with db.session() as s:
        found = s.get(Device, device_id)
        assert found is not None
        return found


def _airing(rig: Rig) -> dict[str, str]:
    bid = plan(rig.db, T0 + timedelta(seconds=10))
    assert rig.dispatcher.dispatch(bid) == 2
    assert rig.writer.flush()
    return _commands(rig.db)


class RawDevice:
    """A device's MQTT client, publishing whatever bytes it likes on its own topics."""

    def __init__(self, broker: ManagedBroker, device_id: str) -> None:
        self.id = device_id
        self.client = new_client(device_id, persistent=False)
        connected = threading.Event()
        self.client.on_connect = lambda *_: connected.set()
        connect(self.client, BrokerAddress.parse(broker.url), persistent=False)
        self.client.loop_start()
        assert connected.wait(5)

    def send(self, kind: str, payload: bytes | dict[str, Any], *, retain: bool = False) -> None:
        body = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
        info = self.client.publish(f"{TOPICS.prefix}/dev/{self.id}/{kind}", body, qos=1, retain=retain)
        info.wait_for_publish(5)

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


def test_one_bad_report_is_dropped_alone_never_its_batch(rig: Rig, caplog: pytest.LogCaptureFixture) -> None:
    """What the link hands over after parsing, put in the same batch as another device's acks."""
    cmd = _airing(rig)
    caplog.set_level(logging.WARNING, logger="broadcaster.dispatch.events")
    poison: list[tuple[str, dict[str, Any]]] = [
        ("tele", {"v": 2, "signal": 2**70}),  # overflowed the database write of the whole batch
        ("tele", {"v": 2, "volume": 101}),
        ("tele", {"v": 2, "signal": "strong"}),
        ("status", {"v": 2, "online": True, "firmware": "x\u0000"}),  # PostgreSQL refuses NUL in text
        ("status", {"v": 2, "online": True, "firmware": "\ud800"}),  # neither database stores a lone surrogate
        ("status", {"v": 2, "online": "yes"}),
        ("ack", {"v": 2, "cmd": cmd[EVIL], "state": "done", "start_error_ms": 1e308}),
        ("ack", {"v": 2, "cmd": cmd[EVIL], "state": "failed", "reason": "\ud800"}),
        ("ack", {"v": 2, "cmd": cmd[EVIL], "state": "exploded"}),
    ]
    good: list[tuple[str, dict[str, Any]]] = [
        ("ack", protocol.make_ack(cmd[GOOD], "received", T0)),
        ("status", protocol.make_status(True, T0, firmware="loa-agent/0.2", volume=80)),
        ("ack", protocol.make_ack(cmd[GOOD], "playing", T0, start_error_ms=12.5)),
        ("tele", {"v": 2, "signal": -71}),
        ("ack", protocol.make_ack(cmd[GOOD], "done", T0)),
    ]
    for i, (kind, data) in enumerate(poison):
        rig.writer.put(kind, EVIL, data)
        if i < len(good):
            rig.writer.put(good[i][0], GOOD, good[i][1])
    assert rig.writer.flush(5)

    delivery = _delivery(rig.db, GOOD)
    assert delivery.status is DeliveryStatus.DONE and delivery.start_error_ms == 12.5
    device = _device(rig.db, GOOD)
    assert (device.online, device.firmware, device.volume, device.signal) == (True, "loa-agent/0.2", 80, -71)
    evil = _device(rig.db, EVIL)
    assert (evil.online, evil.firmware, evil.volume, evil.signal) == (False, "", None, None)
    assert _delivery(rig.db, EVIL).status is DeliveryStatus.SENT
    assert rig.metrics.snapshot() == {"malformed_tele": 3, "malformed_status": 3, "malformed_ack": 3}
    assert not [r for r in caplog.records if "could not write" in r.getMessage()]  # no retry spent on poison


def test_nothing_a_device_sends_stops_the_daemon_hearing_the_others(rig: Rig) -> None:
    """The same by MQTT, through the daemon's own link, during an airing to both devices."""
    cmd = _airing(rig)
    evil, good = RawDevice(rig.broker, EVIL), RawDevice(rig.broker, GOOD)
    mine = b'{"v": 2, "cmd": "' + cmd[EVIL].encode() + b'", '
    try:
        attacks: list[tuple[str, bytes]] = [
            ("ack", NEST),  # raised RecursionError on paho's thread: no ack was heard again
            ("ack", b'{"v": 2, "x": ' + b'{"a": ' * 1000 + b"1" + b"}" * 1000 + b"}"),
            ("status", NEST),
            ("ack", mine + b'"state": "done", "x": "' + b"a" * 1_000_000 + b'"}'),
            ("tele", b'{"v": 2, "signal": ' + str(2**70).encode() + b"}"),
            ("tele", b'{"v": 2, "signal": NaN}'),
            ("ack", mine + b'"state": "playing", "start_error_ms": Infinity}'),
            ("status", b'{"v": 2, "online": true, "volume": "loud"}'),
            ("ack", mine + b'"state": "failed", "reason": "\\u0000"}'),
            ("tele", b"\xff\xfe\x00"),
            ("ack", b"[]"),
        ]
        good_acks = [
            protocol.make_ack(cmd[GOOD], "received", T0),
            protocol.make_ack(cmd[GOOD], "downloaded", T0),
            protocol.make_ack(cmd[GOOD], "playing", T0, start_error_ms=3.0),
        ]
        for i, (kind, payload) in enumerate(attacks):
            evil.send(kind, payload)
            if i < len(good_acks):
                good.send("ack", good_acks[i])
        good.send("status", protocol.make_status(True, T0, volume=70), retain=True)
        good.send("ack", protocol.make_ack(cmd[GOOD], "done", T0))  # after every attack
        expected = {
            "too_deep": 3, "oversized_payload": 1, "malformed_json": 4, "malformed_ack": 1,
            "malformed_status": 1, "malformed_tele": 1,
        }  # fmt: skip
        wait_for(lambda: rig.metrics.snapshot() == expected, 10, f"every attack counted: {rig.metrics.snapshot()}")
        wait_for(lambda: _delivery(rig.db, GOOD).status is DeliveryStatus.DONE, 10, "the good device's last ack")
        assert _delivery(rig.db, GOOD).start_error_ms == 3.0
        assert _device(rig.db, GOOD).volume == 70 and _device(rig.db, GOOD).online
        assert _delivery(rig.db, EVIL).status is DeliveryStatus.SENT
        assert rig.link.running and rig.writer.running
    finally:
        evil.close()
        good.close()


class Heard(EventWriter):
    """The daemon's writer, recording what the link hands it (and failing when told to)."""

    def __init__(self, db: Database, fail_on: bytes = b"") -> None:
        super().__init__(db, FakeClock(T0), Metrics())
        self.heard: list[Any] = []
        self.fail_on = fail_on

    def put(self, kind: str, device_id: str, data: Any) -> None:
        if self.fail_on and json.dumps(data).encode().find(self.fail_on) >= 0:
            raise RuntimeError("a handler that fails")
        self.heard.append(data)


def test_a_message_whose_handler_fails_is_counted_acknowledged_and_never_redelivered(rig: Rig) -> None:
    address = BrokerAddress.parse(rig.broker.url)
    writer = Heard(rig.db, fail_on=b"poison")
    link = DeviceLink(address, TOPICS, writer, writer.metrics, client_id="daemon-x", group="g")
    link.start()
    device = RawDevice(rig.broker, GOOD)
    try:
        device.send("tele", {"v": 2, "signal": -70, "note": "poison"})
        device.send("tele", {"v": 2, "signal": -71})
        wait_for(lambda: writer.heard, 5, "the next message")
        assert writer.metrics.snapshot() == {"handler_error": 1}
        assert link.running and [h["signal"] for h in writer.heard] == [-71]
        link.stop()  # the daemon restarts on its persistent session

        again = Heard(rig.db)
        link = DeviceLink(address, TOPICS, again, again.metrics, client_id="daemon-x", group="g")
        link.start()
        device.send("tele", {"v": 2, "signal": -72})
        wait_for(lambda: again.heard, 5, "a message after the restart")
        assert [h["signal"] for h in again.heard] == [-72]  # the failed one was acknowledged, not queued again
    finally:
        link.stop()
        device.close()


@pytest.mark.filterwarnings("ignore::pytest.PytestUnhandledThreadExceptionWarning")
def test_the_link_and_the_writer_say_when_their_thread_has_stopped(rig: Rig) -> None:
    assert rig.link.running and rig.writer.running

    def dies(_c: mqtt.Client, _u: Any, _m: mqtt.MQTTMessage) -> None:
        raise RecursionError("what a nest of brackets did before")

    rig.link.client.on_message = dies  # paho's loop ends with an exception out of a callback
    device = RawDevice(rig.broker, GOOD)
    try:
        device.send("ack", b"{}")
        wait_for(lambda: not rig.link.running, 5, "the MQTT loop to die")
    finally:
        device.close()
    rig.writer.stop()
    assert not rig.writer.running
