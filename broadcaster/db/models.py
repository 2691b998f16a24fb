"""The database is the truth: what was asked, what was planned, what each device did.

The same models run on SQLite (embedded default) and PostgreSQL. Times are stored as naive UTC and
handed back as aware UTC (`UTCDateTime`), because SQLite has no time zones and mixing the two is how
broadcast software ends up an hour off.
"""

from __future__ import annotations

import enum
import json
import uuid
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, ClassVar

from sqlalchemy import (
    JSON,
    DateTime,
    Dialect,
    Enum,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column, relationship
from sqlalchemy.types import TypeDecorator

if TYPE_CHECKING:
    from audio import StoredAudio

class UTCDateTime(TypeDecorator[datetime]):
    impl = DateTime
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to the database; use aware UTC")
        return value.astimezone(UTC).replace(tzinfo=None)

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        return None if value is None else value.replace(tzinfo=UTC)


class Base(DeclarativeBase):
    type_annotation_map: ClassVar[dict[Any, Any]] = {datetime: UTCDateTime(), dict[str, Any]: JSON}


class ZoneKind(enum.StrEnum):
    COMMUNE = "commune"
    VILLAGE = "village"
    GROUP = "group"


class DeviceKind(enum.StrEnum):
    SPEAKER = "speaker"
    LED = "led"


class BroadcastStatus(enum.StrEnum):
    PLANNED = "planned"  # in the plan, commands not yet out
    DISPATCHED = "dispatched"  # commands in the outbox
    DONE = "done"  # every delivery ended
    MISSED = "missed"  # its validity passed before it could go out
    CANCELLED = "cancelled"


class DeliveryStatus(enum.StrEnum):
    QUEUED = "queued"
    SENT = "sent"
    RECEIVED = "received"
    DOWNLOADED = "downloaded"
    PLAYING = "playing"
    DONE = "done"
    FAILED = "failed"
    EXPIRED = "expired"


FINAL_DELIVERY = frozenset({DeliveryStatus.DONE, DeliveryStatus.FAILED, DeliveryStatus.EXPIRED})
# The order a delivery moves through; an ack that arrives out of order never moves it backwards.
DELIVERY_RANK = {s: i for i, s in enumerate(DeliveryStatus)}


class Zone(Base):
    __tablename__ = "zones"
    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    kind: Mapped[ZoneKind] = mapped_column(Enum(ZoneKind, native_enum=False, length=16))
    parent_id: Mapped[str | None] = mapped_column(ForeignKey("zones.id"), default=None)
    # Local wall-clock "HH:MM" bounds of this zone's quiet hours; None means the configured default.
    quiet_start: Mapped[str | None] = mapped_column(String(5), default=None)
    quiet_end: Mapped[str | None] = mapped_column(String(5), default=None)


class ZoneMember(Base):
    """A village's membership of a named group (a group is any set of villages)."""

    __tablename__ = "zone_members"
    group_id: Mapped[str] = mapped_column(ForeignKey("zones.id"), primary_key=True)
    village_id: Mapped[str] = mapped_column(ForeignKey("zones.id"), primary_key=True)


class Device(Base):
    __tablename__ = "devices"
    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    kind: Mapped[DeviceKind] = mapped_column(Enum(DeviceKind, native_enum=False, length=16))
    village_id: Mapped[str] = mapped_column(ForeignKey("zones.id"))
    name: Mapped[str] = mapped_column(String(200), default="")
    online: Mapped[bool] = mapped_column(default=False)
    last_seen: Mapped[datetime | None] = mapped_column(default=None)
    firmware: Mapped[str] = mapped_column(String(64), default="")
    volume: Mapped[int | None] = mapped_column(default=None)
    signal: Mapped[int | None] = mapped_column(default=None)
    diacritics: Mapped[bool] = mapped_column(default=True)  # LED boards that cannot show Vietnamese marks
    # Mosquitto password-file hash of the device's broker password; the password itself is only
    # ever in the provisioning file handed to the technician.
    broker_password_hash: Mapped[str] = mapped_column(String(200), default="")
    created_at: Mapped[datetime] = mapped_column(default=lambda: datetime.now(UTC))


class Announcement(Base):
    __tablename__ = "announcements"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    title: Mapped[str] = mapped_column(String(300))
    text: Mapped[str] = mapped_column(Text)
    priority: Mapped[str] = mapped_column(String(16), default="normal")
    created_at: Mapped[datetime]
    created_by: Mapped[str] = mapped_column(String(100))
    audio_sha256: Mapped[str | None] = mapped_column(String(64), default=None)
    audio_size: Mapped[int | None] = mapped_column(default=None)
    audio_duration_ms: Mapped[int | None] = mapped_column(default=None)
    audio_ext: Mapped[str] = mapped_column(String(8), default="mp3")
    engine: Mapped[str | None] = mapped_column(String(32), default=None)
    broadcasts: Mapped[list[Broadcast]] = relationship(back_populates="announcement")

    @classmethod
    def with_audio(
        cls,
        audio: StoredAudio,
        *,
        title: str,
        text: str,
        created_at: datetime,
        created_by: str,
        priority: str = "normal",
    ) -> Announcement:
        return cls(
            title=title,
            text=text,
            priority=priority,
            created_at=created_at,
            created_by=created_by,
            audio_sha256=audio.sha256,
            audio_size=audio.size,
            audio_duration_ms=audio.duration_ms,
            audio_ext=audio.path.suffix.lstrip("."),
            engine=audio.engine,
        )


class Programme(Base):
    """Something that airs by a rule: a relay of a higher station's stream, or a recurring notice.

    The daemon expands each programme into broadcasts a day or so ahead, through the planner; the
    airing ids are derived from the occurrence time, so expanding twice never duplicates anything.
    """

    __tablename__ = "programmes"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    kind: Mapped[str] = mapped_column(String(16))  # "relay" | "notice" | "bulletin"
    title: Mapped[str] = mapped_column(String(300))
    targets: Mapped[str] = mapped_column(Text)  # JSON list of zone ids
    recurrence: Mapped[str] = mapped_column(String(300))  # as the officer typed it
    starts_on: Mapped[str] = mapped_column(String(10))  # local date the rule was read against
    duration_ms: Mapped[int]
    stream_url: Mapped[str | None] = mapped_column(String(500), default=None)
    announcement_id: Mapped[int | None] = mapped_column(ForeignKey("announcements.id"), default=None)
    priority: Mapped[str] = mapped_column(String(16), default="normal")
    options: Mapped[str] = mapped_column(Text, default="{}")  # JSON; bulletins: lengths of their framing
    active: Mapped[bool] = mapped_column(default=True)
    created_at: Mapped[datetime]
    created_by: Mapped[str] = mapped_column(String(100))


class Broadcast(Base):
    """One planned airing of one item in one zone (a village, as placed by the planner).

    Rows that share `airing_id` and `start_at` are one placement of the planner: the villages of a
    group start together.
    """

    __tablename__ = "broadcasts"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    announcement_id: Mapped[int | None] = mapped_column(ForeignKey("announcements.id"), default=None)
    programme_id: Mapped[int | None] = mapped_column(ForeignKey("programmes.id"), default=None)
    title: Mapped[str] = mapped_column(String(300), default="")
    zone_id: Mapped[str] = mapped_column(ForeignKey("zones.id"))
    start_at: Mapped[datetime]
    expires_at: Mapped[datetime]
    airing_id: Mapped[str] = mapped_column(String(80), default="")
    window_id: Mapped[str] = mapped_column(String(80), default="")  # the bulletin it is queued in, if any
    order_key: Mapped[int] = mapped_column(default=0)  # the officer's order among priority items and in a bulletin
    kind: Mapped[str] = mapped_column(String(16), default="notice")
    priority: Mapped[str] = mapped_column(String(16), default="normal")
    duration_ms: Mapped[int] = mapped_column(default=0)
    code: Mapped[str] = mapped_column(String(40), default="")  # why it is placed where it is (planner code)
    explanation: Mapped[str] = mapped_column(String(500), default="")  # the same, for the officer
    status: Mapped[BroadcastStatus] = mapped_column(
        Enum(BroadcastStatus, native_enum=False, length=16), default=BroadcastStatus.PLANNED
    )
    late: Mapped[bool] = mapped_column(default=False)
    reason: Mapped[str] = mapped_column(String(300), default="")
    dispatched_at: Mapped[datetime | None] = mapped_column(default=None)
    announcement: Mapped[Announcement | None] = relationship(back_populates="broadcasts")
    programme: Mapped[Programme | None] = relationship()
    deliveries: Mapped[list[Delivery]] = relationship(back_populates="broadcast")

    __table_args__ = (
        Index("ix_broadcasts_status_start", "status", "start_at"),
        Index("ix_broadcasts_airing", "airing_id"),
    )


class Delivery(Base):
    """One device's outcome for one broadcast."""

    __tablename__ = "deliveries"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    broadcast_id: Mapped[int] = mapped_column(ForeignKey("broadcasts.id"))
    device_id: Mapped[str] = mapped_column(ForeignKey("devices.id"))
    status: Mapped[DeliveryStatus] = mapped_column(
        Enum(DeliveryStatus, native_enum=False, length=16), default=DeliveryStatus.QUEUED
    )
    reason: Mapped[str] = mapped_column(String(300), default="")
    start_error_ms: Mapped[float | None] = mapped_column(default=None)
    updated_at: Mapped[datetime]
    broadcast: Mapped[Broadcast] = relationship(back_populates="deliveries")

    __table_args__ = (
        UniqueConstraint("broadcast_id", "device_id", name="uq_delivery_broadcast_device"),
        Index("ix_deliveries_broadcast", "broadcast_id"),
    )


class Command(Base):
    """The outbox: every command meant for a device, kept until acknowledged or expired.

    The broker may drop queued messages or lose them in a crash; this table never does.
    """

    __tablename__ = "commands"
    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=lambda: str(uuid.uuid4()))
    device_id: Mapped[str] = mapped_column(ForeignKey("devices.id"))
    delivery_id: Mapped[int | None] = mapped_column(ForeignKey("deliveries.id"), default=None)
    type: Mapped[str] = mapped_column(String(32))
    payload: Mapped[str] = mapped_column(Text)  # the exact signed JSON sent on the wire
    created_at: Mapped[datetime]
    expires_at: Mapped[datetime]
    sent_at: Mapped[datetime | None] = mapped_column(default=None)
    send_count: Mapped[int] = mapped_column(default=0)
    acked_at: Mapped[datetime | None] = mapped_column(default=None)

    __table_args__ = (
        Index("ix_commands_device_pending", "device_id", "acked_at", "expires_at"),
        # One command per delivery: what makes issuing commands safe to retry after a crash or a race.
        UniqueConstraint("delivery_id", name="uq_command_delivery"),
    )


class AuditEntry(Base):
    """Every action a person took, who and when, for the commune's records."""

    __tablename__ = "audit_log"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    at: Mapped[datetime]
    actor: Mapped[str] = mapped_column(String(100))
    action: Mapped[str] = mapped_column(String(64))
    detail: Mapped[str] = mapped_column(Text, default="{}")


def audit(session: Session, at: datetime, actor: str, action: str, **detail: Any) -> None:
    session.add(AuditEntry(at=at, actor=actor, action=action, detail=json.dumps(detail, ensure_ascii=False)))
