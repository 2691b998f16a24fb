"""A wake-up timer for placements, on APScheduler 3.11 used as nothing more than a timer.

The database is the truth: jobs live in memory only, carry nothing but ids, and start-up
reconciles them from the database. APScheduler is told never to judge lateness:

* `misfire_grace_time=None`: its executor then runs a job however late it is; with a number
  it would silently *drop* a job that woke past the grace time (EVENT_JOB_MISSED).
* `coalesce=True`: a job owing several run times runs once; with a date trigger there is
  only one run time anyway, so nothing ever replays.

Whether a late firing still plays is decided by the callback, with `classify_firing`.

Precision: `BackgroundScheduler` sleeps on a `threading.Event` until the next due time
(re-computed whenever a job is added; it wakes within a fraction of a millisecond) and then,
on its one thread, hands each due job to its executor, at some 30–60 µs a job. With one
APScheduler job per id, 1,000 ids due at the same instant (a commune-wide bulletin) reached
their callbacks 60–80 ms late. So APScheduler gets one job per distinct instant (to the
millisecond); that job runs on the scheduler's own thread and only moves the ids due then
onto one queue (a C-level put, ~1 µs) served by worker threads started up front.

Measured on a loaded 2-CPU machine (load average 4), p99 lateness: 1,000 ids at one instant,
1–3 ms with quick callbacks, ~20–25 ms when each callback blocks 5 ms (256 workers: it is
queueing, 1,000 × 5 ms / 256); 1,000 ids spread over 20 s, 3–9 ms. Callbacks should hand
slow work elsewhere, or the timer needs more workers.
"""

from __future__ import annotations

import logging
import math
import threading
from collections.abc import Callable
from contextlib import suppress
from datetime import UTC, datetime, timedelta
from queue import SimpleQueue

from apscheduler.executors.debug import DebugExecutor
from apscheduler.jobstores.base import JobLookupError
from apscheduler.jobstores.memory import MemoryJobStore
from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.triggers.date import DateTrigger

from schedules.clock import Clock, utc

log = logging.getLogger(__name__)

DEFAULT_WORKERS = 256
"""Callbacks that block (a database read, an MQTT publish waiting for its ack) run side by side."""

Callback = Callable[[str], None]
_EPOCH = datetime.fromtimestamp(0, UTC)


class _Workers:
    """Threads started up front that run (job id, callback) pairs taken from one queue."""

    def __init__(self, count: int) -> None:
        self._count = count
        self._queue: SimpleQueue[tuple[str, Callback] | None] = SimpleQueue()
        self._threads: list[threading.Thread] = []

    def start(self) -> None:
        for i in range(self._count):
            thread = threading.Thread(target=self._work, name=f"loa-timer-{i}", daemon=True)
            thread.start()
            self._threads.append(thread)

    def submit(self, job_id: str, callback: Callback) -> None:
        self._queue.put((job_id, callback))

    def stop(self, wait: bool) -> None:
        """Callbacks already handed over still run; then every thread exits."""
        for _ in self._threads:
            self._queue.put(None)
        if wait:
            for thread in self._threads:
                thread.join()
        self._threads = []

    def _work(self) -> None:
        while (item := self._queue.get()) is not None:
            job_id, callback = item
            try:
                callback(job_id)
            except Exception:
                log.exception("timer callback for %s failed", job_id)


class Timer:
    """Calls `callback(job_id)` at `run_at`, once, on a worker thread.

    `run_at` is read on `clock`: the timer waits `run_at - clock.now()` of real time, so a
    FakeClock works in tests, and with the SystemClock it is simply that wall-clock instant.
    A `run_at` already past fires as soon as possible; the callback decides late or missed.
    """

    def __init__(self, clock: Clock, *, max_workers: int = DEFAULT_WORKERS) -> None:
        self._clock = clock
        # Lock order: `_changing` (schedule/cancel in single file, held while calling APScheduler)
        # then `_lock` (our dicts; never held while calling APScheduler, because the scheduler
        # thread holds APScheduler's lock while it runs _fire, which takes `_lock`).
        self._changing = threading.Lock()
        self._lock = threading.Lock()
        self._due: dict[str, int] = {}  # job id -> instant (ms since epoch)
        self._instants: dict[int, dict[str, Callback]] = {}  # instant -> {job id: callback}, in order
        self._workers = _Workers(max_workers)
        self._scheduler = BackgroundScheduler(
            timezone=UTC,
            jobstores={"default": MemoryJobStore()},
            # _fire only moves ids to the workers' queue, so it runs on the scheduler's own thread:
            # one thread hand-over less between waking up and the callbacks.
            executors={"default": DebugExecutor()},
            job_defaults={"misfire_grace_time": None, "coalesce": True, "max_instances": 1},
        )

    def schedule(self, job_id: str, run_at: datetime, callback: Callback) -> None:
        """(Re)arm `job_id`; an earlier timer with the same id is replaced, never doubled."""
        # The injected clock is read before the wall clock, and the instant rounded up: time passing
        # between the two reads (a thread switch on a busy machine) can make it late, never early.
        remaining = utc(run_at) - self._clock.now()
        wall = datetime.now(UTC) + remaining
        instant = math.ceil((wall - _EPOCH) / timedelta(milliseconds=1))
        with self._changing:
            with self._lock:
                emptied = self._forget(job_id)
                self._due[job_id] = instant
                waiting = self._instants.setdefault(instant, {})
                new_instant = not waiting
                waiting[job_id] = callback
            if emptied is not None and emptied != instant:
                self._unschedule(emptied)
            if new_instant:
                self._scheduler.add_job(
                    self._fire,
                    trigger=DateTrigger(run_date=_EPOCH + timedelta(milliseconds=instant)),
                    args=(instant,),
                    id=f"at:{instant}",
                    replace_existing=True,
                    misfire_grace_time=None,
                    coalesce=True,
                    max_instances=1,
                )

    def cancel(self, job_id: str) -> bool:
        """True if a pending timer was removed; False if none (already fired or never set)."""
        with self._changing:
            with self._lock:
                known = job_id in self._due
                emptied = self._forget(job_id)
            if emptied is not None:
                self._unschedule(emptied)
            return known

    def scheduled_ids(self) -> frozenset[str]:
        """Ids still waiting to fire (for reconciling with the database)."""
        with self._lock:
            return frozenset(self._due)

    def start(self) -> None:
        self._workers.start()
        self._scheduler.start()

    def shutdown(self, *, wait: bool = True) -> None:
        """Stops the timer; pending ids are forgotten (the database still has them)."""
        if self._scheduler.running:
            # Taking the jobs out first waits for a wake-up in progress to finish: APScheduler
            # stopped in the middle of one fails to remove the job it has just run.
            self._scheduler.remove_all_jobs()
            self._scheduler.shutdown(wait=wait)
        self._workers.stop(wait)
        with self._lock:
            self._due.clear()
            self._instants.clear()

    @property
    def running(self) -> bool:
        return bool(self._scheduler.running)

    def _forget(self, job_id: str) -> int | None:
        """Drops `job_id` (under our lock); returns its instant if no other id is due then."""
        instant = self._due.pop(job_id, None)
        if instant is None:
            return None
        waiting = self._instants[instant]
        del waiting[job_id]
        if waiting:
            return None
        del self._instants[instant]
        return instant

    def _unschedule(self, instant: int) -> None:
        # Already fired or being fired: nothing to remove, and _fire finds nothing to run.
        with suppress(JobLookupError):
            self._scheduler.remove_job(f"at:{instant}")

    def _fire(self, instant: int) -> None:
        with self._lock:
            waiting = self._instants.pop(instant, {})
            for job_id in waiting:
                del self._due[job_id]
        for job_id, callback in waiting.items():
            self._workers.submit(job_id, callback)
