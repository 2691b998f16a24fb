"""A daemon killed with SIGKILL (as the out-of-memory killer or a crash does it) and started again (#15).

Its managed Mosquitto used to outlive it: the next daemon found the port taken, started a second broker
on a random port over the same persistence, and the speakers, provisioned with the old port, stayed on
the orphan; every item dispatched after the restart was never heard. Now the broker ends with its
daemon, the next one listens on the same port, the audio is served before the broker hands devices
their queued commands, and a provisioned speaker (its own process, as in a village) plays both what
was queued for it and what is sent after the restart, each once.
"""

from __future__ import annotations

import json
import os
import signal
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select

from broadcaster import protocol
from broadcaster.broker.managed import ManagedBroker
from broadcaster.config import load_config
from broadcaster.db import Announcement, Broadcast, Command, Database, Delivery, DeliveryStatus, Device
from broadcaster.protocol.mqtt import BrokerAddress
from broadcaster.simulation.commune import AgentProcesses, provision
from tests.broadcaster.harness import DaemonProcess, played, wait_for, write_config
from tests.broadcaster.runtime.test_processes import brokers_of

pytestmark = pytest.mark.slow
SPEAKER = "thon-1-loa"


def _delivery(db: Database, announcement_id: int) -> Delivery | None:
    with db.session() as s:
        return s.scalars(
            select(Delivery)
            .join(Broadcast, Delivery.broadcast_id == Broadcast.id)
            .where(Broadcast.announcement_id == announcement_id, Delivery.device_id == SPEAKER)
        ).one_or_none()


def _online(db: Database) -> bool:
    with db.session() as s:
        return bool(s.scalar(select(Device.online).where(Device.id == SPEAKER)))


def _announce(daemon: DaemonProcess, text: str, in_s: int) -> int:
    # "+Ns" is read on the daemon's clock when the request arrives: a slow request on a busy machine is
    # not refused as in the past (an absolute time made here once was, in CI)
    resp = daemon.post("/api/v1/announcements", {"text": text, "zones": ["thon-1"], "at": f"+{in_s}s"})
    assert resp.status_code == 201, resp.text
    return int(resp.json()["id"])


def _done(db: Database, announcement_id: int) -> bool:
    d = _delivery(db, announcement_id)
    return d is not None and d.status is DeliveryStatus.DONE


def test_a_daemon_killed_with_sigkill_takes_its_broker_along_and_its_speakers_hear_what_follows(
    tmp_path: Path, sqlite_url: str
) -> None:
    data = tmp_path / "data"
    config = write_config(tmp_path / "loa.toml", data, sqlite_url, "", lead_s=30, reconcile_s=0.2)
    first = DaemonProcess(config, data, tmp_path / "d1.log").start()
    second: DaemonProcess | None = None
    db = Database(sqlite_url)
    agents: AgentProcesses | None = None
    try:
        url = BrokerAddress.parse(json.loads((data / "runtime.json").read_text())["broker_url"])
        broker_url = f"mqtt://{url.host}:{url.port}"  # what `loa device add` hands a device
        signer = protocol.load_or_create_signer(data / "keys" / "daemon-ed25519.pem")
        configs = provision(db, tmp_path / "fleet", 1, broker_url, {signer.kid: signer.public_b64}, "pa/v2", "file")
        speaker = [c for c in configs if c.stem == SPEAKER]
        agents = AgentProcesses(speaker, tmp_path / "fleet" / "logs")
        agents.start()
        wait_for(lambda: _online(db), 20, "the speaker online")
        agents.stop()  # offline (a village's power cut): what is sent now waits at the broker
        agents = None
        wait_for(lambda: not _online(db), 30, "the speaker offline")  # its clean stop, under load
        queued = _announce(first, "Thông báo lịch tiêm chủng cho trẻ em.", 4)  # late after the restart: whole
        with db.session() as s:
            wait_for(lambda: s.scalar(select(func.count()).select_from(Command).where(Command.sent_at.is_not(None))),
                     10, "the command accepted by the broker")  # fmt: skip

        first.stop(signal.SIGKILL)  # the daemon alone: its broker is not signalled by anyone but the kernel
        wait_for(lambda: brokers_of(data / "broker") == [], 10, "the broker to end with its daemon")

        agents = AgentProcesses(speaker, tmp_path / "fleet" / "logs")
        agents.start()  # the speaker dials the old port until a broker answers there
        second = DaemonProcess(config, data, tmp_path / "d2.log").start()
        assert json.loads((data / "runtime.json").read_text())["broker_url"] == url.display()  # the same port
        assert len(brokers_of(data / "broker")) == 1
        wait_for(lambda: _done(db, queued), 40, "what was queued before the restart, played")
        after = _announce(second, "Thông báo họp thôn sau khi khởi động lại.", 4)
        wait_for(lambda: _done(db, after), 40, "what was sent after the restart, played")

        with db.session() as s:
            shas = [s.get(Announcement, a).audio_sha256 for a in (queued, after)]  # type: ignore[union-attr]
        plays = played(tmp_path / "fleet" / SPEAKER)
        assert [sum(sha in p["file"] for p in plays) for sha in shas] == [1, 1], plays  # each once
        log = (tmp_path / "fleet" / "logs" / f"{SPEAKER}.log").read_text()
        assert "retrying until it expires" not in log  # the audio was served before the broker handed it out
    finally:
        if agents is not None:
            agents.stop()
        for daemon in (first, second):
            if daemon is not None:
                daemon.stop()
        db.dispose()
        for pid in brokers_of(data / "broker"):  # only what a failing run left of its own
            os.kill(pid, signal.SIGKILL)


def test_the_audio_is_served_before_the_broker_starts(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A restarted broker hands reconnecting devices their queued commands at once, and those name the
    audio listener: it must already answer, or a still-valid item fails with "connection refused"."""
    from daemon import Daemon

    data = tmp_path / "data"
    config = write_config(tmp_path / "loa.toml", data, f"sqlite:///{tmp_path / 'loa.sqlite3'}", "")
    daemon = Daemon(load_config(config, environ={}))
    answers: list[Any] = []
    start = ManagedBroker.start

    def probing_start(broker: ManagedBroker, timeout: float = 10.0) -> None:
        assert daemon.audio is not None, "the broker starts before the audio listener exists"
        answers.append(httpx.get(f"{daemon.audio.url}/audio/{'0' * 64}.mp3", timeout=5).status_code)
        start(broker, timeout)

    monkeypatch.setattr(ManagedBroker, "start", probing_start)
    try:
        daemon.start()
    finally:
        daemon.stop()
    assert answers == [404]  # served (nothing by that name yet), not refused
