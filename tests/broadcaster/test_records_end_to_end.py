"""True records (#15 item 2): what the officer reads says what the villages heard.

Everything is real: the daemon process, Mosquitto, a SQLite file, espeak-ng and ffmpeg, two speaker and
two LED-board agent processes with file sinks (what `make run` runs), and for relays an HTTP station
that streams MP3 in real time and can drop its listeners (tests/broadcaster/streams.py).

- An item placed right at the end of the one on air (a priority item after a bulletin) used to cut the
  first one's last milliseconds on every speaker: `failed / preempted`, "0/2 loa đã phát xong", left out
  of the report, though it played to its end.
- A relay whose stream could not be opened was `done`; one whose stream dropped was never heard again.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from sqlalchemy import func, select

from broadcaster.broker.managed import ManagedBroker
from broadcaster.db import (
    AnnouncementState,
    Broadcast,
    Database,
    Delivery,
    DeliveryStatus,
    Device,
    Programme,
)
from broadcaster.services.reports import delivery_summary
from tests.broadcaster.harness import DaemonProcess, village_fleet, wait_for, write_config
from tests.broadcaster.streams import Station, closed_port

pytestmark = pytest.mark.slow

SPEAKERS = ("thon-1-loa", "thon-2-loa")
FINAL = (DeliveryStatus.DONE, DeliveryStatus.FAILED, DeliveryStatus.EXPIRED)


def _online(db: Database) -> bool:
    with db.session() as s:
        return s.scalar(select(func.count()).select_from(Device).where(Device.online.is_(True))) == 4


def _deliveries(db: Database, broadcast_ids: list[int]) -> dict[tuple[int, str], Delivery]:
    with db.session() as s:
        rows = s.scalars(select(Delivery).where(Delivery.broadcast_id.in_(broadcast_ids)))
        return {(d.broadcast_id, d.device_id): d for d in rows}


def _final(db: Database, broadcast_ids: list[int], expected: int) -> bool:
    ds = _deliveries(db, broadcast_ids)
    return len(ds) == expected and all(d.status in FINAL for d in ds.values())


def _get(daemon: DaemonProcess, path: str, **params: str) -> object:
    resp = httpx.get(
        daemon.api_url + path, params=params, headers={"Authorization": f"Bearer {daemon.token}"}, timeout=30
    )
    assert resp.status_code == 200, resp.text
    return resp.json()


def test_an_item_and_the_priority_item_placed_at_its_end_are_both_heard_on_every_speaker(
    tmp_path: Path, broker: ManagedBroker, sqlite_url: str
) -> None:
    agents, _ = village_fleet(tmp_path, sqlite_url, broker.url)
    config = write_config(tmp_path / "loa.toml", tmp_path / "data", sqlite_url, broker.url, lead_s=2, reconcile_s=0.2)
    daemon = DaemonProcess(config, tmp_path / "data", tmp_path / "daemon.log").start()
    db = Database(sqlite_url)
    try:
        wait_for(lambda: _online(db), 20, "four devices online")
        first = daemon.post(
            "/api/v1/announcements",
            {
                "text": "UBND xã thông báo: 7h30 sáng mai họp thôn tại nhà văn hóa.",
                "at": (datetime.now(UTC) + timedelta(seconds=8)).isoformat(),
                "title": "Họp thôn",
            },
        )
        assert first.status_code == 201, first.text
        one = first.json()
        end = datetime.fromisoformat(one["broadcasts"][0]["start_at"]) + timedelta(
            milliseconds=one["audio"]["duration_ms"]
        )
        second = daemon.post(
            "/api/v1/announcements",
            {"text": "Thông báo thu quỹ phòng chống thiên tai.", "at": end.isoformat(), "priority": "priority"},
        )
        assert second.status_code == 201, second.text
        two = second.json()
        assert {b["start_at"] for b in two["broadcasts"]} == {end.isoformat()}  # back to back, as placed
        ids = [b["id"] for b in one["broadcasts"] + two["broadcasts"]]
        wait_for(lambda: _final(db, ids, 8), 45, "both items final on the four devices")

        records = _deliveries(db, ids)
        assert {(k[1], d.status, d.reason) for k, d in records.items()} == {
            (dev, DeliveryStatus.DONE, "") for dev in (*SPEAKERS, "thon-1-led", "thon-2-led")
        }, [(k, d.status, d.reason, d.start_error_ms, d.played_s) for k, d in records.items()]
        for item in (one, two):
            mine = {b["id"] for b in item["broadcasts"]}
            heard = [d.played_s for (bid, dev), d in records.items() if bid in mine and dev in SPEAKERS]
            assert len(heard) == 2 and all(  # the seconds each speaker was on air: the item's length
                s is not None and abs(s - item["audio"]["duration_ms"] / 1000) < 0.6 for s in heard
            ), heard
            got = _get(daemon, f"/api/v1/announcements/{item['id']}")
            assert isinstance(got, dict) and got["summary"] == "2/2 loa đã phát xong"
            with db.session() as s:
                summary = delivery_summary(s, [b["id"] for b in item["broadcasts"]])
            assert (summary.speakers_played, summary.speakers, summary.not_played) == (2, 2, {})
        timeline = _get(daemon, "/api/v1/timeline", zone="all")
        assert isinstance(timeline, list)
        assert {r["status"] for r in timeline if r["broadcast"] in ids} == {"done"}
        day = datetime.now(UTC)
        report = _get(
            daemon,
            "/api/v1/report",
            **{"from": (day - timedelta(hours=1)).isoformat(), "to": (day + timedelta(hours=1)).isoformat()},
        )
        assert isinstance(report, dict)
        assert (report["items"], report["plays"], report["relay_plays"]) == (2, 4, 0), report
    finally:
        daemon.stop()
        agents.stop()
        db.dispose()


def _relay(db: Database, title: str, village: str, url: str, start: datetime, seconds: float) -> int:
    """A relay broadcast row, as the planner stores a piece of a relay programme (the programme itself
    inactive, so the daemon's chores plan nothing more of it). The daemon's reconcile dispatches it."""
    with db.session() as s:
        prog = Programme(
            kind="relay", title=title, targets=f'["{village}"]', recurrence="06:00", starts_on="2026-11-25",
            duration_ms=int(seconds * 1000), stream_url=url, priority="background", created_at=datetime.now(UTC),
            created_by="test", active=False, state=AnnouncementState.DRAFT,
        )  # fmt: skip
        s.add(prog)
        s.flush()
        b = Broadcast(
            programme_id=prog.id, title=title, zone_id=village, start_at=start, kind="relay",
            expires_at=start + timedelta(seconds=seconds), priority="background", duration_ms=int(seconds * 1000),
        )  # fmt: skip
        s.add(b)
        s.flush()
        return b.id


def test_relays_are_recorded_by_the_seconds_that_were_heard(
    tmp_path: Path, broker: ManagedBroker, sqlite_url: str
) -> None:
    station = Station(tmp_path)
    agents, _ = village_fleet(tmp_path, sqlite_url, broker.url)
    config = write_config(tmp_path / "loa.toml", tmp_path / "data", sqlite_url, broker.url, lead_s=2, reconcile_s=0.2)
    daemon = DaemonProcess(config, tmp_path / "data", tmp_path / "daemon.log").start()
    db = Database(sqlite_url)
    try:
        wait_for(lambda: _online(db), 20, "four devices online")
        t = datetime.now(UTC) + timedelta(seconds=4)
        # (a) a stream that cannot be opened: nobody listening on the port; a server with no such stream
        refused = _relay(db, "VOV1 (tắt)", "thon-1", f"http://127.0.0.1:{closed_port()}/vov1", t, 3)
        missing = _relay(db, "VOV1 (sai)", "thon-2", f"{station.base}/khong-co.mp3", t, 3)
        # (b) a station that drops its listeners after 1.5 s and is away for 1.5 s, then comes back
        t2 = t + timedelta(seconds=4)
        dropped = [
            _relay(db, "VOV1", v, station.channel(v, drop_after_s=1.5, outage_s=1.5), t2, 6)
            for v in ("thon-1", "thon-2")
        ]
        ids = [refused, missing, *dropped]
        wait_for(lambda: _final(db, ids, 8), 40, "every relay final")  # the LED boards show its title

        records = _deliveries(db, ids)
        for bid in (refused, missing):
            (d,) = [d for (b, dev), d in records.items() if b == bid and dev in SPEAKERS]
            assert d.status is DeliveryStatus.FAILED, "a stream nobody heard is not done"
            assert d.reason.startswith("stream_unreachable: ") and d.played_s == 0.0, (d.reason, d.played_s)
        assert "refused" in records[(refused, "thon-1-loa")].reason
        assert "404" in records[(missing, "thon-2-loa")].reason
        relayed = 0.0
        for bid, village in zip(dropped, ("thon-1", "thon-2"), strict=True):
            d = records[(bid, f"{village}-loa")]
            sent = station.channels[village]
            assert d.status is DeliveryStatus.DONE and sent.connections >= 2, (d.status, d.reason, sent)
            assert d.played_s is not None and abs(d.played_s - sent.sent_s) < 0.6, (d.played_s, sent.sent_s)
            assert d.played_s < 5.0  # not its 6 s window: the minute the station was away was not heard
            relayed += d.played_s
        with db.session() as s:
            unheard = delivery_summary(s, [refused, missing])
            heard = delivery_summary(s, dropped)
        assert (unheard.speakers_played, unheard.not_played) == (0, {"stream_unreachable": 2})
        assert heard.speakers_played == 2 and heard.relayed_s == pytest.approx(relayed)
        assert "đã tiếp sóng" in heard.text_vi()
        day = datetime.now(UTC)
        report = _get(
            daemon,
            "/api/v1/report",
            **{"from": (day - timedelta(hours=1)).isoformat(), "to": (day + timedelta(hours=1)).isoformat()},
        )
        assert isinstance(report, dict)
        assert (report["relay_plays"], report["plays"]) == (2, 2), report  # only the relays heard
        assert report["relay_seconds"] == pytest.approx(relayed, abs=0.1)
    finally:
        daemon.stop()
        agents.stop()
        db.dispose()
        station.close()
