"""Running the real daemon and real device agents as processes, the way a commune runs them."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx

from broadcaster import protocol
from broadcaster.config import load_config
from broadcaster.db import Role
from broadcaster.services.build import build_services
from broadcaster.services.zones import ensure_commune
from broadcaster.simulation.commune import AgentProcesses, provision
from schedules.clock import SystemClock
from tests.broadcaster.conftest import make_token, migrated

ROOT = Path(__file__).resolve().parents[2]


def wait_for(predicate: Callable[[], Any], timeout: float, what: str, interval: float = 0.1) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


def write_config(path: Path, data_dir: Path, database_url: str, broker_url: str, **dispatch: float) -> Path:
    lines = [
        "[general]",
        f'data_dir = "{data_dir}"',
        'log_level = "INFO"',
        "[database]",
        f'url = "{database_url}"',
        "[broker]",
        f'url = "{broker_url}"',
        "port = 0",
        "[http]",
        "port = 0",
        "audio_port = 0",
        "[speech]",
        "chimes = false",
        "[schedule]",  # real-clock tests must not depend on the hour they run at
        'quiet_start = "00:00"',
        'quiet_end = "00:00"',
        "[security]",  # what a daemon test posts is planned at once (approval: tests/broadcaster/api/test_approvals.py)
        "require_approval = false",
        "[simulation]",
        "villages = 0",
        "[dispatch]",
        *(f"{k} = {v}" for k, v in dispatch.items()),
    ]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


class DaemonProcess:
    def __init__(self, config: Path, data_dir: Path, log: Path) -> None:
        self.config = config
        self.data_dir = data_dir
        self.log = log
        self.proc: subprocess.Popen[bytes] | None = None
        self.api_url = ""
        self.audio_url = ""
        self._token = ""

    def start(self, timeout: float = 30, *, own_group: bool = False) -> DaemonProcess:
        """`own_group`: in a process group (and session) of its own, as a service manager or a terminal
        starts it, so a signal can go to the daemon and everything it started (`os.killpg`)."""
        runtime = self.data_dir / "runtime.json"
        out = self.log.open("ab")
        self.proc = subprocess.Popen(
            [sys.executable, str(ROOT / "daemon.py"), "--config", str(self.config)],
            stdout=out,
            stderr=subprocess.STDOUT,
            cwd=ROOT,
            start_new_session=own_group,
        )
        out.close()

        def ready() -> dict[str, Any] | None:
            assert self.proc is not None
            if self.proc.poll() is not None:
                raise AssertionError(f"daemon exited {self.proc.returncode}:\n{self.log.read_text()[-3000:]}")
            if not runtime.exists():
                return None
            info: dict[str, Any] = json.loads(runtime.read_text())
            return info if info.get("pid") == self.proc.pid else None

        info = wait_for(ready, timeout, "daemon start")
        self.api_url, self.audio_url = info["api_url"], info["audio_url"]
        return self

    def stop(self, sig: int = signal.SIGTERM) -> None:
        if self.proc and self.proc.poll() is None:
            os.kill(self.proc.pid, sig)
            self.proc.wait(timeout=15)

    @property
    def token(self) -> str:
        """An admin's API token, made in the daemon's database the way `loa user add` and `loa token add`
        make them (the API answers nobody who is not signed in)."""
        if not self._token:
            svc = build_services(load_config(self.config, environ={}), SystemClock(), migrate=False)
            try:
                self._token = make_token(svc, "harness", Role.ADMIN)
            finally:
                svc.db.dispose()
        return self._token

    def post(self, path: str, body: dict[str, Any]) -> httpx.Response:
        headers = {"Authorization": f"Bearer {self.token}"}
        return httpx.post(self.api_url + path, json=body, headers=headers, timeout=60)


def village_fleet(
    tmp: Path, database_url: str, broker_url: str, villages: int = 2
) -> tuple[AgentProcesses, protocol.Signer]:
    """Villages with a speaker and an LED board each, as separate agent processes with file sinks."""
    signer = protocol.load_or_create_signer(tmp / "data" / "keys" / "daemon-ed25519.pem")
    db = migrated(database_url)
    with db.session() as session:
        ensure_commune(session, "Xã thử nghiệm")
    configs = provision(
        db,
        tmp / "fleet",
        villages,
        broker_url,
        {signer.kid: signer.public_b64},
        protocol.DEFAULT_PREFIX,
        "file",
    )
    db.dispose()
    agents = AgentProcesses(configs, tmp / "fleet" / "logs")
    agents.start()
    return agents, signer


def played(state_dir: Path) -> list[dict[str, Any]]:
    log = state_dir / "played" / "played.jsonl"
    if not log.exists():
        return []
    return [json.loads(line) for line in log.read_text().splitlines() if line.strip()]
