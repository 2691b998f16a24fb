"""One device cannot silence the commune, nor keep it silent across restarts: the real daemon process,
real agents in two villages, and a device of the commune sending poison on its own topics during an
airing to the others, and into the daemon's persistent session while it is down."""

from __future__ import annotations

import signal
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from sqlalchemy import select

from broadcaster.broker.managed import ManagedBroker
from broadcaster.db import Broadcast, Database, Delivery, DeliveryStatus, DeviceKind
from broadcaster.services.announcements import announce
from broadcaster.services.zones import add_device
from schedules.clock import SystemClock
from tests.broadcaster.conftest import make_services
from tests.broadcaster.dispatch.test_bad_input import NEST, RawDevice
from tests.broadcaster.harness import DaemonProcess, village_fleet, wait_for, write_config

pytestmark = pytest.mark.slow

EVIL = "thon-1-loa-2"  # a second speaker in thon-1, provisioned like the others, with no agent of its own
GOOD = ("thon-1-loa", "thon-1-led", "thon-2-loa", "thon-2-led")


def _statuses(db: Database, announcement_id: int) -> dict[str, DeliveryStatus]:
    with db.session() as s:
        rows = s.execute(
            select(Delivery.device_id, Delivery.status)
            .join(Broadcast, Delivery.broadcast_id == Broadcast.id)
            .where(Broadcast.announcement_id == announcement_id)
        )
        return {device: status for device, status in rows}


def _healthy(daemon: DaemonProcess) -> bool:
    answer = httpx.get(daemon.api_url + "/api/v1/health", timeout=10)
    return answer.status_code == 200 and answer.json()["failing"] == []


def _refused(daemon: DaemonProcess, code: str) -> bool:
    """The daemon said it dropped a device message for this reason (logged once per reason and run)."""
    return f"dropped device message ({code})" in daemon.log.read_text(encoding="utf-8")


def test_a_device_sending_poison_silences_nobody_and_restarts_come_back_healthy(
    tmp_path: Path, broker: ManagedBroker, sqlite_url: str
) -> None:
    agents, _ = village_fleet(tmp_path, sqlite_url, broker.url)
    svc = make_services(
        tmp_path, sqlite_url, SystemClock(), LOA_SCHEDULE_QUIET_START="00:00", LOA_SCHEDULE_QUIET_END="00:00"
    )
    with svc.db.session() as s:
        add_device(s, EVIL, DeviceKind.SPEAKER, "thon-1")
    data = tmp_path / "data"
    config = write_config(tmp_path / "loa.toml", data, sqlite_url, broker.url, lead_s=2, reconcile_s=0.2)
    daemon = DaemonProcess(config, data, tmp_path / "d1.log").start()
    evil = RawDevice(broker, EVIL)
    try:
        evil.send("status", NEST, retain=True)

        def airs_everywhere(text: str) -> None:
            at = datetime.now(UTC) + timedelta(seconds=5)
            item = announce(svc, text, ["all"], at, actor="test")["id"]
            while set(_statuses(svc.db, item)) != {*GOOD, EVIL}:  # the airing is under way: poison it
                for kind, payload in (
                    ("ack", NEST),
                    ("status", NEST),
                    ("tele", b'{"v": 2, "signal": ' + str(2**70).encode() + b"}"),
                    ("tele", b'{"v": 2, "signal": NaN}'),
                    ("status", b'{"v": 2, "online": true, "volume": "loud"}'),
                    ("ack", b'{"v": 2, "cmd": "x", "state": "done", "pad": "' + b"a" * 1_000_000 + b'"}'),
                ):
                    evil.send(kind, payload)
            wait_for(
                lambda: all(_statuses(svc.db, item).get(d) is DeliveryStatus.DONE for d in GOOD),
                40,
                f"every other device's delivery done: {_statuses(svc.db, item)}",
            )
            assert _statuses(svc.db, item)[EVIL] is not DeliveryStatus.DONE

        wait_for(lambda: _healthy(daemon), 10, "a healthy daemon")
        airs_everywhere("Thông báo lần một: họp thôn lúc 7h30.")
        assert _healthy(daemon)
        assert _refused(daemon, "too_deep") and _refused(daemon, "oversized_payload")

        # Down for a moment: the poison waits in its persistent session, and as a retained status.
        daemon.stop(signal.SIGTERM)
        evil.send("ack", NEST)
        evil.send("status", NEST, retain=True)
        daemon = DaemonProcess(config, data, tmp_path / "d2.log").start()
        wait_for(lambda: _refused(daemon, "too_deep"), 10, "the queued poison handed to the daemon")
        assert _healthy(daemon)
        airs_everywhere("Thông báo lần hai: họp thôn lúc 8h.")
        assert _healthy(daemon)
    finally:
        evil.close()
        daemon.stop()
        agents.stop()
        svc.db.dispose()
