"""Fan-out bench: one bulletin to N simulated speakers, through the daemon's whole path vs bare paho-mqtt.

    .venv/bin/python bench/fanout.py                 # 5,000 speakers in 50 villages
    .venv/bin/python bench/fanout.py --devices 500   # the start-precision goal (p99 <= 5 ms)

Everything is real: a Mosquitto started here (ManagedBroker, free port), a SQLite file, the simulated
fleet (broadcaster/simulation/fleet.py, a few processes), a 1 s tone made by ffmpeg and served over HTTP at the
daemon's audio URL (/audio/<sha256>.mp3).

The bulletin is stored as the planner stores a commune-wide item: one broadcast row per village, sharing
an airing id and start, all fired at once on a thread pool as the daemon's timer fires them
(`--one-row`: a single row for the zone "all").

project_s: from the start of `Dispatcher.dispatch()` (claim the placement, create and sign one command
per device in the outbox, commit and publish through `DeviceLink` chunk by chunk) until the
`EventWriter` has committed every device's `received` ack to the database.
baseline_s: a bare paho client (same client settings as DeviceLink: MQTT 5, QoS 1, 100 in flight,
message expiry) signs the same number of commands of the same size, publishes them and collects the
`received` acks in a dict. Signing is inside the baseline because a device refuses an unsigned command;
baseline_sign_s says how much of it that was.
The start errors come from the `playing` acks of the project run, as recorded in the database.

The LAST stdout line is one JSON object; progress goes to stderr.
"""

from __future__ import annotations

import argparse
import contextlib
import cProfile
import functools
import hashlib
import http.server
import io
import json
import os
import pstats
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
from common import throwaway_database
from paho.mqtt.enums import CallbackAPIVersion
from sqlalchemy import func, select

from broadcaster import protocol
from broadcaster.broker.managed import BrokerSettings, ManagedBroker
from broadcaster.config import DispatchConfig
from broadcaster.db import Announcement, Broadcast, Database, Delivery, DeliveryStatus
from broadcaster.dispatch.dispatcher import Dispatcher
from broadcaster.dispatch.events import EventWriter, Metrics
from broadcaster.dispatch.link import DeviceLink
from broadcaster.protocol.mqtt import BrokerAddress, connect, new_client, publish_properties
from broadcaster.runtime.memory import settle_memory
from broadcaster.runtime.path import DevicePath
from broadcaster.services.reports import percentile
from broadcaster.services.zones import COMMUNE_ZONE
from broadcaster.simulation.commune import provision_fleet, village_of
from broadcaster.simulation.fleet import Fleet, FleetSettings, SimDevice, fleet_devices
from schedules.clock import SystemClock

VALIDITY_S = 900


def say(text: str) -> None:
    print(f"[fanout {time.strftime('%H:%M:%S')}] {text}", file=sys.stderr, flush=True)


# ---------------------------------------------------------------- audio at the daemon's URL


@dataclass(frozen=True)
class Audio:
    sha256: str
    size: int
    duration_ms: int
    url: str

    def body(self, title: str) -> dict[str, Any]:
        """The play body the dispatcher builds (dispatch.bodies.command_body), for the baseline's commands."""
        return {
            "title": title,
            "audio": {
                "url": self.url,
                "sha256": self.sha256,
                "size": self.size,
                "duration_ms": self.duration_ms,
                "format": "mp3",
            },
        }


class QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass


@contextmanager
def audio_server(root: Path, seconds: float) -> Iterator[tuple[str, Audio]]:
    """A tone at http://127.0.0.1:PORT/audio/<sha256>.mp3, the path the daemon's audio listener serves it on."""
    audio_dir = root / "audio"
    audio_dir.mkdir(parents=True)
    tone = root / "tone.mp3"
    subprocess.run(
        [
            *("ffmpeg", "-loglevel", "error", "-f", "lavfi"),
            *("-i", f"sine=frequency=660:duration={seconds}", "-b:a", "48k", str(tone)),
        ],
        check=True,
    )
    data = tone.read_bytes()
    sha = hashlib.sha256(data).hexdigest()
    (audio_dir / f"{sha}.mp3").write_bytes(data)
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(QuietHandler, directory=str(root)))
    threading.Thread(target=server.serve_forever, name="audio-http", daemon=True).start()
    base = f"http://127.0.0.1:{server.server_address[1]}"
    try:
        yield base, Audio(sha, len(data), int(seconds * 1000), f"{base}/audio/{sha}.mp3")
    finally:
        server.shutdown()


# ---------------------------------------------------------------- the baseline: bare paho


class AckCollector:
    """Acks by command id, and the instants at which every command reached `received` and `done`."""

    def __init__(self, expected: int) -> None:
        self.expected = expected
        self.states: dict[str, list[str]] = {}
        self.start_errors: list[float] = []
        self.received = threading.Event()
        self.done = threading.Event()
        self.received_at = self.done_at = 0.0
        self._n_received = self._n_done = 0

    def add(self, ack: dict[str, Any]) -> None:
        state = ack.get("state")
        self.states.setdefault(str(ack.get("cmd")), []).append(str(state))
        if state == "received":
            self._n_received += 1
            if self._n_received == self.expected:
                self.received_at = time.perf_counter()
                self.received.set()
        elif state == "playing" and isinstance(ack.get("start_error_ms"), (int, float)):
            self.start_errors.append(float(ack["start_error_ms"]))
        elif state in ("done", "failed", "expired"):
            self._n_done += 1
            if self._n_done == self.expected:
                self.done_at = time.perf_counter()
                self.done.set()


def run_baseline(
    broker_url: str, signer: protocol.Signer, devices: list[SimDevice], audio: Audio, lead_s: float, round_no: int
) -> dict[str, Any]:
    """Sign, publish, collect `received` acks: the least any implementation of the protocol must do."""
    address = BrokerAddress.parse(broker_url)
    acks = AckCollector(len(devices))
    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"bench-baseline-{round_no}", protocol=mqtt.MQTTv5)
    client.max_inflight_messages_set(100)
    client.max_queued_messages_set(0)
    subscribed = threading.Event()
    client.on_connect = lambda c, *_: c.subscribe(protocol.Topics().all_acks(), qos=1)
    client.on_subscribe = lambda *_: subscribed.set()
    client.on_message = lambda _c, _u, msg: acks.add(json.loads(msg.payload))
    client.connect(address.host, address.port, clean_start=True)
    client.loop_start()
    if not subscribed.wait(10):
        raise RuntimeError("baseline client did not subscribe")
    topics = protocol.Topics()
    cpu_before = thread_cpu_s()
    t0 = time.perf_counter()
    now = datetime.now(UTC)
    start_at = now + timedelta(seconds=lead_s)
    body = audio.body("Bản tin thử nghiệm")
    payloads = [
        (
            d.id,
            protocol.encode(
                protocol.make_command(
                    signer,
                    "play",
                    body,
                    to=d.id,
                    issued_at=now,
                    start_at=start_at,
                    expires_at=start_at + timedelta(seconds=VALIDITY_S),
                )
            ),
        )
        for d in devices
    ]
    signed = time.perf_counter()
    remaining = (start_at + timedelta(seconds=VALIDITY_S) - now).total_seconds()
    for device_id, payload in payloads:
        client.publish(topics.cmd(device_id), payload, qos=1, properties=publish_properties(remaining))
    if not acks.received.wait(300):
        raise RuntimeError(f"baseline: only {acks._n_received}/{len(devices)} received acks")
    cpu_received = thread_cpu_s()
    say(f"baseline: every received ack after {acks.received_at - t0:.2f} s; waiting for the airing")
    acks.done.wait(lead_s + 60)
    client.disconnect()
    client.loop_stop()
    errors = [abs(e) for e in acks.start_errors]
    return {
        "baseline_s": round(acks.received_at - t0, 3),
        "baseline_sign_s": round(signed - t0, 3),
        "baseline_done_s": round(acks.done_at - t0, 3) if acks.done_at else None,
        "baseline_payload_bytes": len(payloads[0][1]),
        "baseline_start_error_p99_ms": percentile(errors, 99),
        "baseline_acks": sum(len(v) for v in acks.states.values()),
        "baseline_cpu_s_until_received": {
            name: round(cpu_received.get(name, 0) - cpu_before.get(name, 0), 2)
            for name in cpu_received
            if cpu_received.get(name, 0) - cpu_before.get(name, 0) >= 0.05
        },
    }


# ---------------------------------------------------------------- the project: the daemon's parts


class RecordingWriter(EventWriter):
    """The daemon's EventWriter, counting what each batch committed (after `_write`, it is on disk)."""

    def __init__(self, *args: Any, expected: int = 0, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.expected = expected
        self.received = threading.Event()
        self.done = threading.Event()
        self.received_at = self.done_at = 0.0
        self.write_s = 0.0
        self.events = 0
        self.kinds: Counter[str] = Counter()
        self.profile: cProfile.Profile | None = None
        self._n_received = self._n_final = 0
        self._n_arrived = 0
        self.last_received_arrived_at = 0.0

    def put(self, kind: str, device_id: str, data: Any) -> None:
        if self.expected and kind == "ack" and _state(data) == "received":
            self._n_arrived += 1
            if self._n_arrived == self.expected:
                self.last_received_arrived_at = time.perf_counter()
        super().put(kind, device_id, data)

    def _write(self, batch: list[tuple[str, str, Any, datetime]]) -> list[str]:
        t = time.perf_counter()
        if self.profile is not None:
            self.profile.enable()
        try:
            out = super()._write(batch)
        finally:
            if self.profile is not None:
                self.profile.disable()
        self.write_s += time.perf_counter() - t
        self.events += len(batch)
        self.kinds.update(kind for kind, *_ in batch)
        for kind, _device, data, _at in batch:
            if kind != "ack" or not self.expected:
                continue
            if _state(data) == "received":
                self._n_received += 1
                if self._n_received == self.expected:
                    self.received_at = time.perf_counter()
                    self.received.set()
            elif _state(data) in ("done", "failed", "expired"):
                self._n_final += 1
                if self._n_final == self.expected:
                    self.done_at = time.perf_counter()
                    self.done.set()
        return out


def _state(report: Any) -> Any:
    """An ack's state, as the link hands it over (a checked record) or as parsed JSON."""
    return report.get("state") if isinstance(report, dict) else getattr(report, "state", None)


@dataclass
class Stopwatch:
    """Wall time spent inside a wrapped function, summed (the dispatch breakdown)."""

    seconds: float = 0.0
    calls: int = 0

    def wrap(self, fn: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(fn)
        def timed(*args: Any, **kwargs: Any) -> Any:
            t = time.perf_counter()
            try:
                return fn(*args, **kwargs)
            finally:
                self.seconds += time.perf_counter() - t
                self.calls += 1

        return timed


def forget_session(address: BrokerAddress, client_id: str) -> None:
    """End a persistent session for good. A stopped daemon's session stays a member of the shared
    subscription (`$share/<group>/...`), and Mosquitto keeps queueing a share of every ack for it: the next
    round's daemon would see only half of them."""
    client = new_client(client_id, persistent=False)
    done = threading.Event()
    client.on_connect = lambda *_: done.set()
    connect(client, address, persistent=False)
    client.loop_start()
    done.wait(10)
    client.disconnect()
    client.loop_stop()


@dataclass
class Daemon:
    """Database, EventWriter, DeviceLink and Dispatcher wired as daemon.py wires them (no HTTP API)."""

    db: Database
    writer: RecordingWriter
    link: DeviceLink
    dispatcher: Dispatcher
    client_id: str
    path: DevicePath
    sign: Stopwatch = field(default_factory=Stopwatch)
    publish: Stopwatch = field(default_factory=Stopwatch)

    @classmethod
    def start(cls, db: Database, broker_url: str, signer: protocol.Signer, base_url: str, client_id: str) -> Daemon:
        clock = SystemClock()
        # A fresh client id per round: the daemon's session is persistent, and a session left from an
        # earlier round would have queued the baseline's acks for it.
        path = DevicePath.build(
            db,
            clock,
            DispatchConfig(lead_s=1.0, reconcile_s=1.0),
            signer,
            BrokerAddress.parse(broker_url),
            lambda sha, ext: f"{base_url}/audio/{sha}.{ext}",
            client_id=client_id,
            writer=RecordingWriter(db, clock, Metrics()),
        )
        writer, link, dispatcher = path.writer, path.link, path.dispatcher
        assert isinstance(writer, RecordingWriter)
        daemon = cls(db, writer, link, dispatcher, client_id, path)
        path.start()
        settle_memory()  # as daemon.py's main does once started
        return daemon

    def stop(self) -> None:
        self.path.stop()
        forget_session(self.link.address, self.client_id)

    @contextmanager
    def timed_dispatch(self) -> Iterator[None]:
        """Sum the time in signing (protocol.CommandStamp, one call per command) and in Outbox.publish."""
        stamp = protocol.CommandStamp.__call__
        publish = self.dispatcher.outbox.publish
        protocol.CommandStamp.__call__ = self.sign.wrap(stamp)  # type: ignore[method-assign]
        self.dispatcher.outbox.publish = self.publish.wrap(publish)  # type: ignore[method-assign]
        try:
            yield
        finally:
            protocol.CommandStamp.__call__ = stamp  # type: ignore[method-assign]
            self.dispatcher.outbox.publish = publish  # type: ignore[method-assign]


def settle(writer: RecordingWriter, quiet_s: float = 1.0, timeout: float = 120.0) -> None:
    """Wait out the start-up burst: Mosquitto hands the retained `online` status of every device to the
    daemon's shared subscription, and each one costs a write plus a re-send query (on_device_online)."""
    deadline = time.monotonic() + timeout
    seen = -1
    while time.monotonic() < deadline:
        if writer.events == seen and writer.flush(0):
            say(f"daemon settled after {writer.events} start-up events")
            return
        seen = writer.events
        time.sleep(quiet_s)
    say("daemon still busy with start-up events; measuring anyway")


def plan_bulletin(db: Database, audio: Audio, start_at: datetime, zones: list[str]) -> list[int]:
    """An announcement and its broadcasts, as the service stores them (minus the TTS): one row for the
    zone "all", or one per village sharing an airing id, the way the planner places a commune bulletin."""
    now = datetime.now(UTC)
    with db.session() as session:
        item = Announcement(
            title="Bản tin thử nghiệm",
            text="Bản tin thử nghiệm phát đồng loạt.",
            priority="normal",
            created_at=now,
            created_by="bench",
            audio_sha256=audio.sha256,
            audio_size=audio.size,
            audio_duration_ms=audio.duration_ms,
            audio_ext="mp3",
        )
        session.add(item)
        session.flush()
        rows = [
            Broadcast(
                announcement_id=item.id,
                zone_id=zone,
                start_at=start_at,
                expires_at=start_at + timedelta(seconds=VALIDITY_S),
                airing_id=f"a{item.id}",
                priority="normal",
                duration_ms=audio.duration_ms,
            )
            for zone in zones
        ]
        session.add_all(rows)
        session.flush()
        return [b.id for b in rows]


def dispatch_all(dispatcher: Dispatcher, bids: list[int]) -> int:
    """One broadcast: a direct call. Several (one per village): all at once on a pool, as the daemon's
    Timer fires the jobs of one instant on its executor threads."""
    if len(bids) == 1:
        return dispatcher.dispatch(bids[0])
    with ThreadPoolExecutor(max_workers=len(bids)) as pool:
        return sum(pool.map(dispatcher.dispatch, bids))


def thread_cpu_s() -> dict[str, float]:
    """CPU seconds per live thread of this process, by name (from /proc: where the daemon's time went)."""
    tick = os.sysconf("SC_CLK_TCK")
    out: dict[str, float] = {}
    for t in threading.enumerate():
        try:
            fields = Path(f"/proc/self/task/{t.native_id}/stat").read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        out[t.name] = round((int(fields[11]) + int(fields[12])) / tick, 2)
    return out


def run_project(
    db: Database,
    broker_url: str,
    signer: protocol.Signer,
    base_url: str,
    audio: Audio,
    expected: int,
    lead_s: float,
    profile: bool,
    round_no: int,
    zones: list[str],
) -> dict[str, Any]:
    daemon = Daemon.start(db, broker_url, signer, base_url, f"loa-daemon-{round_no}")
    try:
        settle(daemon.writer)
        bids = plan_bulletin(db, audio, datetime.now(UTC) + timedelta(seconds=lead_s), zones)
        daemon.writer.expected = expected
        cpu_before = thread_cpu_s()
        prof = cProfile.Profile() if profile else None
        daemon.writer.profile = cProfile.Profile() if profile else None
        with daemon.timed_dispatch():
            t0 = time.perf_counter()
            if prof:
                prof.enable()
            queued = dispatch_all(daemon.dispatcher, bids)
            if prof:
                prof.disable()
            dispatched = time.perf_counter()
        say(f"project: dispatch() queued {queued} commands in {dispatched - t0:.2f} s")
        if not daemon.writer.received.wait(300):
            raise RuntimeError(f"project: only {daemon.writer._n_received}/{expected} received acks recorded")
        project_s = daemon.writer.received_at - t0
        say(f"project: every received ack recorded after {project_s:.2f} s; waiting for the airing")
        cpu_received = thread_cpu_s()
        daemon.writer.done.wait(lead_s + 60)
        daemon.writer.flush(30)
        result = summarize(db, bids, daemon, t0, dispatched, project_s, cpu_before, cpu_received)
        if prof and daemon.writer.profile:
            print_profile("dispatch()", prof)
            print_profile("EventWriter._write", daemon.writer.profile)
        return result
    finally:
        daemon.stop()


def summarize(
    db: Database,
    bids: list[int],
    daemon: Daemon,
    t0: float,
    dispatched: float,
    project_s: float,
    cpu_before: dict[str, float],
    cpu_received: dict[str, float],
) -> dict[str, Any]:
    with db.session() as session:
        by_status = dict(
            session.execute(
                select(Delivery.status, func.count()).where(Delivery.broadcast_id.in_(bids)).group_by(Delivery.status)
            ).all()
        )
        errors = [
            abs(e or 0.0)
            for e in session.scalars(
                select(Delivery.start_error_ms).where(
                    Delivery.broadcast_id.in_(bids), Delivery.start_error_ms.is_not(None)
                )
            )
        ]
    received_or_later = sum(n for s, n in by_status.items() if s not in (DeliveryStatus.QUEUED, DeliveryStatus.SENT))
    dispatch_s = dispatched - t0
    w = daemon.writer
    return {
        "acked": received_or_later,
        "project_s": round(project_s, 3),
        "project_done_s": round(w.done_at - t0, 3) if w.done_at else None,
        "last_received_arrived_s": round(w.last_received_arrived_at - t0, 3) if w.last_received_arrived_at else None,
        "measured_until": "every received ack committed by EventWriter",
        "deliveries": {s.value: n for s, n in by_status.items()},
        "start_errors_ms": errors,
        "dispatch_s": round(dispatch_s, 3),
        "dispatch_sign_s": round(daemon.sign.seconds, 3),
        "dispatch_publish_s": round(daemon.publish.seconds, 3),
        "dispatch_db_s": round(dispatch_s - daemon.sign.seconds - daemon.publish.seconds, 3),
        "writer_batches": w.batches,
        "writer_events": w.events,
        "writer_events_by_kind": dict(w.kinds),
        "writer_write_s": round(w.write_s, 3),
        "daemon_cpu_s_until_received": {
            name: round(cpu_received.get(name, 0) - cpu_before.get(name, 0), 2)
            for name in cpu_received
            if cpu_received.get(name, 0) - cpu_before.get(name, 0) >= 0.05
        },
    }


def print_profile(title: str, prof: cProfile.Profile) -> None:
    out = io.StringIO()
    pstats.Stats(prof, stream=out).sort_stats("cumulative").print_stats(18)
    pstats.Stats(prof, stream=out).sort_stats("tottime").print_stats(14)
    say(f"profile of {title}:\n{out.getvalue()}")


# ---------------------------------------------------------------- main


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--devices", type=int, default=5000)
    p.add_argument("--villages", type=int, default=None, help="default: 50, or fewer for a small fleet")
    p.add_argument("--processes", type=int, default=None, help="fleet processes (default: 2, 1 under 1,000)")
    p.add_argument(
        "--lead-s",
        type=float,
        default=20.0,
        help="start_at minus dispatch time (default %(default)s s; the daemon's own lead_s is 30 s)",
    )
    p.add_argument("--audio-s", type=float, default=1.0)
    p.add_argument("--rounds", type=int, default=2, help="baseline/project pairs (medians are reported)")
    p.add_argument(
        "--one-row",
        action="store_true",
        help="one broadcast row for the zone 'all' instead of one per village (the planner stores a "
        "commune-wide item as one row per village, fired at once, and the default does the same)",
    )
    p.add_argument("--profile", action="store_true", help="cProfile dispatch() and EventWriter to stderr")
    p.add_argument(
        "--postgres",
        metavar="URL",
        help="use PostgreSQL (a throw-away schema in this database) instead of a SQLite file, "
        "e.g. postgresql+psycopg://postgres@127.0.0.1:5432/test",
    )
    args = p.parse_args(argv)
    villages = args.villages or min(50, max(1, args.devices // 10))
    if args.devices % villages:
        p.error("--devices must be a multiple of --villages")
    processes = args.processes or (1 if args.devices < 1000 else 2)
    lead_s = args.lead_s
    load_before = os.getloadavg()[0]
    with tempfile.TemporaryDirectory(prefix="loa-fanout-") as tmp_name:
        result = run(
            Path(tmp_name),
            args.devices,
            villages,
            processes,
            lead_s,
            args.audio_s,
            args.profile,
            args.rounds,
            not args.one_row,
            args.postgres,
        )
    result.update(devices=args.devices, villages=villages, processes=processes, lead_s=lead_s)
    result["broadcasts"] = "one for zone all" if args.one_row else "one per village, all fired at once"
    result["database"] = "postgresql" if args.postgres else "sqlite"
    result["loadavg_1m_before"] = round(load_before, 2)
    result["cpus"] = os.cpu_count()
    print(json.dumps(result, ensure_ascii=False))
    return 0 if result["acked"] == args.devices else 1


def run(
    tmp: Path,
    n: int,
    villages: int,
    processes: int,
    lead_s: float,
    audio_s: float,
    profile: bool,
    rounds: int,
    per_village: bool,
    postgres: str | None = None,
) -> dict[str, Any]:
    broker = ManagedBroker(tmp / "broker", BrokerSettings(port=0))
    broker.start()
    with contextlib.ExitStack() as cleanup:
        cleanup.callback(broker.stop)
        db = Database(cleanup.enter_context(throwaway_database(postgres, tmp)))
        fleet: Fleet | None = None
        try:
            db.upgrade()
            devices = provision_fleet(db, fleet_devices(villages, n // villages))
            zones = [village_of(d.id) for d in devices if d.id.endswith("-1")] if per_village else [COMMUNE_ZONE]
            signer = protocol.load_or_create_signer(tmp / "keys" / "daemon-ed25519.pem")
            with audio_server(tmp / "www", audio_s) as (base_url, audio):
                settings = FleetSettings(broker.url, {signer.kid: signer.public_b64}, str(tmp / "fleet"))
                fleet = Fleet(settings, devices, processes)
                t = time.perf_counter()
                fleet.start(timeout=300)
                say(f"{n} speakers in {villages} villages connected in {time.perf_counter() - t:.1f} s")
                pairs = []
                for r in range(rounds):
                    load = os.getloadavg()[0]
                    baseline = run_baseline(broker.url, signer, devices, audio, lead_s, r)
                    last = r == rounds - 1
                    project = run_project(
                        db, broker.url, signer, base_url, audio, n, lead_s, profile and last, r, zones
                    )
                    pairs.append((baseline, project, load))
                report = fleet.stop()
                fleet = None
            result = combine(pairs)
            result["fleet_refused"] = report.refused
            result["fleet_downloads"] = report.downloads
            return result
        finally:
            if fleet is not None:
                fleet.stop()
            db.dispose()


def combine(pairs: list[tuple[dict[str, Any], dict[str, Any], float]]) -> dict[str, Any]:
    """Medians over the rounds; the ratio is the median of per-round ratios, because a baseline and the
    project run right after it share the machine's load (other jobs on a shared box move both)."""
    per_round = []
    errors: list[float] = []
    for baseline, project, load in pairs:
        errors += project["start_errors_ms"]
        e = project["start_errors_ms"]
        per_round.append(
            {
                "project_s": project["project_s"],
                "baseline_s": baseline["baseline_s"],
                "ratio": round(project["project_s"] / baseline["baseline_s"], 2),
                "start_error_p99_ms": percentile(e, 99),
                "dispatch_s": project["dispatch_s"],
                "loadavg_1m": round(load, 2),
            }
        )
    last_baseline, last_project, _ = pairs[-1]
    details = {k: v for k, v in last_project.items() if k not in ("start_errors_ms", "project_s", "acked")}
    return {
        "acked": min(p["acked"] for _, p, _ in pairs),
        "project_s": round(statistics.median(r["project_s"] for r in per_round), 3),
        "baseline_s": round(statistics.median(r["baseline_s"] for r in per_round), 3),
        "ratio": round(statistics.median(r["ratio"] for r in per_round), 2),
        "start_error_p50_ms": percentile(errors, 50),
        "start_error_p99_ms": percentile(errors, 99),
        "start_error_max_ms": max(errors) if errors else None,
        "start_errors": len(errors),
        "rounds": per_round,
        **{f"last_{k}": v for k, v in details.items()},
        **{k: v for k, v in last_baseline.items() if k != "baseline_s"},
    }


if __name__ == "__main__":
    sys.exit(main())
