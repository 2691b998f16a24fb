"""A zone's timeline, a day or a week: what aired, what is on air, what is planned, and why there."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from typing import Annotated, Any, Literal

from fastapi import Query, Response

from broadcaster.services.airings import zone_timeline
from broadcaster.services.approvals import recallable
from broadcaster.services.zones import COMMUNE_ZONE, list_zones
from broadcaster.web.page import Reader, day_start, local_day, week_of
from broadcaster.web.routes import page_router
from broadcaster.web.routes.broadcasts import may_recall
from schedules.clock import to_local

router = page_router()


@router.get("/timeline")
def timeline_page(
    page: Reader,
    zone: str = COMMUNE_ZONE,
    day: Annotated[str, Query(alias="date")] = "",
    view: Literal["day", "week"] = "day",
) -> Response:
    """`date` is a commune day (default today); a week starts on its Monday. An unknown zone is
    refused with the zones there are."""
    shown = local_day(day, page.today)
    first = week_of(shown) if view == "week" else shown
    length = 7 if view == "week" else 1
    start = day_start(first)
    rows = zone_timeline(page.svc, zone, start, start + timedelta(days=length), page.lang)
    days: dict[date, list[dict[str, Any]]] = {first + timedelta(days=i): [] for i in range(length)}
    for row in rows:
        days.setdefault(to_local(datetime.fromisoformat(row["start_at"])).date(), []).append(row)
    zones = list_zones(page.svc)
    step = timedelta(days=length)
    # The recall button on an entry whose announcement is scheduled or on air, for those who may recall.
    mine = {row["announcement"] for row in rows if row.get("announcement") is not None}
    recall_ids = recallable(page.svc, mine) if may_recall(page) else set()
    return page.render(
        "timeline.html",
        zones=zones,
        zone=zone,
        zone_name=next((z["name"] for z in zones if z["id"] == zone), zone),
        view=view,
        shown=shown.isoformat(),
        first=day_start(first),
        last=day_start(first + timedelta(days=length - 1)),
        days=[(day_start(d), items) for d, items in days.items()],
        previous=(first - step).isoformat(),
        following=(first + step).isoformat(),
        today=page.today.isoformat(),
        recallable=recall_ids,
    )
