"""The daemon's side of the clock offset exchange (docs/protocol.md, *Clock offset*): every time request is
answered at once, signed, for that device only, with the daemon's clock; a flood or nonsense is counted,
never signed. The link's publish is recorded instead of sent (the exchange over a real broker is in
tests/broadcaster/simulation/test_clock_skew.py)."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, cast

import paho.mqtt.client as mqtt

from broadcaster import protocol
from broadcaster.broker.access import acl_text
from broadcaster.dispatch.events import EventWriter, Metrics
from broadcaster.dispatch.link import DeviceLink
from broadcaster.protocol.mqtt import BrokerAddress
from schedules.clock import FakeClock

T0 = datetime(2026, 11, 25, 3, 0, tzinfo=UTC)
TOPICS = protocol.Topics()


def _message(topic: str, payload: bytes) -> mqtt.MQTTMessage:
    msg = mqtt.MQTTMessage(topic=topic.encode())
    msg.payload = payload
    return msg


def _link(
    tmp_path: Path, signed: bool = True
) -> tuple[DeviceLink, list[tuple[str, bytes]], protocol.Signer, FakeClock]:
    signer = protocol.load_or_create_signer(tmp_path / "k.pem")
    clock = FakeClock(T0)
    metrics = Metrics()
    link = DeviceLink(
        BrokerAddress.parse("mqtt://127.0.0.1:1"),
        TOPICS,
        cast(EventWriter, None),  # a time request writes nothing
        metrics,
        group="g",
        signer=signer if signed else None,
        clock=clock if signed else None,
    )
    sent: list[tuple[str, bytes]] = []

    def publish(topic: str, payload: bytes, **_: Any) -> None:
        sent.append((topic, payload))

    link.client.publish = publish  # type: ignore[assignment,method-assign]
    return link, sent, signer, clock


def _ask(link: DeviceLink, device_id: str, payload: bytes) -> None:
    link._on_message(link.client, None, _message(TOPICS.time(device_id), payload))


def test_a_time_request_is_answered_signed_for_that_device_with_the_daemons_clock(tmp_path: Path) -> None:
    link, sent, signer, _ = _link(tmp_path)
    _ask(link, "thon-1-loa", protocol.encode(protocol.make_time_request(123_456)))
    ((topic, payload),) = sent
    assert topic == "pa/v2/dev/thon-1-loa/clock"
    keys = {signer.kid: signer.private.public_key()}
    t1, t2, t3 = protocol.check_time_reply(json.loads(payload), keys, "thon-1-loa")
    assert (t1, t2, t3) == (123_456, protocol.to_us(T0.timestamp()), protocol.to_us(T0.timestamp()))

    _ask(link, "thon-1-loa", protocol.encode(protocol.make_time_request(123_999)))  # at once again: a flood
    _ask(link, "thon-1-loa", b'{"v": 2, "t1": -5}')
    _ask(link, "thon-1-loa", b'{"v": 2, "t1": 1.5}')
    _ask(link, "thon-1-loa", b"[" * 5000)
    assert len(sent) == 1
    assert link.metrics.snapshot() == {"time_request_flood": 1, "malformed_time_request": 3}
    _ask(link, "thon-2-loa", protocol.encode(protocol.make_time_request(7)))  # another device is not held back
    assert [t for t, _ in sent] == ["pa/v2/dev/thon-1-loa/clock", "pa/v2/dev/thon-2-loa/clock"]


def test_a_link_without_the_key_answers_nothing(tmp_path: Path) -> None:
    link, sent, _, _ = _link(tmp_path, signed=False)
    _ask(link, "thon-1-loa", protocol.encode(protocol.make_time_request(1)))
    assert sent == [] and link.metrics.snapshot() == {}


def test_the_acl_lets_each_device_ask_and_hear_only_its_own_clock() -> None:
    prefix = "pa/v2"
    acl = acl_text(["loa-daemon"], [("thon-1-loa", ["thon-1"])], prefix)
    device_part, daemon_part = acl.split("user loa-daemon")
    assert f"pattern write {prefix}/dev/%u/time" in device_part
    assert f"pattern read {prefix}/dev/%u/clock" in device_part
    assert f"topic read {prefix}/dev/+/time" in daemon_part
    assert f"topic write {prefix}/dev/+/clock" in daemon_part
