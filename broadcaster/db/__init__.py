"""The database wing: models, bulk statements, the engine and its migrations.

Everything here is storage; what a person may do with it lives in `broadcaster.services`, and how it
reaches devices in `broadcaster.dispatch`. The names are re-exported so callers write
`from broadcaster.db import Broadcast, Database`.
"""

from broadcaster.db.bulk import BulkStatement
from broadcaster.db.engine import Database, make_engine
from broadcaster.db.models import (
    DELIVERY_RANK,
    FINAL_DELIVERY,
    Announcement,
    AnnouncementState,
    ApiToken,
    AuditEntry,
    Base,
    Broadcast,
    BroadcastStatus,
    Clip,
    Command,
    Delivery,
    DeliveryStatus,
    Device,
    DeviceKind,
    LexiconEntry,
    Programme,
    Role,
    Slogan,
    User,
    UserSession,
    UTCDateTime,
    Zone,
    ZoneKind,
    ZoneMember,
    audit,
)
from broadcaster.db.queries import device_zones, villages_of

__all__ = [
    "DELIVERY_RANK",
    "FINAL_DELIVERY",
    "Announcement",
    "AnnouncementState",
    "ApiToken",
    "AuditEntry",
    "Base",
    "Broadcast",
    "BroadcastStatus",
    "BulkStatement",
    "Clip",
    "Command",
    "Database",
    "Delivery",
    "DeliveryStatus",
    "Device",
    "DeviceKind",
    "LexiconEntry",
    "Programme",
    "Role",
    "Slogan",
    "UTCDateTime",
    "User",
    "UserSession",
    "Zone",
    "ZoneKind",
    "ZoneMember",
    "audit",
    "device_zones",
    "make_engine",
    "villages_of",
]
