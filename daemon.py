"""The loa daemon: builds each part from the config and wires them together; it holds no logic itself.

database ─┐                         ┌─> HTTP API + /audio files (devices download here)
audio ────┼─> Services ─────────────┤
clock ────┘        │                └─> Dispatcher ─> DeviceLink ─MQTT─> speakers, LED boards
                   └─ Timer (APScheduler, ids only)        ^                    │
                                              EventWriter <─ acks, status ──────┘
"""

from __future__ import annotations

import argparse
import fcntl
import gc
import json
import logging
import os
import signal
import sys
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO
from urllib.parse import urlsplit

from broadcaster import protocol, security
from broadcaster.api import HttpServer, create_app
from broadcaster.app import build_services
from broadcaster.broker import BrokerSettings, ManagedBroker
from broadcaster.config import Config, ConfigError, load_config
from broadcaster.devices import EventWriter, Metrics
from broadcaster.dispatch import DevicePath
from broadcaster.mqtt import BrokerAddress
from broadcaster.programmes import expand_programmes
from broadcaster.service import Services, evict_audio
from broadcaster.simulate import AgentProcesses, provision
from schedules.clock import Clock, SystemClock, to_local

log = logging.getLogger("loa")


def previous_ports(data: Path) -> tuple[int, int]:
    """The API and broker ports of the last run: commands and device configs already carry them."""
    try:
        info = json.loads((data / "runtime.json").read_text(encoding="utf-8"))
        return urlsplit(info["api_url"]).port or 0, urlsplit(info["broker_url"]).port or 0
    except (OSError, ValueError, KeyError):
        return 0, 0


@dataclass
class Daemon:
    config: Config
    clock: Clock = field(default_factory=SystemClock)
    broker: ManagedBroker | None = None
    http: HttpServer | None = None
    services: Services | None = None
    path: DevicePath | None = None
    agents: AgentProcesses | None = None
    access: security.BrokerAccess | None = None
    metrics: Metrics = field(default_factory=Metrics)
    broker_url: str = ""
    _lock_file: TextIO | None = None

    def start(self) -> None:
        cfg = self.config
        data = Path(cfg.general.data_dir).resolve()
        self._lock_data_dir(data)
        svc = self.services = build_services(cfg, self.clock)
        signer = protocol.load_or_create_signer(data / "keys" / "daemon-ed25519.pem")
        last_api, last_broker = previous_ports(data)
        topics = protocol.Topics(cfg.broker.topic_prefix)

        if cfg.broker.url:
            address = BrokerAddress.parse(cfg.broker.url)
            if cfg.broker.password:
                address = address.with_credentials(address.username or "loa-daemon", cfg.broker.password)
        else:
            user, password = security.daemon_credentials(cfg)
            self.access = security.BrokerAccess(svc.db, data / "broker", user, password, topics.prefix)
            self.broker = ManagedBroker(
                data / "broker",
                BrokerSettings(
                    host=cfg.broker.host,
                    port=cfg.broker.port,
                    binary=cfg.broker.mosquitto,
                    extra_lines=self.access.write(),
                    fallback_port=last_broker,
                ),
            )
            self.broker.start()
            self.access.watch(self.broker)
            address = BrokerAddress.parse(self.broker.url).with_credentials(user, password)
        self.broker_url = address.display()

        store = svc.audio.store
        self.http = HttpServer(
            create_app(svc, store, on_change=self._poke, metrics=self.metrics.snapshot),
            cfg.http.host,
            cfg.http.port,
            fallback_port=last_api,
        )
        base_url = (cfg.http.public_url or self.http.url).rstrip("/")
        self.path = DevicePath.build(
            svc.db,
            self.clock,
            cfg.dispatch,
            signer,
            address,
            lambda sha, ext: f"{base_url}/audio/{sha}.{ext}",
            topics=topics,
            client_id=f"loa-daemon-{signer.kid}",
            chores=[lambda: expand_programmes(svc), lambda: evict_audio(svc)],
            writer=EventWriter(svc.db, self.clock, self.metrics),
        )
        self.http.start()  # audio is served before the first command can name it
        self.path.start()

        self._write_runtime(data)
        if cfg.simulation.villages:
            configs = provision(
                svc.db,
                data / "sim",
                cfg.simulation.villages,
                self.broker.url if self.broker else self.broker_url,
                {signer.kid: signer.public_b64},
                topics.prefix,
                cfg.simulation.sink,
            )
            if self.access and self.broker:
                self.access.refresh(self.broker)  # the new credentials, before the agents dial in
            self.agents = AgentProcesses(configs, data / "sim" / "logs")
            self.agents.start()

    def _lock_data_dir(self, data: Path) -> None:
        """Two daemons on one data folder would fight over the broker session and the devices."""
        data.mkdir(parents=True, exist_ok=True)
        self._lock_file = (data / "daemon.lock").open("a+")
        try:
            fcntl.flock(self._lock_file, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            self._lock_file.seek(0)
            other = self._lock_file.read().strip() or "?"
            self._lock_file.close()
            self._lock_file = None
            raise RuntimeError(
                f"một daemon loa khác đang chạy với thư mục dữ liệu {data} (pid {other}) / "
                "another daemon already uses this data folder"
            ) from None
        self._lock_file.seek(0)
        self._lock_file.truncate()
        self._lock_file.write(str(os.getpid()))
        self._lock_file.flush()

    def _write_runtime(self, data: Path) -> None:
        """Where this instance listens, for the CLI, scripts and tests (ports may have been moved)."""
        assert self.http is not None
        info = {"api_url": self.http.url, "broker_url": self.broker_url, "pid": os.getpid()}
        tmp = data / "runtime.json.tmp"
        tmp.write_text(json.dumps(info), encoding="utf-8")
        tmp.replace(data / "runtime.json")

    def _poke(self) -> None:
        if self.path:
            self.path.dispatcher.poke()

    def stop(self) -> None:
        for part in (self.agents, self.path, self.http, self.access, self.broker):
            if part is not None:
                try:
                    part.stop()
                except Exception:
                    log.exception("while stopping %s", type(part).__name__)
        if self.services:
            self.services.db.dispose()
        if self._lock_file is not None:
            self._lock_file.close()
            self._lock_file = None

    def banner(self) -> str:
        assert self.http is not None
        api = self.http.url
        lines = [
            f"loa đang chạy — xã {self.config.general.commune}",
            f"  API:        {api}/api/v1/health",
            f"  Âm thanh:   {api}/audio/<sha256>.mp3",
            f"  Broker:     {self.broker_url}{' (do loa quản lý)' if self.broker else ''}",
            f"  Dữ liệu:    {Path(self.config.general.data_dir).resolve()}",
        ]
        if self.agents:
            lines.append(
                f"  Mô phỏng:   {self.config.simulation.villages} thôn (loa + bảng LED), "
                f"tệp đã phát trong {Path(self.config.general.data_dir).resolve() / 'sim'}"
            )
        quiet = self.config.schedule
        now = to_local(self.clock.now()).strftime("%H:%M")
        start, end = quiet.quiet_start, quiet.quiet_end
        if (start <= now or now < end) if start > end else (start <= now < end):
            lines.append(
                f"  Lưu ý: đang trong giờ yên tĩnh ({start}–{end}): thông báo thường sẽ bị từ chối và chỉ tin khẩn cấp "
                f"được phát; hãy hẹn giờ sau {end} (--at), hoặc đổi [schedule] trong cấu hình."
            )
        lines += [
            "Thử ngay / try it:",
            f"  curl -s -X POST {api}/api/v1/announcements -H 'Content-Type: application/json' "
            '-d \'{"text": "UBND xã thông báo: 7h30 sáng mai họp thôn.", "zones": ["all"], "at": "+10s"}\'',
            "  .venv/bin/loa status",
        ]
        return "\n".join(lines)


def settle_memory() -> None:
    """Put what start-up built (modules, SQLAlchemy's metadata and compiled statements, about 170,000
    objects) out of the garbage collector's reach: it lives as long as the process, and every full
    collection scanned it again, holding the GIL for 70-110 ms in the middle of a bulletin's acks
    (bench/fanout.py). Collect first, so no start-up garbage is kept for good."""
    gc.collect()
    gc.freeze()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="daemon.py", description="loa broadcaster daemon")
    parser.add_argument("--config", type=Path, default=None, help="TOML config (default: $LOA_CONFIG or built-in)")
    args = parser.parse_args(argv)
    try:
        config = load_config(args.config)
    except ConfigError as exc:
        print(exc, file=sys.stderr)
        return 2
    logging.basicConfig(level=config.general.log_level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    for noisy in ("alembic", "apscheduler"):  # start-up chatter that tells an operator nothing
        logging.getLogger(noisy).setLevel(logging.WARNING)
    daemon = Daemon(config)
    stop = threading.Event()

    def _signal(signum: int, _frame: Any) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, _signal)
    signal.signal(signal.SIGINT, _signal)
    try:
        daemon.start()
    except Exception as exc:
        log.error("cannot start: %s", exc)
        daemon.stop()
        return 1
    settle_memory()
    print(daemon.banner(), flush=True)
    stop.wait()
    log.info("stopping")
    daemon.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
