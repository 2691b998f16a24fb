"""A simulated commune: villages with one speaker and one LED board each, run as real agent processes.

It exists so that a newcomer's first `make run` hears and sees the system work, and so tests and demos
exercise the very agent code a field device runs.
"""

from __future__ import annotations

import logging
import subprocess
import sys
import threading
import time
from pathlib import Path

from broadcaster.broker.credentials import issue_credentials
from broadcaster.db import Database, DeviceKind
from broadcaster.device.agent import AgentConfig
from broadcaster.services.zones import add_device, add_village, ensure_commune
from broadcaster.simulation.fleet import SimDevice, village_id

log = logging.getLogger(__name__)


def provision(
    db: Database,
    state_root: Path,
    villages: int,
    broker_url: str,
    public_keys: dict[str, str],
    topic_prefix: str,
    sink: str,
) -> list[Path]:
    """Create the villages and their devices in the database, and one agent config file per device."""
    configs: list[Path] = []
    with db.session() as session:
        for n in range(1, villages + 1):
            vid = village_id(n)
            add_village(session, vid, f"Thôn {n}")
            for kind, suffix in ((DeviceKind.SPEAKER, "loa"), (DeviceKind.LED, "led")):
                device_id = f"{vid}-{suffix}"
                device = add_device(
                    session, device_id, kind, vid, f"{'Loa' if suffix == 'loa' else 'Bảng LED'} thôn {n}"
                )
                secret = issue_credentials(device)  # new each start; the config file is rewritten too
                cfg = AgentConfig(
                    device_id=device_id,
                    kind=kind.value,
                    broker_url=broker_url,
                    public_keys=public_keys,
                    topic_prefix=topic_prefix,
                    username=device_id,
                    password=secret,
                    state_dir=str(state_root / device_id),
                    sink=sink,
                )
                path = state_root / f"{device_id}.json"
                cfg.save(path)
                configs.append(path)
    return configs


class AgentProcesses:
    """Runs `loa agent` processes and restarts any that die, like a device's own supervisor would."""

    def __init__(self, configs: list[Path], log_dir: Path) -> None:
        self.configs = configs
        self.log_dir = log_dir
        self.procs: dict[Path, subprocess.Popen[bytes]] = {}
        self._stopping = threading.Event()
        self._watcher = threading.Thread(target=self._watch, name="agents-watch", daemon=True)

    def _spawn(self, cfg: Path) -> None:
        kind = AgentConfig.load(cfg).kind
        out = (self.log_dir / f"{cfg.stem}.log").open("ab")
        self.procs[cfg] = subprocess.Popen(
            [sys.executable, "-m", "broadcaster.cli", "agent", kind, "--config", str(cfg), "--exit-with-parent"],
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )
        out.close()

    def start(self) -> None:
        self.log_dir.mkdir(parents=True, exist_ok=True)
        for cfg in self.configs:
            self._spawn(cfg)
        self._watcher.start()

    def _watch(self) -> None:
        while not self._stopping.wait(2.0):
            for cfg, proc in list(self.procs.items()):
                if proc.poll() is not None and not self._stopping.is_set():
                    log.warning("simulated agent %s exited (%s); restarting", cfg.stem, proc.returncode)
                    self._spawn(cfg)

    def stop(self) -> None:
        self._stopping.set()
        for proc in self.procs.values():
            if proc.poll() is None:
                proc.terminate()
        deadline = time.monotonic() + 5
        for proc in self.procs.values():
            try:
                proc.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                proc.kill()


def provision_fleet(db: Database, devices: list[SimDevice], commune: str = "Xã mô phỏng") -> list[SimDevice]:
    """The villages and devices in the database through the service's own functions (idempotent), so the
    daemon targets and tracks them like provisioned hardware (5,000 devices take about 1.3 s)."""
    with db.session() as session:
        ensure_commune(session, commune)
        for d in devices:
            vid = village_of(d.id)
            add_village(session, vid, f"Thôn {vid.split('-', 1)[1]}")
            kind = DeviceKind.SPEAKER if d.kind == "speaker" else DeviceKind.LED
            add_device(session, d.id, kind, vid)
    return devices


def village_of(device_id: str) -> str:
    """'thon-3-loa-12' -> 'thon-3'."""
    return device_id.rsplit("-", 2)[0]
