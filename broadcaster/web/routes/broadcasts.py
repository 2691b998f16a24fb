"""What was sent: airings (whole placements) with their speakers' count, and one airing's deliveries."""

from __future__ import annotations

from typing import Annotated

from fastapi import Path, Response

from broadcaster.services.airings import airing_deliveries, list_airings
from broadcaster.services.approvals import recallable
from broadcaster.web.page import Page, Reader
from broadcaster.web.routes import page_router

router = page_router()


@router.get("/broadcasts")
def airings_page(page: Reader, announcement: int | None = None) -> Response:
    """The latest airings; `announcement` narrows them to one announcement's (the audit log links here)."""
    return page.render(
        "broadcasts.html",
        airings=list_airings(page.svc, announcement=announcement, limit=100, lang=page.lang),
        announcement=announcement,
    )


@router.get("/broadcasts/{broadcast_id}")
def deliveries_page(page: Reader, broadcast_id: Annotated[int, Path(ge=1)]) -> Response:
    """One airing, every village of it, and each device's outcome ("41/43 loa đã phát"); with the recall
    button when its announcement is scheduled or on air and the person may recall."""
    airing = airing_deliveries(page.svc, broadcast_id, page.lang)
    item = airing.get("announcement")
    may = item is not None and may_recall(page) and item in recallable(page.svc, {item})
    return page.render("deliveries.html", airing=airing, may_recall=may)


def may_recall(page: Page) -> bool:
    """Officers, approvers and admins recall, whoever sent the item (as on /approvals)."""
    return page.person.may("compose") or page.person.may("approve")
