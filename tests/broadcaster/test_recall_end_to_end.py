"""A false alarm recalled: an emergency stopped on every speaker while it plays, its repeats never aired,
and speakers that were away during the recall silent when they come back.

Two rigs, both over a real Mosquitto with real devices running the device core:
- the fleet simulator (many speakers in worker processes) with the daemon's own parts wired as daemon.py
  wires them (DevicePath: dispatcher, timer, reconcile loop, MQTT link, event writer) and the HTTP API
  whose recall pokes the dispatcher, as the daemon's does;
- the real daemon process with real agent processes, recalled with `loa cancel`, which only writes the
  database: the daemon's reconcile loop must notice it.

Times are measured on the devices' own acks (same machine, same clock): from the recall to each
device's `failed`/`stopped`.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from broadcaster import protocol
from broadcaster.api.app import create_app, create_audio_app
from broadcaster.api.server import HttpServer
from broadcaster.broker.managed import ManagedBroker
from broadcaster.db import Broadcast, BroadcastStatus, Command, Database, Delivery, DeliveryStatus, Device
from broadcaster.protocol.mqtt import BrokerAddress, connect, new_client
from broadcaster.runtime.path import DevicePath
from broadcaster.services import Services
from broadcaster.services.accounts import create_user, issue_token
from broadcaster.simulation.commune import provision_fleet
from broadcaster.simulation.fleet import Fleet, FleetReport, FleetSettings, SimDevice, fleet_devices
from schedules.clock import SystemClock
from tests.broadcaster.conftest import make_services
from tests.broadcaster.harness import ROOT, DaemonProcess, played, village_fleet, wait_for, write_config
from tests.broadcaster.simulation.test_fleet import AckLog

pytestmark = pytest.mark.slow

RECALL_WITHIN_S = 2.0
# About six seconds read out: long enough to be recalled while it plays, short enough that the
# test can wait for its repeat's time to pass.
ALARM = (
    "Khẩn cấp: cháy rừng ở đồi thông phía bắc thôn một. Bà con không vào rừng, "
    "tránh xa khu vực và làm theo hướng dẫn của lực lượng chữa cháy."
)
EMERGENCY = {
    "LOA_SCHEDULE_QUIET_START": "00:00",  # real-clock tests must not depend on the hour they run at
    "LOA_SCHEDULE_QUIET_END": "00:00",
    "LOA_SCHEDULE_EMERGENCY_REPEATS": "2",
    "LOA_SCHEDULE_EMERGENCY_GAP_S": "0",  # the repeats back to back, so the test can wait them out
    "LOA_DISPATCH_EMERGENCY_LEAD_S": "1",
}


def _at(ack: dict[str, Any]) -> float:
    return protocol.parse_time(ack["at"]).timestamp()


class Acks(AckLog):
    """Every ack on the wire, whole: its state, reason and the device's time."""

    def of(self, command_id: str) -> list[dict[str, Any]]:
        with self._lock:
            return list(self.acks.get(command_id, []))

    def stopped_at(self, command_id: str) -> float | None:
        """When the device said it stopped this play (or took its id so that it never starts)."""
        for ack in self.of(command_id):
            if ack["state"] == "failed" and ack.get("reason") == "stopped":
                return _at(ack)
        return None


def _play_commands(db: Database, announcement_id: int) -> list[Command]:
    """The announcement's plays in the outbox, whichever airing they are of."""
    with db.session() as s:
        return list(
            s.scalars(
                select(Command)
                .join(Delivery, Command.delivery_id == Delivery.id)
                .join(Broadcast, Delivery.broadcast_id == Broadcast.id)
                .where(Broadcast.announcement_id == announcement_id)
            )
        )


def _plays(db: Database, announcement_id: int) -> dict[str, Command]:
    return {c.device_id: c for c in _play_commands(db, announcement_id)}


def _broadcasts(db: Database, announcement_id: int) -> list[Broadcast]:
    with db.session() as s:
        return list(s.scalars(select(Broadcast).where(Broadcast.announcement_id == announcement_id)))


def _online(db: Database, ids: list[str]) -> bool:
    with db.session() as s:
        return set(s.scalars(select(Device.id).where(Device.online.is_(True), Device.id.in_(ids)))) == set(ids)


def _after_the_last_repeat(db: Database, announcement_id: int) -> float:
    """When the last repeat would have started: a repeat is dispatched `lead_s` before its start, so by
    then one that was going out would be in the outbox and on the devices."""
    return max(b.start_at for b in _broadcasts(db, announcement_id)).timestamp()


@contextmanager
def _fleet(
    tmp: Path, name: str, broker: ManagedBroker, signer: protocol.Signer, devices: list[SimDevice]
) -> Iterator[Fleet]:
    """Simulated devices with their own state (ids taken, audio cache) under `name`."""
    fleet = Fleet(FleetSettings(broker.url, {signer.kid: signer.public_b64}, str(tmp / name)), devices, 1)
    fleet.start(timeout=60)
    try:
        yield fleet
    finally:
        fleet.stop()


@contextmanager
def _daemon(svc: Services, broker: ManagedBroker, signer: protocol.Signer) -> Iterator[str]:
    """The daemon's parts, wired as daemon.py wires them: the API (poking the dispatcher after a change),
    the audio listener devices fetch from, and the way to the devices. Yields the API's URL."""
    path: list[DevicePath] = []
    api = HttpServer(create_app(svc, svc.audio.store, on_change=lambda: path[0].dispatcher.poke()), "127.0.0.1", 0)
    audio = HttpServer(create_audio_app(svc.audio.store), "127.0.0.1", 0)
    path.append(
        DevicePath.build(
            svc.db,
            svc.clock,
            svc.config.dispatch,
            signer,
            BrokerAddress.parse(broker.url),
            lambda sha, ext: f"{audio.url}/audio/{sha}.{ext}",
        )
    )
    audio.start()
    api.start()
    path[0].start()
    try:
        yield api.url
    finally:
        path[0].stop()
        api.stop()
        audio.stop()


def _bearer(svc: Services, username: str, role: str) -> dict[str, str]:
    create_user(svc, username, role, "mật khẩu dài đủ", actor="test")
    return {"Authorization": "Bearer " + issue_token(svc, username, "test", actor="test")["secret"]}


def _send_emergency(api: str, headers: dict[str, str], body: dict[str, Any]) -> dict[str, Any]:
    """An emergency as the API takes one: asked, then confirmed with its code and a reason."""
    asked = httpx.post(api + "/api/v1/announcements", json=body, headers=headers, timeout=60)
    assert asked.status_code == 409, asked.text
    code = asked.json()["error"]["params"]["confirmation"]
    confirmed = {**body, "confirmation": code, "reason": "Cháy rừng, đã báo từ kiểm lâm"}
    sent = httpx.post(api + "/api/v1/announcements", json=confirmed, headers=headers, timeout=60)
    assert sent.status_code == 201, sent.text
    result: dict[str, Any] = sent.json()
    return result


def test_an_emergency_recalled_while_playing_stops_everywhere_and_never_airs_again(
    tmp_path: Path, broker: ManagedBroker, sqlite_url: str
) -> None:
    svc = make_services(tmp_path, sqlite_url, SystemClock(), **EMERGENCY)
    chairman, officer = _bearer(svc, "chutich", "admin"), _bearer(svc, "canbo", "officer")
    speakers = provision_fleet(svc.db, fleet_devices(2, 5))
    on_air = [d for d in speakers if d.id.endswith(("-1", "-2", "-3"))]  # six speakers, online throughout
    queued = [d for d in speakers if d.id.endswith("-4")]  # away during the recall; the play waits at the broker
    never = [d for d in speakers if d.id.endswith("-5")]  # away, and the broker holds nothing for them
    signer = protocol.load_or_create_signer(tmp_path / "keys" / "daemon-ed25519.pem")
    with _fleet(tmp_path, "queued", broker, signer, queued):
        pass  # their broker sessions now exist, and they are offline
    acks = Acks(broker.url)
    try:
        with _fleet(tmp_path, "on-air", broker, signer, on_air) as fleet, _daemon(svc, broker, signer) as api:
            wait_for(lambda: _online(svc.db, [d.id for d in on_air]), 20, "the on-air speakers online")
            alarm = {"text": ALARM, "zones": ["all"], "priority": "emergency", "at": "+4s", "title": "Cháy rừng"}
            item = _send_emergency(api, chairman, alarm)
            assert len(item["broadcasts"]) == 4  # two airings (the alarm and its repeat) in two villages

            def all_playing() -> bool:
                plays = _plays(svc.db, item["id"])
                return all(d.id in plays and "playing" in acks.states(plays[d.id].id) for d in on_air)

            wait_for(all_playing, 20, "the alarm on air on every online speaker")
            recalled_at = time.time()
            resp = httpx.delete(
                f"{api}/api/v1/announcements/{item['id']}",
                params={"reason": "Báo nhầm: không có cháy"},
                headers=officer,
                timeout=10,
            )
            assert resp.status_code == 200, resp.text
            result = resp.json()
            assert (result["cancelled_after_dispatch"], result["cancelled_before_dispatch"]) == (2, 2)
            assert result["devices_to_stop"] == len(speakers)  # every speaker holds the first airing's play

            plays = _plays(svc.db, item["id"])

            def all_stopped() -> bool:
                return all(acks.stopped_at(plays[d.id].id) is not None for d in on_air)

            wait_for(all_stopped, max(0.1, recalled_at + RECALL_WITHIN_S - time.time()), "every speaker stopped")
            stopped = {d.id: acks.stopped_at(plays[d.id].id) for d in on_air}
            late = {device: at - recalled_at for device, at in stopped.items() if at is not None}
            assert len(late) == len(on_air) and all(s < RECALL_WITHIN_S for s in late.values()), late

            # Back after the recall: `queued` find the play waiting at the broker, then its stop; `never`
            # find nothing there, and the stop comes from the outbox on its own.
            with (
                _fleet(tmp_path, "queued", broker, signer, queued) as back,
                _fleet(tmp_path, "never", broker, signer, never) as fresh,
            ):
                returned = queued + never
                wait_for(lambda: all(acks.stopped_at(plays[d.id].id) for d in returned), 10, "the returning stopped")
                # Should the play turn up after all (a broker's late delivery, a replay), it is an id
                # already taken: answered with the same ack, never played.
                publisher = new_client("test-late-play", persistent=False)
                connect(publisher, BrokerAddress.parse(broker.url), persistent=False)
                publisher.loop_start()
                wait_for(publisher.is_connected, 10, "the test's publisher connected")
                for d in never:
                    topic = protocol.Topics().cmd(d.id)
                    publisher.publish(topic, plays[d.id].payload.encode(), qos=1).wait_for_publish()
                wait_for(lambda: all(len(acks.of(plays[d.id].id)) >= 2 for d in never), 10, "the late play answered")
                publisher.disconnect()
                publisher.loop_stop()
                end = _after_the_last_repeat(svc.db, item["id"])
                time.sleep(max(0.0, end + 1.0 - time.time()))  # every repeat's time has passed
                report: FleetReport = fleet.report()
                away: FleetReport = back.report()
                away.merge(fresh.report())

            # Each online speaker aired the first airing once, cut by the recall; the repeats never went out.
            assert sorted((p.device_id, p.command_id) for p in report.plays) == sorted(
                (d.id, plays[d.id].id) for d in on_air
            )
            assert away.plays == [], away.plays  # the returning speakers never aired it
            for d in never:
                assert [a["state"] for a in acks.of(plays[d.id].id)] == ["failed", "failed"]
            sent = _play_commands(svc.db, item["id"])  # the first airing's only: no repeat was dispatched
            assert sorted(c.device_id for c in sent) == sorted(d.id for d in speakers)
            rows = _broadcasts(svc.db, item["id"])
            assert {(b.status, b.reason) for b in rows} == {(BroadcastStatus.CANCELLED, "recalled")}
            wait_for(lambda: _deliveries_final(svc.db, item["id"]), 10, "every delivery recorded")
            with svc.db.session() as s:
                outcomes = s.execute(
                    select(Delivery.device_id, Delivery.status, Delivery.reason)
                    .join(Broadcast, Delivery.broadcast_id == Broadcast.id)
                    .where(Broadcast.announcement_id == item["id"])
                ).all()
            assert {(status, reason) for _, status, reason in outcomes} == {(DeliveryStatus.FAILED, "stopped")}
            assert len(outcomes) == len(speakers)
            recall = httpx.get(f"{api}/api/v1/announcements/{item['id']}", headers=officer, timeout=10).json()["recall"]
            assert recall["by"] == "canbo" and recall["reason"] == "Báo nhầm: không có cháy"
    finally:
        acks.close()
        svc.db.dispose()


def _deliveries_final(db: Database, announcement_id: int) -> bool:
    with db.session() as s:
        statuses = s.scalars(
            select(Delivery.status)
            .join(Broadcast, Delivery.broadcast_id == Broadcast.id)
            .where(Broadcast.announcement_id == announcement_id)
        ).all()
    return bool(statuses) and all(st is DeliveryStatus.FAILED for st in statuses)


def _loa(config: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "broadcaster.cli", "--config", str(config), *args],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=120,
    )


def test_loa_cancel_stops_the_real_daemons_speakers_within_two_seconds(
    tmp_path: Path, broker: ManagedBroker, sqlite_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`loa cancel` writes the database and nothing else; the daemon notices at its next reconcile (every
    second, its default) and the real agents stop: what they aired is in their played files."""
    for name, value in EMERGENCY.items():  # the daemon's and the CLI's processes read them too
        monkeypatch.setenv(name, value)
    agents, _ = village_fleet(tmp_path, sqlite_url, broker.url)
    config = write_config(tmp_path / "loa.toml", tmp_path / "data", sqlite_url, broker.url, lead_s=2, reconcile_s=1)
    daemon = DaemonProcess(config, tmp_path / "data", tmp_path / "daemon.log").start()
    db = Database(sqlite_url)
    acks = Acks(broker.url)
    speakers, boards = ("thon-1-loa", "thon-2-loa"), ("thon-1-led", "thon-2-led")
    try:
        wait_for(lambda: _online(db, [*speakers, *boards]), 20, "four devices online")
        sent = _loa(config, "announce", ALARM, "--priority", "emergency", "--at", "+6s", "--title", "Cháy rừng",
                    "--confirm", "--reason", "Kiểm lâm báo cháy", "--json")  # fmt: skip
        assert sent.returncode == 0, sent.stderr
        item_id = int(json.loads(sent.stdout)["id"])

        def on_air() -> bool:
            plays = _plays(db, item_id)
            return all(d in plays and "playing" in acks.states(plays[d].id) for d in (*speakers, *boards))

        wait_for(on_air, 30, "the alarm on every speaker and board")
        cancelled = _loa(config, "cancel", str(item_id), "--reason", "Báo nhầm")
        written = time.time()  # the recall is committed before the command exits
        assert cancelled.returncode == 0, cancelled.stderr
        assert cancelled.stdout.startswith(f"Đã thu hồi thông báo số {item_id}: hủy 2 lượt phát chưa gửi")
        plays = _plays(db, item_id)
        wait_for(
            lambda: all(acks.stopped_at(plays[d].id) for d in (*speakers, *boards)),
            max(0.1, written + RECALL_WITHIN_S - time.time()),
            "every device stopped",
        )
        stopped = [acks.stopped_at(plays[d].id) for d in speakers]
        assert all(at is not None and at - written < RECALL_WITHIN_S for at in stopped), (written, stopped)

        time.sleep(max(0.0, _after_the_last_repeat(db, item_id) + 1.0 - time.time()))
        for speaker in speakers:  # the first airing, cut; none of the repeats
            assert len(played(tmp_path / "fleet" / speaker)) == 1
        assert sorted(c.device_id for c in _play_commands(db, item_id)) == sorted((*speakers, *boards))
        status = _loa(config, "status")
        assert f"THU HỒI: #{item_id} 'Cháy rừng' bởi " in status.stdout and ": Báo nhầm" in status.stdout
    finally:
        acks.close()
        daemon.stop()
        agents.stop()
        db.dispose()
