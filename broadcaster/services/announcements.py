"""Announcements: a text or a recording, rendered, stored and placed on every village's timeline."""

from __future__ import annotations

import json
import threading
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import case, func, select
from sqlalchemy.orm import Session

from audio import AudioError, StoredAudio
from broadcaster.db import (
    Announcement,
    AnnouncementState,
    Broadcast,
    BroadcastStatus,
    Delivery,
    Device,
    DeviceKind,
    audit,
)
from broadcaster.errors import LoaError
from broadcaster.messages import DEFAULT_LANGUAGE
from broadcaster.services import Services
from broadcaster.services.bulletins import framing_for
from broadcaster.services.inputs import MAX_TEXT_CHARS, MAX_TITLE_CHARS, check_order, check_text, fits_sql_int
from broadcaster.services.planning import (
    PRIORITY_OF,
    WINDOW_HORIZON,
    Owner,
    apply_plan,
    bulletin_windows,
    placement_view,
    plan_or_refuse,
    programme_of_window,
)
from broadcaster.services.recall import recall_view
from broadcaster.services.reports import heard_sql
from broadcaster.services.speech import VoiceChoice, default_choice, render
from broadcaster.services.views import broadcast_view
from broadcaster.services.zones import resolve_zones, zone_names
from schedules import Airing, EmergencyAlert, Plan, ScheduleError, notice
from schedules.clock import to_local
from schedules.when import WhenError, parse_when

PRIORITIES = ("normal", "priority", "emergency")
MAX_ROW_ID = 2**31 - 1  # what an INTEGER column holds on PostgreSQL


def title_from(text: str) -> str:
    first = text.strip().split("\n", 1)[0].strip()
    return first if len(first) <= 80 else first[:77].rsplit(" ", 1)[0] + "…"


def _requests(
    svc: Services,
    now: datetime,
    airing_id: str,
    title: str,
    duration: timedelta,
    zones: list[str],
    start: datetime,
    priority: str,
    order: int,
) -> list[Airing]:
    """The planner's view of one announcement: a notice, or an emergency alert and its repeats."""
    validity = timedelta(seconds=svc.config.dispatch.validity_s)
    if priority == "emergency":
        sched = svc.config.schedule
        alert = EmergencyAlert(
            id=airing_id,
            title=title,
            duration=duration,
            targets=frozenset(zones),
            repeats=sched.emergency_repeats,
            gap=timedelta(seconds=sched.emergency_gap_s),
            validity=max(validity, duration * 2),
        )
        return alert.airings(start)
    return [
        notice(
            airing_id,
            title,
            duration,
            frozenset(zones),
            now=now,
            at=start,
            valid_until=start + max(validity, duration * 2),
            priority=PRIORITY_OF[priority],
            order_key=order,
        )
    ]


def _queued(
    session: Session,
    bulletin: int,
    now: datetime,
    airing_id: str,
    title: str,
    duration: timedelta,
    start: datetime,
    order: int,
    priority: str,
) -> Airing:
    """The item as queued in the bulletin's next window that opens after `start` and can still hold it."""
    if priority == "emergency":
        raise LoaError("bad_priority.bulletin", {})
    windows = [
        w
        for w in bulletin_windows(session, now - timedelta(hours=1), now + WINDOW_HORIZON)
        if programme_of_window(w.id) == bulletin and w.end - max(w.start, now) >= duration and w.end > start
    ]
    if not windows:
        raise LoaError("no_bulletin", {"bulletin": bulletin}, status=404)
    w = windows[0]
    return notice(
        airing_id,
        title,
        duration,
        w.targets,
        now=now,
        at=max(now, w.start),
        valid_until=w.end,
        priority=PRIORITY_OF[priority],
        order_key=order,
        window_id=w.id,
    )


@dataclass(frozen=True)
class Request:
    """What a person asked for, checked: everything but the audio."""

    text: str
    title: str | None
    zone_ids: list[str]
    start: datetime | None  # None: as soon as devices can fetch the audio
    priority: str
    order: int | None
    bulletin: int | None = None  # a bulletin programme's id: queued in its next bulletin
    voice: VoiceChoice | None = None  # how it is read (None: a recording, read by nobody)


def check_request(
    svc: Services,
    text: str,
    zones: list[str],
    at: str | datetime | None,
    *,
    title: str | None,
    priority: str,
    order: int | None,
    bulletin: int | None = None,
    recording: bool = False,
    voice: VoiceChoice | None = None,
) -> Request:
    """Every value of an announcement checked, before anything is rendered or stored (a recording may
    come without a text: its title, or "Bản ghi âm", stands in)."""
    if recording and not (text or "").strip():
        text = (title or "").strip() or "Bản ghi âm"
    if not isinstance(text, str) or not text.strip():
        raise LoaError("empty_text", {})
    check_text(text, "text", MAX_TEXT_CHARS)
    check_text(title or "", "title", MAX_TITLE_CHARS)
    check_order(order)
    if priority not in PRIORITIES:
        raise LoaError("bad_priority", {})
    if bulletin is not None and not -MAX_ROW_ID <= bulletin <= MAX_ROW_ID:
        raise LoaError("no_bulletin", {"bulletin": bulletin}, status=404)  # no programme has such an id
    now = svc.clock.now()
    try:
        start = at if isinstance(at, datetime) else parse_when(at, now)
    except WhenError as exc:
        raise LoaError.from_domain(exc) from exc
    if start is not None and start < now:
        raise LoaError("time_in_past", {"time": to_local(start).strftime("%H:%M %d/%m/%Y")})
    with svc.db.session() as session:
        zone_ids = [z.id for z in resolve_zones(session, zones)]
    voice = None if recording else voice or default_choice(svc.config)
    return Request(text, title, zone_ids, start, priority, order, bulletin, voice)


def announce(
    svc: Services,
    text: str,
    zones: list[str],
    at: str | datetime | None = None,
    *,
    title: str | None = None,
    priority: str = "normal",
    actor: str = "cli",
    preview: bool = False,
    bulletin: int | None = None,
    recording: Path | None = None,
    progress: Callable[[int, int], None] | None = None,
    order: int | None = None,
    reason: str = "",
    approved_via: str = "command_line",
    voice: VoiceChoice | None = None,
) -> dict[str, Any]:
    """Store an announcement and its audio, and place it on the timeline of every village it targets.

    With `bulletin` (a bulletin programme's id) the item is queued, in order, in that programme's next
    bulletin that still has room, and airs wherever the bulletin airs. With `recording` (an officer's own
    recording from a phone) that audio airs instead of synthesized speech, after the same loudness
    treatment, and `text` may be empty. `order` is the officer's order among clashing priority items
    (smaller first; by default, the order they were entered). `voice` is how it is read (default: the
    commune's, `[speech]`), recorded with the item (services/speech.py).

    The planner may move it (a clash, quiet hours) and may move other planned items (a priority
    item goes first, an emergency cuts in); each placement carries the reason. With `preview`
    nothing is stored and the officer sees where everything would go. A conflict the planner
    cannot resolve (say, a normal notice that only fits in quiet hours) refuses the whole request.

    This is the way in that needs no approval (services/approvals.py is the other): `approved_via`
    says why none was needed — `command_line` (the server's own operator), `emergency` (confirmed
    twice, services/emergencies.py) or `not_required` (`[security] require_approval = false`).
    `reason` is why a confirmed emergency is sent: `emergency.confirmed` is written with it in the same
    transaction as the announcement, so the log never shows one without the other.
    """
    request = check_request(
        svc, text, zones, at, title=title, priority=priority, order=order, bulletin=bulletin,
        recording=recording is not None, voice=voice,
    )  # fmt: skip
    try:
        stored = svc.audio.import_recording(recording) if recording else render(svc, request.text, request.voice,
                                                                                progress)  # fmt: skip
    except AudioError as exc:
        raise LoaError.from_domain(exc) from exc
    with rendered_for(svc, stored.sha256, keep=preview):
        return _store_and_place(svc, stored, request, actor, preview, reason, approved_via)


# Audio rendered for requests still on their way to the database, by sha256 (see rendered_for).
_IN_FLIGHT: Counter[str] = Counter()
_IN_FLIGHT_LOCK = threading.Lock()


@contextmanager
def rendered_for(svc: Services, sha256: str, *, keep: bool) -> Iterator[None]:
    """A request refused after its audio was rendered leaves no file behind, unless something else
    uses it: an announcement already stored, or another request in this process holding the same
    audio between its render and its commit (the same text rendered twice is one file)."""
    with _IN_FLIGHT_LOCK:
        _IN_FLIGHT[sha256] += 1
    refused = False
    try:
        yield
    except BaseException:
        refused = True
        raise
    finally:
        with _IN_FLIGHT_LOCK:
            _IN_FLIGHT[sha256] -= 1
            last = _IN_FLIGHT[sha256] == 0
            if last:
                del _IN_FLIGHT[sha256]
            if refused and last and not keep:
                with svc.db.session() as session:
                    used = session.scalar(select(Announcement.id).where(Announcement.audio_sha256 == sha256).limit(1))
                if used is None:
                    svc.audio.store.discard(sha256)




def new_item(stored: StoredAudio | None, request: Request, *, actor: str, now: datetime) -> Announcement:
    """An announcement row as asked (not yet added to a session), with its audio if it has some."""
    title = (request.title or "").strip() or title_from(request.text)
    item = Announcement(
        title=title,
        text=request.text.strip(),
        priority=request.priority,
        created_at=now,
        created_by=actor,
        targets=json.dumps(request.zone_ids),
        start_at=request.start,
        bulletin_id=request.bulletin,
        order_key=request.order,
        updated_at=now,
    )
    if request.voice is not None:
        item.voice_engine, item.voice = request.voice.engine, request.voice.voice
        item.speaking_rate = request.voice.rate
    if stored is not None:
        set_audio(item, stored)
    return item


def set_audio(item: Announcement, stored: StoredAudio) -> None:
    item.audio_sha256 = stored.sha256
    item.audio_size = stored.size
    item.audio_duration_ms = stored.duration_ms
    item.audio_ext = stored.path.suffix.lstrip(".")
    item.engine = stored.engine


@dataclass
class Planned:
    """Where the planner would put an item, before it is written (see `plan_item`)."""

    result: Plan
    groups: dict[tuple[str, datetime], Any]
    mine: set[str]
    placements: list[dict[str, Any]]
    moved: list[dict[str, Any]]
    start: datetime


def plan_item(svc: Services, session: Session, item: Announcement, now: datetime) -> Planned:
    """Plan a stored item (flushed, so it has its id) as its row asks: its villages, its start (or as
    soon as devices can fetch the audio), its bulletin and order. Refused (409, nothing written) when
    the planner cannot place it; nothing is written here either (`apply_item` writes it)."""
    dispatch = svc.config.dispatch
    lead_s = dispatch.emergency_lead_s if item.priority == "emergency" else 5
    start = item.start_at or now + timedelta(seconds=lead_s)
    start = max(start, now)  # rendering a long text takes time; that delay is not the officer's error
    duration = timedelta(milliseconds=max(1000, item.audio_duration_ms or 0))
    rank = item.id if item.order_key is None else item.order_key
    airing_id = f"a{item.id}"
    try:
        if item.bulletin_id is not None:
            requests = [
                _queued(session, item.bulletin_id, now, airing_id, item.title, duration, start, rank, item.priority)
            ]
        else:
            zone_ids = json.loads(item.targets or "[]") or ["all"]
            requests = _requests(svc, now, airing_id, item.title, duration, zone_ids, start, item.priority, rank)
    except ScheduleError as exc:
        raise LoaError.from_domain(exc) from exc
    result, groups, mine = plan_or_refuse(svc, session, requests, now)
    names = zone_names(session)
    placements = [placement_view(p, names) for p in result.placements if p.airing.id in mine]
    moved = [placement_view(p, names) for p in result.changed if p.airing.id not in mine]
    return Planned(result, groups, mine, placements, moved, start)


def apply_item(svc: Services, session: Session, item: Announcement, planned: Planned, now: datetime) -> None:
    """Write what `plan_item` found: the item's broadcasts, and the items it moved."""
    owners = {a: Owner(item.id) for a in planned.mine}
    apply_plan(session, planned.result, planned.groups, owners, framing_for(svc, session, now))


def _store_and_place(
    svc: Services,
    stored: StoredAudio,
    request: Request,
    actor: str,
    preview: bool,
    reason: str,
    approved_via: str,
) -> dict[str, Any]:
    now = svc.clock.now()
    with svc.db.session() as session:
        item = new_item(stored, request, actor=actor, now=now)
        item.state = AnnouncementState.APPROVED
        item.approved_via = approved_via
        item.decided_at, item.decided_by = now, actor
        session.add(item)
        session.flush()
        planned = plan_item(svc, session, item, now)
        if preview:
            session.rollback()
            return {
                "preview": True,
                "title": item.title,
                "placements": planned.placements,
                "moved": planned.moved,
                "audio": {"duration_ms": stored.duration_ms, "engine": stored.engine},
            }
        apply_item(svc, session, item, planned, now)
        audit(
            session,
            now,
            actor,
            "announce",
            announcement=item.id,
            zones=request.zone_ids,
            start_at=planned.start.isoformat(),
            priority=request.priority,
            approval=approved_via,
        )
        if reason:
            audit(
                session, now, actor, "emergency.confirmed", announcement=item.id, zones=request.zone_ids, reason=reason
            )
        session.flush()
        session.refresh(item)
        view = announcement_view(session, item, now)
        view["placements"] = planned.placements
        view["moved"] = planned.moved
        return view


# ---------------------------------------------------------------- what the officer reads


def _time(at: datetime | None) -> dict[str, str | None]:
    return {
        "at": None if at is None else at.isoformat(),
        "at_local": None if at is None else to_local(at).strftime("%H:%M:%S %d/%m/%Y"),
    }


def lifecycle(item: Announcement, broadcasts: list[Broadcast], recalled: bool, now: datetime) -> str:
    """The state a person sees: the stored one until it is approved, then what its broadcasts say —
    `scheduled` (something still to air), `on_air` (a village hears it now), `aired` (it played),
    `recalled`, `missed` (it never aired), or `approved` (handed to the planner, no broadcast yet).

    Derived, not stored: the broadcasts and their deliveries are the truth of what aired, and a copy
    kept in step by the dispatcher would be one more write per airing and could disagree after a
    crash."""
    if item.state is not AnnouncementState.APPROVED:
        return item.state.value
    if recalled:
        return "recalled"
    live = [b for b in broadcasts if b.status in (BroadcastStatus.PLANNED, BroadcastStatus.DISPATCHED)]
    if any(
        b.status is BroadcastStatus.DISPATCHED
        and b.start_at <= now < b.start_at + timedelta(milliseconds=max(b.duration_ms, 1000))
        for b in live
    ):
        return "on_air"
    if live:
        return "scheduled"
    if any(b.status is BroadcastStatus.DONE for b in broadcasts):
        return "aired"
    return "missed" if broadcasts else "approved"


def approval_view(item: Announcement) -> dict[str, Any]:
    """Who sent it on, who decided, when and why: what the officer wants to know of their item."""
    decision = {
        AnnouncementState.APPROVED: "approved",
        AnnouncementState.REJECTED: "rejected",
    }.get(item.state) if item.decided_at is not None else None
    return {
        "submitted_by": item.submitted_by or None,
        "submitted": _time(item.submitted_at),
        "decision": decision,
        "decided_by": item.decided_by or None,
        "decided": _time(item.decided_at),
        "reason": item.decision_reason,
        "via": item.approved_via or None,
    }


def request_view(item: Announcement) -> dict[str, Any]:
    """What was asked, as a compose page fills its form again from it."""
    return {
        "zones": json.loads(item.targets or "[]"),
        "start_at": None if item.start_at is None else item.start_at.isoformat(),
        "start_at_local": None if item.start_at is None else to_local(item.start_at).strftime("%H:%M:%S %d/%m/%Y"),
        "bulletin": item.bulletin_id,
        "order": item.order_key,
    }


def announcement_view(
    session: Session, item: Announcement, now: datetime, lang: str = DEFAULT_LANGUAGE
) -> dict[str, Any]:
    """An announcement as the API, the CLI and the desk show it; `now` tells on air from scheduled."""
    broadcasts = sorted(item.broadcasts, key=lambda b: b.id)
    recall = recall_view(session, item.id) if item.state is AnnouncementState.APPROVED else None
    return {
        "id": item.id,
        "title": item.title,
        "text": item.text,
        "priority": item.priority,
        "created_by": item.created_by,
        "created_at": item.created_at.isoformat(),
        "state": lifecycle(item, broadcasts, recall is not None, now),
        "approval": approval_view(item),
        "request": request_view(item),
        "voice": voice_view(item),
        "audio": {
            "sha256": item.audio_sha256,
            "size": item.audio_size,
            "duration_ms": item.audio_duration_ms,
            "engine": item.engine,
            "url": None if item.audio_sha256 is None else f"/audio/{item.audio_sha256}.{item.audio_ext}",
        },
        "broadcasts": [broadcast_view(session, b, lang) for b in broadcasts],
        "summary": speakers_summary(session, item.id),
        "recall": recall,  # who recalled it, when and why; None if nobody did
    }


def voice_view(item: Announcement) -> dict[str, Any] | None:
    """How the item is read (services/speech.py); None for a recording or an item older than the choice."""
    if not item.voice_engine:
        return None
    return {"engine": item.voice_engine, "voice": item.voice, "rate": item.speaking_rate}


def speakers_summary(session: Session, announcement_id: int) -> str:
    """What the officer wants to know about an item: on how many speakers it was heard (the one rule
    of services.reports.heard, which the airings' summaries and the report count by too)."""
    total, played = session.execute(
        select(func.count(), func.coalesce(func.sum(case((heard_sql(), 1), else_=0)), 0))
        .select_from(Delivery)
        .join(Broadcast, Delivery.broadcast_id == Broadcast.id)
        .join(Device, Delivery.device_id == Device.id)
        .where(Broadcast.announcement_id == announcement_id, Device.kind == DeviceKind.SPEAKER)
    ).one()
    if not total:
        return "chưa gửi tới loa nào"
    return f"{played}/{total} loa đã phát xong"


def get_announcement(svc: Services, announcement_id: int, lang: str = DEFAULT_LANGUAGE) -> dict[str, Any]:
    with svc.db.session() as session:
        item = session.get(Announcement, announcement_id) if fits_sql_int(announcement_id) else None
        if item is None:
            raise LoaError("not_found.announcement", {"id": announcement_id}, status=404)
        return announcement_view(session, item, svc.clock.now(), lang)


def announcement_audio(svc: Services, announcement_id: int) -> tuple[Path, str]:
    """The file of an item's audio and its media type, for a person to hear it (404 if it has none:
    a draft not rendered yet, or audio evicted after it aired)."""
    with svc.db.session() as session:
        item = session.get(Announcement, announcement_id) if fits_sql_int(announcement_id) else None
        if item is None:
            raise LoaError("not_found.announcement", {"id": announcement_id}, status=404)
        sha256, ext = item.audio_sha256, item.audio_ext
    stored = svc.audio.store.open(sha256) if sha256 else None
    if stored is None or not stored.path.exists():
        raise LoaError("not_found.audio", {}, status=404)
    return stored.path, "audio/mpeg" if ext == "mp3" else "audio/ogg"

