"""The JSON HTTP API (v1, documented in docs/api.md) and the audio files devices download.

Every error is `{"error": {"code": <English code for programs>, "message": <Vietnamese for people>}}`
with a 4xx status; nothing is stored when a request is refused.
"""

from __future__ import annotations

import logging
import re
import tempfile
import threading
import uuid
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import unquote

from fastapi import FastAPI, Form, Query, Request, UploadFile
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse, Response
from pydantic import BaseModel, ConfigDict, Field
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException as StarletteHTTPException

from audio import AudioError, AudioStore
from broadcaster.errors import BadInput
from broadcaster.services import Services
from broadcaster.services.announcements import announce, get_announcement
from broadcaster.services.devices import list_devices, offline_warnings
from broadcaster.services.programmes import add_programme, list_programmes
from broadcaster.services.reports import report
from broadcaster.services.views import calendar, list_broadcasts, recent_deliveries, timeline
from broadcaster.services.zones import list_zones
from schedules.clock import LOCAL_TZ

log = logging.getLogger(__name__)

API_VERSION = "v1"
_AUDIO_NAME = re.compile(r"^([0-9a-f]{64})\.(mp3|ogg|opus|wav)$")


class AnnouncementIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    text: str = Field(description="What to say, as written; numbers and abbreviations are read out properly.")
    zones: list[str] = Field(default=["all"], description="Zone ids; 'all' is the whole commune.")
    at: str | None = Field(
        default=None,
        description="Start: '17:30', '2026-11-25 06:00' (Asia/Ho_Chi_Minh), ISO 8601, '+5m'; null = now.",
    )
    title: str | None = Field(default=None, description="Shown on LED boards; defaults to the first line.")
    priority: str = Field(default="normal", description="normal | priority | emergency")
    bulletin: int | None = Field(default=None, description="Queue it in this bulletin programme's next bulletin.")
    order: int | None = Field(default=None, description="Order among clashing priority items; smaller first.")


class ProgrammeIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    kind: str = Field(description="relay | notice | bulletin")
    title: str
    zones: list[str] = Field(default=["all"])
    recurrence: str = Field(description='"06:00", "06:00 và 17:00 trong 3 ngày", "weekdays 06:30", ...')
    stream_url: str | None = None
    duration_s: float | None = None
    text: str | None = None
    priority: str = "normal"


class RenderIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    text: str


class Renders:
    """Background renders with progress, so a long article does not hold a request open."""

    def __init__(self, svc: Services, keep: int = 100) -> None:
        self.svc = svc
        self.keep = keep
        self._jobs: dict[str, dict[str, Any]] = {}
        self._lock = threading.Lock()

    def start(self, text: str) -> dict[str, Any]:
        job_id = uuid.uuid4().hex[:12]
        with self._lock:
            self._jobs[job_id] = {"id": job_id, "state": "running", "done": 0, "total": 0}
            for old in list(self._jobs)[: max(0, len(self._jobs) - self.keep)]:
                del self._jobs[old]
        threading.Thread(target=self._run, args=(job_id, text), name=f"render-{job_id}", daemon=True).start()
        return self.get(job_id)

    def _progress(self, job_id: str, done: int, total: int) -> None:
        with self._lock:
            self._jobs[job_id].update(done=done, total=total)

    def _run(self, job_id: str, text: str) -> None:
        try:
            stored = self.svc.audio.render(text, lambda d, t: self._progress(job_id, d, t))
            result: dict[str, Any] = {
                "state": "done",
                "audio": {"sha256": stored.sha256, "duration_ms": stored.duration_ms, "engine": stored.engine},
            }
        except AudioError as exc:
            result = {"state": "failed", "error": {"code": f"audio_{exc.code}", "message": exc.message_vi}}
        with self._lock:
            self._jobs[job_id].update(result)

    def get(self, job_id: str) -> dict[str, Any]:
        with self._lock:
            job = self._jobs.get(job_id)
            if job is None:
                raise BadInput("not_found", "Không có lượt chuyển giọng nói này.", 404)
            return dict(job)


def _instant(text: str | None) -> datetime | None:
    """A query-string instant: ISO 8601 (an offset-less one is Asia/Ho_Chi_Minh)."""
    if not text:
        return None
    try:
        when = datetime.fromisoformat(text)
    except ValueError as exc:
        raise BadInput("bad_time", f"Không hiểu thời điểm {text!r}; dùng dạng 2026-11-25T06:00.") from exc
    return when if when.tzinfo else when.replace(tzinfo=LOCAL_TZ)


def _actor(request: Request) -> str:
    # Until the web UI brings sign-in, the API is bound to localhost and callers name themselves.
    # Header values are ASCII, so a Vietnamese name arrives percent-encoded (UTF-8).
    return unquote(request.headers.get("x-loa-user") or "api").strip()[:100] or "api"


def create_app(
    svc: Services,
    store: AudioStore,
    *,
    on_change: Callable[[], None] | None = None,
    metrics: Callable[[], dict[str, int]] | None = None,
) -> FastAPI:
    app = FastAPI(title="loa", version="1.0.0", openapi_url=f"/api/{API_VERSION}/openapi.json", docs_url=None)
    renders = Renders(svc)

    @app.exception_handler(BadInput)
    async def _bad_input(_request: Request, exc: BadInput) -> JSONResponse:
        return JSONResponse(exc.as_json(), status_code=exc.status)

    @app.exception_handler(RequestValidationError)
    async def _invalid(_request: Request, exc: RequestValidationError) -> JSONResponse:
        fields = ", ".join(".".join(str(p) for p in e["loc"] if p != "body") for e in exc.errors())
        return JSONResponse(
            {"error": {"code": "invalid_request", "message": f"Yêu cầu không hợp lệ ở trường: {fields}."}},
            status_code=422,
        )

    @app.exception_handler(StarletteHTTPException)
    async def _http(_request: Request, exc: StarletteHTTPException) -> JSONResponse:
        code = "not_found" if exc.status_code == 404 else "http_error"
        return JSONResponse({"error": {"code": code, "message": "Không tìm thấy."}}, status_code=exc.status_code)

    @app.get(f"/api/{API_VERSION}/health")
    def health() -> dict[str, Any]:
        return {"ok": True, "version": API_VERSION}

    @app.post(f"/api/{API_VERSION}/announcements", status_code=201)
    def create_announcement(body: AnnouncementIn, request: Request, preview: bool = False) -> dict[str, Any]:
        result = announce(
            svc,
            body.text,
            body.zones,
            body.at,
            title=body.title,
            priority=body.priority,
            actor=_actor(request),
            preview=preview,
            bulletin=body.bulletin,
            order=body.order,
        )
        if on_change and not preview:
            on_change()
        return result

    @app.post(f"/api/{API_VERSION}/recordings", status_code=201)
    async def create_from_recording(
        request: Request,
        file: UploadFile,
        zones: str = Form("all"),
        at: str | None = Form(None),
        title: str = Form(""),
        priority: str = Form("normal"),
    ) -> dict[str, Any]:
        """An officer's own recording (mp3, m4a, wav, ogg from a phone), aired like any announcement."""
        suffix = Path(file.filename or "upload").suffix[:8]
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / f"upload{suffix}"
            with path.open("wb") as out:
                while chunk := await file.read(1 << 20):
                    out.write(chunk)
            result = await run_in_threadpool(
                announce,
                svc,
                "",
                [z.strip() for z in zones.split(",") if z.strip()],
                at or None,
                title=title,
                priority=priority,
                actor=_actor(request),
                recording=path,
            )
        if on_change:
            on_change()
        return result

    @app.post(f"/api/{API_VERSION}/programmes", status_code=201)
    def create_programme(body: ProgrammeIn, request: Request, preview: bool = False) -> dict[str, Any]:
        result = add_programme(
            svc,
            body.kind,
            body.title,
            body.zones,
            body.recurrence,
            stream_url=body.stream_url,
            duration_s=body.duration_s,
            text=body.text,
            priority=body.priority,
            actor=_actor(request),
            preview=preview,
        )
        if on_change and not preview:
            on_change()
        return result

    @app.get(f"/api/{API_VERSION}/programmes")
    def read_programmes() -> list[dict[str, Any]]:
        return list_programmes(svc)

    @app.post(f"/api/{API_VERSION}/renders", status_code=202)
    def start_render(body: RenderIn) -> dict[str, Any]:
        """Render a long text in the background; poll its progress, then announce it (a cache hit)."""
        if not body.text.strip():
            raise BadInput("empty_text", "Nội dung thông báo đang trống.")
        return renders.start(body.text)

    @app.get(f"/api/{API_VERSION}/renders/{{render_id}}")
    def read_render(render_id: str) -> dict[str, Any]:
        return renders.get(render_id)

    @app.get(f"/api/{API_VERSION}/announcements/{{announcement_id}}")
    def read_announcement(announcement_id: int) -> dict[str, Any]:
        return get_announcement(svc, announcement_id)

    @app.get(f"/api/{API_VERSION}/broadcasts")
    def read_broadcasts(limit: int = 50) -> list[dict[str, Any]]:
        return list_broadcasts(svc, max(1, min(limit, 500)))

    @app.get(f"/api/{API_VERSION}/devices")
    def read_devices() -> list[dict[str, Any]]:
        return list_devices(svc)

    @app.get(f"/api/{API_VERSION}/zones")
    def read_zones() -> list[dict[str, Any]]:
        return list_zones(svc)

    @app.get(f"/api/{API_VERSION}/timeline")
    def read_timeline(
        zone: str | None = None,
        start: str | None = Query(None, alias="from"),
        end: str | None = Query(None, alias="to"),
    ) -> list[dict[str, Any]]:
        return timeline(svc, zone, _instant(start), _instant(end))

    @app.get(f"/api/{API_VERSION}/zones/{{zone_id}}/calendar.ics")
    def read_calendar(zone_id: str) -> Response:
        return Response(calendar(svc, zone_id), media_type="text/calendar; charset=utf-8")

    @app.get(f"/api/{API_VERSION}/deliveries")
    def read_deliveries(limit: int = 50) -> list[dict[str, Any]]:
        return recent_deliveries(svc, max(1, min(limit, 500)))

    @app.get(f"/api/{API_VERSION}/report")
    def read_report(start: str = Query(alias="from"), end: str = Query(alias="to")) -> dict[str, Any]:
        first, last = _instant(start), _instant(end)
        if first is None or last is None or last <= first:
            raise BadInput("end_before_start", "Cần khoảng thời gian có điểm đầu trước điểm cuối.")
        return report(svc, first, last)

    @app.get(f"/api/{API_VERSION}/warnings")
    def read_warnings() -> list[dict[str, Any]]:
        return offline_warnings(svc)

    @app.get(f"/api/{API_VERSION}/metrics")
    def read_metrics() -> dict[str, int]:
        return metrics() if metrics else {}

    @app.get("/audio/{name}")
    def audio_file(name: str) -> FileResponse:
        m = _AUDIO_NAME.match(name)
        if not m:
            raise BadInput("not_found", "Không có tệp âm thanh này.", 404)
        stored = store.open(m.group(1))
        if stored is None or not stored.path.exists():
            raise BadInput("not_found", "Không có tệp âm thanh này.", 404)
        return FileResponse(stored.path, media_type="audio/mpeg" if m.group(2) == "mp3" else "audio/ogg")

    return app
