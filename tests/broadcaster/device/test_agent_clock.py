"""The reference agent measures its clock against the daemon's (docs/protocol.md, *Clock offset*) as soon
as it connects, through the daemon's real link and a real Mosquitto, and says the offset in its retained
status, which the daemon stores. The daemon's clock here runs 2 s ahead of the machine's, so the agent,
on the machine's clock, is a speaker 2 s behind (how it then starts is the core's: test_clock.py, and
the fleet over a broker: simulation/test_clock_skew.py)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
import pytest

from broadcaster import protocol
from broadcaster.broker.managed import ManagedBroker
from broadcaster.db import Device
from broadcaster.device.config import AgentConfig
from broadcaster.device.speaker import SpeakerAgent
from broadcaster.protocol.mqtt import BrokerAddress, connect, new_client
from tests.broadcaster.dispatch.test_dispatch import Rig, make_rig
from tests.broadcaster.harness import wait_for

AHEAD = timedelta(seconds=2)


class AheadClock:
    """The daemon's clock: the machine's, 2 s ahead."""

    def now(self) -> datetime:
        return datetime.now(UTC) + AHEAD


@pytest.fixture
def rig(tmp_path: Path, broker: ManagedBroker, sqlite_url: str) -> Iterator[Rig]:
    yield from make_rig(tmp_path, broker, sqlite_url, AheadClock())


def test_the_agent_measures_its_offset_at_connect_and_the_daemon_stores_it(
    tmp_path: Path, broker: ManagedBroker, rig: Rig
) -> None:
    statuses: list[dict[str, Any]] = []
    watcher = new_client("test-status-watcher", persistent=False)
    watcher.on_connect = lambda c, *_: c.subscribe(protocol.Topics().status("thon-1-loa"), qos=1)

    def keep(_c: object, _u: object, m: mqtt.MQTTMessage) -> None:
        statuses.append(json.loads(m.payload))

    watcher.on_message = keep
    connect(watcher, BrokerAddress.parse(broker.url), persistent=False)
    watcher.loop_start()
    agent = SpeakerAgent(
        AgentConfig(
            device_id="thon-1-loa",
            kind="speaker",
            broker_url=broker.url,
            public_keys={rig.signer.kid: rig.signer.public_b64},
            state_dir=str(tmp_path / "agent"),
            sink="null",
        )
    )
    agent.start()
    try:
        said = wait_for(lambda: [s for s in statuses if "clock_offset_ms" in s], 15, "a status with the offset")
        offset, delay = said[0]["clock_offset_ms"], said[0]["clock_delay_ms"]
        # The true offset is +2000 ms; the measurement is right to within half its round trip.
        assert abs(offset - 2000) <= delay / 2 + 1, (offset, delay)
        assert said[0]["online"] is True and said[0]["kind"] == "speaker"

        def stored() -> float | None:
            with rig.db.session() as s:
                return s.get(Device, "thon-1-loa").clock_offset_ms  # type: ignore[union-attr]

        assert wait_for(stored, 10, "the offset on the device's row") == offset
        # The agent now reads the daemon's time: 2 s ahead of its own clock.
        assert agent.core.clock.offset_s == pytest.approx(2.0, abs=delay / 2000 + 0.001)
        assert rig.metrics.snapshot() == {}
    finally:
        agent.stop()
        watcher.disconnect()
        watcher.loop_stop()
