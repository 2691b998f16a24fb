"""The way an officer's announcement goes to the air when the commune wants a second pair of eyes on it:
draft → awaiting approval → approved (then planned exactly as if it had been announced) → scheduled →
on air → aired; or rejected with a reason (editing it makes it a draft again), or recalled once planned.

- `compose` saves a draft (nothing rendered, nothing planned) or submits at once; `edit` changes a draft
  (or a rejected item, which becomes a draft); `submit` renders its speech, so the approver hears
  exactly what will air, and shows where the planner would put it now.
- `approve` hands it to the planner (`announcements.plan_item`), in the transaction that records the
  decision, so an item the planner cannot place stays awaiting approval; `reject` needs a reason.
- Nobody approves their own item: that is the point of asking. A commune where one person does
  everything sets `[security] require_approval = false`, and submitting then plans at once, as
  `announce` does.
- An emergency never waits here: its sender's role and the second confirmation that names the villages
  and the repeats are its check (services/emergencies.py); a draft cannot be an emergency.

The stored state stops at `approved`; what happens after it is read from the broadcasts
(`announcements.lifecycle`). Each step is one transaction with its audit entry, under the person who
took it; a step from the wrong state is refused with 409 `bad_state` and changes nothing (the state is
moved with a conditional UPDATE, so two approvers clicking at once plan the item once).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from contextlib import nullcontext
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from audio import AudioError, StoredAudio
from broadcaster.db import Announcement, AnnouncementState, Programme, audit
from broadcaster.errors import LoaError
from broadcaster.messages import DEFAULT_LANGUAGE
from broadcaster.services import Services
from broadcaster.services.accounts import Principal, require
from broadcaster.services.announcements import (
    Request,
    announce,
    announcement_view,
    apply_item,
    check_request,
    lifecycle,
    new_item,
    plan_item,
    rendered_for,
    set_audio,
    speakers_summary,
    title_from,
)
from broadcaster.services.inputs import check_text, fits_sql_int
from broadcaster.services.programmes import place_programme
from broadcaster.services.recall import recall_view
from broadcaster.services.speech import VoiceChoice, recorded_choice, render
from schedules.clock import to_local

MAX_REASON_CHARS = 500
EDITABLE = (AnnouncementState.DRAFT, AnnouncementState.REJECTED)
FIELDS = frozenset({"text", "zones", "at", "title", "priority", "bulletin", "order", "voice"})
# The states a person sees (announcements.lifecycle): the stored ones, then what the broadcasts say.
STATES = ("draft", "awaiting_approval", "rejected", "approved", "scheduled", "on_air", "aired", "recalled", "missed")


def approval_required(svc: Services) -> bool:
    return svc.config.security.require_approval


def _item(session: Session, announcement_id: int) -> Announcement:
    item = session.get(Announcement, announcement_id) if fits_sql_int(announcement_id) else None
    if item is None:
        raise LoaError("not_found.announcement", {"id": announcement_id}, status=404)
    return item


def _bad_state(item: Announcement, step: str) -> LoaError:
    """409 `bad_state`: the item is not where this step starts from (the message says what it is)."""
    state = item.state.value
    if step == "edit":
        return LoaError("bad_state.edit", {"id": item.id, "state": state}, status=409)
    if step == "submit":
        return LoaError("bad_state.submit", {"id": item.id, "state": state}, status=409)
    if step == "approve":
        return LoaError("bad_state.approve", {"id": item.id, "state": state}, status=409)
    return LoaError("bad_state.reject", {"id": item.id, "state": state}, status=409)


def _move(
    session: Session, item: Announcement, allowed: tuple[AnnouncementState, ...], step: str, **values: Any
) -> None:
    """Move the item on only from `allowed`: a conditional UPDATE, so of two people acting at once the
    second finds it moved and is refused, and nothing of theirs is written."""
    if item.state not in allowed:
        raise _bad_state(item, step)
    moved = session.execute(
        update(Announcement)
        .where(Announcement.id == item.id, Announcement.state.in_(allowed))
        .values(**values)
        .execution_options(synchronize_session=False)
    )
    if moved.rowcount != 1:  # type: ignore[attr-defined]
        session.refresh(item)
        raise _bad_state(item, step)
    session.refresh(item)


def _rendered(svc: Services, item_text: str, recording: Path | None, voice: VoiceChoice | None) -> StoredAudio:
    try:
        return svc.audio.import_recording(recording) if recording else render(svc, item_text, voice)
    except AudioError as exc:
        raise LoaError.from_domain(exc) from exc


def _with_plan(view: dict[str, Any], placements: list[dict[str, Any]], moved: list[dict[str, Any]]) -> dict[str, Any]:
    view["placements"] = placements
    view["moved"] = moved
    return view


# ---------------------------------------------------------------- the officer


def compose(
    svc: Services,
    text: str,
    zones: list[str],
    at: str | datetime | None = None,
    *,
    title: str | None = None,
    priority: str = "normal",
    bulletin: int | None = None,
    order: int | None = None,
    recording: Path | None = None,
    submit: bool = True,
    actor: str,
    by: Principal | None = None,
    lang: str = DEFAULT_LANGUAGE,
    voice: VoiceChoice | None = None,
) -> dict[str, Any]:
    """A new announcement: a draft (`submit=False`: checked and saved, nothing rendered or planned,
    but an uploaded recording is kept), or submitted at once, as `submit` does. Without required
    approval, submitting is announcing: planned at once (`approved_via: not_required`)."""
    require(by, "compose")
    if priority == "emergency":
        raise LoaError("bad_priority.draft", {})
    if submit and not approval_required(svc):
        return announce(
            svc, text, zones, at, title=title, priority=priority, actor=actor, bulletin=bulletin,
            recording=recording, order=order, approved_via="not_required", voice=voice,
        )  # fmt: skip
    request = check_request(
        svc, text, zones, at, title=title, priority=priority, order=order, bulletin=bulletin,
        recording=recording is not None, voice=voice,
    )  # fmt: skip
    if not submit and recording is None:
        return _save_draft(svc, None, request, actor, lang)
    stored = _rendered(svc, request.text, recording, request.voice)
    with rendered_for(svc, stored.sha256, keep=False):
        if not submit:
            return _save_draft(svc, stored, request, actor, lang)
        now = svc.clock.now()
        with svc.db.session() as session:
            item = submitted_item(session, stored, request, actor=actor, now=now)
            planned = plan_item(svc, session, item, now)  # refused now if it could not be placed now
            audit(session, now, actor, "announcement.submit", announcement=item.id, zones=request.zone_ids,
                  priority=request.priority, start_at=planned.start.isoformat())  # fmt: skip
            session.flush()
            return _with_plan(announcement_view(session, item, now, lang), planned.placements, planned.moved)


def submitted_item(
    session: Session, stored: StoredAudio | None, request: Request, *, actor: str, now: datetime
) -> Announcement:
    """A new item awaiting an approver, submitted by `actor` now, in the session with its id (for the
    caller to plan and audit): what an officer submits, and what an official alert waits as."""
    item = new_item(stored, request, actor=actor, now=now)
    item.state = AnnouncementState.AWAITING_APPROVAL
    item.submitted_at, item.submitted_by = now, actor
    session.add(item)
    session.flush()
    return item


def _save_draft(svc: Services, stored: StoredAudio | None, request: Request, actor: str, lang: str) -> dict[str, Any]:
    now = svc.clock.now()
    with svc.db.session() as session:
        item = new_item(stored, request, actor=actor, now=now)
        item.state = AnnouncementState.DRAFT
        session.add(item)
        session.flush()
        audit(session, now, actor, "announcement.draft", announcement=item.id, title=item.title)
        return _with_plan(announcement_view(session, item, now, lang), [], [])


def edit(
    svc: Services,
    announcement_id: int,
    changes: Mapping[str, Any],
    *,
    actor: str,
    by: Principal | None = None,
    lang: str = DEFAULT_LANGUAGE,
) -> dict[str, Any]:
    """Change a draft, or a rejected item (which becomes a draft again, to be submitted anew). Only the
    fields in `changes` change (`at: None` is "as soon as it is approved"); the whole item is checked
    again as if it were new. A changed text drops the rendered speech: submitting renders it again."""
    require(by, "compose")
    unknown = set(changes) - FIELDS
    if unknown:
        raise LoaError("invalid_request", {"fields": ", ".join(sorted(unknown))}, status=422)
    with svc.db.session() as session:
        item = _item(session, announcement_id)
        if item.state not in EDITABLE:
            raise _bad_state(item, "edit")
        current = {
            "text": item.text, "zones": json.loads(item.targets or "[]") or ["all"], "at": item.start_at,
            "title": item.title, "priority": item.priority, "bulletin": item.bulletin_id, "order": item.order_key,
            "voice": recorded_choice(svc.config, item.voice_engine, item.voice, item.speaking_rate),
        }  # fmt: skip
    merged = {**current, **changes}
    if "title" not in changes and "text" in changes and current["title"] == title_from(item.text):
        merged["title"] = None  # a title taken from the text follows the text
    if merged["priority"] == "emergency":
        raise LoaError("bad_priority.draft", {})
    recorded = item.engine == "recording"
    request = check_request(
        svc, merged["text"] if isinstance(merged["text"], str) else "", merged["zones"], merged["at"],
        title=merged["title"], priority=merged["priority"], order=merged["order"], bulletin=merged["bulletin"],
        recording=recorded, voice=merged["voice"] if isinstance(merged["voice"], VoiceChoice) else None,
    )  # fmt: skip
    now = svc.clock.now()
    fresh = new_item(None, request, actor=actor, now=now)
    with svc.db.session() as session:
        item = _item(session, announcement_id)
        values: dict[str, Any] = {
            "state": AnnouncementState.DRAFT, "text": fresh.text, "title": fresh.title, "priority": fresh.priority,
            "targets": fresh.targets, "start_at": fresh.start_at, "bulletin_id": fresh.bulletin_id,
            "order_key": fresh.order_key, "updated_at": now, "voice_engine": fresh.voice_engine,
            "voice": fresh.voice, "speaking_rate": fresh.speaking_rate,
        }  # fmt: skip
        spoken_as = (item.voice_engine, item.voice, item.speaking_rate)
        revoiced = (fresh.voice_engine, fresh.voice, fresh.speaking_rate) != spoken_as
        if not recorded and (fresh.text != item.text or revoiced):
            values.update(audio_sha256=None, audio_size=None, audio_duration_ms=None, engine=None)
        _move(session, item, EDITABLE, "edit", **values)
        audit(session, now, actor, "announcement.edit", announcement=item.id, fields=sorted(changes))
        return _with_plan(announcement_view(session, item, now, lang), [], [])


def submit(
    svc: Services, announcement_id: int, *, actor: str, by: Principal | None = None, lang: str = DEFAULT_LANGUAGE
) -> dict[str, Any]:
    """Send a draft (or a rejected item) on: its speech is rendered (the approver hears what will air)
    and it waits for approval, with where the planner would put it now; without required approval it
    is planned at once. Refused, with nothing changed, when it could not be placed now."""
    require(by, "compose")
    with svc.db.session() as session:
        item = _item(session, announcement_id)
        if item.state not in EDITABLE:
            raise _bad_state(item, "submit")
        text, recorded, start = item.text, item.engine == "recording", item.start_at
        voice = recorded_choice(svc.config, item.voice_engine, item.voice, item.speaking_rate)
    now = svc.clock.now()
    if start is not None and start < now:
        raise LoaError("time_in_past", {"time": to_local(start).strftime("%H:%M %d/%m/%Y")})
    stored = None if recorded else _rendered(svc, text, None, voice)
    with rendered_for(svc, stored.sha256, keep=False) if stored else nullcontext():
        now = svc.clock.now()
        with svc.db.session() as session:
            item = _item(session, announcement_id)
            if stored is not None:
                set_audio(item, stored)
                session.flush()  # written with the move below, or rolled back with it
            if approval_required(svc):
                _move(session, item, EDITABLE, "submit", state=AnnouncementState.AWAITING_APPROVAL,
                      submitted_at=now, submitted_by=actor)  # fmt: skip
                planned = plan_item(svc, session, item, now)
                audit(session, now, actor, "announcement.submit", announcement=item.id,
                      start_at=planned.start.isoformat())  # fmt: skip
            else:
                _move(session, item, EDITABLE, "submit", state=AnnouncementState.APPROVED, submitted_at=now,
                      submitted_by=actor, decided_at=now, decided_by=actor, decision_reason="",
                      approved_via="not_required")  # fmt: skip
                planned = plan_item(svc, session, item, now)
                apply_item(svc, session, item, planned, now)
                audit(session, now, actor, "announce", announcement=item.id, zones=json.loads(item.targets),
                      start_at=planned.start.isoformat(), priority=item.priority, approval="not_required")  # fmt: skip
            session.flush()
            session.refresh(item)
            return _with_plan(announcement_view(session, item, now, lang), planned.placements, planned.moved)


# ---------------------------------------------------------------- the approver


def approve(
    svc: Services, announcement_id: int, *, actor: str, by: Principal | None = None, lang: str = DEFAULT_LANGUAGE
) -> dict[str, Any]:
    """Approve what waits and plan it, as it would have been planned had it been announced: the
    decision and the broadcasts are one transaction, so an item the planner cannot place (its time
    has passed, quiet hours, a full timeline) is refused and stays awaiting approval."""
    require(by, "approve")
    now = svc.clock.now()
    with svc.db.session() as session:
        item = _item(session, announcement_id)
        if item.state is not AnnouncementState.AWAITING_APPROVAL:
            raise _bad_state(item, "approve")
        if actor in {item.created_by, item.submitted_by}:
            raise LoaError("forbidden.own_item", {"id": item.id}, status=403)
        if item.start_at is not None and item.start_at < now:
            time_ = to_local(item.start_at).strftime("%H:%M %d/%m/%Y")
            raise LoaError("approval_late", {"id": item.id, "time": time_}, status=409)
        _move(session, item, (AnnouncementState.AWAITING_APPROVAL,), "approve", state=AnnouncementState.APPROVED,
              decided_at=now, decided_by=actor, decision_reason="", approved_via="approver")  # fmt: skip
        planned = plan_item(svc, session, item, now)
        apply_item(svc, session, item, planned, now)
        audit(session, now, actor, "announcement.approve", announcement=item.id, author=item.created_by,
              zones=json.loads(item.targets or "[]"), start_at=planned.start.isoformat(),
              placements=len(planned.placements))  # fmt: skip
        session.flush()
        session.refresh(item)
        return _with_plan(announcement_view(session, item, now, lang), planned.placements, planned.moved)


def _rejection_reason(reason: str | None) -> str:
    """The reason a rejection must carry: the author reads it to know what to fix."""
    why = (reason or "").strip() if isinstance(reason, str) else ""
    if not why:
        raise LoaError("reason_required.reject", {})
    if len(why) > MAX_REASON_CHARS:
        raise LoaError("reason_too_long", {"max": MAX_REASON_CHARS})
    check_text(why, "reason", MAX_REASON_CHARS)
    return why


def reject(
    svc: Services,
    announcement_id: int,
    reason: str | None,
    *,
    actor: str,
    by: Principal | None = None,
    lang: str = DEFAULT_LANGUAGE,
) -> dict[str, Any]:
    """Send it back with a reason the officer reads (what to fix); nothing is planned."""
    require(by, "approve")
    why = _rejection_reason(reason)
    now = svc.clock.now()
    with svc.db.session() as session:
        item = _item(session, announcement_id)
        _move(session, item, (AnnouncementState.AWAITING_APPROVAL,), "reject", state=AnnouncementState.REJECTED,
              decided_at=now, decided_by=actor, decision_reason=why)  # fmt: skip
        audit(session, now, actor, "announcement.reject", announcement=item.id, author=item.created_by, reason=why)
        return _with_plan(announcement_view(session, item, now, lang), [], [])


# ---------------------------------------------------------------- programmes
# A relay or a recurring notice an officer makes waits like an announcement (programmes.add_programme
# stores it `awaiting_approval`); the expansion chore and the bulletin windows skip it until approved.


def _programme(session: Session, programme_id: int) -> Programme:
    prog = session.get(Programme, programme_id) if fits_sql_int(programme_id) else None
    if prog is None:
        raise LoaError("not_found.programme", {"id": programme_id}, status=404)
    return prog


def _move_programme(session: Session, prog: Programme, **values: Any) -> None:
    """From awaiting approval only, with a conditional UPDATE: of two approvers the second is refused."""
    bad = LoaError("bad_state.programme", {"id": prog.id, "state": prog.state.value}, status=409)
    if prog.state is not AnnouncementState.AWAITING_APPROVAL:
        raise bad
    moved = session.execute(
        update(Programme)
        .where(Programme.id == prog.id, Programme.state == AnnouncementState.AWAITING_APPROVAL)
        .values(**values)
        .execution_options(synchronize_session=False)
    )
    if moved.rowcount != 1:  # type: ignore[attr-defined]
        session.refresh(prog)
        raise LoaError("bad_state.programme", {"id": prog.id, "state": prog.state.value}, status=409)
    session.refresh(prog)


def approve_programme(svc: Services, programme_id: int, *, actor: str, by: Principal | None = None) -> dict[str, Any]:
    """Approve a waiting programme and place its next day and a half, in the transaction that records
    the decision: occurrences the planner cannot place now refuse the approval (409) and it waits on.
    The expansion chore places the rest as they come into its horizon."""
    require(by, "approve")
    now = svc.clock.now()
    with svc.db.session() as session:
        prog = _programme(session, programme_id)
        if prog.state is not AnnouncementState.AWAITING_APPROVAL:
            raise LoaError("bad_state.programme", {"id": prog.id, "state": prog.state.value}, status=409)
        if actor == prog.created_by:
            raise LoaError("forbidden.own_programme", {"id": prog.id}, status=403)
        _move_programme(session, prog, state=AnnouncementState.APPROVED, decided_at=now, decided_by=actor,
                        decision_reason="")  # fmt: skip
        view = place_programme(svc, session, prog, now, apply=True)
        audit(session, now, actor, "programme.approve", programme=prog.id, author=prog.created_by, kind=prog.kind,
              recurrence=prog.recurrence, placements=len(view.get("placements", [])))  # fmt: skip
        return {**view, "state": prog.state.value}


def reject_programme(
    svc: Services, programme_id: int, reason: str | None, *, actor: str, by: Principal | None = None
) -> dict[str, Any]:
    """Send a waiting programme back with a reason; it never airs (an officer makes a new one)."""
    require(by, "approve")
    why = _rejection_reason(reason)
    now = svc.clock.now()
    with svc.db.session() as session:
        prog = _programme(session, programme_id)
        _move_programme(session, prog, state=AnnouncementState.REJECTED, active=False, decided_at=now,
                        decided_by=actor, decision_reason=why)  # fmt: skip
        audit(session, now, actor, "programme.reject", programme=prog.id, author=prog.created_by, reason=why)
        return programme_view(session, prog, by)


def programme_view(session: Session, prog: Programme, by: Principal | None = None) -> dict[str, Any]:
    """A programme as its approver judges it: what, where, by which rule, its text (a notice), who asked."""
    text = ""
    if prog.announcement_id is not None:
        item = session.get(Announcement, prog.announcement_id)
        text = item.text if item is not None else ""
    mine = by is not None and by.username == prog.created_by
    return {
        "id": prog.id, "kind": prog.kind, "title": prog.title, "zones": json.loads(prog.targets),
        "recurrence": prog.recurrence, "duration_s": prog.duration_ms / 1000, "stream_url": prog.stream_url,
        "active": prog.active, "state": prog.state.value, "created_by": prog.created_by,
        "created_at": prog.created_at.isoformat(), "decided_by": prog.decided_by,
        "decision_reason": prog.decision_reason, "text": text, "announcement": prog.announcement_id,
        "may_approve": by is None or (by.may("approve") and not mine),
    }  # fmt: skip


def waiting_programmes(svc: Services, *, by: Principal | None = None) -> list[dict[str, Any]]:
    """The programmes that wait for approval, the longest waiting first."""
    with svc.db.session() as session:
        rows = session.scalars(
            select(Programme)
            .where(Programme.state == AnnouncementState.AWAITING_APPROVAL)
            .order_by(Programme.created_at, Programme.id)
        ).all()
        return [programme_view(session, prog, by) for prog in rows]


# ---------------------------------------------------------------- what people read


def waiting(svc: Services, *, by: Principal | None = None, lang: str = DEFAULT_LANGUAGE) -> list[dict[str, Any]]:
    """What waits for approval, the longest waiting first, each whole (its text, its audio to hear,
    what was asked) and whether the person asking may approve it (not their own, and their role)."""
    now = svc.clock.now()
    with svc.db.session() as session:
        rows = session.scalars(
            select(Announcement)
            .where(Announcement.state == AnnouncementState.AWAITING_APPROVAL)
            .order_by(Announcement.submitted_at, Announcement.id)
        ).all()
        out = []
        for item in rows:
            mine = by is not None and by.username in {item.created_by, item.submitted_by}
            may = by is None or (by.may("approve") and not mine)
            out.append({**announcement_view(session, item, now, lang), "may_approve": may})
        return out


def recallable(svc: Services, announcement_ids: set[int]) -> set[int]:
    """Of these announcements, the ones scheduled or on air now: those a recall button is shown for,
    wherever they appear (an airing's deliveries, a timeline)."""
    ids = {i for i in announcement_ids if i is not None and fits_sql_int(i)}
    if not ids:
        return set()
    now = svc.clock.now()
    with svc.db.session() as session:
        items = session.scalars(
            select(Announcement).where(Announcement.id.in_(ids), Announcement.state == AnnouncementState.APPROVED)
        ).all()
        return {
            item.id
            for item in items
            if lifecycle(item, list(item.broadcasts), recall_view(session, item.id) is not None, now)
            in ("scheduled", "on_air")
        }


def list_announcements(
    svc: Services, *, state: str | None = None, created_by: str | None = None, limit: int = 50
) -> list[dict[str, Any]]:
    """The latest announcements, newest first, as a list shows them: the state a person sees, who
    sent it on and who decided, and what was asked (for "my items and what became of them")."""
    if state is not None and state not in STATES:
        raise LoaError("bad_state_filter", {"states": ", ".join(STATES)})
    limit = max(1, min(limit, 500))
    now = svc.clock.now()
    stored = {s.value: s for s in AnnouncementState}
    with svc.db.session() as session:
        q = select(Announcement).where(Announcement.created_by != "system").order_by(Announcement.id.desc())
        if created_by is not None:
            q = q.where(Announcement.created_by == created_by)
        if state in stored and state != "approved":
            q = q.where(Announcement.state == stored[state])
        elif state is not None:
            q = q.where(Announcement.state == AnnouncementState.APPROVED)
        out: list[dict[str, Any]] = []
        for item in session.scalars(q.limit(limit if state is None or state in stored else limit * 5)):
            broadcasts = list(item.broadcasts)
            recall = recall_view(session, item.id) if item.state is AnnouncementState.APPROVED else None
            seen = lifecycle(item, broadcasts, recall is not None, now)
            if state is not None and seen != state:
                continue
            full = announcement_view(session, item, now)
            out.append({
                "id": item.id, "title": item.title, "priority": item.priority, "created_by": item.created_by,
                "created_at": item.created_at.isoformat(), "state": seen, "approval": full["approval"],
                "request": full["request"], "summary": speakers_summary(session, item.id), "recall": recall,
            })  # fmt: skip
            if len(out) >= limit:
                break
        return out
