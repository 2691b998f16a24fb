"""Programmes: relays of a higher station's stream at fixed hours, and notices repeated by a rule.

A programme is stored once; the daemon expands it into broadcasts a day and a half ahead, through
the same planner as one-off announcements, so relays give way to notices and quiet hours hold.
Expansion is idempotent: an occurrence's airing id is derived from its time, and an id already in
the broadcasts table is never planned again (whatever became of it: aired, missed or cut).
"""

from __future__ import annotations

import json
import logging
from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from audio import AudioError
from broadcaster.db import Announcement, AnnouncementState, Broadcast, Programme, audit, one_at_a_time
from broadcaster.errors import LoaError
from broadcaster.services import Services
from broadcaster.services.accounts import Principal
from broadcaster.services.bulletins import framing_for, framing_lengths_ms
from broadcaster.services.inputs import MAX_TEXT_CHARS, MAX_TITLE_CHARS, check_seconds, check_text
from broadcaster.services.planning import (
    PRIORITY_OF,
    Owner,
    apply_plan,
    bulletin_windows,
    default_quiet_hours,
    placement_view,
    plan_new,
    plan_or_refuse,
)
from broadcaster.services.zones import resolve_zones, zone_names
from schedules import Airing, BulletinWindow, NoticeSeries, RelayProgramme, ScheduleError, parse_recurrence
from schedules.clock import to_local
from schedules.model import check_relay_url

log = logging.getLogger(__name__)

HORIZON = timedelta(hours=36)


def _series(p: Programme) -> NoticeSeries | RelayProgramme:
    rule = parse_recurrence(p.recurrence, today=date.fromisoformat(p.starts_on))
    targets = frozenset(json.loads(p.targets))
    duration = timedelta(milliseconds=p.duration_ms)
    if p.kind == "relay":
        assert p.stream_url is not None
        return RelayProgramme(f"p{p.id}", p.title, p.stream_url, duration, targets, rule)
    return NoticeSeries(f"p{p.id}", p.title, duration, targets, rule, priority=PRIORITY_OF[p.priority])


def _owner(p: Programme) -> Owner:
    return Owner(p.announcement_id, p.id)


def add_programme(
    svc: Services,
    kind: str,
    title: str,
    zones: list[str],
    recurrence: str,
    *,
    stream_url: str | None = None,
    duration_s: float | None = None,
    text: str | None = None,
    priority: str = "normal",
    actor: str = "cli",
    by: Principal | None = None,
    preview: bool = False,
) -> dict[str, Any]:
    """Store a relay or a recurring notice and place its occurrences of the next day and a half.

    Refused whole, with nothing stored, when the rule never fires, the stream is not http(s), or an
    occurrence cannot be placed (say, a recurring notice that falls in quiet hours). A person (`by`)
    under `[security] require_approval` gets it stored `awaiting_approval`, checked and shown where it
    would go but placed only when an approver approves it (services/approvals.py): a recurring notice
    or a relay is as loud as an announcement. The server's own operator (`by=None`) is not asked.
    """
    if kind not in ("relay", "notice", "bulletin"):
        raise LoaError("bad_kind", {})
    if not title.strip():
        raise LoaError("empty_title", {})
    check_text(title, "title", MAX_TITLE_CHARS)
    check_text(text or "", "text", MAX_TEXT_CHARS)
    check_text(recurrence, "recurrence", 300)
    if priority not in ("normal", "priority"):
        raise LoaError("bad_priority.programme", {})
    now = svc.clock.now()
    today = to_local(now).date()
    try:
        parse_recurrence(recurrence, today=today)
        if kind == "relay":
            check_relay_url(stream_url)
        if kind in ("relay", "bulletin"):
            check_seconds(duration_s or 0.0)
    except ScheduleError as exc:
        raise LoaError.from_domain(exc) from exc
    with svc.db.session() as session:
        zone_ids = [z.id for z in resolve_zones(session, zones)]
    audio = None
    if kind == "notice":
        if not text or not text.strip():
            raise LoaError("empty_text", {})
        try:
            audio = svc.audio.render(text)
        except AudioError as exc:
            raise LoaError.from_domain(exc) from exc
        duration_s = max(1.0, audio.duration_ms / 1000)
    assert duration_s is not None
    options = framing_lengths_ms(svc.audio) if kind == "bulletin" else {}
    waits = by is not None and svc.config.security.require_approval
    with svc.db.session() as session:
        announcement_id = None
        if audio is not None and text is not None:
            item = Announcement.with_audio(
                audio, title=title.strip(), text=text.strip(), priority=priority, created_at=now, created_by=actor
            )
            session.add(item)
            session.flush()
            announcement_id = item.id
        prog = Programme(
            kind=kind,
            title=title.strip(),
            targets=json.dumps(zone_ids),
            recurrence=recurrence,
            starts_on=today.isoformat(),
            duration_ms=int(duration_s * 1000),
            stream_url=stream_url if kind == "relay" else None,
            announcement_id=announcement_id,
            priority="background" if kind == "relay" else priority,
            options=json.dumps(options),
            created_at=now,
            created_by=actor,
            state=AnnouncementState.APPROVED,  # checked as if approved; waits below if it must
        )
        session.add(prog)
        session.flush()
        view = place_programme(svc, session, prog, now, apply=not (preview or waits))
        if preview:
            session.rollback()
            return {**view, "preview": True}
        details: dict[str, Any] = {"kind": kind, "recurrence": recurrence}
        if kind != "bulletin":
            details["zones"] = zone_ids
        if waits:
            prog.state = AnnouncementState.AWAITING_APPROVAL
            audit(session, now, actor, "programme.submit", programme=prog.id, **details)
        else:
            audit(session, now, actor, "programme.add", programme=prog.id, **details)
        return {**view, "state": prog.state.value}


def place_programme(svc: Services, session: Session, prog: Programme, now: datetime, *, apply: bool) -> dict[str, Any]:
    """Check a programme against the planner and, with `apply`, place its next day and a half: a
    bulletin's windows must open, a relay's or notice's occurrences must all be placeable (refused
    whole, 409, otherwise). Without `apply` it is only shown where it would go (a preview, or a
    programme that waits for its approver)."""
    view: dict[str, Any] = {"id": prog.id, "kind": prog.kind, "title": prog.title, "recurrence": prog.recurrence}
    try:
        if prog.kind == "bulletin":  # check its windows; they fill as items are queued in them
            windows = bulletin_windows(session, now, now + HORIZON)
            if not windows:
                raise LoaError("never_fires.bulletin", {})
            return {**view, "windows": [_window_view(w) for w in windows]}
        requests = _series(prog).airings(now, now + HORIZON)
    except ScheduleError as exc:
        raise LoaError.from_domain(exc) from exc
    # A rule over a day and a half can clash many times: the first three reasons say enough.
    result, groups, mine = plan_or_refuse(svc, session, requests, now, max_reasons=3)
    names = zone_names(session)
    placements = [placement_view(p, names) for p in result.placements if p.airing.id in mine]
    if apply:
        apply_plan(session, result, groups, {a: _owner(prog) for a in mine}, framing_for(svc, session, now))
    return {**view, "placements": placements}


def expand_programmes(svc: Services, horizon: timedelta = HORIZON) -> int:
    """Plan the programmes' occurrences that are not in the database yet; returns how many were placed.

    Occurrences the planner cannot place are logged and left out; the next expansion tries again
    only for occurrences still ahead.
    """
    now = svc.clock.now()
    placed = 0
    with svc.db.session() as session:
        one_at_a_time(session, "expand_programmes")  # two expansions at once would both add what is missing
        programmes = list(
            session.scalars(
                select(Programme)
                .where(
                    Programme.active.is_(True),
                    Programme.state == AnnouncementState.APPROVED,  # one awaiting approval waits
                    Programme.kind != "bulletin",
                )
                .order_by(Programme.id)
            )
        )
        if not programmes:
            return 0
        known = set(session.scalars(select(Broadcast.airing_id).where(Broadcast.programme_id.is_not(None))))
        requests: list[Airing] = []
        owners: dict[str, Owner] = {}
        for prog in programmes:
            try:
                for a in _series(prog).airings(now, now + horizon):
                    if a.id not in known:
                        requests.append(a)
                        owners[a.id] = _owner(prog)
            except ScheduleError as exc:
                log.error("programme %s cannot be expanded: %s", prog.id, exc.message_vi)
        if not requests:
            return 0
        result, groups = plan_new(session, requests, now, default_quiet_hours(svc))
        for c in result.conflicts:
            log.warning("programme airing %s not placed: %s", c.airing.id, c.message_vi)
        placed = len({p.airing.id for p in result.placements if p.airing.id in owners})
        apply_plan(session, result, groups, owners, framing_for(svc, session, now))
    return placed


def _window_view(w: BulletinWindow) -> dict[str, Any]:
    return {
        "id": w.id,
        "title": w.title,
        "start_at_local": to_local(w.start).strftime("%H:%M %d/%m/%Y"),
        "end_at_local": to_local(w.end).strftime("%H:%M"),
    }


def list_programmes(svc: Services) -> list[dict[str, Any]]:
    with svc.db.session() as session:
        return [
            {
                "id": p.id,
                "kind": p.kind,
                "title": p.title,
                "zones": json.loads(p.targets),
                "recurrence": p.recurrence,
                "duration_s": p.duration_ms / 1000,
                "stream_url": p.stream_url,
                "active": p.active,
                "state": p.state.value,
                "created_by": p.created_by,
                "decided_by": p.decided_by,
                "decision_reason": p.decision_reason,
            }
            for p in session.scalars(select(Programme).order_by(Programme.id))
        ]
