"""Turning a long text into speech in the background, with progress, before announcing it."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from fastapi.responses import FileResponse

from broadcaster.api.auth import Composer
from broadcaster.api.deps import Jobs, Lang, Svc
from broadcaster.api.schemas import RenderIn, RenderOut, VoiceOption, refusals
from broadcaster.errors import LoaError
from broadcaster.services.speech import choice_of, offered

router = APIRouter(tags=["renders"])


@router.post(
    "/renders",
    status_code=202,
    response_model=RenderOut,
    response_model_exclude_unset=True,
    responses=refusals(400, 422),
)
def start_render(body: RenderIn, jobs: Jobs, svc: Svc, _who: Composer) -> dict[str, Any]:
    """Render a long text in the background; poll its progress, then announce it with the same `voice`:
    the announcement's audio is this render (a cache hit)."""
    if not body.text.strip():
        raise LoaError("empty_text", {})
    return jobs.start(body.text, choice_of(svc.config, body.voice.model_dump() if body.voice else None))


@router.get("/voices", response_model=list[VoiceOption], responses=refusals(422))
def list_voices(svc: Svc, lang: Lang) -> list[dict[str, Any]]:
    """The voices an item may be read with here: the commune's own first, then those the engines it may
    use have (an online or neural voice comes with espeak-ng as its fallback)."""
    return [{"engine": o.engine, "voice": o.voice, "label": o.label, "default": o.default}
            for o in offered(svc.config, lang)]  # fmt: skip


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

