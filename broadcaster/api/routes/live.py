"""Going live: the officer's voice from the browser to the speakers (broadcaster/services/live.py).

Two routers. `router` is the API's, behind the sign-in: open a session, send it the browser's audio a
slice at a time, read it, end it. `stream_router` is the audio listener's: the session's MP3 stream at
`/live/<token>.mp3`, the unguessable path only the signed `play` commands carry.

The slices come as one POST each, not over a WebSocket: a slice is a quarter of a second of audio, and
a POST on the commune's network takes a few milliseconds of that, so nothing is gained in latency,
while every POST passes the gate every other request passes (the session cookie and its CSRF token,
the Origin check, the body limit) with no second way in to secure. Each slice is numbered: a retry
after a lost answer is taken once, and a missing slice is asked for again, so the recording has no
holes the officer did not hear.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
from collections.abc import AsyncIterator
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import StreamingResponse
from starlette.concurrency import run_in_threadpool

from audio.live import LiveStream
from broadcaster.api.auth import SignedIn
from broadcaster.api.deps import Lang, OnChange, Parts
from broadcaster.api.schemas import LiveChunkOut, LiveIn, LiveOut, Priority, refusals
from broadcaster.errors import LoaError
from broadcaster.services.live import LiveDesk

router = APIRouter(tags=["live"])
stream_router = APIRouter(tags=["audio"])

_STREAM_NAME = re.compile(r"^([0-9a-f]{32})\.mp3$")


def live_desk(request: Request) -> LiveDesk:
    desk: LiveDesk | None = getattr(request.app.state, "live_desk", None)
    if desk is None:
        raise LoaError("live_unavailable", {"detail": "no live desk"}, status=409)
    return desk


Desk = Annotated[LiveDesk, Depends(live_desk)]


@router.post("/live", status_code=201, response_model=LiveOut, responses=refusals(400, 404, 409, 422))
def open_live(body: LiveIn, desk: Desk, parts: Parts, who: SignedIn, lang: Lang, on_change: OnChange) -> dict[str, Any]:
    """Go live in these zones: the speakers are sent a signed `play` of the session's stream, starting
    `[live] lead_s` from now. Officers and admins at normal or priority; an emergency is for the
    emergency roles, first answered 409 `confirm_emergency` with the villages and a code to repeat."""
    reason = ""
    if body.priority is Priority.EMERGENCY:
        reason = desk.confirm_emergency(
            parts.confirmations, who, body.zones, body.title, body.confirmation, body.reason
        )
    elif not who.may("compose"):
        raise LoaError("forbidden", {"role": who.role.value}, status=403)
    result = desk.open(who, body.zones, body.priority.value, body.format, body.title, reason=reason, lang=lang)
    on_change()  # the dispatcher claims the broadcasts now, not at its next reconcile
    return result


@router.get("/live", response_model=list[LiveOut], responses=refusals(422))
def list_live(desk: Desk, lang: Lang) -> list[dict[str, Any]]:
    """Sessions on air now, then those that ended lately (while the daemon runs), newest first."""
    return desk.sessions(lang)


@router.get("/live/{session_id}", response_model=LiveOut, responses=refusals(404, 422))
def read_live(session_id: int, desk: Desk, lang: Lang) -> dict[str, Any]:
    return desk.view(session_id, lang)


@router.post(
    "/live/{session_id}/chunks",
    response_model=LiveChunkOut,
    responses=refusals(403, 404, 409, 422),
    openapi_extra={"requestBody": {"content": {"application/octet-stream": {}}, "required": True}},
)
async def live_chunk(
    session_id: int,
    request: Request,
    desk: Desk,
    who: SignedIn,
    lang: Lang,
    seq: Annotated[int, Query(ge=0, description="The slice's number: 0, 1, 2, ... in recording order.")],
) -> dict[str, Any]:
    """One slice of the MediaRecorder's output, as it came (the body is the bytes). Only the person who
    opened the session may speak into it."""
    data = await request.body()
    result: dict[str, Any] = await run_in_threadpool(desk.feed, who, session_id, seq, data, lang)
    return result


@router.post("/live/{session_id}/end", response_model=LiveOut, responses=refusals(403, 404, 422))
def end_live(session_id: int, desk: Desk, who: SignedIn, lang: Lang, on_change: OnChange) -> dict[str, Any]:
    """End it: the stream ends on the speakers, and what was said is stored as the announcement's audio.
    The person who opened it, or an admin. To stop the speakers at once instead, recall the announcement
    (`DELETE /api/v1/announcements/{id}`)."""
    result = desk.end(session_id, who=who, lang=lang)
    on_change()
    return result


# ---------------------------------------------------------------- the audio listener's side


@stream_router.get(
    "/live/{name}",
    response_class=StreamingResponse,
    responses={200: {"content": {"audio/mpeg": {}}, "description": "The live MP3 stream."}, **refusals(404, 422)},
)
async def live_stream(name: str, request: Request) -> StreamingResponse:
    """A live session's stream, from its live edge, for as long as it is on air; 404 for any other
    name, a session that ended included."""
    desk: LiveDesk | None = getattr(request.app.state, "live_desk", None)
    m = _STREAM_NAME.match(name)
    stream = desk.stream(m.group(1)) if desk is not None and m else None
    if stream is None:
        raise LoaError("not_found.stream", {}, status=404)
    return StreamingResponse(
        _follow(stream), media_type="audio/mpeg", headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"}
    )


async def _follow(stream: LiveStream) -> AsyncIterator[bytes]:
    """The stream's bytes as the encoder writes them, woken from its thread: never a poll, never a wait
    for a buffer to fill."""
    loop = asyncio.get_running_loop()
    ready = asyncio.Event()

    def wake() -> None:
        with contextlib.suppress(RuntimeError):  # the loop is closing: the listener goes with it
            loop.call_soon_threadsafe(ready.set)

    listener = stream.listen(wake)
    try:
        while True:
            ready.clear()
            data, ended = listener.read()
            if data:
                yield data
            elif ended:
                return
            else:
                await ready.wait()
    finally:
        listener.close()
