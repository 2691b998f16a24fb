"""Questions about zones that every wing asks the same way: which villages a zone covers, and which
zones a village belongs to. Plain reads, so dispatch and the broker's ACL share them with the services."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from broadcaster.db.models import Zone, ZoneKind, ZoneMember


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


def device_zones(session: Session, village_id: str) -> list[str]:
    """Every zone a device in this village belongs to: the commune, the village, its named groups."""
    communes = list(session.scalars(select(Zone.id).where(Zone.kind == ZoneKind.COMMUNE).order_by(Zone.id)))
    member_of = select(ZoneMember.group_id).where(ZoneMember.village_id == village_id)
    groups = list(session.scalars(member_of.order_by(ZoneMember.group_id)))
    return list(dict.fromkeys([*communes, village_id, *groups]))
