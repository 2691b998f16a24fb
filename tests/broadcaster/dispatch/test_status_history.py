"""The daemon keeps when each device went offline and came back (device_status_events), as the reports'
disconnections need: a row per change of state, none for a status that repeats the current one."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import select

from broadcaster.db import DeviceKind, DeviceStatusEvent
from broadcaster.dispatch.events import EventWriter, Metrics
from broadcaster.services import Services
from broadcaster.services.period_report import period_report
from broadcaster.services.zones import add_device, add_village
from schedules.clock import FakeClock
from tests.broadcaster.conftest import make_services

T0 = datetime(2026, 11, 25, 1, 0, tzinfo=UTC)  # 08:00 in the commune


@pytest.fixture
def svc(tmp_path: Path, database_url: str) -> Iterator[Services]:
    services = make_services(tmp_path, database_url, FakeClock(T0))
    with services.db.session() as s:
        add_village(s, "thon-1", "Thôn 1")
        add_device(s, "thon-1-loa", DeviceKind.SPEAKER, "thon-1")
    yield services
    services.db.dispose()


def test_each_change_of_state_is_kept_with_its_time_and_reported_as_a_disconnection(svc: Services) -> None:
    clock = svc.clock
    assert isinstance(clock, FakeClock)
    writer = EventWriter(svc.db, clock, Metrics(), linger_s=0.0)
    writer.start()
    try:
        for online, after in ((True, 0), (True, 60), (False, 600), (False, 30), (True, 5400), (False, 600)):
            clock.advance(timedelta(seconds=after))
            writer.put("status", "thon-1-loa", {"v": 2, "online": online})
            assert writer.flush()
        writer.put("tele", "thon-1-loa", {"v": 2, "signal": -70})  # telemetry is no change of state
        assert writer.flush()
    finally:
        writer.stop()
    with svc.db.session() as s:
        rows = [(e.at, e.online) for e in s.scalars(select(DeviceStatusEvent).order_by(DeviceStatusEvent.id))]
    assert rows == [
        (T0, True),
        (T0 + timedelta(seconds=660), False),
        (T0 + timedelta(seconds=6090), True),
        (T0 + timedelta(seconds=6690), False),
    ]
    clock.advance(timedelta(minutes=30))
    r = period_report(svc, date(2026, 11, 25), date(2026, 11, 25))
    [device] = r.devices
    assert device.disconnections == 2 and not device.online_now
    first, second = r.disconnections
    assert (first.start, first.end, first.ongoing) == (rows[1][0], rows[2][0], False)
    assert (second.start, second.end, second.ongoing) == (rows[3][0], clock.now(), True)  # cut at now
    assert device.offline_s == pytest.approx(5430 + 1800, abs=0.01)
    assert device.longest_offline_s == pytest.approx(5430, abs=0.01)
