"""What villagers said through the QR codes (services/feedback.py): the officer's list, where each is
marked handled with a reply (audited), and the printable sheet of QR codes for the technician.

Everyone who reads the desk sees the list; phone numbers only officers and admins (`may_see_phone`),
who are also the ones who handle feedback and print the codes."""

from __future__ import annotations

from typing import Annotated

from fastapi import Form, Path, Query, Response
from starlette.concurrency import run_in_threadpool

from broadcaster.errors import LoaError
from broadcaster.services.feedback import (
    handle_feedback,
    is_loopback,
    list_feedback,
    may_see_phone,
    public_base_url,
    qr_sheet,
)
from broadcaster.services.qr import qr_svg
from broadcaster.web.page import Composer, Page, Reader
from broadcaster.web.routes import page_router

router = page_router()

FeedbackId = Annotated[int, Path(ge=1, le=2**31 - 1)]
STATES = ("open", "handled", "all")


def _page(page: Page, state: str, *, error: str = "", status: int = 200, failed: int | None = None) -> Response:
    if state not in STATES:
        raise LoaError("invalid_request", {"fields": "state"}, status=422)
    return page.render(
        "feedback.html",
        status=status,
        state=state,
        states=STATES,
        items=list_feedback(page.svc, state=state, show_phone=may_see_phone(page.who)),
        may_handle=page.person.may("compose"),
        error=error,
        failed=failed,
    )


@router.get("/feedback")
def feedback_page(page: Reader, state: Annotated[str, Query(max_length=10)] = "open") -> Response:
    return _page(page, state)


@router.post("/feedback/{feedback_id}/handle")
async def handle(
    page: Composer, feedback_id: FeedbackId, reply: Annotated[str, Form()] = "",
    state: Annotated[str, Form(max_length=10)] = "open",
) -> Response:  # fmt: skip
    try:
        await run_in_threadpool(handle_feedback, page.svc, feedback_id, reply, actor=page.person.username)
    except LoaError as exc:
        return _page(page, state if state in STATES else "open", error=page.message(exc), status=exc.status,
                     failed=feedback_id)  # fmt: skip
    return page.redirect(f"/feedback?state={state if state in STATES else 'open'}&notice=feedback_handled")


@router.get("/feedback/qr")
def qr_page(page: Composer) -> Response:
    """One card per village and per speaker: the QR code, what it is for, and its address written out
    (a phone without a camera app types it)."""
    base = public_base_url(page.svc.config)
    villages = qr_sheet(page.svc)
    for v in villages:
        for target in [v, *v["speakers"]]:
            target["url"] = base + target["path"]
            target["svg"] = qr_svg(target["url"], label=target["name"])
    return page.render(
        "feedback_qr.html", villages=villages, base=base, loopback=is_loopback(base), listen=f"{base}/nghe-lai"
    )
