"""The commune's villages and named groups of villages, and the devices placed in them."""

from __future__ import annotations

import re
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from broadcaster.db import (
    Device,
    DeviceKind,
    Zone,
    ZoneKind,
    ZoneMember,
    audit,
)
from broadcaster.errors import LoaError
from broadcaster.services import Services

COMMUNE_ZONE = "all"
ZONE_ID = re.compile(r"^[a-z0-9][a-z0-9-]{0,62}$")


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
        raise LoaError("bad_zone_id", {})
    if kind not in ("village", "group"):
        raise LoaError("bad_zone_kind", {})
    with svc.db.session() as session:
        if session.get(Zone, zone_id) is not None:
            raise LoaError("zone_exists", {"zone": zone_id}, status=409)
        if kind == "group":
            if not members:
                raise LoaError("empty_group", {})
            for m in members:
                z = session.get(Zone, m)
                if z is None or z.kind is not ZoneKind.VILLAGE:
                    raise LoaError("unknown_zone.village", {"zone": m}, status=404)
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


def resolve_zones(session: Session, zone_ids: list[str]) -> list[Zone]:
    if not zone_ids:
        raise LoaError("no_zone", {})
    zones = []
    for zid in dict.fromkeys(z.strip() for z in zone_ids):
        zone = session.get(Zone, zid)
        if zone is None:
            known = ", ".join(session.scalars(select(Zone.id).order_by(Zone.id)))
            raise LoaError("unknown_zone", {"zone": zid, "known": known}, status=404)
        zones.append(zone)
    return zones


def list_zones(svc: Services) -> list[dict[str, Any]]:
    with svc.db.session() as session:
        return [
            {"id": z.id, "name": z.name, "kind": z.kind.value, "parent": z.parent_id}
            for z in session.scalars(select(Zone).order_by(Zone.kind, Zone.id))
        ]
