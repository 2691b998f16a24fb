"""The timer against the real clock: short waits only (well under a second each)."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta

import pytest

from broadcaster.runtime.timer import Timer
from schedules import FakeClock, SystemClock


@pytest.fixture
def fired() -> list[tuple[str, float]]:
    return []


@pytest.fixture
def timer() -> Iterator[Timer]:
    t = Timer(SystemClock())
    t.start()
    yield t
    t.shutdown()


def recorder(fired: list[tuple[str, float]], done: threading.Event, expected: int) -> Callable[[str], None]:
    lock = threading.Lock()

    def callback(job_id: str) -> None:
        with lock:
            fired.append((job_id, time.monotonic()))
            if len(fired) >= expected:
                done.set()

    return callback


def test_jobs_fire_once_each_in_order_with_their_ids(timer: Timer, fired: list[tuple[str, float]]) -> None:
    done = threading.Event()
    callback = recorder(fired, done, 3)
    now = datetime.now(UTC)
    began = time.monotonic()
    for job_id, ms in (("c", 500), ("a", 200), ("b", 350)):
        timer.schedule(job_id, now + timedelta(milliseconds=ms), callback)
    assert timer.scheduled_ids() == {"a", "b", "c"}
    assert done.wait(3)
    time.sleep(0.2)  # anything firing twice would show up now
    assert [job_id for job_id, _ in fired] == ["a", "b", "c"]
    offsets = [at - began for _, at in fired]
    assert offsets[0] >= 0.18 and offsets[-1] < 1.5
    assert timer.scheduled_ids() == frozenset()


def test_cancel_and_replace(timer: Timer, fired: list[tuple[str, float]]) -> None:
    done = threading.Event()
    callback = recorder(fired, done, 2)
    now = datetime.now(UTC)
    timer.schedule("gone", now + timedelta(milliseconds=200), callback)
    timer.schedule("moved", now + timedelta(milliseconds=250), callback)
    timer.schedule("moved", now + timedelta(milliseconds=400), callback)  # replaces
    timer.schedule("kept", now + timedelta(milliseconds=300), callback)
    assert timer.cancel("gone") is True
    assert timer.cancel("gone") is False
    assert timer.cancel("never") is False
    assert done.wait(3)
    time.sleep(0.2)
    assert [job_id for job_id, _ in fired] == ["kept", "moved"]


def test_past_job_still_fires_once(timer: Timer, fired: list[tuple[str, float]]) -> None:
    done = threading.Event()
    callback = recorder(fired, done, 1)
    timer.schedule("late", datetime.now(UTC) - timedelta(hours=3), callback)
    assert done.wait(2)
    time.sleep(0.2)
    assert [job_id for job_id, _ in fired] == ["late"]


def test_jobs_added_before_start_and_fake_clock(fired: list[tuple[str, float]]) -> None:
    clock = FakeClock(datetime(2030, 1, 1, tzinfo=UTC))
    timer = Timer(clock)
    done = threading.Event()
    callback = recorder(fired, done, 2)
    # Times are read on the fake clock: 2030 + 300 ms means "in 300 ms".
    timer.schedule("soon", clock.now() + timedelta(milliseconds=300), callback)
    timer.schedule("overdue", clock.now() - timedelta(minutes=5), callback)
    assert timer.scheduled_ids() == {"soon", "overdue"}
    began = time.monotonic()
    timer.start()
    try:
        assert done.wait(3)
        assert [job_id for job_id, _ in fired] == ["overdue", "soon"]
        assert fired[1][1] - began >= 0.25
    finally:
        timer.shutdown()
    assert not timer.running


def test_ids_sharing_an_instant_fire_once_each_and_cancel_only_their_own(
    timer: Timer, fired: list[tuple[str, float]]
) -> None:
    done = threading.Event()
    callback = recorder(fired, done, 299)
    at = datetime.now(UTC) + timedelta(milliseconds=300)
    for i in range(300):
        timer.schedule(f"loa-{i}", at, callback)
    assert timer.cancel("loa-7") is True
    assert len(timer.scheduled_ids()) == 299
    assert done.wait(3)
    time.sleep(0.2)
    ids = [job_id for job_id, _ in fired]
    assert len(ids) == 299 and set(ids) == {f"loa-{i}" for i in range(300)} - {"loa-7"}


def test_failing_callback_does_not_stop_the_others(timer: Timer, fired: list[tuple[str, float]]) -> None:
    done = threading.Event()
    record = recorder(fired, done, 1)

    def broken(job_id: str) -> None:
        raise RuntimeError(job_id)

    at = datetime.now(UTC) + timedelta(milliseconds=200)
    timer.schedule("broken", at, broken)
    timer.schedule("fine", at + timedelta(milliseconds=50), record)
    assert done.wait(2)
    assert [job_id for job_id, _ in fired] == ["fine"]


@pytest.mark.slow
def test_a_burst_of_a_thousand_due_together_fires_each_once_and_never_early(timer: Timer) -> None:
    """How late they are is measured in bench/scheduler.py, not asserted here."""
    lateness: list[float] = []
    lock = threading.Lock()
    done = threading.Event()
    at = datetime.now(UTC) + timedelta(milliseconds=500)

    ids: list[str] = []

    def callback(job_id: str) -> None:
        late = time.time() - at.timestamp()
        with lock:
            lateness.append(late)
            ids.append(job_id)
            if len(lateness) == 1000:
                done.set()

    for i in range(1000):
        timer.schedule(f"burst-{i}", at, callback)
    assert done.wait(10)
    time.sleep(0.2)  # anything firing twice would show up now
    assert sorted(ids) == sorted(f"burst-{i}" for i in range(1000))
    assert min(lateness) >= -0.002  # never before its time
