"""What airs where, in order, with the reason for each placement."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query

from broadcaster.api.deps import Lang, Svc, instant
from broadcaster.api.schemas import TimelineRow, refusals
from broadcaster.services.views import timeline

router = APIRouter(tags=["timeline"])


@router.get("/timeline", response_model=list[TimelineRow], responses=refusals(400, 404, 422))
def read_timeline(
    svc: Svc,
    lang: Lang,
    zone: str | None = None,
    start: Annotated[
        str | None, Query(alias="from", description="ISO 8601; without an offset, Asia/Ho_Chi_Minh")
    ] = None,
    end: Annotated[str | None, Query(alias="to")] = None,
) -> list[dict[str, Any]]:
    return timeline(svc, zone, instant(start), instant(end), lang)
