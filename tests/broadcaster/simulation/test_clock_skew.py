"""Speakers whose clocks are 2 s fast or 2 s slow still start with the others: each measures its offset from
the daemon's clock over MQTT (docs/protocol.md, *Clock offset*), reports it, and corrects its start by it.

Real Mosquitto, real SQLite, the daemon's real parts (its link answers the time requests, its writer
stores the offsets), the fleet simulator's real worker process. The starts are measured on the machine's
clock, the true one. The bound is generous (the start-error goal itself is bench/fanout.py's): uncorrected,
a 2 s skew misses it by 2 s."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from broadcaster import protocol
from broadcaster.broker.managed import ManagedBroker
from broadcaster.db import Database, DeliveryStatus, Device
from broadcaster.simulation.commune import provision_fleet
from broadcaster.simulation.fleet import SimDevice
from tests.broadcaster.harness import wait_for
from tests.broadcaster.simulation.test_fleet import audio_server, daemon_parts, db, deliveries, fleet_for, plan_bulletin

__all__ = ["db"]  # the fixture, shared with test_fleet

BOUND_S = 0.5  # generous; a 2 s skew left uncorrected misses it fourfold
SKEWS = {"thon-1-loa-1": 2.0, "thon-1-loa-2": -2.0, "thon-1-loa-3": 0.0}


@pytest.mark.slow
def test_speakers_with_clocks_two_seconds_off_start_on_the_daemons_time(
    tmp_path: Path, broker: ManagedBroker, db: Database
) -> None:
    devices = provision_fleet(db, [SimDevice(d, "speaker", clock_skew_s=s) for d, s in SKEWS.items()])
    signer = protocol.load_or_create_signer(tmp_path / "keys" / "daemon-ed25519.pem")
    with audio_server(tmp_path / "www") as audio, daemon_parts(db, broker.url, signer, audio) as daemon:
        fleet = fleet_for(tmp_path, broker, signer, devices, 1)
        fleet.start(timeout=60)
        try:

            def offsets() -> dict[str, float | None]:
                with db.session() as s:
                    return {d: s.get(Device, d).clock_offset_ms for d in SKEWS}  # type: ignore[union-attr]

            wait_for(lambda: None not in offsets().values(), 20, "every speaker's clock offset in the database")
            for device_id, offset in offsets().items():
                assert offset == pytest.approx(-SKEWS[device_id] * 1000, abs=50), device_id  # the daemon's minus its
            with db.session() as s:
                checked = s.get(Device, "thon-1-loa-1").clock_checked_at  # type: ignore[union-attr]
            assert checked is not None and abs(checked - datetime.now(UTC)) < timedelta(seconds=30)

            start = datetime.now(UTC) + timedelta(seconds=3)
            bid = plan_bulletin(db, audio, start)  # the timer dispatches it, 2 s ahead
            wait_for(
                lambda: (
                    {d.status for d in deliveries(db, bid)} == {DeliveryStatus.DONE}
                    and len(deliveries(db, bid)) == len(SKEWS)
                ),
                30,
                "every speaker done",
            )
            plays = {p.device_id: p for p in fleet.report().plays}
            assert sorted(plays) == sorted(SKEWS)
            for device_id, play in plays.items():
                true_error = play.started_at - start.timestamp()
                assert abs(true_error) < BOUND_S, (
                    f"{device_id} started {true_error * 1000:+.0f} ms off on the true clock"
                )
                assert abs(play.start_error_ms) < BOUND_S * 1000  # and says so
            assert daemon.metrics.snapshot() == {}
        finally:
            report = fleet.stop()
    assert not report.refused
