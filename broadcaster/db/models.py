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
    Float,
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
    # The device clock minus the daemon's, as the device last measured it (docs/protocol.md `time`), the
    # round trip of that measurement, and when it was said; NULL until the device says (migration 0012).
    clock_offset_ms: Mapped[float | None] = mapped_column(Float, default=None)
    clock_delay_ms: Mapped[float | None] = mapped_column(Float, default=None)
    clock_checked_at: Mapped[datetime | None] = mapped_column(default=None)
    # Mosquitto password-file hash of the device's broker password; the password itself is only
    # ever in the provisioning file handed to the technician.
    broker_password_hash: Mapped[str] = mapped_column(String(200), default="")
    created_at: Mapped[datetime] = mapped_column(default=lambda: datetime.now(UTC))


class DeviceStatusEvent(Base):
    """A device going online or offline, as the daemon learned it (dispatch/events.py): `devices.online`
    only says what is true now, and a report must say when each speaker was away and for how long.
    Only changes are written (a status that repeats the current one adds no row)."""

    __tablename__ = "device_status_events"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    device_id: Mapped[str] = mapped_column(ForeignKey("devices.id"))
    at: Mapped[datetime]
    online: Mapped[bool]

    __table_args__ = (Index("ix_device_status_events_device_at", "device_id", "at"),)


class AnnouncementState(enum.StrEnum):
    """Where an announcement stands on its way to the planner (services/approvals.py). What happens
    after approval (scheduled, on air, aired, recalled) is read from its broadcasts, not stored twice."""

    DRAFT = "draft"  # saved, nothing rendered or planned; its author may still change it
    AWAITING_APPROVAL = "awaiting_approval"  # rendered, waiting for an approver
    APPROVED = "approved"  # handed to the planner: by an approver, or it needed no approval
    REJECTED = "rejected"  # sent back with a reason; editing it makes it a draft again


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
    engine: Mapped[str | None] = mapped_column(String(32), default=None)  # who spoke: espeak, fpt, recording...
    # The voice asked for (services/speech.py VoiceChoice), kept so that every render of this item, preview
    # included, sounds the same; "" for items stored before choices were recorded (the commune's voice).
    voice_engine: Mapped[str] = mapped_column(String(32), default="")
    voice: Mapped[str] = mapped_column(String(64), default="")
    speaking_rate: Mapped[float | None] = mapped_column(Float, default=None)
    state: Mapped[AnnouncementState] = mapped_column(
        Enum(AnnouncementState, native_enum=False, length=24), default=AnnouncementState.APPROVED
    )
    # What the officer asked for, kept so that a draft can be edited and an approval planned later.
    targets: Mapped[str] = mapped_column(Text, default="[]")  # JSON list of zone ids
    start_at: Mapped[datetime | None] = mapped_column(default=None)  # None: as soon as it is approved
    bulletin_id: Mapped[int | None] = mapped_column(default=None)  # queue it in this bulletin programme
    order_key: Mapped[int | None] = mapped_column(default=None)
    updated_at: Mapped[datetime | None] = mapped_column(default=None)
    submitted_at: Mapped[datetime | None] = mapped_column(default=None)
    submitted_by: Mapped[str] = mapped_column(String(100), default="")
    decided_at: Mapped[datetime | None] = mapped_column(default=None)
    decided_by: Mapped[str] = mapped_column(String(100), default="")
    decision_reason: Mapped[str] = mapped_column(String(500), default="")  # why it was sent back
    # How it reached the planner: "approver", "emergency" (its own second look), "not_required"
    # ([security] require_approval = false) or "command_line" (the server's own operator); "" before.
    approved_via: Mapped[str] = mapped_column(String(16), default="")
    broadcasts: Mapped[list[Broadcast]] = relationship(back_populates="announcement")

    __table_args__ = (Index("ix_announcements_state", "state"),)

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


class Clip(Base):
    """Sound loa airs on its own account, not an officer's announcement: a bulletin's opening and
    closing chimes and its spoken heading ("Bản tin sáng ngày 25 tháng 11"). Kept apart from the
    announcements so they take no announcement number (the officer's items stay #3, #4, not #3, #7),
    appear in no list of announcements and are no item in a report. Made once per kind and title and
    reused by every bulletin that airs the same piece."""

    __tablename__ = "clips"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    kind: Mapped[str] = mapped_column(String(16))  # chime_open | heading | chime_close (schedules.AiringKind)
    title: Mapped[str] = mapped_column(String(300))
    audio_sha256: Mapped[str] = mapped_column(String(64))
    audio_size: Mapped[int]
    audio_duration_ms: Mapped[int]
    audio_ext: Mapped[str] = mapped_column(String(8), default="mp3")
    engine: Mapped[str | None] = mapped_column(String(32), default=None)
    created_at: Mapped[datetime]

    __table_args__ = (Index("ix_clips_kind_title", "kind", "title"),)


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
    # An officer's programme waits for an approver like an announcement (services/approvals.py); only
    # APPROVED ones are expanded. Never DRAFT: a programme is submitted when it is made.
    state: Mapped[AnnouncementState] = mapped_column(
        Enum(AnnouncementState, native_enum=False, length=24), default=AnnouncementState.APPROVED
    )
    decided_at: Mapped[datetime | None] = mapped_column(default=None)
    decided_by: Mapped[str] = mapped_column(String(100), default="")
    decision_reason: Mapped[str] = mapped_column(String(500), default="")  # why it was sent back


class Broadcast(Base):
    """One planned airing of one item in one zone (a village, as placed by the planner).

    Rows that share `airing_id` and `start_at` are one placement of the planner: the villages of a
    group start together.
    """

    __tablename__ = "broadcasts"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    announcement_id: Mapped[int | None] = mapped_column(ForeignKey("announcements.id"), default=None)
    programme_id: Mapped[int | None] = mapped_column(ForeignKey("programmes.id"), default=None)
    clip_id: Mapped[int | None] = mapped_column(ForeignKey("clips.id"), default=None)  # a bulletin's frame
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
    clip: Mapped[Clip | None] = relationship()
    deliveries: Mapped[list[Delivery]] = relationship(back_populates="broadcast")

    __table_args__ = (
        Index("ix_broadcasts_status_start", "status", "start_at"),
        Index("ix_broadcasts_airing", "airing_id"),
        Index("ix_broadcasts_start", "start_at"),  # reports read a period of every status
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
    # Seconds of sound the device says it gave out (a relay: seconds relayed); None when it did not say
    played_s: Mapped[float | None] = mapped_column(Float, default=None)
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


class Role(enum.StrEnum):
    """What a person may do: an admin runs the system (people, devices, zones, keys), an officer
    composes and schedules, an approver approves or rejects what officers compose, a viewer reads."""

    ADMIN = "admin"
    OFFICER = "officer"
    APPROVER = "approver"
    VIEWER = "viewer"


class User(Base):
    """A person who signs in. The password is kept only as an argon2 hash; an empty hash never matches."""

    __tablename__ = "users"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    username: Mapped[str] = mapped_column(String(64))
    display_name: Mapped[str] = mapped_column(String(200), default="")
    role: Mapped[Role] = mapped_column(Enum(Role, native_enum=False, length=16))
    password_hash: Mapped[str] = mapped_column(String(200), default="")
    # A generated password was shown once (to whoever ran `loa user add --generate`, or in the banner):
    # a session signed in with it may only choose a new one.
    must_change_password: Mapped[bool] = mapped_column(default=False)
    active: Mapped[bool] = mapped_column(default=True)
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]

    __table_args__ = (UniqueConstraint("username", name="uq_users_username"),)


class ApiToken(Base):
    """A long random secret for programs (scripts, the harness); only its SHA-256 is kept, which is
    enough for 256 random bits. It acts for its owner, never beyond `role` nor beyond the owner's role."""

    __tablename__ = "api_tokens"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    name: Mapped[str] = mapped_column(String(100))
    role: Mapped[Role] = mapped_column(Enum(Role, native_enum=False, length=16))
    secret_sha256: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime]
    last_used_at: Mapped[datetime | None] = mapped_column(default=None)
    revoked_at: Mapped[datetime | None] = mapped_column(default=None)
    # What it may do beyond its role, comma-separated (services/accounts.py SCOPES: "alerts:ingest").
    scopes: Mapped[str] = mapped_column(String(200), default="")

    __table_args__ = (
        UniqueConstraint("secret_sha256", name="uq_api_tokens_secret"),
        Index("ix_api_tokens_user", "user_id"),
    )


class UserSession(Base):
    """A browser's sign-in: the cookie holds the secret, this row its SHA-256 and the CSRF token that
    every state-changing request made with the cookie must repeat."""

    __tablename__ = "user_sessions"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    secret_sha256: Mapped[str] = mapped_column(String(64))
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    csrf_token: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime]
    expires_at: Mapped[datetime]
    last_seen_at: Mapped[datetime]

    __table_args__ = (
        UniqueConstraint("secret_sha256", name="uq_user_sessions_secret"),
        Index("ix_user_sessions_user", "user_id"),
    )


class LexiconEntry(Base):
    """A reading of the commune's own (an abbreviation, a hamlet's or a person's name), merged over the
    configured `[speech] lexicon` for every render. `written_key` is the written form case-folded: one
    entry per word, however it is capitalised."""

    __tablename__ = "lexicon"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    written: Mapped[str] = mapped_column(String(100))
    written_key: Mapped[str] = mapped_column(String(100))
    spoken: Mapped[str] = mapped_column(String(300))
    created_at: Mapped[datetime]
    created_by: Mapped[str] = mapped_column(String(100))
    updated_at: Mapped[datetime]
    updated_by: Mapped[str] = mapped_column(String(100))

    __table_args__ = (UniqueConstraint("written_key", name="uq_lexicon_written_key"),)


class Slogan(Base):
    """A khẩu hiệu the LED boards show in turn, in `position` order, while nothing else is on them."""

    __tablename__ = "slogans"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    text: Mapped[str] = mapped_column(String(2000))
    active: Mapped[bool] = mapped_column(default=True)
    position: Mapped[int] = mapped_column(default=0)
    zones: Mapped[str] = mapped_column(Text, default="[]")  # JSON list of zone ids; empty: every board
    created_at: Mapped[datetime]
    created_by: Mapped[str] = mapped_column(String(100))
    updated_at: Mapped[datetime]
    updated_by: Mapped[str] = mapped_column(String(100))


class Feedback(Base):
    """What a villager said about a speaker or the village's broadcasts, from a QR code's form
    (services/feedback.py). Nothing personal beyond what they typed: the phone number only if they
    gave it (shown to officers and admins alone), the address only as a keyed hash; purged after
    `[villagers] feedback_retention_days`."""

    __tablename__ = "feedback"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    village_id: Mapped[str] = mapped_column(ForeignKey("zones.id"))
    device_id: Mapped[str | None] = mapped_column(ForeignKey("devices.id"), default=None)  # a speaker's own QR
    category: Mapped[str] = mapped_column(String(16))  # unclear | too_loud | broken | content
    text: Mapped[str] = mapped_column(String(1000), default="")
    phone: Mapped[str] = mapped_column(String(20), default="")
    created_at: Mapped[datetime]
    client_hash: Mapped[str] = mapped_column(String(32), default="")  # HMAC of the address, never the address
    handled_at: Mapped[datetime | None] = mapped_column(default=None)
    handled_by: Mapped[str] = mapped_column(String(100), default="")
    reply: Mapped[str] = mapped_column(String(1000), default="")

    __table_args__ = (
        Index("ix_feedback_created", "created_at"),
        Index("ix_feedback_device", "device_id", "handled_at"),
    )



class AlertSource(Base):
    """An official source of alerts as last seen (its settings are `[alerts.sources]`): whether what it
    sent was taken, and the reason of its last refusal or failed fetch, for the officer to read."""

    __tablename__ = "alert_sources"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String(40))
    kind: Mapped[str] = mapped_column(String(16))  # cap-url, cap-post, tt39
    url: Mapped[str] = mapped_column(String(2000), default="")
    status: Mapped[str] = mapped_column(String(16), default="new")  # new, ok, rejected, failing
    last_error: Mapped[str] = mapped_column(String(500), default="")  # a coded reason (messages.py)
    last_seen_at: Mapped[datetime | None] = mapped_column(default=None)
    last_ok_at: Mapped[datetime | None] = mapped_column(default=None)

    __table_args__ = (UniqueConstraint("name", name="uq_alert_sources_name"),)


class ReceivedAlert(Base):
    """An alert (CAP) or bulletin (TT39) as received, and what became of it. Its (sender, identifier,
    sent) is unique: a replay is refused, and an Update or a Cancel finds what it refers to."""

    __tablename__ = "received_alerts"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    source: Mapped[str] = mapped_column(String(40))
    sender: Mapped[str] = mapped_column(String(300))
    identifier: Mapped[str] = mapped_column(String(300))
    sent: Mapped[datetime]
    msg_type: Mapped[str] = mapped_column(String(16))  # Alert, Update, Cancel
    references: Mapped[str] = mapped_column(Text, default="")  # CAP's "sender,identifier,sent ..." as received
    severity: Mapped[str] = mapped_column(String(16), default="")
    urgency: Mapped[str] = mapped_column(String(16), default="")
    certainty: Mapped[str] = mapped_column(String(16), default="")
    headline: Mapped[str] = mapped_column(String(300), default="")
    expires: Mapped[datetime | None] = mapped_column(default=None)
    received_at: Mapped[datetime]
    status: Mapped[str] = mapped_column(String(16))  # processing, aired, drafted, applied, rejected, cancelled
    reason: Mapped[str] = mapped_column(String(500), default="")  # a coded reason (messages.py)
    announcement_id: Mapped[int | None] = mapped_column(ForeignKey("announcements.id"), default=None)

    __table_args__ = (
        UniqueConstraint("sender", "identifier", "sent", name="uq_received_alerts_key"),
        Index("ix_received_alerts_identifier", "sender", "identifier"),
    )


class Feed(Base):
    """A news feed (RSS or Atom) the commune follows (services/feeds.py): where its new articles become
    drafts awaiting approval, how often it is read, what the server said last time (for a conditional
    GET), and whether that worked: `status` new | ok | failing, with the failure's catalogue key and
    params (broadcaster/messages.py), said in the reader's language. Removed feeds stay (inactive), so
    what they brought in keeps its origin."""

    __tablename__ = "feeds"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    url: Mapped[str] = mapped_column(String(2000))
    title: Mapped[str] = mapped_column(String(300), default="")
    targets: Mapped[str] = mapped_column(Text, default="[]")  # JSON list of zone ids; empty: every village
    poll_every_s: Mapped[int] = mapped_column(default=1800)
    active: Mapped[bool] = mapped_column(default=True)
    etag: Mapped[str] = mapped_column(String(500), default="")
    last_modified: Mapped[str] = mapped_column(String(100), default="")
    status: Mapped[str] = mapped_column(String(16), default="new")
    error_key: Mapped[str] = mapped_column(String(64), default="")
    error_params: Mapped[str] = mapped_column(Text, default="{}")
    last_result: Mapped[str] = mapped_column(Text, default="{}")  # JSON: drafts made, items skipped and why
    checked_at: Mapped[datetime | None] = mapped_column(default=None)
    ok_at: Mapped[datetime | None] = mapped_column(default=None)
    next_poll_at: Mapped[datetime | None] = mapped_column(default=None)
    created_at: Mapped[datetime]
    created_by: Mapped[str] = mapped_column(String(100))

    __table_args__ = (UniqueConstraint("url", name="uq_feeds_url"),)


class FeedItem(Base):
    """An article address a feed has named, once: `url_key` (the SHA-256 of the address without its
    fragment) is unique, so an article is drafted once however many feeds name it or pollers race, and
    `content_sha256` (of the body's words) finds the same article under another address. `outcome`:
    drafted (its announcement), duplicate (the announcement with the same words) or skipped (`reason`,
    a catalogue key, and its params: not an article, too long, too large)."""

    __tablename__ = "feed_items"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    feed_id: Mapped[int] = mapped_column(ForeignKey("feeds.id"))
    url: Mapped[str] = mapped_column(Text)
    url_key: Mapped[str] = mapped_column(String(64))
    content_sha256: Mapped[str] = mapped_column(String(64), default="")
    announcement_id: Mapped[int | None] = mapped_column(ForeignKey("announcements.id"), default=None)
    outcome: Mapped[str] = mapped_column(String(16))
    reason: Mapped[str] = mapped_column(String(64), default="")
    reason_params: Mapped[str] = mapped_column(Text, default="{}")
    seen_at: Mapped[datetime]

    __table_args__ = (
        UniqueConstraint("url_key", name="uq_feed_items_url_key"),
        Index("ix_feed_items_content", "content_sha256"),
    )


class RenderJob(Base):
    """A background render (`POST /api/v1/renders`) and its progress: in the database, so that whichever
    daemon of a cluster is asked answers it, whichever rendered it (broadcaster/api/renders.py). A failure
    is kept as its catalogue key and parameters, said in the language of whoever asks."""

    __tablename__ = "render_jobs"
    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    state: Mapped[str] = mapped_column(String(16))  # running | done | failed
    done: Mapped[int] = mapped_column(default=0)  # sentences rendered so far
    total: Mapped[int] = mapped_column(default=0)
    sha256: Mapped[str] = mapped_column(String(64), default="")
    duration_ms: Mapped[int] = mapped_column(default=0)
    engine: Mapped[str] = mapped_column(String(64), default="")
    error_key: Mapped[str] = mapped_column(String(100), default="")
    error_params: Mapped[str] = mapped_column(Text, default="{}")
    error_fallback: Mapped[str] = mapped_column(Text, default="")  # a domain error's own Vietnamese sentence
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]

    __table_args__ = (Index("ix_render_jobs_created_at", "created_at"),)


def audit(session: Session, at: datetime, actor: str, action: str, **detail: Any) -> None:
    session.add(AuditEntry(at=at, actor=actor, action=action, detail=json.dumps(detail, ensure_ascii=False)))
