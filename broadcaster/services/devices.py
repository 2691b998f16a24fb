"""The devices the officer watches: who is online, and which coming airings an offline speaker will miss."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from sqlalchemy import func, select

from broadcaster.db import (
    Broadcast,
    BroadcastStatus,
    Delivery,
    Device,
    DeviceKind,
    Zone,
    ZoneKind,
)
from broadcaster.messages import DEFAULT_LANGUAGE, reason_text
from broadcaster.services import Services
from broadcaster.services.zones import zone_names
from schedules.clock import to_local


def device_view(d: Device) -> dict[str, Any]:
    return {
        "id": d.id,
        "kind": d.kind.value,
        "village": d.village_id,
        "name": d.name,
        "online": d.online,
        "last_seen": d.last_seen.isoformat() if d.last_seen else None,
        "last_seen_local": to_local(d.last_seen).strftime("%H:%M:%S %d/%m/%Y") if d.last_seen else None,
        "firmware": d.firmware,
        "volume": d.volume,
        "signal": d.signal,
    }


def list_devices(svc: Services) -> list[dict[str, Any]]:
    with svc.db.session() as session:
        return [device_view(d) for d in session.scalars(select(Device).order_by(Device.village_id, Device.id))]


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


def device_board(svc: Services, lang: str = DEFAULT_LANGUAGE) -> list[dict[str, Any]]:
    """The devices village by village, as the desk's board shows them: each with what it was last
    asked to play (its latest delivery: the item, the outcome and how far off its start was), so a
    speaker that went quiet, or plays late, is seen before a villager complains."""
    with svc.db.session() as session:
        latest = select(func.max(Delivery.id)).group_by(Delivery.device_id).scalar_subquery()
        last_play = {
            d.device_id: {
                "broadcast": b.id,
                "title": b.title,
                "start_at": b.start_at.isoformat(),
                "status": d.status.value,
                "reason": reason_text(d.reason, lang),
                "start_error_ms": d.start_error_ms,
            }
            for d, b in session.execute(
                select(Delivery, Broadcast).join(Broadcast, Broadcast.id == Delivery.broadcast_id).where(
                    Delivery.id.in_(latest)
                )
            )
        }
        villages: dict[str, dict[str, Any]] = {
            z.id: {"id": z.id, "name": z.name, "devices": []}
            for z in session.scalars(select(Zone).where(Zone.kind == ZoneKind.VILLAGE).order_by(Zone.id))
        }
        for d in session.scalars(select(Device).order_by(Device.village_id, Device.kind, Device.id)):
            village = villages.setdefault(d.village_id, {"id": d.village_id, "name": d.village_id, "devices": []})
            village["devices"].append({**device_view(d), "last_play": last_play.get(d.id)})
    for v in villages.values():
        v["online"] = sum(1 for d in v["devices"] if d["online"])
    return list(villages.values())
