"""The device board: village by village, who is connected, when each was last heard from, its
volume, signal and firmware, what it last played and how far off its start was; and the warnings."""

from __future__ import annotations

from fastapi import Response

from broadcaster.services.devices import clock_warnings, device_board, offline_warnings
from broadcaster.services.feedback import open_feedback_by_device
from broadcaster.web.page import Reader
from broadcaster.web.routes import page_router

router = page_router()


@router.get("/devices")
def devices_page(page: Reader) -> Response:
    villages = device_board(page.svc, page.lang)
    devices = [d for v in villages for d in v["devices"]]
    return page.render(
        "devices.html",
        villages=villages,
        warnings=offline_warnings(page.svc),
        clock_warnings=clock_warnings(page.svc),  # speakers whose clock is off, before an airing
        clock_warn_ms=page.svc.config.dispatch.clock_warn_ms,
        zone_names={v["id"]: v["name"] for v in villages},
        online=sum(1 for d in devices if d["online"]),
        total=len(devices),
        feedback=open_feedback_by_device(page.svc),  # beside the speaker it names (no phone numbers)
    )
