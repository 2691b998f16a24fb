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


class VoiceIn(_In):
    """How an item is read; what is left out is the commune's (`[speech]`). GET /voices lists the choices."""

    engine: str | None = Field(default=None, description="As [speech] engine: espeak, fpt+espeak, piper+espeak, ...")
    voice: str | None = Field(default=None, description="The first engine's voice: vi, vi-vn-x-south, banmai, ...")
    rate: float | None = Field(default=None, ge=0.5, le=2.0, description="Speaking rate: 1.0 as the voice speaks.")


class VoiceOut(_Out):
    engine: str
    voice: str
    rate: float | None


class VoiceOption(_Out):
    engine: str
    voice: str
    label: str = Field(description="The voice's name, in the language asked for.")
    default: bool = Field(description="The commune's own voice ([speech]).")


class AnnouncementIn(_In):
    text: str = Field(description="What to say, as written; numbers and abbreviations are read out properly.")
    zones: list[str] = Field(default=["all"], description="Zone ids; 'all' is the whole commune.")
    at: str | None = Field(
        default=None,
        description="Start: ISO 8601 (without an offset: Asia/Ho_Chi_Minh), '+5m', or as an officer types it on "
        "the commune's clock: '17:30', '7h30 tối', '25/12 7h30', 'ngày mai 7h', 'thứ hai 7h30'; null = now.",
    )
    title: str | None = Field(default=None, description="Shown on LED boards; defaults to the first line.")
    priority: Priority = Field(default=Priority.NORMAL, description="Only an emergency sounds in quiet hours.")
    bulletin: int | None = Field(default=None, description="Queue it in this bulletin programme's next bulletin.")
    order: int | None = Field(default=None, description="Order among clashing priority items; smaller first.")
    confirmation: str | None = Field(
        default=None, description="emergency: the code of the 409 confirm_emergency answer to this same request."
    )
    reason: str | None = Field(default=None, description="emergency: why it is sent, for the audit log.")
    draft: bool = Field(
        default=False,
        description="Save it as a draft: checked and stored, nothing rendered or planned; submit it later. "
        "Otherwise it is submitted: it waits for approval when [security] require_approval is on.",
    )
    voice: VoiceIn | None = Field(default=None, description="How it is read; null: the commune's voice.")


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
    voice: VoiceIn | None = Field(default=None, description="As the announcement will ask: the preview is its audio.")


class RecallIn(_In):
    reason: str = Field(default="", description="Why it is recalled (a false alarm, a wrong text), for the record.")


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
    401: "not_signed_in: no valid session cookie or Authorization: Bearer token.",
    403: "forbidden (the role may not), bad_csrf (a cookie request without its CSRF token), bad_origin.",
    429: "too_many_attempts: too many failed sign-ins for this name or address; params.retry_after_s.",
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
    url: str | None = Field(description="On the audio listener, as devices fetch it; null: a draft not rendered.")


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


class RecallRecordOut(_Out):
    by: str = Field(description="Who recalled it (the person acting).")
    at: str
    at_local: str
    reason: str


AnnouncementState = Literal[
    "draft", "awaiting_approval", "rejected", "approved", "scheduled", "on_air", "aired", "recalled", "missed"
]


class MomentOut(_Out):
    at: str | None
    at_local: str | None


class ApprovalOut(_Out):
    submitted_by: str | None = Field(description="Who sent it for approval (or on to the planner).")
    submitted: MomentOut
    decision: Literal["approved", "rejected"] | None
    decided_by: str | None = Field(description="Who approved or rejected it (or sent it on, when none was needed).")
    decided: MomentOut
    reason: str = Field(description="Why it was rejected: what to fix.")
    via: Literal["approver", "emergency", "not_required", "command_line"] | None = Field(
        description="How it reached the planner: approved; an emergency (its own confirmation); approval not "
        "required; the server's own command line. Null before it did (and for items older than approval)."
    )


class RequestOut(_Out):
    zones: list[str]
    start_at: str | None = Field(description="The start asked for; null: as soon as it is approved.")
    start_at_local: str | None
    bulletin: int | None
    order: int | None


class AnnouncementOut(_Out):
    id: int
    title: str
    text: str
    priority: str
    created_by: str
    created_at: str
    state: AnnouncementState = Field(
        description="draft, awaiting_approval, rejected; once approved: scheduled, on_air, aired, recalled or missed "
        "(read from its broadcasts)."
    )
    approval: ApprovalOut
    request: RequestOut = Field(description="What was asked: a draft is edited from it, an approval planned by it.")
    voice: VoiceOut | None = Field(description="How it is read; null for a recording.")
    audio: AudioOut
    broadcasts: list[BroadcastOut] = Field(description="One per village; a placement's villages start together.")
    summary: str = Field(description="On how many speakers it played.")
    recall: RecallRecordOut | None = Field(description="Who recalled it, when and why; null if nobody did.")


class RecallOut(_Out):
    id: int
    title: str
    recall: RecallRecordOut = Field(description="The first recall of this announcement (this one, or an earlier).")
    already_recalled: bool = Field(description="True when it had been recalled before this request.")
    cancelled_before_dispatch: int = Field(description="Broadcasts (one airing in one village) never sent.")
    cancelled_after_dispatch: int = Field(description="Broadcasts already sent: their plays are revoked.")
    devices_to_stop: int = Field(description="Devices the daemon sends a signed stop to, at once.")
    programmes_stopped: int = Field(description="Recurring programmes of this item made inactive.")
    summary: str


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
    state: str | None = Field(
        default=None, description="approved (placed), or awaiting_approval (placed once an approver approves it)"
    )


class ProgrammeOut(_Out):
    id: int
    kind: ProgrammeKind
    title: str
    zones: list[str]
    recurrence: str
    duration_s: float
    stream_url: str | None
    active: bool
    state: str = Field(default="approved", description="awaiting_approval, approved or rejected")
    created_by: str = ""
    decided_by: str = Field(default="", description="The approver who decided; empty if nobody had to.")
    decision_reason: str = Field(default="", description="Why it was rejected.")


class ProgrammeWaiting(ProgrammeOut):
    """A programme as its approver judges it."""

    created_at: str
    text: str = Field(description="A notice's text (what it will say each time); empty for a relay or bulletin.")
    announcement: int | None = Field(description="A notice's announcement: its audio is /announcements/{id}/audio.")
    may_approve: bool = Field(description="Whether the person asking may approve it (their role, not their own).")


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
    last_seen_local: str | None = Field(default=None, description="The same, on the commune's wall clock.")
    firmware: str
    volume: int | None
    signal: int | None
    clock_offset_ms: float | None = Field(
        default=None,
        description="The daemon's clock minus the device's, as the device last measured it (+: its clock is "
        "behind); it corrects its starts by it. Null until measured.",
    )
    clock_delay_ms: float | None = Field(default=None, description="The round trip of that measurement.")
    clock_checked_at: str | None = Field(default=None, description="When the device said it.")


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
    plays: int = Field(description="Speakers heard: an item played to its end, a relay that relayed something.")
    relay_plays: int = Field(description="Of `plays`, relays that relayed at least a second.")
    relay_seconds: float = Field(description="Seconds the relays really relayed, summed over speakers, as they said.")
    text: str


class WarningOut(_Out):
    broadcast: int
    title: str
    zone: str
    start_at_local: str
    offline_speakers: list[str]
    message: str


class ClockWarningOut(_Out):
    broadcast: int
    title: str
    zone: str
    start_at_local: str
    speakers: dict[str, float]  # device -> its offset in ms (the daemon's clock minus its own)
    devices: list[str]
    bound_ms: float
    message: str


class HealthOut(_Out):
    ok: bool
    version: str
    failing: list[str] = Field(
        description="The daemon's parts that stopped (mqtt_loop, event_writer): what devices report is not recorded."
    )


# ---------------------------------------------------------------- people: sign-in, tokens, users

Role = Literal["admin", "officer", "approver", "viewer"]


class SignInIn(_In):
    username: str = Field(max_length=200)
    password: str = Field(max_length=2000)


class NewPasswordIn(_In):
    old_password: str = Field(max_length=2000)
    new_password: str = Field(max_length=2000, description="At least 8 characters.")


class UserOut(_Out):
    id: int
    username: str
    display_name: str
    role: Role
    active: bool
    must_change_password: bool = Field(description="Signed in with a one-time password: choose a new one first.")
    created_at: str


class SessionOut(_Out):
    user: UserOut
    via: Literal["session", "token"]
    csrf_token: str = Field(
        description="Send it as X-CSRF-Token (or the csrf_token form field) with every state-changing request "
        "made with the session cookie; empty for a token."
    )
    expires_at: str | None = None


class TokenIn(_In):
    name: str = Field(description="What it is for (a script, the harness).", max_length=200)
    role: Role | None = Field(default=None, description="At most the owner's role; default: the owner's role.")
    user: str | None = Field(default=None, description="Whose token (an admin's choice); default: yours.")
    scopes: list[Literal["alerts:ingest"]] = Field(
        default_factory=list, description="Rights beyond the role, given by an admin (alerts:ingest: post alerts)."
    )


class TokenOut(_Out):
    id: int
    user: str
    name: str
    role: Role
    created_at: str
    last_used_at: str | None
    revoked_at: str | None
    scopes: list[str] = Field(default_factory=list, description="Rights beyond the role (alerts:ingest).")


class TokenCreated(TokenOut):
    secret: str = Field(description="Authorization: Bearer <secret>. Shown this once; only its hash is kept.")


class UserIn(_In):
    username: str = Field(max_length=200)
    role: Role
    display_name: str = Field(default="", max_length=1000)
    password: str | None = Field(
        default=None, max_length=2000, description="Omit it to have one generated; either way it works once."
    )


class UserCreated(UserOut):
    password: str | None = Field(default=None, description="The generated password, shown this once.")


# ---------------------------------------------------------------- going live


class LiveIn(_In):
    zones: list[str] = Field(default=["all"], description="Zone ids; 'all' is the whole commune.")
    priority: Priority = Field(default=Priority.NORMAL, description="Only an emergency goes live in quiet hours.")
    title: str | None = Field(default=None, description="Shown in the lists; default 'Phát trực tiếp HH:MM dd/mm'.")
    format: str = Field(
        default="audio/webm;codecs=opus",
        max_length=200,
        description="The MediaRecorder's mimeType the slices come in: audio/webm, audio/ogg or audio/mp4.",
    )
    confirmation: str | None = Field(
        default=None, description="emergency: the code of the 409 confirm_emergency answer to this same request."
    )
    reason: str | None = Field(default=None, description="emergency: why it is sent, for the audit log.")


class LiveRecordingOut(_Out):
    sha256: str
    size: int
    duration_ms: int
    url: str = Field(description="On the audio listener, like any audio.")


class LiveOut(_Out):
    id: int = Field(description="The announcement the session is: recall it with DELETE /api/v1/announcements/{id}.")
    title: str
    priority: str
    zones: list[str]
    villages: list[str]
    village_names: list[str]
    state: str = Field(description="live, ending (storing the recording) or ended.")
    started_by: str
    started_at: str
    started_at_local: str
    start_at: str = Field(description="When the speakers were told to open the stream.")
    ended_at: str | None
    end_reason: str | None = Field(description="ended, idle, max_length, recalled, shutdown or encoder_failed.")
    end_text: str | None = Field(description="The same, in the Accept-Language asked for.")
    ended_by: str | None = Field(description="Who ended it; 'loa' when the daemon did (idle, max_length, ...).")
    seconds: float = Field(description="How long it has lasted, or lasted.")
    next_seq: int = Field(description="The number of the next slice the session takes.")
    bytes_in: int
    listeners: int = Field(description="Speakers reading the stream now.")
    summary: str = Field(description="On how many speakers it played.")
    chunk_url: str = Field(description="Where the slices go: POST it ?seq=N with the bytes.")
    idle_s: float
    max_s: float
    recording: LiveRecordingOut | None = Field(description="What was said, stored as the announcement's audio.")
    recording_problem: str | None = Field(description="Why there is no recording (empty, silent, ...).")


class LiveChunkOut(_Out):
    next_seq: int
    listeners: int
    seconds: float
    state: str


# ---------------------------------------------------------------- the officer's desk: approval, lexicon, slogans


class AnnouncementEdit(_In):
    """A draft's (or a rejected item's) changes: only the fields sent change; `at: null` is "as soon as
    it is approved"."""

    text: str | None = None
    zones: list[str] | None = None
    at: str | None = None
    title: str | None = None
    priority: Priority | None = None
    bulletin: int | None = None
    order: int | None = None
    voice: VoiceIn | None = None


class RejectIn(_In):
    reason: str = Field(description="What to fix; the officer reads it.")


class AnnouncementWaiting(AnnouncementOut):
    may_approve: bool = Field(description="Whether the person asking may approve it (their role, not their own).")


class AnnouncementListed(_Out):
    id: int
    title: str
    priority: str
    created_by: str
    created_at: str
    state: AnnouncementState
    approval: ApprovalOut
    request: RequestOut
    summary: str
    recall: RecallRecordOut | None


class LexiconIn(_In):
    written: str = Field(description="As it is written: UBND, Nà Hẩu, ông Nguyễn Văn A.")
    spoken: str = Field(description="How it is read, in words: ủy ban nhân dân.")


class LexiconEdit(_In):
    written: str | None = None
    spoken: str | None = None


class LexiconOut(_Out):
    id: int
    written: str
    spoken: str
    created_by: str
    updated_by: str
    updated_at: str
    updated_at_local: str


class ReadingIn(_In):
    text: str


class ExpansionOut(_Out):
    written: str = Field(description="The written piece, text[start:end].")
    spoken: str = Field(description="What it is read as, spoken[spoken_start:spoken_end]; empty: silent.")
    start: int
    end: int
    spoken_start: int
    spoken_end: int
    source: Literal["lexicon", "abbreviation", "rule"] = Field(
        description="The commune's lexicon, the built-in abbreviations, or a rule (numbers, dates, units, ...)."
    )


class ReadingOut(_Out):
    text: str
    spoken: str = Field(description="What the speakers will say, sentence by sentence; a new line between paragraphs.")
    expansions: list[ExpansionOut]


class SloganIn(_In):
    text: str = Field(description="At most [led] slogan_max_chars (200) characters.")
    zones: list[str] = Field(default_factory=list, description="The zones whose boards show it; empty: every board.")
    active: bool = True
    order: int | None = Field(default=None, description="Its place in the rotation, smaller first; default: last.")


class SloganEdit(_In):
    text: str | None = None
    zones: list[str] | None = None
    active: bool | None = None
    order: int | None = None


class SloganOut(_Out):
    id: int
    text: str
    active: bool
    order: int
    zones: list[str]
    updated_by: str
    updated_at: str
    updated_at_local: str

