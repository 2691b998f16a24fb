"""Announcements: a text to be read out, or an officer's own recording, placed on every village's timeline."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Form, UploadFile
from starlette.concurrency import run_in_threadpool

from broadcaster.api.deps import Actor, Lang, OnChange, Svc
from broadcaster.api.schemas import (
    AnnouncementCreated,
    AnnouncementIn,
    AnnouncementOut,
    AnnouncementPreview,
    Priority,
    refusals,
)
from broadcaster.services.announcements import announce, get_announcement

router = APIRouter(tags=["announcements"])


@router.post(
    "/announcements",
    status_code=201,
    response_model=AnnouncementCreated | AnnouncementPreview,
    responses=refusals(400, 404, 409, 422),
)
def create_announcement(
    body: AnnouncementIn, svc: Svc, actor: Actor, on_change: OnChange, preview: bool = False
) -> dict[str, Any]:
    """Store it, render its speech and plan one broadcast per village; `?preview=true` stores nothing."""
    result = announce(
        svc,
        body.text,
        body.zones,
        body.at,
        title=body.title,
        priority=body.priority.value,
        actor=actor,
        preview=preview,
        bulletin=body.bulletin,
        order=body.order,
    )
    if not preview:
        on_change()
    return result


@router.post("/recordings", status_code=201, response_model=AnnouncementCreated, responses=refusals(400, 404, 409, 422))
async def create_from_recording(
    svc: Svc,
    actor: Actor,
    on_change: OnChange,
    file: UploadFile,
    zones: Annotated[str, Form(description="Comma-separated zone ids.")] = "all",
    at: Annotated[str | None, Form()] = None,
    title: Annotated[str, Form()] = "",
    priority: Annotated[Priority, Form()] = Priority.NORMAL,
) -> dict[str, Any]:
    """An officer's own recording (mp3, m4a, wav, ogg from a phone), aired like any announcement."""
    suffix = Path(file.filename or "upload").suffix[:8]
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / f"upload{suffix}"
        with path.open("wb") as out:
            while chunk := await file.read(1 << 20):
                out.write(chunk)
        result: dict[str, Any] = await run_in_threadpool(
            announce,
            svc,
            "",
            [z.strip() for z in zones.split(",") if z.strip()],
            at or None,
            title=title,
            priority=priority.value,
            actor=actor,
            recording=path,
        )
    on_change()
    return result


@router.get("/announcements/{announcement_id}", response_model=AnnouncementOut, responses=refusals(404, 422))
def read_announcement(announcement_id: int, svc: Svc, lang: Lang) -> dict[str, Any]:
    return get_announcement(svc, announcement_id, lang)
