"""The LED slogan (khẩu hiệu) rotation editor: the slogans the boards show in turn while nothing else is
on them, in their order, active or not, for every board or some zones'. Every change is the slogan
service's (checked, audited); the rotation picks it up on its next turn (runtime/slogans.py). A
refusal is the page again with what to fix and what was typed, and nothing stored."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import Form, Path, Response
from starlette.concurrency import run_in_threadpool

from broadcaster.errors import LoaError
from broadcaster.services.slogans import add_slogan, delete_slogan, edit_slogan, list_slogans
from broadcaster.services.zones import list_zones
from broadcaster.web.page import Composer, Page
from broadcaster.web.routes import page_router

router = page_router()

SloganId = Annotated[int, Path(ge=1, le=2**31 - 1)]
Field = Annotated[str, Form()]
Zones = Annotated[list[str] | None, Form()]  # none ticked: every board


def _page(
    page: Page, *, error: str = "", status: int = 200, typed: dict[str, Any] | None = None, editing: int | None = None
) -> Response:
    zones = sorted(list_zones(page.svc), key=lambda z: ({"commune": 0, "village": 1}.get(z["kind"], 2), z["name"]))
    return page.render(
        "slogans.html",
        status=status,
        error=error,
        slogans=list_slogans(page.svc),
        zones=[z for z in zones if z["kind"] != "commune"],  # no zone ticked: every board
        zone_names={z["id"]: z["name"] for z in zones},
        typed=typed or {"text": "", "zones": [], "active": True},
        editing=editing,
        max_chars=page.svc.config.led.slogan_max_chars,
    )


@router.get("/slogans")
def slogans_page(page: Composer) -> Response:
    return _page(page)


@router.post("/slogans")
async def add(page: Composer, text: Field = "", zones: Zones = None, active: Field = "") -> Response:
    typed = {"text": text, "zones": zones or [], "active": bool(active)}
    try:
        made = await run_in_threadpool(
            lambda: add_slogan(
                page.svc, text, zones=zones or [], active=bool(active), actor=page.person.username, by=page.person
            )
        )
    except LoaError as exc:
        return _page(page, error=page.message(exc), status=exc.status, typed=typed)
    return page.redirect(f"/slogans?notice=slogan_added#slogan-{made['id']}")


@router.post("/slogans/{slogan_id}")
async def change(
    page: Composer, slogan_id: SloganId, text: Field = "", zones: Zones = None, active: Field = ""
) -> Response:
    typed = {"text": text, "zones": zones or [], "active": bool(active)}
    try:
        await run_in_threadpool(
            lambda: edit_slogan(page.svc, slogan_id, typed, actor=page.person.username, by=page.person)
        )
    except LoaError as exc:
        return _page(page, error=page.message(exc), status=exc.status, typed=typed, editing=slogan_id)
    return page.redirect(f"/slogans?notice=slogan_changed#slogan-{slogan_id}")


@router.post("/slogans/{slogan_id}/active")
async def toggle(page: Composer, slogan_id: SloganId, active: Field = "") -> Response:
    """Switched on or off in the rotation (it stays in the list)."""
    try:
        await run_in_threadpool(
            lambda: edit_slogan(
                page.svc, slogan_id, {"active": active == "1"}, actor=page.person.username, by=page.person
            )
        )
    except LoaError as exc:
        return _page(page, error=page.message(exc), status=exc.status)
    return page.redirect(f"/slogans?notice=slogan_changed#slogan-{slogan_id}")


def _move(page: Page, slogan_id: int, direction: str) -> None:
    """One place up or down: the list numbered 1, 2, 3... again in its new order, each slogan whose
    number changed edited (and audited) through the service."""
    order = [s["id"] for s in list_slogans(page.svc)]
    if slogan_id not in order:
        raise LoaError("not_found.slogan", {"id": slogan_id}, status=404)
    at = order.index(slogan_id)
    to = at - 1 if direction == "up" else at + 1
    if not 0 <= to < len(order):
        return  # already first (or last)
    order[at], order[to] = order[to], order[at]
    current = {s["id"]: s["order"] for s in list_slogans(page.svc)}
    for position, sid in enumerate(order, start=1):
        if current[sid] != position:
            edit_slogan(page.svc, sid, {"order": position}, actor=page.person.username, by=page.person)


@router.post("/slogans/{slogan_id}/move")
async def move(page: Composer, slogan_id: SloganId, direction: Annotated[Literal["up", "down"], Form()]) -> Response:
    try:
        await run_in_threadpool(_move, page, slogan_id, direction)
    except LoaError as exc:
        return _page(page, error=page.message(exc), status=exc.status)
    return page.redirect(f"/slogans?notice=slogan_moved#slogan-{slogan_id}")


@router.post("/slogans/{slogan_id}/delete")
async def delete(page: Composer, slogan_id: SloganId) -> Response:
    try:
        await run_in_threadpool(lambda: delete_slogan(page.svc, slogan_id, actor=page.person.username, by=page.person))
    except LoaError as exc:
        return _page(page, error=page.message(exc), status=exc.status)
    return page.redirect("/slogans?notice=slogan_deleted")
