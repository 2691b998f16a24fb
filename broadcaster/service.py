"""What a person can do, whichever door they come through (CLI, HTTP API, web UI).

Each operation validates everything before it writes anything, writes in one transaction, and leaves an
audit entry naming the person. Errors carry an English code for programs and a Vietnamese message for
the officer.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, time, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from audio import AudioError, AudioPipeline
from broadcaster.config import Config
from broadcaster.db import (
    Announcement,
    Broadcast,
    BroadcastStatus,
    Database,
    Delivery,
    DeliveryStatus,
    Device,
    DeviceKind,
    Programme,
    Zone,
    ZoneKind,
    ZoneMember,
    audit,
)
from broadcaster.planning import (
    PRIORITY_OF,
    WINDOW_HORIZON,
    Owner,
    apply_plan,
    bulletin_windows,
    placement_view,
    plan_new,
    programme_of_window,
)
from schedules import Airing, AiringKind, EmergencyAlert, Placement, Plan, QuietHours, ScheduleError, notice, to_ics
from schedules.clock import Clock, to_local
from schedules.when import WhenError, parse_when

COMMUNE_ZONE = "all"
ZONE_ID = re.compile(r"^[a-z0-9][a-z0-9-]{0,62}$")
PRIORITIES = ("normal", "priority", "emergency")
MAX_TEXT_CHARS = 20_000


class BadInput(Exception):
    """A request we refuse; nothing was stored."""

    def __init__(self, code: str, message_vi: str, status: int = 400) -> None:
        super().__init__(f"{code}: {message_vi}")
        self.code = code
        self.message_vi = message_vi
        self.status = status

    def as_json(self) -> dict[str, Any]:
        return {"error": {"code": self.code, "message": self.message_vi}}


@dataclass
class Services:
    """The parts an operation needs, handed over by whoever built them (daemon or CLI)."""

    db: Database
    audio: AudioPipeline
    clock: Clock
    config: Config


# ---------------------------------------------------------------- zones and devices


def ensure_commune(session: Session, name: str) -> Zone:
    zone = session.get(Zone, COMMUNE_ZONE)
    if zone is None:
        zone = Zone(id=COMMUNE_ZONE, name=name, kind=ZoneKind.COMMUNE)
        session.add(zone)
        session.flush()
    return zone


def add_village(session: Session, village_id: str, name: str) -> Zone:
    zone = session.get(Zone, village_id)
    if zone is None:
        zone = Zone(id=village_id, name=name, kind=ZoneKind.VILLAGE, parent_id=COMMUNE_ZONE)
        session.add(zone)
        session.flush()
    return zone


def add_zone(
    svc: Services,
    zone_id: str,
    name: str,
    kind: str,
    members: list[str],
    *,
    actor: str,
    quiet: tuple[str, str] | None = None,
) -> dict[str, Any]:
    """A village of the commune, or a named group of existing villages."""
    if not ZONE_ID.match(zone_id or ""):
        raise BadInput("bad_zone_id", "Mã khu vực chỉ gồm chữ thường không dấu, số và dấu '-' (ví dụ: thon-3).")
    if kind not in ("village", "group"):
        raise BadInput("bad_zone_kind", "Loại khu vực phải là village (thôn) hoặc group (nhóm thôn).")
    with svc.db.session() as session:
        if session.get(Zone, zone_id) is not None:
            raise BadInput("zone_exists", f"Khu vực '{zone_id}' đã có.", 409)
        if kind == "group":
            if not members:
                raise BadInput("empty_group", "Nhóm cần ít nhất một thôn.")
            for m in members:
                z = session.get(Zone, m)
                if z is None or z.kind is not ZoneKind.VILLAGE:
                    raise BadInput("unknown_zone", f"Không có thôn '{m}'.", 404)
        zone = Zone(
            id=zone_id,
            name=name.strip() or zone_id,
            parent_id=COMMUNE_ZONE,
            kind=ZoneKind.VILLAGE if kind == "village" else ZoneKind.GROUP,
        )
        if quiet is not None:
            zone.quiet_start, zone.quiet_end = quiet
        session.add(zone)
        session.flush()
        for m in members if kind == "group" else []:
            session.add(ZoneMember(group_id=zone_id, village_id=m))
        audit(session, svc.clock.now(), actor, "zone.add", zone=zone_id, kind=kind, members=members)
    return {"id": zone_id, "name": zone.name, "kind": kind, "members": members}


def add_device(session: Session, device_id: str, kind: DeviceKind, village_id: str, name: str = "") -> Device:
    device = session.get(Device, device_id)
    if device is None:
        device = Device(id=device_id, kind=kind, village_id=village_id, name=name or device_id)
        session.add(device)
        session.flush()
    return device


def zone_names(session: Session) -> dict[str, str]:
    """Zone id -> the name people know it by, for what the officer reads."""
    return {z.id: z.name for z in session.scalars(select(Zone))}


def villages_of(session: Session, zone: Zone) -> list[str]:
    if zone.kind is ZoneKind.VILLAGE:
        return [zone.id]
    if zone.kind is ZoneKind.COMMUNE:
        return list(session.scalars(select(Zone.id).where(Zone.kind == ZoneKind.VILLAGE).order_by(Zone.id)))
    return list(
        session.scalars(
            select(ZoneMember.village_id).where(ZoneMember.group_id == zone.id).order_by(ZoneMember.village_id)
        )
    )


def resolve_zones(session: Session, zone_ids: list[str]) -> list[Zone]:
    if not zone_ids:
        raise BadInput("no_zone", "Chưa chọn khu vực phát.")
    zones = []
    for zid in dict.fromkeys(z.strip() for z in zone_ids):
        zone = session.get(Zone, zid)
        if zone is None:
            known = ", ".join(session.scalars(select(Zone.id).order_by(Zone.id)))
            raise BadInput("unknown_zone", f"Không có khu vực '{zid}'. Các khu vực hiện có: {known}.", 404)
        zones.append(zone)
    return zones


# ---------------------------------------------------------------- announcements


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
        raise BadInput("bad_priority", "Tin khẩn cấp phát ngay, không xếp vào bản tin.")
    windows = [
        w
        for w in bulletin_windows(session, now - timedelta(hours=1), now + WINDOW_HORIZON)
        if programme_of_window(w.id) == bulletin and w.end - max(w.start, now) >= duration and w.end > start
    ]
    if not windows:
        raise BadInput("no_bulletin", f"Không có bản tin số {bulletin} nào sắp tới còn chỗ cho mục này.", 404)
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


def plan_or_refuse(
    svc: Services, session: Session, requests: list[Airing], now: datetime, *, max_reasons: int | None = None
) -> tuple[Plan, dict[tuple[str, datetime], Any], set[str]]:
    """Plan `requests` among what is on the timeline; refuse the whole request (409, nothing written)
    when the planner cannot place one of them. Returns the plan, the rows behind it and the new ids."""
    try:
        result, groups = plan_new(session, requests, now, default_quiet_hours(svc))
    except ScheduleError as exc:
        raise BadInput(str(exc.code), exc.message_vi) from exc
    mine = {a.id for a in requests}
    refused = [c for c in result.conflicts if c.airing.id in mine]
    if refused:
        raise BadInput(str(refused[0].code), " ".join(c.message_vi for c in refused[:max_reasons]), 409)
    return result, groups, mine


def framing_for(svc: Services, session: Session, now: datetime) -> Callable[[Airing], Owner]:
    """Audio for the chimes and spoken heading the planner puts around a bulletin's items."""
    from broadcaster.bulletins import framing_owner

    def owner(airing: Airing) -> Owner:
        return framing_owner(session, svc.audio, airing, programme_of_window(airing.window_id or ""), now)

    return owner


def default_quiet_hours(svc: Services) -> QuietHours:
    s = svc.config.schedule
    return QuietHours(time.fromisoformat(s.quiet_start), time.fromisoformat(s.quiet_end))


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
        raise BadInput("empty_text", "Nội dung thông báo đang trống.")
    if len(text) > MAX_TEXT_CHARS:
        raise BadInput("text_too_long", f"Nội dung quá dài (tối đa {MAX_TEXT_CHARS} ký tự).")
    if priority not in PRIORITIES:
        raise BadInput("bad_priority", "Mức ưu tiên phải là: normal, priority hoặc emergency.")
    now = svc.clock.now()
    dispatch = svc.config.dispatch
    try:
        start = at if isinstance(at, datetime) else parse_when(at, now)
    except WhenError as exc:
        raise BadInput(exc.code, exc.message_vi) from exc
    if start is not None and start < now:
        raise BadInput("time_in_past", "Thời điểm phát đã qua; hãy chọn một thời điểm trong tương lai.")
    if start is None:  # as soon as devices can fetch the audio
        start = now + timedelta(seconds=dispatch.emergency_lead_s if priority == "emergency" else 5)
    with svc.db.session() as session:
        targets = resolve_zones(session, zones)
        zone_ids = [z.id for z in targets]
    try:
        stored = svc.audio.import_recording(recording) if recording else svc.audio.render(text, progress)
    except AudioError as exc:
        raise BadInput(f"audio_{exc.code}", exc.message_vi, 422) from exc
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
            raise BadInput(str(exc.code), exc.message_vi) from exc
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


def announcement_view(session: Session, item: Announcement) -> dict[str, Any]:
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
        "broadcasts": [broadcast_view(session, b) for b in sorted(item.broadcasts, key=lambda b: b.id)],
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


def report(svc: Services, start: datetime, end: datetime) -> dict[str, Any]:
    """What was broadcast in a period, as the commune reports it upwards: items and plays."""
    with svc.db.session() as session:
        plays = session.execute(
            select(Broadcast.announcement_id, Broadcast.programme_id, func.count())
            .join(Delivery, Delivery.broadcast_id == Broadcast.id)
            .join(Device, Delivery.device_id == Device.id)
            .where(
                Delivery.status == DeliveryStatus.DONE,
                Device.kind == DeviceKind.SPEAKER,
                Broadcast.start_at >= start,
                Broadcast.start_at < end,
                Broadcast.kind.in_(["notice", "emergency", "relay"]),
            )
            .group_by(Broadcast.announcement_id, Broadcast.programme_id)
        ).all()
        items = {(a, p) for a, p, _ in plays}
        total = sum(n for _, _, n in plays)
        relays = sum(n for a, p, n in plays if a is None)
    period = f"{to_local(start):%d/%m/%Y}–{to_local(end - timedelta(seconds=1)):%d/%m/%Y}"
    return {
        "from": start.isoformat(),
        "to": end.isoformat(),
        "items": len(items),
        "plays": total,
        "relay_plays": relays,
        "text": f"{len(items)} mục, {total} lượt phát ({period})",
    }


def broadcast_view(session: Session, b: Broadcast) -> dict[str, Any]:
    counts = dict(
        session.execute(
            select(Delivery.status, func.count()).where(Delivery.broadcast_id == b.id).group_by(Delivery.status)
        ).all()
    )
    total = sum(counts.values())
    done = counts.get(DeliveryStatus.DONE, 0)
    return {
        "id": b.id,
        "announcement_id": b.announcement_id,
        "zone": b.zone_id,
        "start_at": b.start_at.isoformat(),
        "start_at_local": to_local(b.start_at).strftime("%H:%M:%S %d/%m/%Y"),
        "expires_at": b.expires_at.isoformat(),
        "status": b.status.value,
        "late": b.late,
        "reason": b.reason,
        "priority": b.priority,
        "explanation": b.explanation,
        "deliveries": {s.value: n for s, n in counts.items()},
        "summary": f"{done}/{total} thiết bị đã phát xong" if total else "chưa gửi",
    }


def get_announcement(svc: Services, announcement_id: int) -> dict[str, Any]:
    with svc.db.session() as session:
        item = session.get(Announcement, announcement_id)
        if item is None:
            raise BadInput("not_found", f"Không có thông báo số {announcement_id}.", 404)
        return announcement_view(session, item)


def list_broadcasts(svc: Services, limit: int = 50) -> list[dict[str, Any]]:
    with svc.db.session() as session:
        rows = session.scalars(select(Broadcast).order_by(Broadcast.start_at.desc()).limit(limit))
        return [{**broadcast_view(session, b), "title": b.title} for b in rows]


def list_zones(svc: Services) -> list[dict[str, Any]]:
    with svc.db.session() as session:
        return [
            {"id": z.id, "name": z.name, "kind": z.kind.value, "parent": z.parent_id}
            for z in session.scalars(select(Zone).order_by(Zone.kind, Zone.id))
        ]


def device_view(d: Device) -> dict[str, Any]:
    return {
        "id": d.id,
        "kind": d.kind.value,
        "village": d.village_id,
        "name": d.name,
        "online": d.online,
        "last_seen": d.last_seen.isoformat() if d.last_seen else None,
        "firmware": d.firmware,
        "volume": d.volume,
        "signal": d.signal,
    }


def list_devices(svc: Services) -> list[dict[str, Any]]:
    with svc.db.session() as session:
        return [device_view(d) for d in session.scalars(select(Device).order_by(Device.village_id, Device.id))]


def recent_deliveries(svc: Services, limit: int = 20) -> list[dict[str, Any]]:
    with svc.db.session() as session:
        rows = session.execute(
            select(Delivery, Broadcast)
            .join(Broadcast, Delivery.broadcast_id == Broadcast.id)
            .order_by(Delivery.updated_at.desc(), Delivery.id.desc())
            .limit(limit)
        ).all()
        return [
            {
                "broadcast": b.id,
                "title": b.title,
                "device": d.device_id,
                "status": d.status.value,
                "reason": d.reason,
                "start_error_ms": d.start_error_ms,
                "start_at_local": to_local(b.start_at).strftime("%H:%M:%S %d/%m"),
                "updated_at": d.updated_at.isoformat(),
            }
            for d, b in rows
        ]


def pending_broadcasts(session: Session, until: datetime) -> list[Broadcast]:
    return list(
        session.scalars(
            select(Broadcast)
            .where(Broadcast.status == BroadcastStatus.PLANNED, Broadcast.start_at <= until)
            .order_by(Broadcast.start_at)
        )
    )


def timeline(
    svc: Services, zone: str | None = None, start: datetime | None = None, end: datetime | None = None
) -> list[dict[str, Any]]:
    """What airs where, in order: the officer's programme view (and the source of the .ics export)."""
    now = svc.clock.now()
    start = start or now - timedelta(hours=1)
    end = end or start + timedelta(days=7)
    if end <= start:
        raise BadInput("end_before_start", "Thời điểm kết thúc phải sau thời điểm bắt đầu.")
    with svc.db.session() as session:
        q = (
            select(Broadcast)
            .where(Broadcast.start_at >= start, Broadcast.start_at < end, Broadcast.status != BroadcastStatus.CANCELLED)
            .order_by(Broadcast.start_at, Broadcast.zone_id)
        )
        if zone is not None:
            (z,) = resolve_zones(session, [zone])
            q = q.where(Broadcast.zone_id.in_(villages_of(session, z)))
        names = zone_names(session)
        return [
            {
                "broadcast": b.id,
                "announcement": b.announcement_id,
                "programme": b.programme_id,
                "kind": b.kind,
                "title": b.title,
                "zone": b.zone_id,
                "zone_name": names.get(b.zone_id, b.zone_id),
                "start_at": b.start_at.isoformat(),
                "end_at": (b.start_at + timedelta(milliseconds=b.duration_ms)).isoformat(),
                "start_at_local": to_local(b.start_at).strftime("%H:%M:%S %d/%m/%Y"),
                "priority": b.priority,
                "status": b.status.value,
                "explanation": b.explanation,
                "stream_url": b.programme.stream_url if b.programme else None,
            }
            for b in session.scalars(q)
        ]


def calendar(svc: Services, zone: str) -> str:
    """An iCalendar file of a zone's planned airings, for the officer's phone."""
    rows = timeline(svc, zone, svc.clock.now() - timedelta(days=1), svc.clock.now() + timedelta(days=60))
    with svc.db.session() as session:
        (z,) = resolve_zones(session, [zone])
        zone_name = z.name
    merged: dict[tuple[int, str], dict[str, Any]] = {}
    for r in rows:  # one event per airing, however many villages hear it
        merged.setdefault((r["title"], r["start_at"]), r)
    placements = [
        Placement(
            airing=Airing(
                id=f"b{r['broadcast']}",
                title=r["title"],
                kind=AiringKind(r["kind"]),
                priority=PRIORITY_OF[r["priority"]],
                duration=max(
                    timedelta(seconds=1), datetime.fromisoformat(r["end_at"]) - datetime.fromisoformat(r["start_at"])
                ),
                targets=frozenset({r["zone"]}),
                earliest=datetime.fromisoformat(r["start_at"]),
                valid_until=datetime.fromisoformat(r["end_at"]) + timedelta(hours=1),
                stream_url=r["stream_url"],
            ),
            villages=frozenset({r["zone"]}),
            start=datetime.fromisoformat(r["start_at"]),
            end=datetime.fromisoformat(r["end_at"]),
            code="",
            explanation=r["explanation"],
        )
        for r in merged.values()
    ]
    return to_ics(placements, zone_name, stamp=svc.clock.now())


def offline_warnings(svc: Services, within: timedelta = timedelta(minutes=30)) -> list[dict[str, Any]]:
    """Airings coming up soon in villages where a speaker is offline: the officer can still call the
    technician, or the village head, before the village misses the item."""
    now = svc.clock.now()
    with svc.db.session() as session:
        upcoming = session.scalars(
            select(Broadcast)
            .where(
                Broadcast.status == BroadcastStatus.PLANNED,
                Broadcast.start_at >= now,
                Broadcast.start_at <= now + within,
            )
            .order_by(Broadcast.start_at)
        ).all()
        offline: dict[str, list[str]] = {}
        for d in session.scalars(
            select(Device).where(Device.kind == DeviceKind.SPEAKER, Device.online.is_(False)).order_by(Device.id)
        ):
            offline.setdefault(d.village_id, []).append(d.id)
        names = zone_names(session)
        return [
            {
                "broadcast": b.id,
                "title": b.title,
                "zone": b.zone_id,
                "start_at_local": to_local(b.start_at).strftime("%H:%M %d/%m"),
                "offline_speakers": offline[b.zone_id],
                "message": f"{names.get(b.zone_id, b.zone_id)}: {len(offline[b.zone_id])} loa mất kết nối, "
                f"'{b.title}' phát lúc {to_local(b.start_at):%H:%M}",
            }
            for b in upcoming
            if b.zone_id in offline
        ]


def pinned_audio(svc: Services) -> set[str]:
    """Audio the store must keep: anything still to air, and what programmes replay."""
    with svc.db.session() as session:
        live = select(Broadcast.announcement_id).where(
            Broadcast.status.in_([BroadcastStatus.PLANNED, BroadcastStatus.DISPATCHED])
        )
        programmes = select(Programme.announcement_id).where(Programme.active.is_(True))
        return set(
            session.scalars(
                select(Announcement.audio_sha256).where(
                    Announcement.audio_sha256.is_not(None),
                    Announcement.id.in_(live) | Announcement.id.in_(programmes),
                )
            )
        )


def evict_audio(svc: Services) -> list[str]:
    """Keep the audio store under its size limit, never touching audio still scheduled."""
    evicted = svc.audio.store.evict(pinned_audio(svc))
    return list(evicted)
