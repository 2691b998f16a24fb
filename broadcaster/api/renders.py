"""Background renders with progress, so a long article does not hold a request open.

A job lives in memory only: it is a convenience before announcing (announcing the same text later is
a cache hit), not something to survive a restart.
"""

from __future__ import annotations

import threading
import uuid
from typing import Any

from audio import AudioError
from broadcaster.errors import LoaError
from broadcaster.services import Services
from broadcaster.services.speech import VoiceChoice, render


class Renders:
    def __init__(self, svc: Services, keep: int = 100) -> None:
        self.svc = svc
        self.keep = keep
        self._jobs: dict[str, dict[str, Any]] = {}
        self._failures: dict[str, LoaError] = {}  # said in the language of whoever asks
        self._lock = threading.Lock()

    def start(self, text: str, voice: VoiceChoice | None = None) -> dict[str, Any]:
        job_id = uuid.uuid4().hex[:12]
        with self._lock:
            self._jobs[job_id] = {"id": job_id, "state": "running", "done": 0, "total": 0}
            for old in list(self._jobs)[: max(0, len(self._jobs) - self.keep)]:
                del self._jobs[old]
                self._failures.pop(old, None)
        threading.Thread(target=self._run, args=(job_id, text, voice), name=f"render-{job_id}", daemon=True).start()
        return self.get(job_id)

    def _progress(self, job_id: str, done: int, total: int) -> None:
        with self._lock:
            if job_id in self._jobs:
                self._jobs[job_id].update(done=done, total=total)

    def _run(self, job_id: str, text: str, voice: VoiceChoice | None) -> None:
        try:
            stored = render(self.svc, text, voice, lambda d, t: self._progress(job_id, d, t))
        except (AudioError, LoaError) as exc:
            with self._lock:
                if job_id in self._jobs:
                    self._jobs[job_id]["state"] = "failed"
                    self._failures[job_id] = LoaError.from_domain(exc)
            return
        audio = {"sha256": stored.sha256, "duration_ms": stored.duration_ms, "engine": stored.engine}
        with self._lock:
            if job_id in self._jobs:
                self._jobs[job_id].update(state="done", audio=audio)

    def get(self, job_id: str, lang: str = "vi") -> dict[str, Any]:
        with self._lock:
            job = self._jobs.get(job_id)
            if job is None:
                raise LoaError("not_found.render", {}, status=404)
            failure = self._failures.get(job_id)
            return {**job, "error": failure.as_json(lang)["error"]} if failure else dict(job)
