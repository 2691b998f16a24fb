"""Official alerts: CAP 1.2 documents and the provincial bulletins of Thông tư 39/2020, posted by the
province's systems with a token that carries the `alerts:ingest` scope (an admin gives it: what comes
in here may air an emergency with nobody confirming it), and what became of them for people to read.

The scope is checked before the body is read; the document is then read by broadcaster/ingest/cap.py
(safe parsing, the CAP schema, the source's signature) and acted on by broadcaster/services/alerts.py.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query, Request
from pydantic import BaseModel, ConfigDict, Field
from starlette.concurrency import run_in_threadpool

from broadcaster.api.auth import Reader, SignedIn
from broadcaster.api.deps import Lang, OnChange, Svc
from broadcaster.api.schemas import refusals
from broadcaster.errors import LoaError
from broadcaster.ingest.cap import receive_cap
from broadcaster.services.accounts import Principal
from broadcaster.services.alerts import (
    list_alerts,
    receive,
    refuse,
    source_config,
    sources_view,
    tt39_bulletin,
)

SCOPE = "alerts:ingest"
router = APIRouter(tags=["alerts"])


class _Out(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ReceivedOut(_Out):
    id: int
    source: str
    sender: str
    identifier: str
    sent: str
    msg_type: str = Field(description="Alert, Update or Cancel (a TT39 bulletin is an Alert)")
    references: str = Field(description="CAP's references as received: sender,identifier,sent ...")
    severity: str
    urgency: str
    certainty: str
    headline: str = Field(description="What the LED boards show")
    expires: str | None
    received_at: str
    status: str = Field(description="aired, drafted (awaiting approval), applied (a Cancel), rejected, cancelled")
    reason_code: str
    reason: str = Field(description="Why it was rejected or withdrawn, in the reader's language")
    announcement: int | None


class AlertOut(ReceivedOut):
    priority: str | None = Field(description="normal, priority or emergency; null for a Cancel")
    zones: list[str]
    withdrawn: list[int] = Field(description="Announcements an Update or a Cancel recalled or sent back")
    item: dict[str, Any] | None = Field(description="The announcement, as GET /api/v1/announcements/{id} shows it")


class SourceOut(_Out):
    name: str
    kind: str
    url: str
    require_signature: bool
    status: str = Field(description="new, ok, rejected (what it sent was refused) or failing (cannot be fetched)")
    reason_code: str
    reason: str
    last_seen_at: str | None
    last_ok_at: str | None


class Tt39In(BaseModel):
    """A bulletin of the provincial source information system (Thông tư 39/2020/TT-BTTTT)."""

    model_config = ConfigDict(extra="forbid")
    source: str | None = Field(default=None, max_length=40, description="A tt39 source of [alerts.sources]")
    id: str = Field(min_length=1, max_length=200, description="The bulletin's id at the province")
    level: Literal["normal", "priority", "emergency"] = Field(description="Its level under Thông tư 39/2020")
    title: str = Field(min_length=1, max_length=200, description="Shown on the LED boards")
    text: str = Field(min_length=1, max_length=20_000, description="What the speakers read")
    areas: list[str] = Field(min_length=1, max_length=100, description="Area names or geocodes ([alerts] areas)")
    sent: datetime = Field(description="When the province sent it, ISO 8601 with an offset")
    effective: datetime | None = Field(default=None, description="Not to air before this")
    expires: datetime | None = Field(default=None, description="Not to air after this")


def _ingester(who: SignedIn) -> Principal:
    """A token with the `alerts:ingest` scope; refused (403) before the body is looked at."""
    if SCOPE not in who.scopes:
        raise LoaError("forbidden.scope", {"scope": SCOPE}, status=403)
    return who


Ingester = Annotated[Principal, Depends(_ingester)]


CAP_BODY = {
    "requestBody": {
        "required": True,
        "content": {"application/xml": {"schema": {"type": "string", "description": "A CAP 1.2 <alert>"}}},
    }
}


@router.post(
    "/alerts/cap", status_code=201, response_model=AlertOut, responses=refusals(400, 404, 409, 422),
    openapi_extra=CAP_BODY,
)  # fmt: skip
async def post_cap(
    request: Request,
    who: Ingester,
    svc: Svc,
    on_change: OnChange,
    lang: Lang,
    source: str | None = Query(default=None, max_length=40, description="A cap-post source; default: the only one"),
) -> dict[str, Any]:
    """Receive a CAP 1.2 alert: aired, put before an approver, or refused with the reason (nothing airs)."""
    data = await request.body()
    result = await run_in_threadpool(receive_cap, svc, source, data, posted_by=who.username, lang=lang)
    on_change()
    return result


@router.post("/bulletins/tt39", status_code=201, response_model=AlertOut, responses=refusals(400, 404, 409, 422))
def post_tt39(body: Tt39In, who: Ingester, svc: Svc, on_change: OnChange, lang: Lang) -> dict[str, Any]:
    """Receive a bulletin of Thông tư 39/2020 at its level: normal waits for an approver, priority waits or
    is planned (`[alerts] tt39_priority`), emergency airs at once on the emergency path."""
    name, _ = source_config(svc, body.source, ("tt39",))
    if body.sent.tzinfo is None or (body.effective and body.effective.tzinfo is None) or (
        body.expires and body.expires.tzinfo is None
    ):
        raise refuse(svc, name, LoaError("invalid_request", {"fields": "sent, effective, expires: an offset"},
                                         status=422), actor=who.username)  # fmt: skip
    incoming = tt39_bulletin(
        name, identifier=body.id, level=body.level, title=body.title, text=body.text, areas=body.areas,
        sent=body.sent, effective=body.effective, expires=body.expires,
    )  # fmt: skip
    result = receive(svc, incoming, posted_by=who.username, lang=lang)
    on_change()
    return result


@router.get("/alerts", response_model=list[ReceivedOut], responses=refusals(422))
def get_alerts(_: Reader, svc: Svc, lang: Lang, limit: int = Query(default=50, ge=1, le=500)) -> list[dict[str, Any]]:
    """The latest alerts and bulletins received, newest first, with what became of each and why."""
    return list_alerts(svc, limit=limit, lang=lang)


@router.get("/alerts/sources", response_model=list[SourceOut], responses=refusals(422))
def get_sources(_: Reader, svc: Svc, lang: Lang) -> list[dict[str, Any]]:
    """The configured sources and how each one's last delivery went (the reason when it failed)."""
    return sources_view(svc, lang)
