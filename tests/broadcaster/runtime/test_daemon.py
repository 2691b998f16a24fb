"""What `make run` promises a newcomer: it copes with taken ports, refuses to run twice, cleans up."""

from __future__ import annotations

import gc
import json
import re
import signal
import socket
import subprocess
import sys
from pathlib import Path

import httpx
from sqlalchemy import func, select

from broadcaster.api.server import HttpServer
from broadcaster.broker.managed import BrokerSettings, ManagedBroker
from broadcaster.db import Database, Device
from tests.broadcaster.harness import ROOT, DaemonProcess, wait_for, write_config


def _occupied_port() -> socket.socket:
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    s.listen(1)
    return s


def test_taken_ports_are_replaced_by_free_ones(tmp_path: Path) -> None:
    with _occupied_port() as taken:
        port = taken.getsockname()[1]
        broker = ManagedBroker(tmp_path / "b", BrokerSettings(port=port))
        broker.start()
        try:
            assert broker.port not in (0, port)
            with socket.create_connection(("127.0.0.1", broker.port), timeout=2):
                pass
        finally:
            broker.stop()
        from fastapi import FastAPI

        http = HttpServer(FastAPI(), "127.0.0.1", port)
        assert http.port != port
        http.sock.close()


def test_a_second_daemon_on_the_same_data_refuses_to_start(tmp_path: Path, broker: ManagedBroker) -> None:
    url = f"sqlite:///{tmp_path / 'loa.sqlite3'}"
    config = write_config(tmp_path / "loa.toml", tmp_path / "data", url, broker.url)
    first = DaemonProcess(config, tmp_path / "data", tmp_path / "d1.log").start()
    try:
        second = subprocess.run(
            [sys.executable, str(ROOT / "daemon.py"), "--config", str(config)],
            capture_output=True,
            text=True,
            timeout=60,
            cwd=ROOT,
        )
        assert second.returncode == 1
        assert "một daemon loa khác đang chạy" in second.stderr
        assert first.proc is not None and first.proc.poll() is None
    finally:
        first.stop()


def test_simulated_villages_come_online_and_do_not_outlive_a_killed_daemon(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'loa.sqlite3'}"
    config = write_config(tmp_path / "loa.toml", tmp_path / "data", url, "")
    text = config.read_text().replace("villages = 0", 'villages = 2\nsink = "null"')
    config.write_text(text)
    daemon = DaemonProcess(config, tmp_path / "data", tmp_path / "d.log").start()
    db = Database(url)
    try:

        def online() -> bool:
            with db.session() as s:
                return s.scalar(select(func.count()).select_from(Device).where(Device.online.is_(True))) == 4

        wait_for(online, 30, "four simulated devices online")
        # The demo admin's password is printed once, in the banner; it works once, to choose another.
        shown = wait_for(
            lambda: re.search(r"Đăng nhập:\s+admin / (\S+)", (tmp_path / "d.log").read_text()), 10, "banner"
        )
        signed = httpx.post(
            daemon.api_url + "/api/v1/session", json={"username": "admin", "password": shown.group(1)}, timeout=10
        )
        assert signed.status_code == 200, signed.text
        assert signed.json()["user"]["must_change_password"] is True
        # the villagers' pages the banner names are there, on the audio listener, with no sign-in
        listen = re.search(r"Nghe lại:\s+(\S+)", (tmp_path / "d.log").read_text())
        assert listen, "the banner names the villagers' pages"
        page = httpx.get(listen.group(1), timeout=10)
        assert page.status_code == 200 and "Thôn 1" in page.text, page.text[:300]
        marker = str(tmp_path / "data" / "sim")

        def agents() -> list[str]:
            out = subprocess.run(["pgrep", "-f", marker], capture_output=True, text=True).stdout
            return out.split()

        assert len(agents()) >= 4  # four agents (and the managed broker, whose state lives elsewhere)
        daemon.stop(signal.SIGKILL)
        wait_for(lambda: not agents(), 10, "simulated agents to exit after the daemon died")
    finally:
        daemon.stop()
        db.dispose()
        subprocess.run(["pkill", "-f", str(tmp_path)], check=False)
        # the broker a killed daemon leaves is ended by the next start in that folder: here, now
        ManagedBroker(tmp_path / "data" / "broker", BrokerSettings()).end_orphan()


def test_a_restarted_daemon_keeps_the_ports_devices_were_given(tmp_path: Path, broker: ManagedBroker) -> None:
    """Commands already out carry audio URLs with the old port; provisioned devices the broker's."""
    url = f"sqlite:///{tmp_path / 'loa.sqlite3'}"
    config = write_config(tmp_path / "loa.toml", tmp_path / "data", url, "")  # managed broker, free ports
    first = DaemonProcess(config, tmp_path / "data", tmp_path / "d1.log").start()
    before = json.loads((tmp_path / "data" / "runtime.json").read_text())
    first.stop()
    second = DaemonProcess(config, tmp_path / "data", tmp_path / "d2.log").start()
    try:
        after = json.loads((tmp_path / "data" / "runtime.json").read_text())
        assert after["api_url"] == before["api_url"] and after["broker_url"] == before["broker_url"]
        assert after["audio_url"] == before["audio_url"] != after["api_url"]  # audio has its own listener
        assert after["pid"] != before["pid"]
        # a real commune (no simulated villages) gets no default account: the banner says how to make one
        banner = wait_for(lambda: "Thử ngay" in (log := (tmp_path / "d2.log").read_text()) and log, 10, "banner")
        assert "Chưa có tài khoản" in banner and "admin /" not in banner
    finally:
        second.stop()


def test_the_banner_warns_a_newcomer_during_quiet_hours() -> None:
    from datetime import datetime

    from broadcaster.config import load_config
    from daemon import Daemon
    from schedules.clock import LOCAL_TZ, FakeClock

    class Bound:
        url = "http://127.0.0.1:8080"

    night = Daemon(load_config(None, environ={}), clock=FakeClock(datetime(2026, 11, 25, 3, 0, tzinfo=LOCAL_TZ)))
    night.http = Bound()  # type: ignore[assignment]
    assert "giờ yên tĩnh (21:30–05:00)" in night.banner()
    day = Daemon(load_config(None, environ={}), clock=FakeClock(datetime(2026, 11, 25, 9, 0, tzinfo=LOCAL_TZ)))
    day.http = Bound()  # type: ignore[assignment]
    assert "giờ yên tĩnh" not in day.banner() and "curl -s -X POST http://127.0.0.1:8080" in day.banner()


def test_the_banner_hands_over_the_first_sign_in_once() -> None:
    from broadcaster.config import load_config
    from broadcaster.runtime.banner import banner
    from schedules.clock import SystemClock

    parts = {"api_url": "http://127.0.0.1:8080", "broker_url": "mqtt://127.0.0.1:1883", "managed_broker": True}
    config = load_config(None, environ={})
    demo = banner(config, SystemClock(), simulated=True, demo_password="Abc23456", accounts=True, **parts)
    assert "admin / Abc23456" in demo and "loa token add --user admin" in demo
    assert "Authorization: Bearer $TOKEN" in demo  # the curl example signs in
    later = banner(config, SystemClock(), simulated=True, demo_password=None, accounts=True, **parts)
    assert "Abc23456" not in later and "loa user passwd admin --generate" in later  # shown once; then reset
    real = banner(config, SystemClock(), simulated=False, accounts=False, **parts)
    assert "loa user add TEN --role admin" in real


def test_settled_memory_is_out_of_the_collectors_reach() -> None:
    """What start-up built is frozen, so a full collection mid-bulletin does not scan it again."""
    from broadcaster.runtime.memory import settle_memory

    survivor = [object()]  # a container the collector tracks, alive before and after
    assert gc.is_tracked(survivor)
    try:
        settle_memory()
        assert gc.get_freeze_count() > 0
        assert all(survivor is not o for o in gc.get_objects())  # frozen objects are not in any generation
    finally:
        gc.unfreeze()
    assert any(survivor is o for o in gc.get_objects())
