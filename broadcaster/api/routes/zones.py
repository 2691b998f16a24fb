"""The commune, its villages and groups of villages, and each zone's calendar for the officer's phone."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from fastapi.responses import Response

from broadcaster.api.deps import Svc
from broadcaster.api.schemas import ZoneOut, refusals
from broadcaster.services.views import calendar
from broadcaster.services.zones import list_zones

router = APIRouter(tags=["zones"])


@router.get("/zones", response_model=list[ZoneOut])
def read_zones(svc: Svc) -> list[dict[str, Any]]:
    return list_zones(svc)


@router.get(
    "/zones/{zone_id}/calendar.ics",
    response_class=Response,
    responses={200: {"content": {"text/calendar": {}}, "description": "An iCalendar file."}, **refusals(404, 422)},
)
def read_calendar(zone_id: str, svc: Svc) -> Response:
    """The zone's planned airings as an iCalendar file."""
    return Response(calendar(svc, zone_id), media_type="text/calendar; charset=utf-8")
