"""What a person can do, whichever door they come through (CLI, HTTP API, web UI).

Each operation validates everything before it writes anything, writes in one transaction, and leaves an
audit entry naming the person. Errors carry an English code for programs and a Vietnamese message for
the officer.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
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
    Zone,
    ZoneKind,
    ZoneMember,
    audit,
)
from schedules.clock import Clock, to_local
from schedules.when import WhenError, parse_when

COMMUNE_ZONE = "all"
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


def add_device(session: Session, device_id: str, kind: DeviceKind, village_id: str, name: str = "") -> Device:
    device = session.get(Device, device_id)
    if device is None:
        device = Device(id=device_id, kind=kind, village_id=village_id, name=name or device_id)
        session.add(device)
        session.flush()
    return device


def villages_of(session: Session, zone: Zone) -> list[str]:
    if zone.kind is ZoneKind.VILLAGE:
        return [zone.id]
    if zone.kind is ZoneKind.COMMUNE:
        return list(session.scalars(select(Zone.id).where(Zone.kind == ZoneKind.VILLAGE).order_by(Zone.id)))
    return list(
        session.scalars(
            select(ZoneMember.village_id)
            .where(ZoneMember.group_id == zone.id)
            .order_by(ZoneMember.village_id)
        )
    )


def devices_in(session: Session, zone: Zone) -> list[Device]:
    villages = villages_of(session, zone)
    if not villages:
        return []
    return list(session.scalars(select(Device).where(Device.village_id.in_(villages)).order_by(Device.id)))


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


def announce(
    svc: Services,
    text: str,
    zones: list[str],
    at: str | datetime | None = None,
    *,
    title: str | None = None,
    priority: str = "normal",
    actor: str = "cli",
) -> dict[str, Any]:
    """Store an announcement, its audio and one broadcast per zone; the daemon dispatches from there."""
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
        stored = svc.audio.render(text)
    except AudioError as exc:
        raise BadInput(f"audio_{exc.code}", exc.message_vi, 422) from exc
    with svc.db.session() as session:
        item = Announcement(
            title=(title or "").strip() or _title_from(text),
            text=text.strip(),
            priority=priority,
            created_at=now,
            created_by=actor,
            audio_sha256=stored.sha256,
            audio_size=stored.size,
            audio_duration_ms=stored.duration_ms,
            audio_ext=stored.path.suffix.lstrip("."),
            engine=stored.engine,
        )
        session.add(item)
        session.flush()
        for zid in zone_ids:
            session.add(
                Broadcast(
                    announcement_id=item.id,
                    zone_id=zid,
                    start_at=start,
                    expires_at=start + timedelta(seconds=dispatch.validity_s),
                )
            )
        audit(
            session, now, actor, "announce", announcement=item.id, zones=zone_ids, start_at=start.isoformat()
        )
        session.flush()
        return announcement_view(session, item)


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
    }


def broadcast_view(session: Session, b: Broadcast) -> dict[str, Any]:
    counts = dict(
        session.execute(
            select(Delivery.status, func.count())
            .where(Delivery.broadcast_id == b.id)
            .group_by(Delivery.status)
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
        return [{**broadcast_view(session, b), "title": b.announcement.title} for b in rows]


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
        return [
            device_view(d) for d in session.scalars(select(Device).order_by(Device.village_id, Device.id))
        ]


def recent_deliveries(svc: Services, limit: int = 20) -> list[dict[str, Any]]:
    with svc.db.session() as session:
        rows = session.execute(
            select(Delivery, Broadcast, Announcement)
            .join(Broadcast, Delivery.broadcast_id == Broadcast.id)
            .join(Announcement, Broadcast.announcement_id == Announcement.id)
            .order_by(Delivery.updated_at.desc(), Delivery.id.desc())
            .limit(limit)
        ).all()
        return [
            {
                "broadcast": b.id,
                "title": a.title,
                "device": d.device_id,
                "status": d.status.value,
                "reason": d.reason,
                "start_error_ms": d.start_error_ms,
                "start_at_local": to_local(b.start_at).strftime("%H:%M:%S %d/%m"),
                "updated_at": d.updated_at.isoformat(),
            }
            for d, b, a in rows
        ]


def pending_broadcasts(session: Session, until: datetime) -> list[Broadcast]:
    return list(
        session.scalars(
            select(Broadcast)
            .where(Broadcast.status == BroadcastStatus.PLANNED, Broadcast.start_at <= until)
            .order_by(Broadcast.start_at)
        )
    )
