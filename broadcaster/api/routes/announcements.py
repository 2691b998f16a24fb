"""Announcements: a text to be read out, or an officer's own recording, placed on every village's timeline.

Officers (and admins) compose; with `[security] require_approval` (the default) what they submit waits
for an approver (broadcaster/services/approvals.py: drafts, submit, approve, reject, what waits). An
emergency is for the roles of `[security] emergency_roles` only, never waits for approval, and goes out
on the second request, the one that repeats the first with its confirmation code and a reason
(broadcaster/services/emergencies.py).
"""

from __future__ import annotations

import hashlib
import tempfile
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Form, Query, UploadFile
from fastapi.responses import FileResponse
from starlette.concurrency import run_in_threadpool

from broadcaster.api.auth import Composer, SignedIn, require
from broadcaster.api.deps import Lang, OnChange, Parts, Svc
from broadcaster.api.schemas import (
    AnnouncementCreated,
    AnnouncementEdit,
    AnnouncementIn,
    AnnouncementListed,
    AnnouncementOut,
    AnnouncementPreview,
    AnnouncementState,
    AnnouncementWaiting,
    Priority,
    RecallIn,
    RecallOut,
    RejectIn,
    refusals,
)
from broadcaster.errors import LoaError
from broadcaster.services import Services
from broadcaster.services.accounts import Principal
from broadcaster.services.announcements import announce, announcement_audio, get_announcement
from broadcaster.services.approvals import (
    approve,
    compose,
    edit,
    list_announcements,
    reject,
    submit,
    waiting,
)
from broadcaster.services.emergencies import check_sender, confirm, fingerprint, refused_after_confirming
from broadcaster.services.recall import recall
from broadcaster.services.speech import choice_of, default_choice

Approver = Annotated[Principal, Depends(require("approve"))]

router = APIRouter(tags=["announcements"])


def _may_send(
    parts: Any,
    who: Principal,
    priority: Priority,
    zones: list[str],
    print_: str,
    confirmation: str | None,
    reason: str | None,
    *,
    title: str,
    preview: bool,
) -> str:
    """Whether this person may send this, and for an emergency the reason they confirmed it with (the
    first request of an emergency ends here, 409, with the confirmation code)."""
    svc: Services = parts.svc
    if priority is not Priority.EMERGENCY:
        if not who.may("compose"):
            raise LoaError("forbidden", {"role": who.role.value}, status=403)
        return ""
    if preview:  # seeing where it would go is the second look itself
        check_sender(svc, who, zones, title=title)
        return ""
    return confirm(svc, parts.confirmations, who, zones, print_, confirmation, reason, title=title)


def _announce(
    svc: Services, who: Principal, zones: list[str], reason: str, *args: Any, **kwargs: Any
) -> dict[str, Any]:
    """`announce`, and a confirmed emergency that is refused after all (no room, bad audio) is logged."""
    try:
        result: dict[str, Any] = announce(svc, *args, **kwargs, reason=reason)
    except LoaError as exc:
        if reason:
            refused_after_confirming(svc, who.username, zones, reason, exc)
        raise
    return result


@router.post(
    "/announcements",
    status_code=201,
    response_model=AnnouncementCreated | AnnouncementPreview,
    responses=refusals(400, 404, 409, 422),
)
def create_announcement(
    body: AnnouncementIn,
    svc: Svc,
    parts: Parts,
    who: SignedIn,
    on_change: OnChange,
    lang: Lang,
    preview: bool = False,
) -> dict[str, Any]:
    """Store it, render its speech and plan one broadcast per village; `?preview=true` stores nothing.
    With `[security] require_approval` it waits for an approver instead (`state: awaiting_approval`,
    with where it would go now), and `draft: true` saves it without rendering or planning anything.
    An emergency is first answered 409 `confirm_emergency` with what it would do and a code to repeat."""
    if body.draft and body.priority is Priority.EMERGENCY:
        raise LoaError("bad_priority.draft", {})
    request = body.model_dump(include={"text", "zones", "at", "title", "bulletin", "order"})
    voice = choice_of(svc.config, body.voice.model_dump() if body.voice else None)
    reason = _may_send(
        parts, who, body.priority, body.zones, fingerprint(**request), body.confirmation, body.reason,
        title=body.title or "", preview=preview,
    )  # fmt: skip
    if body.priority is Priority.EMERGENCY or preview:
        result = _announce(
            svc,
            who,
            body.zones,
            reason,
            body.text,
            body.zones,
            body.at,
            title=body.title,
            priority=body.priority.value,
            actor=who.username,
            preview=preview,
            bulletin=body.bulletin,
            order=body.order,
            approved_via="emergency" if body.priority is Priority.EMERGENCY else "not_required",
            voice=voice,
        )
    else:
        result = compose(
            svc, body.text, body.zones, body.at, title=body.title, priority=body.priority.value,
            bulletin=body.bulletin, order=body.order, submit=not body.draft, actor=who.username, by=who, lang=lang,
            voice=voice,
        )  # fmt: skip
    if not preview:
        on_change()
    return result


@router.post("/recordings", status_code=201, response_model=AnnouncementCreated, responses=refusals(400, 404, 409, 422))
async def create_from_recording(
    svc: Svc,
    parts: Parts,
    who: SignedIn,
    on_change: OnChange,
    lang: Lang,
    file: UploadFile,
    zones: Annotated[str, Form(description="Comma-separated zone ids.")] = "all",
    at: Annotated[str | None, Form()] = None,
    title: Annotated[str, Form()] = "",
    priority: Annotated[Priority, Form()] = Priority.NORMAL,
    confirmation: Annotated[str | None, Form(description="emergency: the code of the 409 answer.")] = None,
    reason: Annotated[str | None, Form(description="emergency: why it is sent.")] = None,
    draft: Annotated[bool, Form(description="Keep it as a draft, to submit later.")] = False,
) -> dict[str, Any]:
    """An officer's own recording (mp3, m4a, wav, ogg from a phone), aired like any announcement (and,
    like one, waiting for approval when that is required). With the session cookie, the form carries
    the session's `csrf_token` too (or the X-CSRF-Token header)."""
    if draft and priority is Priority.EMERGENCY:
        raise LoaError("bad_priority.draft", {})
    suffix = Path(file.filename or "upload").suffix[:8]
    targets = [z.strip() for z in zones.split(",") if z.strip()]
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / f"upload{suffix}"
        digest = hashlib.sha256()
        with path.open("wb") as out:
            while chunk := await file.read(1 << 20):
                out.write(chunk)
                digest.update(chunk)
        print_ = fingerprint(recording=digest.hexdigest(), zones=targets, at=at, title=title)
        why = await run_in_threadpool(
            _may_send, parts, who, priority, targets, print_, confirmation, reason, title=title, preview=False
        )
        result: dict[str, Any]
        if priority is Priority.EMERGENCY:
            result = await run_in_threadpool(
                _announce,
                svc,
                who,
                targets,
                why,
                "",
                targets,
                at or None,
                title=title,
                priority=priority.value,
                actor=who.username,
                recording=path,
                approved_via="emergency",
            )
        else:
            result = await run_in_threadpool(
                lambda: compose(
                    svc, "", targets, at or None, title=title, priority=priority.value, recording=path,
                    submit=not draft, actor=who.username, by=who, lang=lang,
                )
            )  # fmt: skip
    on_change()
    return result


@router.get("/announcements", response_model=list[AnnouncementListed], responses=refusals(400, 422))
def list_all(
    svc: Svc,
    who: SignedIn,
    state: Annotated[AnnouncementState | None, Query(description="Only those in this state.")] = None,
    mine: Annotated[bool, Query(description="Only those the person asking composed.")] = False,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
) -> list[dict[str, Any]]:
    """The latest announcements, newest first, with their state and who decided what: an officer
    sees what became of what they composed (`?mine=true`), an approver what they decided."""
    return list_announcements(svc, state=state, created_by=who.username if mine else None, limit=limit)


@router.get("/approvals", response_model=list[AnnouncementWaiting], responses=refusals(422))
def what_waits(svc: Svc, who: SignedIn, lang: Lang) -> list[dict[str, Any]]:
    """What waits for approval, the longest waiting first, each with its text, its audio and
    `may_approve` for the person asking (an approver or an admin, and not their own item)."""
    return waiting(svc, by=who, lang=lang)


@router.get("/announcements/{announcement_id}", response_model=AnnouncementOut, responses=refusals(404, 422))
def read_announcement(announcement_id: int, svc: Svc, lang: Lang) -> dict[str, Any]:
    return get_announcement(svc, announcement_id, lang)


@router.get(
    "/announcements/{announcement_id}/audio",
    response_class=FileResponse,
    responses={200: {"content": {"audio/mpeg": {}}, "description": "Its audio, to hear it."}, **refusals(404, 422)},
)
def hear_announcement(announcement_id: int, svc: Svc) -> FileResponse:
    """The item's audio for a person signed in (an approver hears what they approve): the devices' own
    listener may not be reachable from an office or a phone."""
    path, media_type = announcement_audio(svc, announcement_id)
    return FileResponse(path, media_type=media_type)


@router.patch(
    "/announcements/{announcement_id}", response_model=AnnouncementCreated, responses=refusals(400, 404, 409, 422)
)
def edit_draft(announcement_id: int, body: AnnouncementEdit, svc: Svc, who: Composer, lang: Lang) -> dict[str, Any]:
    """Change a draft, or a rejected item (it becomes a draft again): only the fields sent change.
    Anything else is 409 `bad_state` and nothing changes."""
    changes = body.model_dump(exclude_unset=True)
    for field in ("text", "zones", "priority"):  # these cannot be null: null leaves them as they are
        if changes.get(field, "") is None:
            del changes[field]
    if isinstance(changes.get("priority"), Priority):
        changes["priority"] = changes["priority"].value
    if "voice" in changes:  # null: the commune's voice
        changes["voice"] = choice_of(svc.config, changes["voice"]) or default_choice(svc.config)
    return edit(svc, announcement_id, changes, actor=who.username, by=who, lang=lang)


@router.post(
    "/announcements/{announcement_id}/submit",
    response_model=AnnouncementCreated,
    responses=refusals(400, 404, 409, 422),
)
def submit_draft(announcement_id: int, svc: Svc, who: Composer, lang: Lang, on_change: OnChange) -> dict[str, Any]:
    """Render it and send it for approval (or plan it, if approval is not required)."""
    result = submit(svc, announcement_id, actor=who.username, by=who, lang=lang)
    on_change()
    return result


@router.post(
    "/announcements/{announcement_id}/approve",
    response_model=AnnouncementCreated,
    responses=refusals(404, 409, 422),
)
def approve_item(announcement_id: int, svc: Svc, who: Approver, lang: Lang, on_change: OnChange) -> dict[str, Any]:
    """Approve what waits: it is planned at once, exactly as if announced; nobody approves their own."""
    result = approve(svc, announcement_id, actor=who.username, by=who, lang=lang)
    on_change()
    return result


@router.post(
    "/announcements/{announcement_id}/reject",
    response_model=AnnouncementCreated,
    responses=refusals(400, 404, 409, 422),
)
def reject_item(announcement_id: int, body: RejectIn, svc: Svc, who: Approver, lang: Lang) -> dict[str, Any]:
    """Send it back with a reason (required: what to fix); the officer may edit and submit it again."""
    return reject(svc, announcement_id, body.reason, actor=who.username, by=who, lang=lang)


@router.delete("/announcements/{announcement_id}", response_model=RecallOut, responses=refusals(400, 404, 409, 422))
def recall_announcement(
    announcement_id: int,
    svc: Svc,
    who: SignedIn,
    lang: Lang,
    on_change: OnChange,
    body: RecallIn | None = None,
    reason: Annotated[str | None, Query(description="Why, if the request has no body.")] = None,
) -> dict[str, Any]:
    """Recall all of it, every airing that has not ended: planned ones are cancelled, devices holding a
    play get a signed stop at once. Recalling again is not an error (`already_recalled`). Officers,
    approvers and admins may recall, whoever sent it: a false alarm must not wait for its sender. An
    item not yet approved has nothing to recall (409 `bad_state`)."""
    if not (who.may("compose") or who.may("approve")):
        raise LoaError("forbidden", {"role": who.role.value}, status=403)
    result = recall(svc, announcement_id, actor=who.username, reason=body.reason if body else reason or "", lang=lang)
    on_change()  # the daemon sends the stops now, not at its next reconcile
    return result
