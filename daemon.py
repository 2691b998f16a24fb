"""The loa daemon: builds each part from the config and wires them together; it holds no logic itself.

database ─┐                         ┌─> HTTP API (people, signed in) · /audio files (devices download)
audio ────┼─> Services ─────────────┤
clock ────┘        │                └─> Dispatcher ─> DeviceLink ─MQTT─> speakers, LED boards
                   └─ Timer (APScheduler, ids only)        ^                    │
                                              EventWriter <─ acks, status ──────┘
"""

from __future__ import annotations

import argparse
import logging
import signal
import sys
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from broadcaster import protocol
from broadcaster.api.app import create_app, create_audio_app
from broadcaster.api.server import HttpServer
from broadcaster.broker.access import BrokerAccess
from broadcaster.broker.credentials import daemon_credentials
from broadcaster.broker.managed import BrokerSettings, ManagedBroker
from broadcaster.config import Config, ConfigError, load_config
from broadcaster.dispatch.events import EventWriter, Metrics
from broadcaster.errors import LoaError
from broadcaster.protocol.mqtt import BrokerAddress
from broadcaster.runtime.alerts import AlertPoller
from broadcaster.runtime.banner import banner
from broadcaster.runtime.datadir import DataDirLock, keep_private, previous_ports, write_runtime
from broadcaster.runtime.feeds import FeedPoller
from broadcaster.runtime.memory import settle_memory
from broadcaster.runtime.path import DevicePath
from broadcaster.runtime.slogans import SloganRotation
from broadcaster.services import Services
from broadcaster.services.accounts import ensure_demo_admin, has_users
from broadcaster.services.audio import evict_audio
from broadcaster.services.build import build_services
from broadcaster.services.feedback import purge_feedback
from broadcaster.services.live import LiveDesk
from broadcaster.services.programmes import expand_programmes
from broadcaster.simulation.commune import AgentProcesses, provision
from schedules.clock import Clock, SystemClock

log = logging.getLogger("loa")


@dataclass
class Daemon:
    config: Config
    clock: Clock = field(default_factory=SystemClock)
    broker: ManagedBroker | None = None
    http: HttpServer | None = None
    audio: HttpServer | None = None
    services: Services | None = None
    path: DevicePath | None = None
    live: LiveDesk | None = None
    slogans: SloganRotation | None = None
    alerts: AlertPoller | None = None
    feeds: FeedPoller | None = None
    agents: AgentProcesses | None = None
    access: BrokerAccess | None = None
    metrics: Metrics = field(default_factory=Metrics)
    broker_url: str = ""
    demo_password: str | None = None  # the simulated commune's admin, shown once in the banner
    _lock: DataDirLock | None = None

    def start(self) -> None:
        cfg = self.config
        data = Path(cfg.general.data_dir).resolve()
        keep_private(data)
        self._lock = DataDirLock(data)
        self._lock.acquire()
        svc = self.services = build_services(cfg, self.clock)
        signer = protocol.load_or_create_signer(data / "keys" / "daemon-ed25519.pem")
        last_api, last_broker, last_audio = previous_ports(data)
        topics = protocol.Topics(cfg.broker.topic_prefix)
        store = svc.audio.store
        live = self.live = LiveDesk(svc)
        # The audio files devices fetch, on a listener of their own (the API need not face the speakers'
        # network), serving before the broker starts: devices that reconnect to a restarted broker are handed
        # their queued commands at once, and those name this listener.
        self.audio = HttpServer(
            create_audio_app(store, live, svc), cfg.http.audio_host, cfg.http.audio_port, last_audio
        )  # and the villagers' pages (broadcaster/web/public/)
        self.audio.start()
        base_url = (cfg.http.audio_url or self.audio.url).rstrip("/")
        live.publish_at(base_url)

        if cfg.broker.url:
            address = BrokerAddress.parse(cfg.broker.url)
            if cfg.broker.password:
                address = address.with_credentials(address.username or "loa-daemon", cfg.broker.password)
        else:
            user, password = daemon_credentials(cfg)
            self.access = BrokerAccess(svc.db, data / "broker", user, password, topics.prefix)
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

        self.http = HttpServer(
            create_app(
                svc,
                store,
                on_change=self._poke,
                metrics=self.metrics.snapshot,
                health_probe=lambda: self.path.failing() if self.path else ["mqtt_loop", "event_writer"],
                live_desk=live,
            ),
            cfg.http.host,
            cfg.http.port,
            fallback_port=last_api,
        )
        self.path = DevicePath.build(
            svc.db,
            self.clock,
            cfg.dispatch,
            signer,
            address,
            lambda sha, ext: f"{base_url}/audio/{sha}.{ext}",
            topics=topics,
            client_id=f"loa-daemon-{signer.kid}",
            chores=[lambda: expand_programmes(svc), lambda: evict_audio(svc), lambda: purge_feedback(svc)],
            writer=EventWriter(svc.db, self.clock, self.metrics),
            live_url=live.stream_url,
        )
        self.http.start()
        self.path.start()
        live.start()
        self.slogans = SloganRotation.build(svc, signer, self.path.dispatcher.outbox)
        self.slogans.start()  # the LED boards' slogans in turn, between broadcasts ([led] slogan_every_s)
        self.alerts = AlertPoller(svc, on_change=self._poke)
        self.alerts.start()  # the CAP sources served at a URL ([alerts.sources], kind cap-url)
        self.feeds = FeedPoller(svc)
        self.feeds.start()  # the news feeds: new articles become drafts awaiting approval

        if cfg.simulation.villages:
            self.demo_password = ensure_demo_admin(svc)
        write_runtime(data, self.http.url, self.broker_url, self.audio.url)
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

    def _poke(self) -> None:
        if self.path:
            self.path.dispatcher.poke()

    def stop(self) -> None:
        for part in (
            self.agents, self.feeds, self.alerts, self.slogans, self.live, self.path, self.http, self.audio,
            self.access, self.broker,
        ):  # fmt: skip
            if part is not None:
                try:
                    part.stop()
                except Exception:
                    log.exception("while stopping %s", type(part).__name__)
        if self.services:
            self.services.db.dispose()
        if self._lock is not None:
            self._lock.release()
            self._lock = None

    def banner(self) -> str:
        assert self.http is not None
        return banner(
            self.config,
            self.clock,
            api_url=self.http.url,
            audio_url=self.audio.url if self.audio else "",
            broker_url=self.broker_url,
            managed_broker=self.broker is not None,
            simulated=self.agents is not None,
            demo_password=self.demo_password,
            accounts=has_users(self.services) if self.services else None,
        )


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
        if daemon.broker is not None:
            daemon.broker.stop_restarting()  # a signal to the process group has reached mosquitto too
        stop.set()

    signal.signal(signal.SIGTERM, _signal)
    signal.signal(signal.SIGINT, _signal)
    try:
        daemon.start()
    except Exception as exc:
        log.error("cannot start: %s", exc.message() if isinstance(exc, LoaError) else exc)
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
