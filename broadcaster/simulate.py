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

from broadcaster import security
from broadcaster.agents.base import AgentConfig
from broadcaster.db import Database, DeviceKind
from broadcaster.service import add_device, add_village

log = logging.getLogger(__name__)


def village_id(n: int) -> str:
    return f"thon-{n}"


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
                secret = security.issue_credentials(device)  # new each start; the config file is rewritten too
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
