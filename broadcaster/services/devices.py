"""The devices the officer watches: who is online, and which coming airings an offline speaker will miss."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from sqlalchemy import select

from broadcaster.db import (
    Broadcast,
    BroadcastStatus,
    Device,
    DeviceKind,
)
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
