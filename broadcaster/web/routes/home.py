"""The desk's home: what needs attention now, what still airs today, what just aired."""

from __future__ import annotations

from datetime import timedelta

from fastapi import Response

from broadcaster.services.airings import list_airings, zone_timeline
from broadcaster.services.devices import clock_warnings, list_devices, offline_warnings
from broadcaster.services.zones import list_zones
from broadcaster.web.page import Reader, day_start
from broadcaster.web.routes import page_router

router = page_router()
COMING_STATES = frozenset({"on_air", "sent", "planned"})


@router.get("/")
def home(page: Reader) -> Response:
    svc, lang = page.svc, page.lang
    now = svc.clock.now()
    today = day_start(page.today)
    coming = [
        a for a in zone_timeline(svc, None, today, today + timedelta(days=1), lang) if a["state"] in COMING_STATES
    ]
    devices = list_devices(svc)
    speakers = [d for d in devices if d["kind"] == "speaker"]
    boards = [d for d in devices if d["kind"] == "led"]
    return page.render(
        "home.html",
        warnings=offline_warnings(svc),
        clock_warnings=clock_warnings(svc),
        zone_names={z["id"]: z["name"] for z in list_zones(svc)},
        coming=coming[:10],
        recent=list_airings(svc, end=now, limit=5, lang=lang),
        speakers_online=sum(1 for d in speakers if d["online"]),
        speakers=len(speakers),
        boards_online=sum(1 for d in boards if d["online"]),
        boards=len(boards),
    )
