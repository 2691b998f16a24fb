"""Scheduler bench: start-up and memory with 100,000 future airings, and firing jitter, against bare APScheduler.

    .venv/bin/python bench/scheduler.py            # 100,000 airings over 60 days; 1,000 due in one minute
    .venv/bin/python bench/scheduler.py --quick    # 10,000 airings; 200 due in 10 s; one start-up round
    .venv/bin/python bench/scheduler.py --database-url postgresql+psycopg://postgres@127.0.0.1:5432/test

Start-up (each side in a fresh process, so that its resident memory is its own):
  ours      the daemon's scheduling start-up over a database of planned broadcasts (SQLite file in a temp
            folder, or a throw-away schema with --database-url): Database(url), then Timer + Dispatcher
            and `Dispatcher.start()`, until it returns with every timer within the horizon armed. The
            DeviceLink it needs is real (a Mosquitto started here, EventWriter, DeviceLink connected as
            daemon.py does, before the dispatcher) but its connect is timed apart (`link_s`): it is MQTT,
            not scheduling. `reconcile_s` is the first reconcile alone, the "Timer + reconcile()" number.
  baseline  bare APScheduler 3.11: a BackgroundScheduler with a MemoryJobStore holding one DateTrigger job
            per airing, at the same fire times (start_at minus the dispatch lead), added in time order
            (MemoryJobStore's cheapest), then `start()`.
RSS is VmRSS from /proc/self/status right after; `*_import_rss_mb` is the same process after its imports
only, the floor under each number.

Jitter: `time.time()` minus the due instant when each callback starts, for N airings due in one
minute, through broadcaster.runtime.timer.Timer and through a bare BackgroundScheduler (default 10-thread pool,
misfire_grace_time=None so that late jobs run rather than vanish). Patterns:
  spread       N instants evenly over the window (ours and the baseline run side by side in two processes,
               their instants half a step apart: each wakes ~17 times a second, so they barely meet)
  same_second  all N at one instant (a commune-wide bulletin at 07:00:00)
  busy         like same_second, each callback blocking 5 ms (a dispatch waits on the database / broker)
`jitter_p50_ms`/`jitter_p99_ms` are the pattern of the two quick-callback ones with the worse p99
(named in `jitter_pattern`); `jitter_baseline_*` is bare APScheduler on that same pattern.

Progress goes to stderr; the LAST stdout line is one JSON object.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import random
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from array import array
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import wraps
from pathlib import Path
from typing import Any, TypeVar

from common import throwaway_database  # bench/common.py: standard library only at import

# Only the standard library up here: this file is also each measured child process, and a child's import
# floor must be what it imports itself (the baseline must not pay for SQLAlchemy, nor ours for nothing).
ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

VILLAGES = 10
ANNOUNCEMENTS = 300
FIRST_AIRING_S = 300  # the earliest airing: close enough that the horizon holds some, far enough to stay future
BUSY_CALLBACK_MS = 5.0
JITTER_GOAL_P99_MS = 50.0
PRIORITIES = ("normal", "priority", "emergency")

F = TypeVar("F", bound=Callable[..., Any])


def say(text: str) -> None:
    print(f"[scheduler {time.strftime('%H:%M:%S')}] {text}", file=sys.stderr, flush=True)


def memory_mb() -> tuple[float, float]:
    """(VmRSS, VmHWM) in MiB: what is resident now, and the most that ever was."""
    fields = dict(
        line.split(":", 1) for line in Path("/proc/self/status").read_text().splitlines() if line.startswith("Vm")
    )

    def mib(key: str) -> float:
        return round(int(fields[key].split()[0]) / 1024, 1)

    return mib("VmRSS"), mib("VmHWM")


# ================================================================ child processes (one measurement each)


def child_startup_ours(spec: dict[str, Any]) -> dict[str, Any]:
    """The daemon's parts in daemon.py's order, timing only what belongs to scheduling."""
    t = time.perf_counter()
    from sqlalchemy import func, select

    from broadcaster import protocol
    from broadcaster.config import DispatchConfig
    from broadcaster.db import Broadcast, BroadcastStatus, Database
    from broadcaster.dispatch.dispatcher import Dispatcher
    from broadcaster.dispatch.events import EventWriter, Metrics
    from broadcaster.dispatch.link import DeviceLink
    from broadcaster.dispatch.reconcile import TIMER_HORIZON_S
    from broadcaster.protocol.mqtt import BrokerAddress
    from broadcaster.runtime.timer import Timer
    from schedules.clock import SystemClock

    import_s = time.perf_counter() - t
    import_rss, _ = memory_mb()
    signer = protocol.load_or_create_signer(Path(spec["key"]))  # on disk before the daemon schedules anything
    clock = SystemClock()
    settings = DispatchConfig()  # the daemon's defaults: lead 30 s, reconcile every 1 s
    calls: dict[str, list[float]] = {}

    def timed(name: str, fn: F) -> F:
        @wraps(fn)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            t = time.perf_counter()
            try:
                return fn(*args, **kwargs)
            finally:
                calls.setdefault(name, []).append(time.perf_counter() - t)

        return wrapper  # type: ignore[return-value]

    cpu0 = time.process_time()
    t0 = time.perf_counter()
    db = Database(spec["url"])
    opened = time.perf_counter()
    writer = EventWriter(db, clock, Metrics())
    link = DeviceLink(BrokerAddress.parse(spec["broker_url"]), protocol.Topics(), writer, Metrics(), spec["client_id"])
    writer.start()
    link.start()
    linked = time.perf_counter()
    timer = Timer(clock)
    dispatcher = Dispatcher(db, clock, settings, signer, link, timer, audio_url=lambda sha, ext: f"/audio/{sha}.{ext}")
    timer.start = timed("timer_start", timer.start)  # type: ignore[method-assign]
    dispatcher.reconcile = timed("reconcile", dispatcher.reconcile)  # type: ignore[method-assign]
    dispatcher.resend_pending = timed("resend_pending", dispatcher.resend_pending)  # type: ignore[method-assign]
    t1 = time.perf_counter()
    began = clock.now()
    dispatcher.start()
    scheduled = time.perf_counter()
    cpu = time.process_time() - cpu0
    rss, hwm = memory_mb()
    threads = threading.active_count()

    armed = timer.scheduled_ids()
    horizon = began + timedelta(seconds=settings.lead_s + TIMER_HORIZON_S)
    with db.session() as session:
        within = session.scalar(
            select(func.count()).where(Broadcast.status == BroadcastStatus.PLANNED, Broadcast.start_at <= horizon)
        )
        planned = session.scalar(select(func.count()).where(Broadcast.status == BroadcastStatus.PLANNED))

    # The daemon also runs its migrations at start-up (a no-op check on an up-to-date schema): reported
    # apart, after the headline RSS, because it is Alembic's cost, not the scheduler's.
    t = time.perf_counter()
    db.upgrade()
    migrate_s = time.perf_counter() - t
    rss_migrated, _ = memory_mb()

    dispatcher.stop()
    link.stop()
    writer.stop()
    db.dispose()
    startup_s = (opened - t0) + (scheduled - t1)
    return {
        "startup_s": startup_s,
        "startup_with_link_s": scheduled - t0,
        "db_open_s": opened - t0,
        "link_s": linked - opened,
        "dispatcher_start_s": scheduled - t1,
        "timer_start_s": calls["timer_start"][0],
        "reconcile_s": calls["reconcile"][0],
        "resend_pending_s": calls["resend_pending"][:2],
        "cpu_s": cpu,
        "rss_mb": rss,
        "hwm_mb": hwm,
        "import_rss_mb": import_rss,
        "import_s": import_s,
        "rss_after_migrate_check_mb": rss_migrated,
        "migrate_check_s": migrate_s,
        "threads": threads,
        "timers": len(armed),
        "planned_within_horizon": within,
        "planned": planned,
    }


def _wake(job_id: str) -> None:
    """The baseline's job: it would look the airing up by id, as ours does."""


def child_startup_apscheduler(spec: dict[str, Any]) -> dict[str, Any]:
    """Bare APScheduler holding every airing: what 'just put them all in the scheduler' costs."""
    t = time.perf_counter()
    from apscheduler.jobstores.memory import MemoryJobStore
    from apscheduler.schedulers.background import BackgroundScheduler
    from apscheduler.triggers.date import DateTrigger

    import_s = time.perf_counter() - t
    import_rss, _ = memory_mb()

    # Flat C arrays, not lists of Python numbers: reading the input must not leave megabytes of small
    # objects behind to inflate the baseline's RSS.
    t = time.perf_counter()
    ids, stamps = read_fire_times(Path(spec["fire_times"]))
    load_s = time.perf_counter() - t

    cpu0 = time.process_time()
    t0 = time.perf_counter()
    scheduler = BackgroundScheduler(
        timezone=UTC,
        jobstores={"default": MemoryJobStore()},
        job_defaults={"misfire_grace_time": None, "coalesce": True, "max_instances": 1},
    )
    for bid, stamp in zip(ids, stamps, strict=True):
        job_id = f"dispatch:{bid}"
        scheduler.add_job(_wake, DateTrigger(run_date=datetime.fromtimestamp(stamp, UTC)), args=(job_id,), id=job_id)
    added = time.perf_counter()
    scheduler.start()
    started = time.perf_counter()
    cpu = time.process_time() - cpu0
    del ids, stamps
    rss, hwm = memory_mb()
    threads = threading.active_count()
    jobs = len(scheduler.get_jobs())
    scheduler.shutdown(wait=False)
    return {
        "startup_s": started - t0,
        "add_s": added - t0,
        "start_s": started - added,
        "load_s": load_s,
        "cpu_s": cpu,
        "rss_mb": rss,
        "hwm_mb": hwm,
        "import_rss_mb": import_rss,
        "import_s": import_s,
        "threads": threads,
        "jobs": jobs,
    }


class Lateness:
    """The callback of every jitter job: how late it started, in ms, taken before anything else it does
    so that `busy_ms` of blocking shows up as queueing in the later ones, not in its own number."""

    def __init__(self, due: dict[str, float], busy_s: float) -> None:
        self.due = due
        self.busy_s = busy_s
        self.done = threading.Event()  # every job has started
        self._late_ms: list[float] = []
        self._lock = threading.Lock()

    def __call__(self, job_id: str) -> None:
        late = (time.time() - self.due[job_id]) * 1000
        with self._lock:
            self._late_ms.append(late)
            if len(self._late_ms) == len(self.due):
                self.done.set()
        if self.busy_s:
            time.sleep(self.busy_s)  # sleeping releases the GIL, as a database or broker wait does

    def late_ms(self) -> list[float]:
        with self._lock:
            return list(self._late_ms)


def jitter_plan(spec: dict[str, Any]) -> tuple[dict[str, float], float]:
    """Due instants (epoch s, whole ms) by job id; the first at `base_ms`, or the next whole second
    at least `lead_s` away, so the arming is long done when the first one is due."""
    n, step_ms = int(spec["n"]), float(spec["step_ms"])
    base_ms = spec.get("base_ms") or math.ceil(time.time() + spec.get("lead_s", 1.5)) * 1000
    due = {f"dispatch:{i}": round(base_ms + i * step_ms) / 1000 for i in range(n)}
    return due, base_ms / 1000


def run_jitter(spec: dict[str, Any], arm: Callable[[str, datetime, Lateness], None]) -> dict[str, Any]:
    """Arm every job through `arm`, then wait for all of them to start (or half a minute past the last)."""
    due, first = jitter_plan(spec)
    record = Lateness(due, spec.get("busy_ms", 0) / 1000)
    t = time.perf_counter()
    for job_id, at in due.items():
        arm(job_id, datetime.fromtimestamp(at, UTC), record)
    arm_s = time.perf_counter() - t
    spare_s = first - time.time()
    cpu0 = time.process_time()
    complete = record.done.wait(max(due.values()) - time.time() + 30)
    late = record.late_ms()
    return {
        "fired": len(late),
        "expected": len(due),
        "complete": complete,
        "late_ms": late,
        "arm_s": arm_s,
        "spare_s": spare_s,  # how long before the first instant arming ended; negative spoils the run
        "cpu_s": time.process_time() - cpu0,
    }


def child_jitter_ours(spec: dict[str, Any]) -> dict[str, Any]:
    from broadcaster.runtime.timer import DEFAULT_WORKERS, Timer
    from schedules.clock import SystemClock

    timer = Timer(SystemClock())
    timer.start()
    try:
        result = run_jitter(spec, timer.schedule)
    finally:
        timer.shutdown(wait=False)
    return {**result, "workers": DEFAULT_WORKERS}


def child_jitter_apscheduler(spec: dict[str, Any]) -> dict[str, Any]:
    from apscheduler.schedulers.background import BackgroundScheduler
    from apscheduler.triggers.date import DateTrigger

    # Bare defaults (a ThreadPoolExecutor of 10), except that a late job must run late rather than be
    # dropped silently after the default 1 s grace: lateness is what is being measured.
    scheduler = BackgroundScheduler(timezone=UTC, job_defaults={"misfire_grace_time": None})
    scheduler.start()

    def arm(job_id: str, at: datetime, callback: Lateness) -> None:
        scheduler.add_job(callback, DateTrigger(run_date=at), args=(job_id,), id=job_id)

    try:
        result = run_jitter(spec, arm)
    finally:
        scheduler.shutdown(wait=False)
    return {**result, "workers": 10}


CHILDREN: dict[str, Callable[[dict[str, Any]], dict[str, Any]]] = {
    "startup-ours": child_startup_ours,
    "startup-apscheduler": child_startup_apscheduler,
    "jitter-ours": child_jitter_ours,
    "jitter-apscheduler": child_jitter_apscheduler,
}


# ================================================================ the database of 100,000 airings


@dataclass
class Plan:
    url: str
    rows: int
    placements: int
    first_start: datetime
    last_start: datetime
    build_s: float
    fire_times: Path


def write_fire_times(path: Path, fires: list[tuple[float, int]]) -> None:
    fires.sort()  # time order: MemoryJobStore inserts each job at its bisect position, the end is cheapest
    ids, stamps = array("q", (i for _, i in fires)), array("d", (s for s, _ in fires))
    with path.open("wb") as f:
        array("q", [len(ids)]).tofile(f)
        ids.tofile(f)
        stamps.tofile(f)


def read_fire_times(path: Path) -> tuple[array[int], array[float]]:
    with path.open("rb") as f:
        n = array("q")
        n.fromfile(f, 1)
        ids, stamps = array("q"), array("d")
        ids.fromfile(f, n[0])
        stamps.fromfile(f, n[0])
    return ids, stamps


def build_database(url: str, airings: int, days: int, seed: int, tmp: Path) -> Plan:
    """Placements as the planner stores them (one row per village, sharing airing_id and start_at), at
    whole minutes over `days`, from FIRST_AIRING_S ahead; a few hundred announcements shared between them."""
    from sqlalchemy import insert, select

    from broadcaster.config import DispatchConfig
    from broadcaster.db import Announcement, Broadcast, BroadcastStatus, Database
    from broadcaster.services.zones import add_village, ensure_commune

    t = time.perf_counter()
    rng = random.Random(seed)
    settings = DispatchConfig()
    db = Database(url)
    try:
        db.upgrade()
        now = datetime.now(UTC)
        with db.session() as session:
            ensure_commune(session, "Xã Thử Nghiệm")
            villages = [add_village(session, f"thon-{v}", f"Thôn {v}").id for v in range(1, VILLAGES + 1)]
            session.execute(
                insert(Announcement),
                [
                    {
                        "title": f"Thông báo số {i}",
                        "text": f"UBND xã thông báo số {i}: lịch tiêm phòng, họp thôn, thu hoạch lúa.",
                        "priority": "normal",
                        "created_at": now,
                        "created_by": "bench",
                        "audio_sha256": f"{i:064x}",
                        "audio_size": 480_000,
                        "audio_duration_ms": 60_000,
                        "audio_ext": "mp3",
                    }
                    for i in range(ANNOUNCEMENTS)
                ],
            )
            titles = dict(session.execute(select(Announcement.id, Announcement.title)).all())
        announcement_ids = sorted(titles)

        origin = (now + timedelta(seconds=FIRST_AIRING_S + 59)).replace(second=0, microsecond=0)
        minutes = days * 24 * 60
        rows: list[dict[str, Any]] = []
        placements = 0
        while len(rows) < airings:
            start = origin + timedelta(minutes=rng.randrange(minutes))
            roll = rng.random()
            priority = "emergency" if roll < 0.01 else "priority" if roll < 0.1 else "normal"
            ann = rng.choice(announcement_ids)
            duration_ms = rng.choice((30_000, 60_000, 180_000, 600_000))
            kind = "bulletin" if rng.random() < 0.2 else "notice"
            for zone in rng.sample(villages, rng.randint(1, VILLAGES))[: airings - len(rows)]:
                rows.append(
                    {
                        "announcement_id": ann,
                        "title": titles[ann],
                        "zone_id": zone,
                        "start_at": start,
                        "expires_at": start + timedelta(seconds=settings.validity_s),
                        "airing_id": f"bench-{placements}",
                        "kind": kind,
                        "priority": priority,
                        "duration_ms": duration_ms,
                        "status": BroadcastStatus.PLANNED,
                    }
                )
            placements += 1
        with db.engine.begin() as conn:
            for i in range(0, len(rows), 10_000):
                conn.execute(insert(Broadcast), rows[i : i + 10_000])
            lead = {p: settings.emergency_lead_s if p == "emergency" else settings.lead_s for p in PRIORITIES}
            fires = [
                ((start_at - timedelta(seconds=lead[priority])).timestamp(), bid)
                for bid, start_at, priority in conn.execute(
                    select(Broadcast.id, Broadcast.start_at, Broadcast.priority)
                )
            ]
        path = tmp / "fire-times.bin"
        write_fire_times(path, fires)
        starts = [r["start_at"] for r in rows]
        return Plan(url, len(rows), placements, min(starts), max(starts), time.perf_counter() - t, path)
    finally:
        db.dispose()


# ================================================================ running children


def spawn(kind: str, spec: dict[str, Any], tmp: Path) -> subprocess.Popen[str]:
    path = tmp / f"{kind}-{uuid.uuid4().hex[:8]}.json"
    path.write_text(json.dumps(spec))
    cmd = [sys.executable, str(Path(__file__).resolve()), "--child", kind, str(path)]
    return subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True, cwd=ROOT)


def collect(proc: subprocess.Popen[str], timeout: float = 300) -> dict[str, Any]:
    out, _ = proc.communicate(timeout=timeout)
    if proc.returncode != 0:
        raise RuntimeError(f"{proc.args!r} exited with {proc.returncode}")
    result: dict[str, Any] = json.loads(out.strip().splitlines()[-1])
    return result


def child(kind: str, spec: dict[str, Any], tmp: Path) -> dict[str, Any]:
    return collect(spawn(kind, spec, tmp))


def percentile(values: list[float], q: float) -> float | None:
    """Nearest-rank, as broadcaster.services.reports.percentile: with 1,000 firings p99 is the 10th latest, an
    airing that really was that late rather than an interpolation between two."""
    if not values:
        return None
    ordered = sorted(values)
    return round(ordered[max(0, math.ceil(q / 100 * len(ordered)) - 1)], 2)


def summary(run: dict[str, Any]) -> dict[str, Any]:
    late = run["late_ms"]
    return {
        "p50_ms": percentile(late, 50),
        "p99_ms": percentile(late, 99),
        "max_ms": round(max(late), 2) if late else None,
        "min_ms": round(min(late), 2) if late else None,
        "fired": run["fired"],
        "expected": run["expected"],
        "arm_s": round(run["arm_s"], 3),
        "spare_s": round(run["spare_s"], 2),
        "cpu_s": round(run["cpu_s"], 3),
    }


# ================================================================ main


def startup(plan: Plan, rounds: int, tmp: Path) -> dict[str, Any]:
    """Ours and the baseline alternately, each in a fresh process; the ratios are medians of per-round
    ratios, because the two runs of a round share whatever else the machine is doing at the time."""
    from broadcaster import protocol
    from broadcaster.broker.managed import BrokerSettings, ManagedBroker

    key = tmp / "keys" / "daemon-ed25519.pem"
    protocol.load_or_create_signer(key)
    broker = ManagedBroker(tmp / "broker", BrokerSettings(port=0))
    broker.start()
    pairs: list[tuple[dict[str, Any], dict[str, Any], float]] = []
    try:
        for r in range(rounds):
            load = os.getloadavg()[0]
            spec = {"url": plan.url, "broker_url": broker.url, "key": str(key), "client_id": f"loa-bench-{r}"}
            ours = child("startup-ours", spec, tmp)
            say(
                f"start-up {r + 1}/{rounds} ours: {ours['startup_s']:.3f} s (reconcile {ours['reconcile_s']:.3f} s,"
                f" link {ours['link_s']:.3f} s), {ours['rss_mb']} MiB, {ours['timers']} timers armed"
            )
            base = child("startup-apscheduler", {"fire_times": str(plan.fire_times)}, tmp)
            say(
                f"start-up {r + 1}/{rounds} APScheduler: {base['startup_s']:.3f} s, {base['rss_mb']} MiB,"
                f" {base['jobs']} jobs"
            )
            if ours["timers"] != ours["planned_within_horizon"]:
                say(f"warning: {ours['timers']} timers for {ours['planned_within_horizon']} airings in the horizon")
            pairs.append((ours, base, load))
    finally:
        broker.stop()

    ours_runs = [o for o, _, _ in pairs]
    base_runs = [b for _, b, _ in pairs]

    def med(runs: list[dict[str, Any]], key: str) -> float:
        return round(statistics.median(r[key] for r in runs), 4)

    def ratio(ours_key: str, base_key: str) -> float:
        return round(statistics.median(o[ours_key] / b[base_key] for o, b, _ in pairs), 4)

    def rounded(run: dict[str, Any]) -> dict[str, Any]:
        return {k: round(v, 4) if isinstance(v, float) else v for k, v in run.items()}

    return {
        "startup_s": med(ours_runs, "startup_s"),
        "startup_ratio": ratio("startup_s", "startup_s"),
        "rss_mb": med(ours_runs, "rss_mb"),
        "rss_ratio": ratio("rss_mb", "rss_mb"),
        "baseline_startup_s": med(base_runs, "startup_s"),
        "baseline_rss_mb": med(base_runs, "rss_mb"),
        "import_rss_mb": med(ours_runs, "import_rss_mb"),
        "baseline_import_rss_mb": med(base_runs, "import_rss_mb"),
        "rss_above_imports_mb": round(med(ours_runs, "rss_mb") - med(ours_runs, "import_rss_mb"), 1),
        "baseline_rss_above_imports_mb": round(med(base_runs, "rss_mb") - med(base_runs, "import_rss_mb"), 1),
        "startup_with_link_s": med(ours_runs, "startup_with_link_s"),
        "reconcile_s": med(ours_runs, "reconcile_s"),
        "timer_start_s": med(ours_runs, "timer_start_s"),
        "reconcile_startup_ratio": ratio("reconcile_s", "startup_s"),
        "link_s": med(ours_runs, "link_s"),
        "timers_armed": ours_runs[-1]["timers"],
        "airings_within_horizon": ours_runs[-1]["planned_within_horizon"],
        "baseline_jobs": base_runs[-1]["jobs"],
        "startup_rounds": [
            {"ours": rounded(o), "baseline": rounded(b), "loadavg_1m": round(load, 2)} for o, b, load in pairs
        ],
    }


def jitter(n: int, window_s: float, tmp: Path) -> dict[str, Any]:
    """Three patterns; each pair of runs shares its instants so the two sides see the same moments."""
    results: dict[str, dict[str, Any]] = {}
    step_ms = window_s * 1000 / n
    # spread: both at once, half a step apart, or this pattern alone would take two windows.
    base_ms = math.ceil(time.time() + 4) * 1000
    say(f"jitter spread: {n} airings over {window_s:.0f} s, ours and APScheduler side by side")
    ours_p = spawn("jitter-ours", {"n": n, "step_ms": step_ms, "base_ms": base_ms}, tmp)
    base_p = spawn("jitter-apscheduler", {"n": n, "step_ms": step_ms, "base_ms": base_ms + step_ms / 2}, tmp)
    results["spread"] = {"ours": summary(collect(ours_p)), "baseline": summary(collect(base_p))}
    for name, busy in (("same_second", 0.0), ("busy", BUSY_CALLBACK_MS)):
        spec = {"n": n, "step_ms": 0, "busy_ms": busy}
        results[name] = {
            "ours": summary(child("jitter-ours", spec, tmp)),
            "baseline": summary(child("jitter-apscheduler", spec, tmp)),
        }
    for name, pair in results.items():
        o, b = pair["ours"], pair["baseline"]
        say(
            f"jitter {name}: ours p50 {o['p50_ms']} p99 {o['p99_ms']} max {o['max_ms']} ms "
            f"({o['fired']}/{o['expected']}); APScheduler p50 {b['p50_ms']} p99 {b['p99_ms']} max {b['max_ms']} ms"
        )
        for side in (o, b):
            if side["spare_s"] < 0 or side["fired"] != side["expected"]:
                say(
                    f"warning: jitter {name} spoiled: armed {side['spare_s']} s before the first instant, "
                    f"{side['fired']}/{side['expected']} fired"
                )
    worst = max(("spread", "same_second"), key=lambda k: results[k]["ours"]["p99_ms"] or 0.0)
    return {
        "jitter_p50_ms": results[worst]["ours"]["p50_ms"],
        "jitter_p99_ms": results[worst]["ours"]["p99_ms"],
        "jitter_pattern": worst,
        "jitter_goal_met": (results[worst]["ours"]["p99_ms"] or math.inf) <= JITTER_GOAL_P99_MS,
        "jitter_baseline_p50_ms": results[worst]["baseline"]["p50_ms"],
        "jitter_baseline_p99_ms": results[worst]["baseline"]["p99_ms"],
        "jitter_same_second_p99_ms": results["same_second"]["ours"]["p99_ms"],
        "jitter_spread_p99_ms": results["spread"]["ours"]["p99_ms"],
        "jitter_busy_p99_ms": results["busy"]["ours"]["p99_ms"],
        "jitter_busy_baseline_p99_ms": results["busy"]["baseline"]["p99_ms"],
        "jitter": results,
    }


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--quick", action="store_true", help="10,000 airings, 200 due in 10 s, one start-up round")
    p.add_argument("--airings", type=int, default=None, help="planned broadcasts in the database (100,000)")
    p.add_argument("--days", type=int, default=60, help="spread over this many days (default %(default)s)")
    p.add_argument("--rounds", type=int, default=None, help="start-up rounds, medians reported (3; quick 1)")
    p.add_argument("--jitter-airings", type=int, default=None, help="airings due in the window (1,000)")
    p.add_argument("--window-s", type=float, default=None, help="the jitter window (60 s; quick 10 s)")
    p.add_argument("--database-url", default=None, help="PostgreSQL URL; a throw-away schema is used in it")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--child", nargs=2, metavar=("KIND", "SPEC"), help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.child:
        kind, spec_path = args.child
        print(json.dumps(CHILDREN[kind](json.loads(Path(spec_path).read_text()))))
        return 0

    airings = args.airings or (10_000 if args.quick else 100_000)
    rounds = args.rounds or (1 if args.quick else 3)
    jitter_n = args.jitter_airings or (200 if args.quick else 1000)
    window_s = args.window_s or (10.0 if args.quick else 60.0)
    load_before = os.getloadavg()[0]
    t = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="loa-sched-") as tmp_name:
        tmp = Path(tmp_name)
        with throwaway_database(args.database_url, tmp) as url:
            plan = build_database(url, airings, args.days, args.seed, tmp)
            say(
                f"{plan.rows} planned broadcasts ({plan.placements} placements in {VILLAGES} villages), "
                f"{plan.first_start:%Y-%m-%d %H:%M} to {plan.last_start:%Y-%m-%d %H:%M} UTC, "
                f"built in {plan.build_s:.1f} s"
            )
            result = startup(plan, rounds, tmp)
        result.update(jitter(jitter_n, window_s, tmp))
    result.update(
        airings=airings,
        days=args.days,
        database="postgresql" if args.database_url else "sqlite",
        jitter_airings=jitter_n,
        jitter_window_s=window_s,
        build_s=round(plan.build_s, 2),
        total_s=round(time.perf_counter() - t, 1),
        loadavg_1m_before=round(load_before, 2),
        loadavg_1m_after=round(os.getloadavg()[0], 2),
        cpus=os.cpu_count(),
    )
    print(json.dumps(result, ensure_ascii=False))
    return 0


if __name__ == "__main__":
    sys.exit(main())
