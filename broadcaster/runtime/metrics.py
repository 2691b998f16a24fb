"""The daemon's Prometheus metrics (GET /metrics; docs/operations.md lists them).

Two kinds, so the hot paths stay cheap:
- what the database already knows (broadcasts and deliveries by state, devices online, the outbox) is
  read when Prometheus scrapes, by a collector, never counted twice in the code that writes it; a few
  grouped counts over a recent window (the last day and what is planned after it), not the whole history,
  and kept for `cache_s` so several scrapers cost one read;
- what only a moment knows (each ack's state and start error, each render's seconds, each reconnection to
  the broker) is counted where it happens, through hooks the parts hold (`Metrics.on_ack`,
  `Metrics.on_reconnect`, `AudioPipeline.on_render`): one label lookup and one increment.

Every metric is a count, a duration or a state name: no text a person typed, no device secret, no URL.
"""

from __future__ import annotations

import logging
import threading
import time
from bisect import bisect_left
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import timedelta

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.registry import Collector
from sqlalchemy import func, select

from audio import AudioPipeline
from broadcaster.db import (
    Broadcast,
    BroadcastStatus,
    Command,
    Database,
    Delivery,
    DeliveryStatus,
    Device,
    DeviceKind,
    RenderJob,
)
from broadcaster.dispatch.events import Metrics
from broadcaster.dispatch.reports import Ack
from broadcaster.runtime.path import DevicePath
from schedules.clock import Clock

log = logging.getLogger(__name__)

ACK_STATES = ("received", "downloaded", "playing", "done", "failed", "expired", "rejected")
# A start error is milliseconds for a good speaker and seconds for a bad clock: buckets for both.
START_ERROR_BUCKETS = (0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 5.0)
# espeak reads a notice in about a second; a long article through a neural voice takes minutes.
RENDER_BUCKETS = (0.25, 0.5, 1.0, 2.0, 5.0, 10.0, 20.0, 30.0, 60.0, 120.0, 300.0)
# A running render job writes its progress every sentence: one silent this long died with its daemon.
RENDER_STALE = timedelta(minutes=10)


@dataclass
class Live:
    """What the running daemon knows only in memory, asked at scrape time (None: no such part here)."""

    backlog: Callable[[], int] | None = None  # device events heard and not yet written
    connected: Callable[[], bool] | None = None  # the MQTT link is connected
    dropped: Callable[[], dict[str, int]] = field(default=lambda: {})  # device messages refused, by reason
    leading: Callable[[], bool] | None = None  # this daemon plans and dispatches (always, alone; a cluster's leader)


class OpsMetrics:
    """One registry per daemon (never the process-wide default one), so tests build as many as they like."""

    def __init__(self, db: Database, clock: Clock, *, window_s: float = 86_400, cache_s: float = 5.0) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.live = Live()
        self.acks = AckTally()  # plain integers: see AckTally
        self.render_seconds = Histogram(
            "loa_render_seconds", "Seconds each fresh speech render took in the daemon (cache hits excluded).",
            buckets=RENDER_BUCKETS, registry=self.registry,
        )  # fmt: skip
        self.reconnects = Counter(
            "loa_broker_reconnects", "Times the daemon's MQTT link connected again after its first connection.",
            registry=self.registry,
        )  # fmt: skip
        self.registry.register(_Scraped(db, clock, self.live, window_s, cache_s))
        self.registry.register(self.acks)

    def watch(self, metrics: Metrics, pipeline: AudioPipeline | None = None) -> None:
        """Hook the counters into the parts' code paths: the link's and the writer's `Metrics`, and the
        commune's voice (other voices' pipelines copy its hook, services/speech.py `pipeline_for`)."""
        metrics.on_ack = self.acks.heard
        metrics.on_reconnect = self.reconnects.inc
        self.live.dropped = metrics.snapshot
        if pipeline is not None:
            pipeline.on_render = self.render_seconds.observe

    def exposition(self) -> tuple[bytes, str]:
        """The text format Prometheus scrapes, and its content type."""
        return generate_latest(self.registry), CONTENT_TYPE_LATEST


class AckTally(Collector):
    """Acks by state and the start errors of `playing` acks, counted in plain integers. A bulletin brings
    thousands of acks a second, all on paho's one network thread (the only caller of `heard`): a
    prometheus_client Counter and Histogram, with a lock each, doubled what `EventWriter.put` costs per
    ack (8.7 to 17.3 µs, measured); this adds about a microsecond. A scrape may read a histogram one ack
    apart from its count, which Prometheus's rate() does not notice."""

    def __init__(self) -> None:
        self.states = dict.fromkeys(ACK_STATES, 0)
        self.buckets = [0] * (len(START_ERROR_BUCKETS) + 1)  # the last: above every bound
        self.error_sum = 0.0

    def heard(self, ack: Ack) -> None:
        states = self.states
        if ack.state in states:
            states[ack.state] += 1
        if ack.state == "playing" and ack.start_error_ms is not None:
            seconds = abs(ack.start_error_ms) / 1000.0
            self.buckets[bisect_left(START_ERROR_BUCKETS, seconds)] += 1
            self.error_sum += seconds

    def describe(self) -> Iterable[Metric]:
        return []

    def collect(self) -> Iterator[Metric]:
        acks = CounterMetricFamily("loa_acks", "Acks heard from devices, by the state they report.", labels=["state"])
        for state, n in self.states.items():
            acks.add_metric([state], float(n))
        yield acks
        cumulative, running = [], 0
        for bound, n in zip([*map(str, START_ERROR_BUCKETS), "+Inf"], self.buckets, strict=True):
            running += n
            cumulative.append((bound, float(running)))
        errors = HistogramMetricFamily(
            "loa_start_error_seconds",
            "How far each speaker's start was off its command's start_at (absolute), from its `playing` ack.",
        )
        errors.add_metric([], cumulative, sum_value=self.error_sum)
        yield errors


class _Scraped(Collector):
    """The gauges read from the database and the live parts when Prometheus asks."""

    def __init__(self, db: Database, clock: Clock, live: Live, window_s: float, cache_s: float) -> None:
        self.db = db
        self.clock = clock
        self.live = live
        self.window = timedelta(seconds=window_s)
        self.cache_s = cache_s
        self._lock = threading.Lock()
        self._cached: tuple[float, list[Metric]] | None = None

    def describe(self) -> Iterable[Metric]:
        return []  # unchecked: its families depend on what the database holds (registry's auto_describe aside)

    def collect(self) -> Iterator[Metric]:
        yield from self._database()
        yield from self._in_memory()

    def _database(self) -> list[Metric]:
        with self._lock:
            if self._cached is not None and time.monotonic() - self._cached[0] < self.cache_s:
                return self._cached[1]
            try:
                families = self._read()
            except Exception as exc:  # a scrape must still answer, saying the database did not
                log.warning("metrics: cannot read the database: %s", type(exc).__name__)
                families = []
            up = GaugeMetricFamily("loa_database_up", "1 if the last scrape could read the database.")
            up.add_metric([], 1.0 if families else 0.0)
            families.append(up)
            self._cached = (time.monotonic(), families)
            return families

    def _read(self) -> list[Metric]:
        now = self.clock.now()
        since = now - self.window
        window = f" of broadcasts starting from {self.window.total_seconds() / 3600:g} h ago on"
        broadcasts = GaugeMetricFamily(
            "loa_broadcasts", "Broadcasts (one airing in one village) by state" + window + ".", labels=["state"]
        )
        deliveries = GaugeMetricFamily(
            "loa_deliveries", "Deliveries (one broadcast on one device) by state" + window + ".", labels=["state"]
        )
        devices = GaugeMetricFamily(
            "loa_devices", "Provisioned devices by kind and presence.", labels=["kind", "online"]
        )
        outbox = GaugeMetricFamily(
            "loa_outbox_commands",
            "Unexpired commands not yet acknowledged" + window + ": unsent, or sent and waiting for an ack.",
            labels=["state"],
        )
        with self.db.session() as s:
            by_status = dict(
                s.execute(select(Broadcast.status, func.count()).where(Broadcast.start_at >= since)
                          .group_by(Broadcast.status)).all()
            )  # fmt: skip
            for status in BroadcastStatus:
                broadcasts.add_metric([status.value], float(by_status.get(status, 0)))
            in_window = select(Broadcast.id).where(Broadcast.start_at >= since).scalar_subquery()
            by_status_d = dict(
                s.execute(select(Delivery.status, func.count()).where(Delivery.broadcast_id.in_(in_window))
                          .group_by(Delivery.status)).all()
            )  # fmt: skip
            for d_status in DeliveryStatus:
                deliveries.add_metric([d_status.value], float(by_status_d.get(d_status, 0)))
            present = {
                (kind, bool(online)): n
                for kind, online, n in s.execute(
                    select(Device.kind, Device.online, func.count()).group_by(Device.kind, Device.online)
                )
            }
            for kind in DeviceKind:
                for online in (True, False):
                    devices.add_metric([kind.value, str(online).lower()], float(present.get((kind, online), 0)))
            pending = dict(
                s.execute(
                    select(Command.sent_at.is_(None), func.count())
                    .join(Delivery, Command.delivery_id == Delivery.id)
                    .where(Delivery.broadcast_id.in_(in_window), Command.acked_at.is_(None), Command.expires_at > now)
                    .group_by(Command.sent_at.is_(None))
                ).all()
            )
            outbox.add_metric(["unsent"], float(sum(n for unsent, n in pending.items() if unsent)))
            outbox.add_metric(["unacked"], float(sum(n for unsent, n in pending.items() if not unsent)))
            rendering = s.scalar(
                select(func.count()).select_from(RenderJob)
                .where(RenderJob.state == "running", RenderJob.updated_at >= now - RENDER_STALE)
            )  # fmt: skip
        renders = GaugeMetricFamily(
            "loa_render_jobs_running", "Speech renders asked over the API and still running (any daemon's)."
        )
        renders.add_metric([], float(rendering or 0))
        return [broadcasts, deliveries, devices, outbox, renders]

    def _in_memory(self) -> Iterator[Metric]:
        live = self.live
        if live.backlog is not None:
            backlog = GaugeMetricFamily("loa_event_writer_backlog", "Device reports heard and not yet written.")
            backlog.add_metric([], float(live.backlog()))
            yield backlog
        if live.connected is not None:
            connected = GaugeMetricFamily("loa_broker_connected", "1 while the daemon's MQTT link is connected.")
            connected.add_metric([], 1.0 if live.connected() else 0.0)
            yield connected
        if live.leading is not None:
            leader = GaugeMetricFamily(
                "loa_leader", "1 if this daemon plans and dispatches (alone, always; in a cluster, the leader)."
            )
            leader.add_metric([], 1.0 if live.leading() else 0.0)
            yield leader
        dropped = CounterMetricFamily(
            "loa_device_messages_dropped", "Device messages refused since the start, by reason code.", labels=["reason"]
        )
        for reason, n in sorted(live.dropped().items()):
            dropped.add_metric([reason], float(n))
        yield dropped


def follow(ops: OpsMetrics, path: DevicePath, leading: Callable[[], bool] | None = None) -> None:
    """The device path's in-memory state, read at scrape time: the writer's backlog, the link's connection;
    and whether this daemon leads (several daemons on one database: docs/deployment.md)."""
    ops.live.backlog = lambda: path.writer.backlog
    ops.live.connected = path.link.connected.is_set
    ops.live.leading = leading


def readiness(path: DevicePath | None) -> list[str]:
    """The daemon's parts that keep it from taking work, besides the database (/readyz asks that itself):
    the MQTT link down (commands wait in the outbox), paho's loop or the event writer stopped."""
    if path is None:
        return ["mqtt_link", "event_writer"]
    return ([] if path.link.connected.is_set() else ["mqtt_link"]) + path.failing()
