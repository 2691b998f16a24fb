"""What goes in and out of the HTTP API, as pydantic models: the OpenAPI document built from them
(`/api/v1/openapi.json`) is the contract, docs/api.md its prose.

Request models refuse unknown fields (a typo is an error, not a silently ignored field). Response
models also refuse fields they do not declare: the services return plain dicts, and a field a service
adds without adding it here fails the tests loudly instead of vanishing from the API. Times stay the
strings the services format (ISO 8601 `...+00:00`, and the commune's wall clock for people).
"""

from __future__ import annotations

from enum import StrEnum
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field


class Priority(StrEnum):
    """Thông tư 39/2020/TT-BTTTT's three levels; only an emergency sounds in quiet hours."""

    NORMAL = "normal"
    PRIORITY = "priority"
    EMERGENCY = "emergency"


class ProgrammeKind(StrEnum):
    RELAY = "relay"  # a higher station's stream at fixed hours
    NOTICE = "notice"  # a text repeated by a rule
    BULLETIN = "bulletin"  # a window that items are queued in


class _In(BaseModel):
    model_config = ConfigDict(extra="forbid")


class _Out(BaseModel):
    model_config = ConfigDict(extra="forbid")


# ---------------------------------------------------------------- requests


class AnnouncementIn(_In):
    text: str = Field(description="What to say, as written; numbers and abbreviations are read out properly.")
    zones: list[str] = Field(default=["all"], description="Zone ids; 'all' is the whole commune.")
    at: str | None = Field(
        default=None,
        description="Start: '17:30', '2026-11-25 06:00' (Asia/Ho_Chi_Minh), ISO 8601, '+5m'; null = now.",
    )
    title: str | None = Field(default=None, description="Shown on LED boards; defaults to the first line.")
    priority: Priority = Field(default=Priority.NORMAL, description="Only an emergency sounds in quiet hours.")
    bulletin: int | None = Field(default=None, description="Queue it in this bulletin programme's next bulletin.")
    order: int | None = Field(default=None, description="Order among clashing priority items; smaller first.")


class ProgrammeIn(_In):
    kind: ProgrammeKind
    title: str
    zones: list[str] = Field(default=["all"])
    recurrence: str = Field(description='"06:00", "06:00 và 17:00 trong 3 ngày", "weekdays 06:30", ...')
    stream_url: str | None = Field(default=None, description="relay: the http(s) stream")
    duration_s: float | None = Field(default=None, description="relay: how long; bulletin: the window's length")
    text: str | None = Field(default=None, description="notice: what to say")
    priority: Priority = Field(default=Priority.NORMAL, description="normal or priority (not emergency)")


class RenderIn(_In):
    text: str


# ---------------------------------------------------------------- errors


class ErrorBody(_Out):
    code: str = Field(description="English, for programs: empty_text, unknown_zone, audio_corrupt, ...")
    message: str = Field(description="For people, in the Accept-Language asked for (Vietnamese by default).")
    params: dict[str, str | int | float | bool] = Field(
        default_factory=dict, description="The values the message names (the unknown zone, the time that passed)."
    )


class ErrorOut(_Out):
    error: ErrorBody


_WHEN = {
    400: "Bad input (empty text, a time that passed or cannot be read, ...); nothing is stored.",
    404: "It does not exist (a zone, an announcement, a render, a file).",
    409: "The planner cannot place it (quiet hours, a full timeline); nothing is stored.",
    422: "invalid_request (malformed JSON, a missing or unknown field, a wrong type or value), or audio_*.",
}


def refusals(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """The 4xx answers a route may give, all in the one error shape, for its `responses=`."""
    return {status: {"model": ErrorOut, "description": _WHEN[status]} for status in statuses}


# ---------------------------------------------------------------- announcements


class AudioOut(_Out):
    sha256: str | None
    size: int | None
    duration_ms: int | None
    engine: str | None
    url: str


class BroadcastOut(_Out):
    id: int
    announcement_id: int | None
    zone: str
    start_at: str
    start_at_local: str
    expires_at: str
    status: str
    late: bool
    reason: str = Field(description="Why it ended as it did, in the Accept-Language asked for.")
    priority: str
    explanation: str = Field(description="Why the planner placed it there.")
    deliveries: dict[str, int] = Field(description="Devices by delivery state.")
    summary: str


class BroadcastListed(BroadcastOut):
    title: str


class PlacementOut(_Out):
    airing: str
    title: str
    villages: list[str]
    village_names: list[str]
    start_at: str
    start_at_local: str
    end_at_local: str
    priority: str
    code: str = Field(description="as_requested, moved, moved_quiet_hours, group_aligned, emergency, ...")
    explanation: str


class AnnouncementOut(_Out):
    id: int
    title: str
    text: str
    priority: str
    created_by: str
    audio: AudioOut
    broadcasts: list[BroadcastOut] = Field(description="One per village; a placement's villages start together.")
    summary: str = Field(description="On how many speakers it played.")


class AnnouncementCreated(AnnouncementOut):
    placements: list[PlacementOut] = Field(description="Where the planner put it, and why.")
    moved: list[PlacementOut] = Field(description="Other planned items it displaced, with their new times.")


class PreviewAudio(_Out):
    duration_ms: int
    engine: str


class AnnouncementPreview(_Out):
    preview: Literal[True]
    title: str
    placements: list[PlacementOut]
    moved: list[PlacementOut]
    audio: PreviewAudio


# ---------------------------------------------------------------- programmes and renders


class WindowOut(_Out):
    id: str
    title: str
    start_at_local: str
    end_at_local: str


class ProgrammeCreated(_Out):
    """A relay or notice comes back with its placements, a bulletin with its windows."""

    id: int
    kind: ProgrammeKind
    title: str
    recurrence: str
    placements: list[PlacementOut] | None = None
    windows: list[WindowOut] | None = None
    preview: bool | None = None


class ProgrammeOut(_Out):
    id: int
    kind: ProgrammeKind
    title: str
    zones: list[str]
    recurrence: str
    duration_s: float
    stream_url: str | None
    active: bool


class RenderAudio(_Out):
    sha256: str
    duration_ms: int
    engine: str


class RenderOut(_Out):
    id: str
    state: Literal["running", "done", "failed"]
    done: int = Field(description="Sentences rendered so far.")
    total: int
    audio: RenderAudio | None = None
    error: ErrorBody | None = None


# ---------------------------------------------------------------- what the officer watches


class DeliveryOut(_Out):
    broadcast: int
    title: str
    device: str
    status: str
    reason: str = Field(description="In the Accept-Language asked for.")
    start_error_ms: float | None = Field(description="How far the speaker's start was off, in ms.")
    start_at_local: str
    updated_at: str


class DeviceOut(_Out):
    id: str
    kind: str
    village: str
    name: str
    online: bool
    last_seen: str | None
    firmware: str
    volume: int | None
    signal: int | None


class ZoneOut(_Out):
    id: str
    name: str
    kind: str
    parent: str | None


class TimelineRow(_Out):
    broadcast: int
    announcement: int | None
    programme: int | None
    kind: str
    title: str
    zone: str
    zone_name: str
    start_at: str
    end_at: str
    start_at_local: str
    priority: str
    status: str
    explanation: str
    reason: str = Field(description="Why it was missed or cancelled, if it was, in the Accept-Language asked for.")
    stream_url: str | None


class ReportOut(_Out):
    start: str = Field(alias="from")
    end: str = Field(alias="to")
    items: int
    plays: int = Field(description="Speakers that played an item to the end.")
    relay_plays: int
    text: str


class WarningOut(_Out):
    broadcast: int
    title: str
    zone: str
    start_at_local: str
    offline_speakers: list[str]
    message: str


class HealthOut(_Out):
    ok: bool
    version: str
