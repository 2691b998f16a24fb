"""The whole path: an officer's announcement airs in two villages, on time, once.

Everything is real: the daemon process, Mosquitto, the database (SQLite file and PostgreSQL),
espeak-ng and ffmpeg, HTTP downloads, and four device-agent processes (two speakers, two LED boards).
"""

from __future__ import annotations

import hashlib
import signal
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import func, select

from broadcaster import protocol
from broadcaster.broker.managed import ManagedBroker
from broadcaster.db import (
    Announcement,
    Broadcast,
    BroadcastStatus,
    Command,
    Database,
    Delivery,
    DeliveryStatus,
)
from tests.broadcaster.harness import DaemonProcess, played, village_fleet, wait_for, write_config

pytestmark = pytest.mark.slow

SPEAKERS = ("thon-1-loa", "thon-2-loa")
LEDS = ("thon-1-led", "thon-2-led")


def _commands(db: Database) -> int:
    with db.session() as s:
        return s.scalar(select(func.count()).select_from(Command)) or 0


def _deliveries(db: Database, announcement_id: int) -> list[Delivery]:
    with db.session() as s:
        return list(
            s.scalars(
                select(Delivery)
                .join(Broadcast, Delivery.broadcast_id == Broadcast.id)
                .where(Broadcast.announcement_id == announcement_id)
            )
        )


def _all_online(db: Database) -> bool:
    from broadcaster.db import Device

    with db.session() as s:
        return s.scalar(select(func.count()).select_from(Device).where(Device.online.is_(True))) == 4


def _all_final(db: Database, announcement_id: int) -> bool:
    ds = _deliveries(db, announcement_id)
    return len(ds) == 4 and all(
        d.status in (DeliveryStatus.DONE, DeliveryStatus.FAILED, DeliveryStatus.EXPIRED) for d in ds
    )


def test_announcement_airs_on_both_speakers_in_sync(tmp_path: Path, broker: ManagedBroker, database_url: str) -> None:
    agents, _ = village_fleet(tmp_path, database_url, broker.url)
    config = write_config(tmp_path / "loa.toml", tmp_path / "data", database_url, broker.url, lead_s=2, reconcile_s=0.2)
    daemon = DaemonProcess(config, tmp_path / "data", tmp_path / "daemon.log").start()
    db = Database(database_url)
    try:
        wait_for(lambda: _all_online(db), 20, "four devices online")
        start_at = datetime.now(UTC) + timedelta(seconds=3)
        resp = daemon.post(
            "/api/v1/announcements",
            {
                "text": "UBND xã thông báo: 7h30 sáng mai họp thôn tại nhà văn hóa.",
                "zones": ["all"],
                "at": start_at.isoformat(),
                "title": "Họp thôn",
            },
        )
        assert resp.status_code == 201, resp.text
        item = resp.json()
        wait_for(lambda: _all_final(db, item["id"]), 40, "all deliveries final")

        deliveries = {d.device_id: d for d in _deliveries(db, item["id"])}
        assert {k: v.status for k, v in deliveries.items()} == {d: DeliveryStatus.DONE for d in SPEAKERS + LEDS}
        rendered = (tmp_path / "data" / "audio").rglob(f"{item['audio']['sha256']}.*")
        rendered_bytes = next(rendered).read_bytes()
        assert hashlib.sha256(rendered_bytes).hexdigest() == item["audio"]["sha256"]
        for speaker in SPEAKERS:
            assert abs(deliveries[speaker].start_error_ms or 1e9) < 50, deliveries[speaker].start_error_ms
            plays = played(tmp_path / "fleet" / speaker)
            assert len(plays) == 1
            assert abs(plays[0]["started_at"] - start_at.timestamp()) < 0.050
            copy = tmp_path / "fleet" / speaker / "played" / plays[0]["file"]
            assert hashlib.sha256(copy.read_bytes()).hexdigest() == item["audio"]["sha256"]
        with db.session() as s:
            rows = s.scalars(select(Broadcast).where(Broadcast.announcement_id == item["id"])).all()
            assert sorted(b.zone_id for b in rows) == ["thon-1", "thon-2"]  # placed village by village
            assert all(b.status is BroadcastStatus.DONE and not b.late for b in rows)
            assert len({b.start_at for b in rows}) == 1
    finally:
        daemon.stop()
        agents.stop()
        db.dispose()


@pytest.mark.parametrize("kill_when", ["before_dispatch", "after_dispatch"])
def test_restarted_daemon_airs_exactly_once(
    tmp_path: Path, broker: ManagedBroker, sqlite_url: str, kill_when: str
) -> None:
    agents, _ = village_fleet(tmp_path, sqlite_url, broker.url)
    config = write_config(tmp_path / "loa.toml", tmp_path / "data", sqlite_url, broker.url, lead_s=4, reconcile_s=0.2)
    data = tmp_path / "data"
    daemon = DaemonProcess(config, data, tmp_path / "daemon.log").start()
    db = Database(sqlite_url)
    try:
        wait_for(lambda: _all_online(db), 20, "four devices online")
        start_at = datetime.now(UTC) + timedelta(seconds=7)
        resp = daemon.post("/api/v1/announcements", {"text": "Thông báo lịch tiêm chủng.", "at": start_at.isoformat()})
        assert resp.status_code == 201, resp.text
        item_id = resp.json()["id"]
        if kill_when == "after_dispatch":  # every command signed and in the outbox
            wait_for(lambda: _commands(db) == 4, 10, "dispatch")
        daemon.stop(signal.SIGKILL)
        with db.session() as s:
            dispatched = s.scalar(select(func.count()).select_from(Command))
        assert dispatched == (4 if kill_when == "after_dispatch" else 0)

        daemon = DaemonProcess(config, data, tmp_path / "daemon2.log").start()
        wait_for(lambda: _all_final(db, item_id), 40, "all deliveries final after restart")
        assert {d.device_id: d.status for d in _deliveries(db, item_id)} == {
            d: DeliveryStatus.DONE for d in SPEAKERS + LEDS
        }
        with db.session() as s:
            assert s.scalar(select(func.count()).select_from(Command)) == 4
            sha = s.scalars(select(Announcement.audio_sha256)).one()
        for speaker in SPEAKERS:
            plays = [p for p in played(tmp_path / "fleet" / speaker) if sha in p["file"]]
            assert len(plays) == 1, plays
            assert abs(plays[0]["started_at"] - start_at.timestamp()) < 0.050
    finally:
        daemon.stop()
        agents.stop()
        db.dispose()


def test_command_signed_by_the_daemon_verifies(tmp_path: Path) -> None:
    """The key a fleet is provisioned with is the key the daemon signs with (same file)."""
    signer = protocol.load_or_create_signer(tmp_path / "k.pem")
    again = protocol.load_or_create_signer(tmp_path / "k.pem")
    assert signer.kid == again.kid
    assert (tmp_path / "k.pem").stat().st_mode & 0o077 == 0
