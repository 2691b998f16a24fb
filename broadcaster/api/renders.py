"""Background renders with progress, so a long article does not hold a request open.

A job is a row (`render_jobs`): with several daemons behind one proxy the desk's next poll may reach
another daemon than the one rendering, and that one must answer it. The render itself runs on the
daemon that took the request, into the audio store every daemon shares. A job is a convenience before
announcing (announcing the same text later is a cache hit), so a day's jobs are kept, and one whose
daemon died mid-way is reported as interrupted once it has been silent for `STALE_S`.
"""

from __future__ import annotations

import json
import logging
import threading
import time
import uuid
from datetime import timedelta
from typing import Any

from sqlalchemy import delete

from audio import AudioError
from broadcaster.db import RenderJob
from broadcaster.errors import LoaError
from broadcaster.services import Services
from broadcaster.services.speech import VoiceChoice, render

log = logging.getLogger(__name__)

KEEP = timedelta(days=1)
STALE_S = 600.0  # no progress written for this long: the daemon rendering it is gone
PROGRESS_EVERY_S = 0.5  # progress is written at most this often (a long article has hundreds of sentences)


class Renders:
    def __init__(self, svc: Services) -> None:
        self.svc = svc
        self._last_write: dict[str, float] = {}
        self._lock = threading.Lock()

    def start(self, text: str, voice: VoiceChoice | None = None) -> dict[str, Any]:
        job_id = uuid.uuid4().hex[:12]
        now = self.svc.clock.now()
        with self.svc.db.session() as session:
            session.execute(delete(RenderJob).where(RenderJob.created_at < now - KEEP))
            session.add(RenderJob(id=job_id, state="running", created_at=now, updated_at=now))
        threading.Thread(target=self._run, args=(job_id, text, voice), name=f"render-{job_id}", daemon=True).start()
        return self.get(job_id)

    def _update(self, job_id: str, **values: Any) -> None:
        with self.svc.db.session() as session:
            job = session.get(RenderJob, job_id)
            if job is not None:
                for name, value in values.items():
                    setattr(job, name, value)
                job.updated_at = self.svc.clock.now()

    def _progress(self, job_id: str, done: int, total: int) -> None:
        now = time.monotonic()
        with self._lock:
            if done < total and now - self._last_write.get(job_id, 0.0) < PROGRESS_EVERY_S:
                return
            self._last_write[job_id] = now
        try:
            self._update(job_id, done=done, total=total)
        except Exception:  # progress is a nicety; the render goes on
            log.warning("could not record the progress of render %s", job_id, exc_info=True)

    def _run(self, job_id: str, text: str, voice: VoiceChoice | None) -> None:
        try:
            try:
                stored = render(self.svc, text, voice, lambda d, t: self._progress(job_id, d, t))
            except (AudioError, LoaError) as exc:
                failure = LoaError.from_domain(exc)
                self._update(
                    job_id,
                    state="failed",
                    error_key=failure.key,
                    error_params=json.dumps(failure.params, ensure_ascii=False),
                    error_fallback=failure.fallback_vi or "",
                )
                return
            self._update(
                job_id, state="done", sha256=stored.sha256, duration_ms=stored.duration_ms, engine=stored.engine
            )
        except Exception:
            log.exception("render %s failed", job_id)
        finally:
            with self._lock:
                self._last_write.pop(job_id, None)

    def get(self, job_id: str, lang: str = "vi") -> dict[str, Any]:
        with self.svc.db.session() as session:
            job = session.get(RenderJob, job_id)
            if job is None:
                raise LoaError("not_found.render", {}, status=404)
            out: dict[str, Any] = {"id": job.id, "state": job.state, "done": job.done, "total": job.total}
            if job.state == "done":
                out["audio"] = {"sha256": job.sha256, "duration_ms": job.duration_ms, "engine": job.engine}
            elif job.state == "failed":
                failure = LoaError.restored(
                    job.error_key, json.loads(job.error_params or "{}"), job.error_fallback or None
                )
                out["error"] = failure.as_json(lang)["error"]
            elif (self.svc.clock.now() - job.updated_at).total_seconds() > STALE_S:
                out["state"] = "failed"
                out["error"] = LoaError("render_interrupted", {}).as_json(lang)["error"]
            return out
