"""Programmes: relays of a higher station, notices repeated by a rule, and bulletins to queue items in."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from broadcaster.api.deps import Actor, OnChange, Svc
from broadcaster.api.schemas import ProgrammeCreated, ProgrammeIn, ProgrammeOut, refusals
from broadcaster.services.programmes import add_programme, list_programmes

router = APIRouter(tags=["programmes"])


@router.post(
    "/programmes",
    status_code=201,
    response_model=ProgrammeCreated,
    response_model_exclude_unset=True,  # a relay has placements, a bulletin windows; neither shows the other
    responses=refusals(400, 404, 409, 422),
)
def create_programme(
    body: ProgrammeIn, svc: Svc, actor: Actor, on_change: OnChange, preview: bool = False
) -> dict[str, Any]:
    result = add_programme(
        svc,
        body.kind.value,
        body.title,
        body.zones,
        body.recurrence,
        stream_url=body.stream_url,
        duration_s=body.duration_s,
        text=body.text,
        priority=body.priority.value,
        actor=actor,
        preview=preview,
    )
    if not preview:
        on_change()
    return result


@router.get("/programmes", response_model=list[ProgrammeOut])
def read_programmes(svc: Svc) -> list[dict[str, Any]]:
    return list_programmes(svc)
