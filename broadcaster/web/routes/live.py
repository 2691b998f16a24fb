"""The live page: the officer speaks into the browser's microphone and the chosen villages hear it.

The page itself is a form (villages, priority, title); the microphone, the recorder, the level meter
and the slices sent to `/api/v1/live` are static/live.js's, since the voice goes out while the page
stays. Everything the script says to the officer is rendered here, in their language, into `data-`
attributes: the page's Content-Security-Policy allows no inline script to carry it.
"""

from __future__ import annotations

from typing import Any

from fastapi import Response

from broadcaster.services.emergencies import may_send
from broadcaster.services.live import LiveDesk
from broadcaster.services.zones import list_zones
from broadcaster.web.page import Page, Reader
from broadcaster.web.routes import page_router

router = page_router()

# What live.js says, by the `data-` attribute it reads it from (`{name}` is filled in by the script).
SCRIPT_WORDS = (
    "asking_mic", "connecting", "on_air", "listeners", "network", "ending", "ended", "recorded",
    "not_recorded", "no_mic", "insecure", "no_recorder", "failed", "confirm_reason",
)  # fmt: skip


@router.get("/live")
def live_page(page: Reader) -> Response:
    svc = page.svc
    priorities = [p for p in ("normal", "priority") if page.person.may("compose")]
    if may_send(svc, page.person):
        priorities.append("emergency")
    desk: LiveDesk | None = getattr(page.request.app.state, "live_desk", None)
    sessions = desk.sessions(page.lang) if desk is not None else []
    zones = sorted(list_zones(svc), key=lambda z: (z["kind"] != "commune", z["kind"] != "village", z["name"]))
    return page.render(
        "live.html",
        priorities=priorities,
        zones=zones,
        on_air=[s for s in sessions if s["state"] == "live"],
        available=desk is not None,
        words=_words(page),
    )


def _words(page: Page) -> dict[str, Any]:
    names = ("n", "why", "seconds", "id", "error", "villages")
    placeholders = {name: "{" + name + "}" for name in names}
    return {key: page.t(f"live.js.{key}", **placeholders) for key in SCRIPT_WORDS}
