"""The simulated fleet: many devices in a few processes, running the device core of the reference agents.

Real Mosquitto, real SQLite, real daemon parts (Dispatcher, DeviceLink, EventWriter wired as daemon.py
wires them), real worker processes. No timing goals here (they live in bench/fanout.py); start errors
are only required to exist and be finite.
"""

from __future__ import annotations

import functools
import hashlib
import http.server
import json
import math
import os
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
import pytest
from sqlalchemy import select

from broadcaster import protocol
from broadcaster.broker.managed import ManagedBroker
from broadcaster.config import DispatchConfig
from broadcaster.db import (
    Announcement,
    Broadcast,
    BroadcastStatus,
    Command,
    Database,
    Delivery,
    DeliveryStatus,
    Device,
    DeviceKind,
)
from broadcaster.dispatch.dispatcher import Dispatcher
from broadcaster.dispatch.events import EventWriter, Metrics
from broadcaster.dispatch.link import DeviceLink
from broadcaster.protocol.mqtt import BrokerAddress, connect, new_client
from broadcaster.runtime.path import DevicePath
from broadcaster.services.reports import delivery_summary, percentile
from broadcaster.services.zones import COMMUNE_ZONE, ensure_commune
from broadcaster.simulation.commune import provision_fleet
from broadcaster.simulation.fleet import Fleet, FleetReport, FleetSettings, SimDevice, Timers, fleet_devices, split
from schedules.clock import SystemClock
from tests.broadcaster.harness import ROOT, wait_for

VALIDITY = timedelta(minutes=15)


# ---------------------------------------------------------------- helpers


@dataclass(frozen=True)
class Audio:
    url_base: str
    sha256: str
    size: int


@contextmanager
def audio_server(root: Path) -> Iterator[Audio]:
    """Bytes at /audio/<sha256>.mp3, the daemon's audio path; devices only hash them, never decode."""
    data = os.urandom(24_000)
    sha = hashlib.sha256(data).hexdigest()
    (root / "audio").mkdir(parents=True)
    (root / "audio" / f"{sha}.mp3").write_bytes(data)
    handler = functools.partial(Quiet, directory=str(root))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield Audio(f"http://127.0.0.1:{server.server_address[1]}", sha, len(data))
    finally:
        server.shutdown()


class Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass


class AckLog:
    """Every ack seen on the wire, by command id (a second subscriber next to the daemon's)."""

    def __init__(self, broker_url: str) -> None:
        self.acks: dict[str, list[dict[str, Any]]] = {}
        self._lock = threading.Lock()
        self._ready = threading.Event()
        self.client = new_client(f"test-acks-{os.getpid()}", persistent=False)
        self.client.on_connect = lambda c, *_: c.subscribe(protocol.Topics().all_acks(), qos=1)
        self.client.on_subscribe = lambda *_: self._ready.set()
        self.client.on_message = self._on_message
        connect(self.client, BrokerAddress.parse(broker_url), persistent=False)
        self.client.loop_start()
        assert self._ready.wait(10)

    def _on_message(self, _c: mqtt.Client, _u: Any, msg: mqtt.MQTTMessage) -> None:
        ack = json.loads(msg.payload)
        with self._lock:
            self.acks.setdefault(ack["cmd"], []).append(ack)

    def states(self, command_id: str) -> list[str]:
        with self._lock:
            return [a["state"] for a in self.acks.get(command_id, [])]

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


@dataclass
class DaemonParts:
    writer: EventWriter
    link: DeviceLink
    dispatcher: Dispatcher
    metrics: Metrics


@contextmanager
def daemon_parts(db: Database, broker_url: str, signer: protocol.Signer, audio: Audio) -> Iterator[DaemonParts]:
    """Database, EventWriter, DeviceLink and Dispatcher wired the way daemon.py wires them."""
    path = DevicePath.build(
        db,
        SystemClock(),
        DispatchConfig(lead_s=2.0, reconcile_s=0.2),
        signer,
        BrokerAddress.parse(broker_url),
        lambda sha, ext: f"{audio.url_base}/audio/{sha}.{ext}",
    )
    path.start()
    try:
        yield DaemonParts(path.writer, path.link, path.dispatcher, path.metrics)
    finally:
        path.stop()


def plan_bulletin(db: Database, audio: Audio, start_at: datetime) -> int:
    """A commune-wide broadcast, stored as the service stores one (without rendering speech)."""
    with db.session() as session:
        item = Announcement(
            title="Họp thôn",
            text="Họp thôn lúc 7 giờ 30.",
            created_at=datetime.now(UTC),
            created_by="test",
            audio_sha256=audio.sha256,
            audio_size=audio.size,
            audio_duration_ms=500,
            audio_ext="mp3",
        )
        session.add(item)
        session.flush()
        b = Broadcast(
            announcement_id=item.id,
            zone_id=COMMUNE_ZONE,
            start_at=start_at,
            expires_at=start_at + VALIDITY,
            duration_ms=500,
        )
        session.add(b)
        session.flush()
        return b.id


def deliveries(db: Database, broadcast_id: int) -> list[Delivery]:
    with db.session() as s:
        return list(s.scalars(select(Delivery).where(Delivery.broadcast_id == broadcast_id)))


def fleet_for(tmp: Path, broker: ManagedBroker, signer: protocol.Signer, devices: list[SimDevice], n: int) -> Fleet:
    settings = FleetSettings(broker.url, {signer.kid: signer.public_b64}, str(tmp / "fleet"))
    return Fleet(settings, devices, n)


@pytest.fixture
def db(sqlite_url: str) -> Iterator[Database]:
    database = Database(sqlite_url)
    database.upgrade()
    with database.session() as session:
        ensure_commune(session, "Xã thử nghiệm")
    yield database
    database.dispose()


# ---------------------------------------------------------------- without a broker


def test_fleet_names_follow_the_simulator_and_every_process_gets_a_share() -> None:
    devices = fleet_devices(3, 20, 1)
    assert len(devices) == 63
    assert devices[0] == SimDevice("thon-1-loa-1", "speaker")
    assert SimDevice("thon-3-led-1", "led") in devices
    parts = split(devices, 2)
    assert [len(p) for p in parts] == [32, 31]
    assert sorted(d.id for p in parts for d in p) == sorted(d.id for d in devices)
    assert split(devices[:1], 4) == [(devices[0],)]


def test_one_timer_entry_per_instant_fires_everything_due_in_order() -> None:
    timers = Timers()
    fired: list[str] = []
    for name in ("a", "b", "c"):
        timers.at(100.0, functools.partial(fired.append, name))
    timers.at(50.0, lambda: fired.append("early"))
    timers.at(200.0, lambda: fired.append("late"))
    assert timers.next_at() == 50.0
    for action in timers.pop_due(150.0):
        action()
    assert fired == ["early", "a", "b", "c"]
    assert timers.next_at() == 200.0


def test_delivery_summary_counts_speakers_that_went_on_air(db: Database) -> None:
    provision_fleet(db, fleet_devices(1, 4, 1))
    with db.session() as s:
        item = Announcement(title="t", text="t", created_at=datetime.now(UTC), created_by="test")
        s.add(item)
        s.flush()
        now = datetime.now(UTC)
        b = Broadcast(announcement_id=item.id, zone_id=COMMUNE_ZONE, start_at=now, expires_at=now + VALIDITY)
        s.add(b)
        s.flush()
        rows = [
            ("thon-1-loa-1", DeliveryStatus.DONE, "", 1.5),
            ("thon-1-loa-2", DeliveryStatus.PLAYING, "", 3.0),
            ("thon-1-loa-3", DeliveryStatus.FAILED, "download_failed: HTTP Error 404", None),
            ("thon-1-loa-4", DeliveryStatus.SENT, "", None),
            ("thon-1-led-1", DeliveryStatus.DONE, "", 2.0),
        ]
        for device_id, status, reason, err in rows:
            s.add(
                Delivery(
                    broadcast_id=b.id,
                    device_id=device_id,
                    status=status,
                    reason=reason,
                    start_error_ms=err,
                    updated_at=now,
                )
            )
        s.flush()
        summary = delivery_summary(s, b.id)
    assert (summary.speakers, summary.speakers_played, summary.pending) == (4, 2, 1)
    assert (summary.boards, summary.boards_shown) == (1, 1)
    assert summary.not_played == {"download_failed": 1}
    assert summary.start_error_p99_ms == 3.0
    assert summary.text_vi() == (
        "2/4 loa đã phát; 1/1 bảng LED đã hiển thị; 1 loa chưa phát; "
        "không phát: 1 lỗi tải âm thanh; lệch khởi phát p99 3.0 ms"
    )
    assert percentile([], 99) is None
    assert percentile([float(i) for i in range(1, 501)], 99) == 495.0


# ---------------------------------------------------------------- with a broker and the daemon's parts


@pytest.mark.slow
def test_a_bulletin_reaches_a_fleet_of_sixty_speakers_in_two_processes(
    tmp_path: Path, broker: ManagedBroker, db: Database
) -> None:
    devices = provision_fleet(db, fleet_devices(3, 20, 1))
    signer = protocol.load_or_create_signer(tmp_path / "keys" / "daemon-ed25519.pem")
    fleet = fleet_for(tmp_path, broker, signer, devices, 2)
    fleet.start(timeout=60)
    acks = AckLog(broker.url)
    try:
        with audio_server(tmp_path / "www") as audio, daemon_parts(db, broker.url, signer, audio) as daemon:
            bid = plan_bulletin(db, audio, datetime.now(UTC) + timedelta(seconds=4))  # the timer dispatches

            def all_final() -> bool:
                ds = deliveries(db, bid)
                return len(ds) == len(devices) and all(
                    d.status in (DeliveryStatus.DONE, DeliveryStatus.FAILED, DeliveryStatus.EXPIRED) for d in ds
                )

            wait_for(all_final, 60, "every delivery final")
            final = deliveries(db, bid)
            assert {d.device_id: d.status for d in final} == {d.id: DeliveryStatus.DONE for d in devices}
            for d in final:
                assert d.start_error_ms is not None and math.isfinite(d.start_error_ms), d.device_id
            with db.session() as s:
                assert s.get(Broadcast, bid).status is BroadcastStatus.DONE  # type: ignore[union-attr]
                summary = delivery_summary(s, bid)
                sent = {c.device_id: c for c in s.scalars(select(Command))}
            assert (summary.speakers_played, summary.speakers) == (60, 60)
            assert (summary.boards_shown, summary.boards) == (3, 3)
            assert summary.start_error_p99_ms is not None and math.isfinite(summary.start_error_p99_ms)

            report = fleet.report()
            assert report.commands == len(devices)
            assert report.downloads <= 2  # once per process, shared by its speakers
            assert sorted(p.device_id for p in report.plays) == sorted(d.id for d in devices)
            assert all(math.isfinite(e) for e in report.start_errors_ms())
            speaker = sent["thon-2-loa-7"]
            assert acks.states(speaker.id) == ["received", "downloaded", "playing", "done"]

            # The same signed command again (a replay, or the daemon's re-send): re-acked, not played.
            daemon.link.publish(speaker.device_id, speaker.id, speaker.payload.encode(), 600)
            wait_for(lambda: acks.states(speaker.id)[4:] == ["done"], 10, "the last ack repeated")
            again = fleet.report()
            assert again.replays == 1
            assert again.plays_of(speaker.device_id) == 1
            assert daemon.metrics.snapshot() == {}
    finally:
        acks.close()
        report = fleet.stop()
    assert report.connected == 0
    assert not report.refused


@pytest.mark.slow
def test_refusals_and_a_replay_after_the_simulator_restarts(
    tmp_path: Path, broker: ManagedBroker, db: Database
) -> None:
    """Ids survive a restart (persistent session, seen ids on disk): a recorded command never plays twice."""
    devices = fleet_devices(1, 2)
    signer = protocol.load_or_create_signer(tmp_path / "k.pem")
    stranger = protocol.load_or_create_signer(tmp_path / "stranger.pem")
    acks = AckLog(broker.url)
    publisher = new_client("test-publisher", persistent=False)
    connect(publisher, BrokerAddress.parse(broker.url), persistent=False)
    publisher.loop_start()

    def send(device_id: str, message: dict[str, Any]) -> None:
        publisher.publish(protocol.Topics().cmd(device_id), protocol.encode(message), qos=1)

    now = datetime.now(UTC)
    times = {"issued_at": now, "start_at": now, "expires_at": now + VALIDITY}
    ping = protocol.make_command(signer, "ping", {}, to="thon-1-loa-1", **times)
    expired = {**times, "expires_at": now - timedelta(seconds=1)}
    old = protocol.make_command(signer, "ping", {}, to="thon-1-loa-1", **expired)
    forged = protocol.make_command(stranger, "ping", {}, to="thon-1-loa-2", **times)
    try:
        fleet = fleet_for(tmp_path, broker, signer, devices, 1)
        fleet.start(timeout=30)
        send("thon-1-loa-1", ping)
        send("thon-1-loa-1", old)
        send("thon-1-loa-2", forged)
        wait_for(lambda: acks.states(ping["id"]) == ["done"], 10, "pong")
        wait_for(lambda: acks.states(old["id"]) == ["expired"], 10, "expired ack")
        first: FleetReport = fleet.stop()
        assert first.refused == {"expired": 1, "bad_signature": 1}
        assert not acks.states(forged["id"])

        restarted = fleet_for(tmp_path, broker, signer, devices, 2)  # another split, same state dir
        restarted.start(timeout=30)
        send("thon-1-loa-1", ping)
        # the stored ack, said again once connected (docs/protocol.md, "Final outcomes, said again"), and
        # as the answer to the replay
        wait_for(lambda: acks.states(ping["id"]) == ["done", "done", "done"], 10, "the stored ack repeated")
        second = restarted.stop()
        assert (second.replays, second.commands) == (1, 0)
    finally:
        publisher.disconnect()
        publisher.loop_stop()
        acks.close()


@pytest.mark.slow
def test_the_fleet_comes_back_after_the_broker_crashes(tmp_path: Path, broker: ManagedBroker) -> None:
    """No thread per device, so reconnecting is the loop's job: every client, with backoff, resubscribed."""
    devices = fleet_devices(1, 5)
    signer = protocol.load_or_create_signer(tmp_path / "k.pem")
    fleet = fleet_for(tmp_path, broker, signer, devices, 1)
    fleet.start(timeout=30)
    try:
        broker.kill()  # the ManagedBroker's watcher starts a new Mosquitto on the same port

        def back() -> bool:
            report = fleet.report()
            return report.reconnects >= len(devices) and report.connected == len(devices)

        wait_for(back, 60, "every device reconnected", interval=0.5)
        acks = AckLog(broker.url)
        publisher = new_client("test-after-crash", persistent=False)
        connect(publisher, BrokerAddress.parse(broker.url), persistent=False)
        publisher.loop_start()
        now = datetime.now(UTC)
        pings = {
            d.id: protocol.make_command(
                signer, "ping", {}, to=d.id, issued_at=now, start_at=now, expires_at=now + VALIDITY
            )
            for d in devices
        }
        for device_id, ping in pings.items():
            publisher.publish(protocol.Topics().cmd(device_id), protocol.encode(ping), qos=1)
        wait_for(lambda: all(acks.states(p["id"]) == ["done"] for p in pings.values()), 20, "every pong")
        publisher.disconnect()
        publisher.loop_stop()
        acks.close()
    finally:
        fleet.stop()


@pytest.mark.slow
def test_loa_simulate_starts_and_stops_cleanly(tmp_path: Path, broker: ManagedBroker, sqlite_url: str) -> None:
    config = tmp_path / "loa.toml"
    config.write_text(
        f'[general]\ndata_dir = "{tmp_path / "data"}"\n[database]\nurl = "{sqlite_url}"\n', encoding="utf-8"
    )
    statuses: dict[str, bool] = {}
    lock = threading.Lock()

    def on_status(_c: mqtt.Client, _u: Any, msg: mqtt.MQTTMessage) -> None:
        where = protocol.Topics().device_of(msg.topic)
        if where and msg.payload:
            with lock:
                statuses[where[0]] = bool(json.loads(msg.payload)["online"])

    watcher = new_client("test-status", persistent=False)
    watcher.on_connect = lambda c, *_: c.subscribe(protocol.Topics().all_status(), qos=1)
    watcher.on_message = on_status
    connect(watcher, BrokerAddress.parse(broker.url), persistent=False)
    watcher.loop_start()
    log = (tmp_path / "simulate.log").open("wb")
    proc = subprocess.Popen(
        [
            *(sys.executable, "-m", "broadcaster.cli", "simulate", "--villages", "2"),
            *("--speakers-per-village", "3", "--leds-per-village", "1", "--processes", "2"),
            *("--broker", broker.url, "--config", str(config)),
        ],
        cwd=ROOT,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:

        def online() -> bool:
            with lock:
                return len(statuses) == 8 and all(statuses.values())

        wait_for(online, 60, "eight simulated devices online")
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=30) == 0, (tmp_path / "simulate.log").read_text()
        wait_for(lambda: not any(statuses.values()), 10, "every device said offline")
    finally:
        if proc.poll() is None:
            proc.kill()
        log.close()
        watcher.disconnect()
        watcher.loop_stop()
    output = (tmp_path / "simulate.log").read_text(encoding="utf-8")
    assert "Mô phỏng 8 thiết bị ở 2 thôn trong 2 tiến trình" in output
    assert "Đã dừng" in output and "Traceback" not in output
    db = Database(sqlite_url)
    with db.session() as s:
        kinds = dict(s.execute(select(Device.id, Device.kind)).all())
    db.dispose()
    assert kinds["thon-2-loa-3"] is DeviceKind.SPEAKER and kinds["thon-1-led-1"] is DeviceKind.LED
    assert (tmp_path / "data" / "fleet" / "seen.json").exists()  # the workers saved their state on the way out
