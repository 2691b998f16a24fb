"""Render jobs live in the database: a daemon answers for a render another daemon of the cluster runs, and
the audio it made is in the store they share."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from broadcaster.api.renders import STALE_S, Renders
from broadcaster.db import RenderJob
from broadcaster.services import Services
from schedules.clock import FakeClock, SystemClock
from tests.broadcaster.conftest import make_services


def _until_finished(jobs: Renders, job_id: str, lang: str = "vi") -> dict[str, Any]:
    deadline = time.monotonic() + 60
    job = jobs.get(job_id, lang)
    while job["state"] == "running" and time.monotonic() < deadline:
        time.sleep(0.05)
        job = jobs.get(job_id, lang)
    return job


def _two_daemons(tmp_path: Path, database_url: str) -> tuple[Services, Services]:
    shared = str(tmp_path / "shared-audio")
    a = make_services(tmp_path / "a", database_url, SystemClock(), LOA_GENERAL_AUDIO_DIR=shared)
    b = make_services(tmp_path / "b", database_url, SystemClock(), LOA_GENERAL_AUDIO_DIR=shared)
    return a, b


def test_a_render_started_on_one_daemon_is_followed_and_heard_on_another(tmp_path: Path, database_url: str) -> None:
    a, b = _two_daemons(tmp_path, database_url)
    try:
        text = " ".join(f"Câu thông báo số {n} của Ủy ban nhân dân xã." for n in range(1, 6))
        started = Renders(a).start(text)
        done = _until_finished(Renders(b), started["id"])  # the desk's next poll reached the other daemon
        assert done["state"] == "done" and done["done"] == done["total"] == 5
        stored = b.audio.store.open(done["audio"]["sha256"])  # and its audio listener serves the file
        assert stored is not None and stored.path.exists()
    finally:
        a.db.dispose()
        b.db.dispose()


def test_a_failed_render_is_said_in_the_language_of_whoever_asks(tmp_path: Path, database_url: str) -> None:
    a, b = _two_daemons(tmp_path, database_url)
    try:
        job = Renders(a).start("... !!! ...")  # nothing to say
        vi = _until_finished(Renders(b), job["id"], "vi")
        en = Renders(b).get(job["id"], "en")
        assert vi["state"] == en["state"] == "failed"
        assert vi["error"]["code"] == en["error"]["code"] == "audio_empty_text"
        assert vi["error"]["message"] != en["error"]["message"]
    finally:
        a.db.dispose()
        b.db.dispose()


def test_a_render_whose_daemon_died_is_reported_interrupted_and_old_jobs_go(tmp_path: Path, sqlite_url: str) -> None:
    clock = FakeClock(datetime(2027, 3, 1, 8, tzinfo=UTC))
    svc = make_services(tmp_path, sqlite_url, clock)
    try:
        with svc.db.session() as s:  # what a daemon killed mid-render leaves
            s.add(RenderJob(id="orphan", state="running", created_at=clock.now(), updated_at=clock.now()))
        jobs = Renders(svc)
        assert jobs.get("orphan")["state"] == "running"
        clock.advance(timedelta(seconds=STALE_S + 1))
        gone = jobs.get("orphan", "en")
        assert gone["state"] == "failed" and gone["error"]["code"] == "render_interrupted"
        clock.advance(timedelta(days=1))
        jobs.start("Kính thưa bà con.")  # a new job clears out the day-old ones
        with svc.db.session() as s:
            assert s.get(RenderJob, "orphan") is None
    finally:
        svc.db.dispose()
