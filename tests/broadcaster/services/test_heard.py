"""One rule for what was heard, read the same way by every count an officer sees: an announcement's
"x/y loa đã phát xong", a broadcast's summary, an airing's "41/43 loa đã phát" and the report.

An item is heard when it played to its end (`done`); a relay, when it relayed some seconds (`played_s`
in the device's final ack, stored in `deliveries.played_s`); a device that does not say `played_s` is
taken at its word. On SQLite and PostgreSQL: the rule is SQL in the report.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from broadcaster.db import (
    Announcement,
    Broadcast,
    Delivery,
    DeliveryStatus,
    DeviceKind,
    Programme,
)
from broadcaster.dispatch.reports import BadReport, check_report
from broadcaster.services.announcements import speakers_summary
from broadcaster.services.reports import delivery_summary, heard, report
from broadcaster.services.views import broadcast_view
from broadcaster.services.zones import add_device, add_village, ensure_commune
from schedules.clock import FakeClock
from tests.broadcaster.conftest import make_services

NOW = datetime(2026, 12, 1, 3, 0, tzinfo=UTC)
SPEAKERS = [f"thon-1-loa-{n}" for n in range(1, 5)]


@pytest.mark.parametrize(
    "status, played_s, kind, expected",
    [
        (DeliveryStatus.DONE, None, "notice", True),  # older firmware: taken at its word
        (DeliveryStatus.DONE, 12.5, "notice", True),
        (DeliveryStatus.DONE, 0.0, "relay", False),  # "done", but not a second came out
        (DeliveryStatus.FAILED, 0.0, "relay", False),  # stream_unreachable
        (DeliveryStatus.FAILED, 300.0, "relay", True),  # a relay cut after five minutes was heard that long
        (DeliveryStatus.FAILED, 3.0, "notice", False),  # an item cut midway was not heard whole
        (DeliveryStatus.PLAYING, None, "relay", False),  # not over: counted as on air, not as heard
    ],
)
def test_the_rule(status: DeliveryStatus, played_s: float | None, kind: str, expected: bool) -> None:
    assert heard(status, played_s, kind) is expected


def test_every_count_reads_played_seconds_the_same_way(tmp_path: Path, database_url: str) -> None:
    svc = make_services(tmp_path, database_url, FakeClock(NOW))
    with svc.db.session() as s:
        ensure_commune(s, "Xã thử")
        add_village(s, "thon-1", "Thôn 1")
        for d in SPEAKERS:
            add_device(s, d, DeviceKind.SPEAKER, "thon-1")
        add_device(s, "thon-1-led", DeviceKind.LED, "thon-1")
        item = Announcement(title="Họp thôn", text="Họp thôn", created_at=NOW, created_by="t")
        prog = Programme(
            kind="relay", title="VOV1", targets='["thon-1"]', recurrence="06:00", starts_on="2026-12-01",
            duration_ms=1_800_000, stream_url="http://radio.example/vov1", priority="background",
            created_at=NOW, created_by="t",
        )  # fmt: skip
        s.add_all([item, prog])
        s.flush()
        notice = Broadcast(announcement_id=item.id, title="Họp thôn", zone_id="thon-1", start_at=NOW,
                           expires_at=NOW + timedelta(minutes=15), duration_ms=5000)  # fmt: skip
        relay = Broadcast(programme_id=prog.id, title="VOV1", zone_id="thon-1", kind="relay", priority="background",
                          start_at=NOW + timedelta(minutes=1), expires_at=NOW + timedelta(minutes=31),
                          duration_ms=1_800_000)  # fmt: skip
        s.add_all([notice, relay])
        s.flush()
        rows = [
            (notice, SPEAKERS[0], DeliveryStatus.DONE, "", 5.01),
            (notice, SPEAKERS[1], DeliveryStatus.DONE, "", None),  # older firmware
            (notice, SPEAKERS[2], DeliveryStatus.FAILED, "preempted", 2.0),
            (notice, "thon-1-led", DeliveryStatus.DONE, "", None),
            (relay, SPEAKERS[0], DeliveryStatus.DONE, "", 1783.2),  # reconnected, heard 29 min 43 s
            (relay, SPEAKERS[1], DeliveryStatus.FAILED, "stream_unreachable: Connection refused", 0.0),
            (relay, SPEAKERS[2], DeliveryStatus.DONE, "", 0.0),  # "done", nothing came out
            (relay, SPEAKERS[3], DeliveryStatus.FAILED, "preempted", 120.0),  # cut by an alert after 2 min
        ]
        for b, dev, status, reason, played in rows:
            s.add(Delivery(broadcast_id=b.id, device_id=dev, status=status, reason=reason, played_s=played,
                           updated_at=NOW))  # fmt: skip
        s.flush()
        assert speakers_summary(s, item.id) == "2/3 loa đã phát xong"
        assert broadcast_view(s, notice)["summary"] == "3/4 thiết bị đã phát xong"  # the board counts here
        assert broadcast_view(s, relay)["summary"] == "2/4 thiết bị đã phát xong"
        on_notice, on_relay = delivery_summary(s, notice.id), delivery_summary(s, relay.id)
    assert (on_notice.speakers_played, on_notice.not_played, on_notice.relayed_s) == (2, {"preempted": 1}, None)
    assert on_relay.speakers_played == 2
    assert on_relay.not_played == {"stream_unreachable": 1, "nothing_played": 1}
    assert on_relay.relayed_s == pytest.approx(1903.2)
    assert "đã tiếp sóng 31 phút 43 giây" in on_relay.text_vi()
    got = report(svc, NOW - timedelta(hours=1), NOW + timedelta(hours=1))
    assert (got["items"], got["plays"], got["relay_plays"]) == (2, 4, 2)
    assert got["relay_seconds"] == pytest.approx(1903.2)
    assert "2 lượt tiếp sóng (31 phút 43 giây)" in got["text"]
    svc.db.dispose()


@pytest.mark.parametrize("value", [-1, 86_400.5, True, "12", None])
def test_a_played_seconds_the_daemon_cannot_store_refuses_the_ack(value: object) -> None:
    with pytest.raises(BadReport) as bad:
        check_report("ack", {"v": 2, "cmd": "c1", "state": "done", "played_s": value})
    assert bad.value.code == "malformed_ack"
    ok = check_report("ack", {"v": 2, "cmd": "c1", "state": "done", "played_s": 1783.2})
    assert ok.played_s == 1783.2  # type: ignore[union-attr]
