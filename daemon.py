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
from broadcaster.runtime.banner import banner
from broadcaster.runtime.datadir import DataDirLock, keep_private, previous_ports, write_runtime
from broadcaster.runtime.duties import LeaderDuties
from broadcaster.runtime.leader import Leadership
from broadcaster.runtime.logs import configure_logging
from broadcaster.runtime.memory import MemoryTrimmer, limit_malloc_arenas, settle_memory
from broadcaster.runtime.metrics import OpsMetrics, follow, readiness
from broadcaster.runtime.path import DevicePath
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
    duties: LeaderDuties | None = None  # what only the leader runs: firing, chores, slogans, pollers
    agents: AgentProcesses | None = None
    access: BrokerAccess | None = None
    metrics: Metrics = field(default_factory=Metrics)
    ops: OpsMetrics | None = None  # Prometheus, at GET /metrics
    leadership: Leadership | None = None  # several daemons on one PostgreSQL ([cluster]); None alone
    broker_url: str = ""
    demo_password: str | None = None  # the simulated commune's admin, shown once in the banner
    _lock: DataDirLock | None = None

    def start(self) -> None:
        cfg = self.config
        data = Path(cfg.general.data_dir).resolve()
        keep_private(data)
        self._lock = DataDirLock(data)
        self._lock.acquire()
        if cfg.cluster.enabled:  # several daemons: docs/deployment.md
            if not cfg.database_url.startswith("postgresql"):
                raise LoaError("cluster_needs_postgres", {})
            if not cfg.broker.url:
                raise LoaError("cluster_needs_broker", {})
        svc = self.services = build_services(cfg, self.clock, migrate=cfg.upgrade_on_start)
        ops = self.ops = OpsMetrics(svc.db, self.clock)
        ops.watch(self.metrics, svc.audio)  # acks, start errors, reconnects, render times, where they happen
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
                ready_probe=lambda: readiness(self.path),
                ops_metrics=ops,
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
            # In a cluster every daemon signs with the same key, so its own name tells the sessions apart.
            client_id=f"loa-daemon-{signer.kid}" + (f"-{cfg.instance}" if cfg.cluster.enabled else ""),
            chores=[lambda: expand_programmes(svc), lambda: evict_audio(svc), lambda: purge_feedback(svc)],
            writer=EventWriter(svc.db, self.clock, self.metrics),
            live_url=live.stream_url,
            persistent=not cfg.cluster.enabled,  # a dead member's kept session would hold its share of acks
        )
        follow(ops, self.path, leading=lambda: self.leadership is None or self.leadership.leading)
        self.http.start()
        self.path.start(dispatch=False)  # what devices report is recorded by every daemon of a cluster
        live.start(close_leftovers=not cfg.cluster.enabled)
        duties = self.duties = LeaderDuties(svc, signer, self.path, on_change=self._poke)
        if cfg.cluster.enabled:
            self.leadership = Leadership(
                cfg.database_url,
                instance=cfg.instance,
                on_gain=duties.start,
                on_loss=duties.stop,
                poll_s=cfg.cluster.poll_s,
                lock_timeout_s=cfg.cluster.lock_timeout_s,
            )
            self.path.dispatcher.outbox.fence = self.leadership.fence
            self.leadership.start()
        else:
            duties.start()

        if cfg.simulation.villages and cfg.cluster.enabled:
            log.warning("[simulation] villages is ignored in a cluster: every daemon would start them")
        elif cfg.simulation.villages:
            self.demo_password = ensure_demo_admin(svc)
        write_runtime(data, self.http.url, self.broker_url, self.audio.url)
        if cfg.simulation.villages and not cfg.cluster.enabled:
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
        # A follower's new item or recall reaches the leader through the database: it re-reads it every
        # [dispatch] reconcile_s (1 s by default).
        if self.path and (self.leadership is None or self.leadership.leading):
            self.path.dispatcher.poke()

    def stop(self) -> None:
        # First the lead: the leader's parts stop, then its lock is freed at once for another daemon.
        for part in (
            self.leadership or self.duties, self.agents, self.live, self.path, self.http, self.audio,
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
    limit_malloc_arenas()  # before any thread starts (broadcaster/runtime/memory.py)
    try:
        config = load_config(args.config)
    except ConfigError as exc:
        print(exc, file=sys.stderr)
        return 2
    configure_logging(config.general.log_level, config.general.log_format)
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
    trimmer = MemoryTrimmer()
    trimmer.start()  # what malloc holds free after a bulletin goes back to the system
    print(daemon.banner(), flush=True)
    stop.wait()
    log.info("stopping")
    trimmer.stop()
    daemon.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
