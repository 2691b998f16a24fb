"""Turning a long text into speech in the background, with progress, before announcing it."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from fastapi.responses import FileResponse

from broadcaster.api.auth import Composer
from broadcaster.api.deps import Jobs, Lang, Svc
from broadcaster.api.schemas import RenderIn, RenderOut, refusals
from broadcaster.errors import LoaError

router = APIRouter(tags=["renders"])


@router.post(
    "/renders",
    status_code=202,
    response_model=RenderOut,
    response_model_exclude_unset=True,
    responses=refusals(400, 422),
)
def start_render(body: RenderIn, jobs: Jobs, _who: Composer) -> dict[str, Any]:
    """Render a long text in the background; poll its progress, then announce it (a cache hit)."""
    if not body.text.strip():
        raise LoaError("empty_text", {})
    return jobs.start(body.text)


@router.get(
    "/renders/{render_id}", response_model=RenderOut, response_model_exclude_unset=True, responses=refusals(404, 422)
)
def read_render(render_id: str, jobs: Jobs, lang: Lang) -> dict[str, Any]:
    return jobs.get(render_id, lang)


@router.get(
    "/renders/{render_id}/audio",
    response_class=FileResponse,
    responses={200: {"content": {"audio/mpeg": {}}, "description": "The rendered speech."}, **refusals(404, 422)},
)
def hear_render(render_id: str, jobs: Jobs, svc: Svc) -> FileResponse:
    """The speech of a finished render, to hear it before anything is saved (404 until it is done)."""
    audio = jobs.get(render_id).get("audio") or {}
    stored = svc.audio.store.open(audio["sha256"]) if audio.get("sha256") else None
    if stored is None or not stored.path.exists():
        raise LoaError("not_found.audio", {}, status=404)
    return FileResponse(stored.path, media_type="audio/mpeg" if stored.path.suffix == ".mp3" else "audio/ogg")

