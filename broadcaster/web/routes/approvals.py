"""Approvals and what became of each item: approvers hear what waits for them and approve it, or send it
back with a reason; officers see their items' outcome (state, who decided, when, why); and every item
that is scheduled or on air has its recall button, behind a page that asks why and confirms.

The states are services/approvals.py's: draft → awaiting approval → approved (planned at once) →
scheduled → on air → aired; or rejected with a reason; or recalled. The page only asks the services
(they check the role, the state and that nobody approves their own item) and pokes the daemon after a
change that plans or stops something, as the API does.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Path, Response
from fastapi.responses import FileResponse
from starlette.concurrency import run_in_threadpool

from broadcaster.errors import LoaError
from broadcaster.services.announcements import announcement_audio, get_announcement
from broadcaster.services.approvals import (
    approve,
    approve_programme,
    list_announcements,
    reject,
    reject_programme,
    submit,
    waiting,
    waiting_programmes,
)
from broadcaster.services.emergencies import may_send
from broadcaster.services.recall import recall
from broadcaster.services.speech import voice_label
from broadcaster.services.zones import list_zones
from broadcaster.web.page import Page, Reader
from broadcaster.web.routes import page_router

router = page_router()

ItemId = Annotated[int, Path(ge=1, le=2**31 - 1)]
RECALLABLE = frozenset({"scheduled", "on_air"})
LIST_LIMIT = 30


def _may_recall(page: Page) -> bool:
    """Officers, approvers and admins recall, whoever sent the item: a false alarm must not wait."""
    return page.person.may("compose") or page.person.may("approve")


def _names(page: Page) -> dict[str, str]:
    return {z["id"]: z["name"] for z in list_zones(page.svc)}


def _list_page(page: Page, *, error: str = "", status: int = 200) -> Response:
    svc, who = page.svc, page.person
    return page.render(
        "approvals.html",
        status=status,
        error=error,
        waiting=waiting(svc, by=who, lang=page.lang),
        programmes=waiting_programmes(svc, by=who),
        mine=list_announcements(svc, created_by=who.username, limit=LIST_LIMIT) if who.may("compose") else [],
        recent=list_announcements(svc, limit=LIST_LIMIT),
        may_approve=who.may("approve"),
        may_recall=_may_recall(page),
        may_emergency=may_send(svc, who),
        zone_names=_names(page),
        recallable=RECALLABLE,
    )


@router.get("/approvals")
def approvals_page(page: Reader) -> Response:
    """What waits for approval (approvers act on it here), the person's own items and the latest ones."""
    return _list_page(page)


@router.post("/approvals/programmes/{programme_id}/approve")
async def approve_programme_item(page: Reader, programme_id: ItemId) -> Response:
    """A repeating notice or relay: its next day and a half is placed at once; not by its author."""
    try:
        await run_in_threadpool(
            lambda: approve_programme(page.svc, programme_id, actor=page.person.username, by=page.person)
        )
    except LoaError as exc:
        return _list_page(page, error=page.message(exc), status=exc.status)
    page.parts.on_change()
    return page.redirect("/approvals?notice=programme_approved")


@router.post("/approvals/programmes/{programme_id}/reject")
async def reject_programme_item(page: Reader, programme_id: ItemId) -> Response:
    """Sent back with the reason its author reads (required); it never airs."""
    why = await _reason(page)
    try:
        await run_in_threadpool(
            lambda: reject_programme(page.svc, programme_id, why, actor=page.person.username, by=page.person)
        )
    except LoaError as exc:
        return _list_page(page, error=page.message(exc), status=exc.status)
    return page.redirect("/approvals?notice=programme_rejected")


def _item_page(page: Page, item_id: int, *, error: str = "", status: int = 200, reason: str = "") -> Response:
    item = get_announcement(page.svc, item_id, page.lang)
    mine = page.person.username in {item["created_by"], item["approval"]["submitted_by"]}
    return page.render(
        "approval_item.html",
        status=status,
        error=error,
        item=item,
        reason=reason,
        may_decide=page.person.may("approve") and not mine and item["state"] == "awaiting_approval",
        own_waiting=mine and item["state"] == "awaiting_approval",
        may_edit=page.person.may("compose") and item["state"] in ("draft", "rejected"),
        may_recall=_may_recall(page) and item["state"] in RECALLABLE,
        zone_names=_names(page),
        voice=voice_label(item["voice"], page.lang),
    )


@router.get("/approvals/{item_id}")
def item_page(page: Reader, item_id: ItemId) -> Response:
    """One item whole: its text, its audio, what was asked, who decided what, its airings."""
    return _item_page(page, item_id)


@router.get("/approvals/{item_id}/audio")
def item_audio(page: Reader, item_id: ItemId) -> FileResponse:
    """The item's audio, for a person to hear it here (the audio listener is the devices')."""
    path, media_type = announcement_audio(page.svc, item_id)
    return FileResponse(path, media_type=media_type)


async def _reason(page: Page) -> str:
    value = (await page.request.form()).get("reason")
    return value.strip() if isinstance(value, str) else ""


@router.post("/approvals/{item_id}/approve")
async def approve_item(page: Reader, item_id: ItemId) -> Response:
    """Planned at once, as if announced; nobody approves their own item (the service refuses it)."""
    try:
        await run_in_threadpool(
            lambda: approve(page.svc, item_id, actor=page.person.username, by=page.person, lang=page.lang)
        )
    except LoaError as exc:
        return _item_page(page, item_id, error=page.message(exc), status=exc.status)
    page.parts.on_change()
    return page.redirect(f"/approvals/{item_id}?notice=approved")


@router.post("/approvals/{item_id}/reject")
async def reject_item(page: Reader, item_id: ItemId) -> Response:
    """Sent back with the reason the officer reads (required: what to fix)."""
    why = await _reason(page)
    try:
        await run_in_threadpool(
            lambda: reject(page.svc, item_id, why, actor=page.person.username, by=page.person, lang=page.lang)
        )
    except LoaError as exc:
        return _item_page(page, item_id, error=page.message(exc), status=exc.status, reason=why)
    return page.redirect(f"/approvals/{item_id}?notice=rejected")


@router.post("/approvals/{item_id}/submit")
async def submit_item(page: Reader, item_id: ItemId) -> Response:
    """A draft (or a rejected item) sent on as it is: rendered, and waiting for an approver."""
    try:
        made: dict[str, Any] = await run_in_threadpool(
            lambda: submit(page.svc, item_id, actor=page.person.username, by=page.person, lang=page.lang)
        )
    except LoaError as exc:
        return _item_page(page, item_id, error=page.message(exc), status=exc.status)
    page.parts.on_change()
    notice = "submitted" if made["state"] == "awaiting_approval" else "planned"
    return page.redirect(f"/approvals/{item_id}?notice={notice}")


def _recall_page(page: Page, item_id: int, *, error: str = "", status: int = 200, reason: str = "") -> Response:
    if not _may_recall(page):
        raise LoaError("forbidden", {"role": page.person.role.value}, status=403)
    item = get_announcement(page.svc, item_id, page.lang)
    return page.render(
        "recall_confirm.html", status=status, error=error, item=item, reason=reason, zone_names=_names(page),
        recallable=item["state"] in RECALLABLE,
    )  # fmt: skip


@router.get("/approvals/{item_id}/recall")
def recall_form(page: Reader, item_id: ItemId) -> Response:
    """The recall's confirmation: what the item is, where it plays, and why it is recalled."""
    return _recall_page(page, item_id)


@router.post("/approvals/{item_id}/recall")
async def recall_item(page: Reader, item_id: ItemId) -> Response:
    """Every airing not ended is cancelled, speakers playing it are told to stop now (the daemon is
    poked), and the log keeps who and why. The desk asks for the reason the API leaves optional."""
    if not _may_recall(page):
        raise LoaError("forbidden", {"role": page.person.role.value}, status=403)
    why = await _reason(page)
    try:
        if not why:
            raise LoaError("reason_required.recall", {})
        await run_in_threadpool(
            lambda: recall(page.svc, item_id, actor=page.person.username, reason=why, lang=page.lang)
        )
    except LoaError as exc:
        return _recall_page(page, item_id, error=page.message(exc), status=exc.status, reason=why)
    page.parts.on_change()  # the stops go out now, not at the next reconcile
    return page.redirect(f"/approvals/{item_id}?notice=recalled")
