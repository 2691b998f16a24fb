"""Announcements: a text or a recording, rendered, stored and placed on every village's timeline."""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from audio import AudioError, StoredAudio
from broadcaster.db import (
    Announcement,
    Broadcast,
    Delivery,
    DeliveryStatus,
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
from broadcaster.services.views import broadcast_view
from broadcaster.services.zones import resolve_zones, zone_names
from schedules import Airing, EmergencyAlert, ScheduleError, notice
from schedules.clock import to_local
from schedules.when import WhenError, parse_when

PRIORITIES = ("normal", "priority", "emergency")


def _title_from(text: str) -> str:
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
) -> dict[str, Any]:
    """Store an announcement and its audio, and place it on the timeline of every village it targets.

    With `bulletin` (a bulletin programme's id) the item is queued, in order, in that programme's next
    bulletin that still has room, and airs wherever the bulletin airs. With `recording` (an officer's own
    recording from a phone) that audio airs instead of synthesized speech, after the same loudness
    treatment, and `text` may be empty. `order` is the officer's order among clashing priority items
    (smaller first; by default, the order they were entered).

    The planner may move it (a clash, quiet hours) and may move other planned items (a priority
    item goes first, an emergency cuts in); each placement carries the reason. With `preview`
    nothing is stored and the officer sees where everything would go. A conflict the planner
    cannot resolve (say, a normal notice that only fits in quiet hours) refuses the whole request.
    """
    if recording is not None and not (text or "").strip():
        text = (title or "").strip() or "Bản ghi âm"
    if not isinstance(text, str) or not text.strip():
        raise LoaError("empty_text", {})
    check_text(text, "text", MAX_TEXT_CHARS)
    check_text(title or "", "title", MAX_TITLE_CHARS)
    check_order(order)
    if priority not in PRIORITIES:
        raise LoaError("bad_priority", {})
    now = svc.clock.now()
    dispatch = svc.config.dispatch
    try:
        start = at if isinstance(at, datetime) else parse_when(at, now)
    except WhenError as exc:
        raise LoaError.from_domain(exc) from exc
    if start is not None and start < now:
        raise LoaError("time_in_past", {"time": to_local(start).strftime("%H:%M %d/%m/%Y")})
    if start is None:  # as soon as devices can fetch the audio
        start = now + timedelta(seconds=dispatch.emergency_lead_s if priority == "emergency" else 5)
    with svc.db.session() as session:
        targets = resolve_zones(session, zones)
        zone_ids = [z.id for z in targets]
    try:
        stored = svc.audio.import_recording(recording) if recording else svc.audio.render(text, progress)
    except AudioError as exc:
        raise LoaError.from_domain(exc) from exc
    with _rendered_for(svc, stored.sha256, keep=preview):
        return _store_and_place(
            svc, stored, text, title, zone_ids, start, priority, actor, preview, bulletin, order
        )


# Audio rendered for requests still on their way to the database, by sha256 (see _rendered_for).
_IN_FLIGHT: Counter[str] = Counter()
_IN_FLIGHT_LOCK = threading.Lock()


@contextmanager
def _rendered_for(svc: Services, sha256: str, *, keep: bool) -> Iterator[None]:
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


def _store_and_place(
    svc: Services,
    stored: StoredAudio,
    text: str,
    title: str | None,
    zone_ids: list[str],
    start: datetime,
    priority: str,
    actor: str,
    preview: bool,
    bulletin: int | None,
    order: int | None,
) -> dict[str, Any]:
    title = (title or "").strip() or _title_from(text)
    duration = timedelta(milliseconds=max(1000, stored.duration_ms))
    now = svc.clock.now()
    start = max(start, now)  # rendering a long text takes time; that delay is not the officer's error
    with svc.db.session() as session:
        item = Announcement.with_audio(
            stored, title=title, text=text.strip(), priority=priority, created_at=now, created_by=actor
        )
        session.add(item)
        session.flush()
        rank = item.id if order is None else order
        try:
            if bulletin is not None:
                requests = [_queued(session, bulletin, now, f"a{item.id}", title, duration, start, rank, priority)]
            else:
                requests = _requests(svc, now, f"a{item.id}", title, duration, zone_ids, start, priority, rank)
        except ScheduleError as exc:
            raise LoaError.from_domain(exc) from exc
        result, groups, mine = plan_or_refuse(svc, session, requests, now)
        names = zone_names(session)
        placements = [placement_view(p, names) for p in result.placements if p.airing.id in mine]
        moved = [placement_view(p, names) for p in result.changed if p.airing.id not in mine]
        if preview:
            session.rollback()
            return {
                "preview": True,
                "title": title,
                "placements": placements,
                "moved": moved,
                "audio": {"duration_ms": stored.duration_ms, "engine": stored.engine},
            }
        apply_plan(session, result, groups, {a: Owner(item.id) for a in mine}, framing_for(svc, session, now))
        audit(
            session,
            now,
            actor,
            "announce",
            announcement=item.id,
            zones=zone_ids,
            start_at=start.isoformat(),
            priority=priority,
        )
        session.flush()
        session.refresh(item)
        view = announcement_view(session, item)
        view["placements"] = placements
        view["moved"] = moved
        return view


def announcement_view(session: Session, item: Announcement, lang: str = DEFAULT_LANGUAGE) -> dict[str, Any]:
    return {
        "id": item.id,
        "title": item.title,
        "text": item.text,
        "priority": item.priority,
        "created_by": item.created_by,
        "audio": {
            "sha256": item.audio_sha256,
            "size": item.audio_size,
            "duration_ms": item.audio_duration_ms,
            "engine": item.engine,
            "url": f"/audio/{item.audio_sha256}.{item.audio_ext}",
        },
        "broadcasts": [broadcast_view(session, b, lang) for b in sorted(item.broadcasts, key=lambda b: b.id)],
        "summary": speakers_summary(session, item.id),
    }


def speakers_summary(session: Session, announcement_id: int) -> str:
    """What the officer wants to know about an item: on how many speakers it actually played."""
    rows = session.execute(
        select(Delivery.status, func.count())
        .join(Broadcast, Delivery.broadcast_id == Broadcast.id)
        .join(Device, Delivery.device_id == Device.id)
        .where(Broadcast.announcement_id == announcement_id, Device.kind == DeviceKind.SPEAKER)
        .group_by(Delivery.status)
    ).all()
    counts = dict(rows)
    total = sum(counts.values())
    if not total:
        return "chưa gửi tới loa nào"
    return f"{counts.get(DeliveryStatus.DONE, 0)}/{total} loa đã phát xong"


def get_announcement(svc: Services, announcement_id: int, lang: str = DEFAULT_LANGUAGE) -> dict[str, Any]:
    with svc.db.session() as session:
        item = session.get(Announcement, announcement_id) if fits_sql_int(announcement_id) else None
        if item is None:
            raise LoaError("not_found.announcement", {"id": announcement_id}, status=404)
        return announcement_view(session, item, lang)
