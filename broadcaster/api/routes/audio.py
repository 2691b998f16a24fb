"""The rendered audio, as devices download it (outside /api/v1: its URL is in signed commands), served
by a listener of its own (`create_audio_app`) that has nothing else."""

from __future__ import annotations

import re
from typing import Annotated

from fastapi import APIRouter, Depends, Request
from fastapi.responses import FileResponse

from audio import AudioStore
from broadcaster.api.schemas import refusals
from broadcaster.errors import LoaError

_AUDIO_NAME = re.compile(r"^([0-9a-f]{64})\.(mp3|ogg|opus|wav)$")

router = APIRouter(tags=["audio"])


def audio_store(request: Request) -> AudioStore:
    found: AudioStore = request.app.state.audio_store
    return found


@router.get(
    "/audio/{name}",
    response_class=FileResponse,
    responses={
        200: {"content": {"audio/mpeg": {}, "audio/ogg": {}}, "description": "The audio, as devices fetch it."},
        **refusals(404, 422),
    },
)
def audio_file(name: str, store: Annotated[AudioStore, Depends(audio_store)]) -> FileResponse:
    m = _AUDIO_NAME.match(name)
    if not m:
        raise LoaError("not_found.audio", {}, status=404)
    stored = store.open(m.group(1))
    if stored is None or not stored.path.exists():
        raise LoaError("not_found.audio", {}, status=404)
    return FileResponse(stored.path, media_type="audio/mpeg" if m.group(2) == "mp3" else "audio/ogg")
