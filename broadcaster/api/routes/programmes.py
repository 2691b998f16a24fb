"""Programmes: relays of a higher station, notices repeated by a rule, and bulletins to queue items in.

With `[security] require_approval` (the default) a programme made here waits for an approver like an
announcement (`state: awaiting_approval`, placed only once approved; services/approvals.py):
`GET /approvals/programmes` lists what waits, `POST /programmes/{id}/approve` and `/reject` decide.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends

from broadcaster.api.auth import Composer, SignedIn, require
from broadcaster.api.deps import OnChange, Svc
from broadcaster.api.schemas import (
    ProgrammeCreated,
    ProgrammeIn,
    ProgrammeOut,
    ProgrammeWaiting,
    RejectIn,
    refusals,
)
from broadcaster.services.accounts import Principal
from broadcaster.services.approvals import approve_programme, reject_programme, waiting_programmes
from broadcaster.services.programmes import add_programme, list_programmes

router = APIRouter(tags=["programmes"])

Approver = Annotated[Principal, Depends(require("approve"))]


@router.post(
    "/programmes",
    status_code=201,
    response_model=ProgrammeCreated,
    response_model_exclude_unset=True,  # a relay has placements, a bulletin windows; neither shows the other
    responses=refusals(400, 404, 409, 422),
)
def create_programme(
    body: ProgrammeIn, svc: Svc, who: Composer, on_change: OnChange, preview: bool = False
) -> dict[str, Any]:
    result = add_programme(
        svc,
        body.kind.value,
        body.title,
        body.zones,
        body.recurrence,
        stream_url=body.stream_url,
        duration_s=body.duration_s,
        text=body.text,
        priority=body.priority.value,
        actor=who.username,
        by=who,
        preview=preview,
    )
    if not preview:
        on_change()
    return result


@router.get("/programmes", response_model=list[ProgrammeOut])
def read_programmes(svc: Svc) -> list[dict[str, Any]]:
    return list_programmes(svc)


@router.get("/approvals/programmes", response_model=list[ProgrammeWaiting], responses=refusals(422))
def programmes_waiting(svc: Svc, who: SignedIn) -> list[dict[str, Any]]:
    """The programmes that wait for approval, the longest waiting first, with `may_approve` for the
    person asking (an approver or an admin, and not their own)."""
    return waiting_programmes(svc, by=who)


@router.post(
    "/programmes/{programme_id}/approve",
    response_model=ProgrammeCreated,
    response_model_exclude_unset=True,
    responses=refusals(403, 404, 409, 422),
)
def approve_waiting_programme(programme_id: int, svc: Svc, who: Approver, on_change: OnChange) -> dict[str, Any]:
    """Approve a waiting programme: its next day and a half is placed at once; nobody approves their own."""
    result = approve_programme(svc, programme_id, actor=who.username, by=who)
    on_change()
    return result


@router.post(
    "/programmes/{programme_id}/reject", response_model=ProgrammeWaiting, responses=refusals(400, 403, 404, 409, 422)
)
def reject_waiting_programme(programme_id: int, body: RejectIn, svc: Svc, who: Approver) -> dict[str, Any]:
    """Send it back with a reason (required); it never airs."""
    return reject_programme(svc, programme_id, body.reason, actor=who.username, by=who)
