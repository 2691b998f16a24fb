"""What can go on air, as small immutable values.

Everything the planner consumes is an `Airing`: one thing to play once, somewhere, inside a
time range. The kinds below (one-off notices, recurring notices, relays, emergency alerts,
bulletin windows) are ways of producing Airings, so the planner has one shape to reason about.

Priorities follow Thông tư 39/2020/TT-BTTTT for commune IP radio: *normal* items are fitted
into the programme, *priority* items go ahead of normal ones (the officer orders clashing
priority items), *emergency* plays at once and pre-empts everything in its zones. Relays of
a higher station sit below all three and give way to anything.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import IntEnum, StrEnum
from urllib.parse import urlsplit

from schedules.clock import utc
from schedules.errors import ErrorCode, ScheduleError
from schedules.heading import bulletin_heading
from schedules.recurrence import Recurrence, occurrences


class Priority(IntEnum):
    BACKGROUND = 0  # relays of a higher station
    NORMAL = 1  # "thông thường"
    PRIORITY = 2  # "ưu tiên"
    EMERGENCY = 3  # "khẩn cấp"


class AiringKind(StrEnum):
    NOTICE = "notice"  # an announcement (the lead's audio item)
    RELAY = "relay"  # a live stream, `Airing.stream_url`
    EMERGENCY = "emergency"
    CHIME_OPEN = "chime_open"  # bulletin framing, produced by the planner
    HEADING = "heading"  # spoken bulletin heading; its text is the Airing's title
    CHIME_CLOSE = "chime_close"


FRAMING_KINDS = frozenset({AiringKind.CHIME_OPEN, AiringKind.HEADING, AiringKind.CHIME_CLOSE})

DEFAULT_VALIDITY = timedelta(hours=2)
"""How long a notice stays worth airing after its requested time, unless told otherwise."""


def _aware(when: datetime) -> datetime:
    return utc(when)


@dataclass(frozen=True)
class Airing:
    """One thing to play once in the villages of `targets`.

    It may start at `earliest` or later and must have finished by `valid_until`; past that
    it is stale (a call to a meeting that has already begun). `order_key` is the officer's
    ordering: among priority items and within a bulletin, smaller goes first.
    `window_id` queues the item in a bulletin window instead of placing it on its own.
    `hold_after` keeps the timeline silent for a while after the airing ends: the gap between
    the repeats of an emergency alert is part of the alert, not free airtime.
    """

    id: str
    title: str
    kind: AiringKind
    priority: Priority
    duration: timedelta
    targets: frozenset[str]
    earliest: datetime
    valid_until: datetime
    order_key: int = 0
    window_id: str | None = None
    stream_url: str | None = None
    hold_after: timedelta = timedelta(0)

    def __post_init__(self) -> None:
        object.__setattr__(self, "targets", frozenset(self.targets))
        object.__setattr__(self, "earliest", _aware(self.earliest))
        object.__setattr__(self, "valid_until", _aware(self.valid_until))
        if not self.id:
            raise ScheduleError(ErrorCode.BAD_ID, "Mục phát cần có mã.", {})
        if self.duration <= timedelta(0):
            raise ScheduleError(
                ErrorCode.BAD_DURATION, f"'{self.title}': thời lượng phải lớn hơn 0.", {"title": self.title}
            )
        if not self.targets:
            raise ScheduleError(
                ErrorCode.UNKNOWN_ZONE,
                f"'{self.title}': chưa chọn vùng phát.",
                {"title": self.title},
                variant="no_targets",
            )
        if self.hold_after < timedelta(0):
            raise ScheduleError(
                ErrorCode.BAD_DURATION,
                f"'{self.title}': khoảng lặng sau không được âm.",
                {"title": self.title},
                variant="gap",
            )
        if self.valid_until <= self.earliest:
            raise ScheduleError(
                ErrorCode.END_BEFORE_START, f"'{self.title}': hết hiệu lực trước giờ bắt đầu.", {"title": self.title}
            )
        if self.valid_until - self.earliest < self.duration:
            raise ScheduleError(
                ErrorCode.END_BEFORE_START,
                f"'{self.title}': thời hạn hiệu lực ngắn hơn thời lượng, không thể phát trọn.",
                {"title": self.title},
                variant="too_short",
            )
        is_relay = self.kind is AiringKind.RELAY
        if is_relay != (self.priority is Priority.BACKGROUND):
            raise ScheduleError(
                ErrorCode.BAD_PRIORITY,
                f"'{self.title}': chỉ tiếp sóng mới có mức ưu tiên nền.",
                {"title": self.title},
                variant="background",
            )
        if (self.kind is AiringKind.EMERGENCY) != (self.priority is Priority.EMERGENCY):
            raise ScheduleError(
                ErrorCode.BAD_PRIORITY,
                f"'{self.title}': chỉ cảnh báo khẩn cấp mới có mức khẩn cấp.",
                {"title": self.title},
                variant="emergency",
            )
        if is_relay:
            check_relay_url(self.stream_url)
        elif self.stream_url is not None:
            raise ScheduleError(
                ErrorCode.BAD_RELAY_URL,
                f"'{self.title}': chỉ tiếp sóng mới có luồng.",
                {"title": self.title},
                variant="not_relay",
            )
        if self.window_id is not None and self.kind is not AiringKind.NOTICE and self.kind not in FRAMING_KINDS:
            raise ScheduleError(
                ErrorCode.UNKNOWN_WINDOW,
                f"'{self.title}': chỉ thông báo mới xếp vào bản tin được.",
                {"title": self.title},
                variant="not_notice",
            )

    @property
    def latest_start(self) -> datetime:
        return self.valid_until - self.duration


@dataclass(frozen=True)
class Placement:
    """An airing placed on the timelines of `villages`, all starting together at `start`.

    `code` is the machine reason (a `PlacementCode` value) and `explanation` the same in
    Vietnamese for the officer. `dispatched` is set by the caller once the command has gone
    to the loudspeakers; the planner never moves a dispatched placement (only an emergency
    can cut it).
    """

    airing: Airing
    villages: frozenset[str]
    start: datetime
    end: datetime
    code: str
    explanation: str
    dispatched: bool = False

    def __post_init__(self) -> None:
        object.__setattr__(self, "villages", frozenset(self.villages))
        object.__setattr__(self, "start", _aware(self.start))
        object.__setattr__(self, "end", _aware(self.end))


def check_relay_url(url: str | None) -> str:
    parts = urlsplit(url or "")
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ScheduleError(
            ErrorCode.BAD_RELAY_URL, f"Địa chỉ tiếp sóng '{url}' phải là http:// hoặc https://.", {"url": str(url)}
        )
    return url or ""


def _check_targets(targets: frozenset[str], what: str) -> None:
    if not targets:
        raise ScheduleError(
            ErrorCode.UNKNOWN_ZONE, f"'{what}': chưa chọn vùng phát.", {"title": what}, variant="no_targets"
        )


def notice(
    id: str,
    title: str,
    duration: timedelta,
    targets: Iterable[str],
    *,
    now: datetime,
    at: datetime | None = None,
    valid_until: datetime | None = None,
    priority: Priority = Priority.NORMAL,
    order_key: int = 0,
    window_id: str | None = None,
) -> Airing:
    """A one-off notice at `at`, or as soon as possible when `at` is None."""
    now = utc(now)
    earliest = now if at is None else utc(at)
    if earliest < now:
        raise ScheduleError(ErrorCode.IN_PAST, f"'{title}': giờ phát đã qua.", {"title": title}, variant="start")
    if priority not in (Priority.NORMAL, Priority.PRIORITY):
        raise ScheduleError(
            ErrorCode.BAD_PRIORITY,
            f"'{title}': thông báo chỉ ở mức thường hoặc ưu tiên.",
            {"title": title},
            variant="notice",
        )
    return Airing(
        id=id,
        title=title,
        kind=AiringKind.NOTICE,
        priority=priority,
        duration=duration,
        targets=frozenset(targets),
        earliest=earliest,
        valid_until=utc(valid_until) if valid_until is not None else earliest + DEFAULT_VALIDITY,
        order_key=order_key,
        window_id=window_id,
    )


def occurrence_id(series_id: str, at: datetime) -> str:
    """Stable per occurrence, so re-expanding a series never duplicates an airing."""
    return f"{series_id}@{utc(at):%Y%m%dT%H%M%SZ}"


@dataclass(frozen=True)
class NoticeSeries:
    """A notice repeated by a recurrence ("06:00 and 17:00 for 3 days")."""

    id: str
    title: str
    duration: timedelta
    targets: frozenset[str]
    recurrence: Recurrence
    validity: timedelta = DEFAULT_VALIDITY
    priority: Priority = Priority.NORMAL

    def __post_init__(self) -> None:
        _check_targets(self.targets, self.title)
        if self.validity < self.duration:
            raise ScheduleError(
                ErrorCode.END_BEFORE_START,
                f"'{self.title}': thời hạn hiệu lực ngắn hơn thời lượng.",
                {"title": self.title},
                variant="too_short",
            )

    def airings(self, start: datetime, end: datetime) -> list[Airing]:
        """One Airing per occurrence in [start, end)."""
        return [
            Airing(
                id=occurrence_id(self.id, at),
                title=self.title,
                kind=AiringKind.NOTICE,
                priority=self.priority,
                duration=self.duration,
                targets=frozenset(self.targets),
                earliest=at,
                valid_until=at + self.validity,
            )
            for at in occurrences(self.recurrence, start, end)
        ]


@dataclass(frozen=True)
class RelayProgramme:
    """A higher station's stream aired at fixed hours for a fixed time (06:00 daily, 30 min).

    Relays never move: the programme is live, so a cut relay rejoins the stream where it
    is, and the minutes under the cut are simply not heard.
    """

    id: str
    title: str
    stream_url: str
    duration: timedelta
    targets: frozenset[str]
    recurrence: Recurrence

    def __post_init__(self) -> None:
        check_relay_url(self.stream_url)
        _check_targets(self.targets, self.title)
        if self.duration <= timedelta(0):
            raise ScheduleError(
                ErrorCode.BAD_DURATION, f"'{self.title}': thời lượng phải lớn hơn 0.", {"title": self.title}
            )

    def airings(self, start: datetime, end: datetime) -> list[Airing]:
        return [
            Airing(
                id=occurrence_id(self.id, at),
                title=self.title,
                kind=AiringKind.RELAY,
                priority=Priority.BACKGROUND,
                duration=self.duration,
                targets=frozenset(self.targets),
                earliest=at,
                valid_until=at + self.duration,
                stream_url=self.stream_url,
            )
            for at in occurrences(self.recurrence, start, end)
        ]


@dataclass(frozen=True)
class EmergencyAlert:
    """An alert played now and repeated `repeats` times with `gap` of silence between.

    The gap lets people come out of their houses and listen; it is held silent (`hold_after`
    on every repeat but the last), so nothing, not even a relay, plays inside it.
    """

    id: str
    title: str
    duration: timedelta
    targets: frozenset[str]
    repeats: int = 3
    gap: timedelta = timedelta(minutes=1)
    validity: timedelta = timedelta(hours=1)

    def __post_init__(self) -> None:
        _check_targets(self.targets, self.title)
        if self.duration <= timedelta(0) or self.gap < timedelta(0):
            raise ScheduleError(
                ErrorCode.BAD_DURATION,
                f"'{self.title}': thời lượng và khoảng nghỉ không hợp lệ.",
                {"title": self.title},
                variant="alert",
            )
        if self.repeats < 1:
            raise ScheduleError(
                ErrorCode.NEVER_FIRES,
                f"'{self.title}': số lần phát phải từ 1 trở lên.",
                {"title": self.title},
                variant="repeats",
            )

    def airings(self, now: datetime) -> list[Airing]:
        """The repeats, the first at `now`; ids are "<id>#1", "<id>#2", ..."""
        now = utc(now)
        step = self.duration + self.gap
        return [
            Airing(
                id=f"{self.id}#{n + 1}",
                title=self.title,
                kind=AiringKind.EMERGENCY,
                priority=Priority.EMERGENCY,
                duration=self.duration,
                targets=frozenset(self.targets),
                earliest=now + n * step,
                valid_until=now + n * step + self.validity,
                hold_after=self.gap if n + 1 < self.repeats else timedelta(0),
            )
            for n in range(self.repeats)
        ]


@dataclass(frozen=True)
class BulletinWindow:
    """One bulletin on one day: a stretch of time that plays queued items in order,
    framed by an opening chime, a spoken heading and a closing chime.

    Items queued in the window air wherever the window airs (its `targets`), whatever
    their own targets say, and leave `item_gap` between each other.
    """

    id: str
    targets: frozenset[str]
    start: datetime
    end: datetime
    open_chime: timedelta = timedelta(seconds=5)
    heading: timedelta = timedelta(seconds=8)
    close_chime: timedelta = timedelta(seconds=5)
    item_gap: timedelta = timedelta(seconds=2)

    def __post_init__(self) -> None:
        object.__setattr__(self, "targets", frozenset(self.targets))
        object.__setattr__(self, "start", _aware(self.start))
        object.__setattr__(self, "end", _aware(self.end))
        _check_targets(self.targets, self.id)
        if self.end <= self.start:
            raise ScheduleError(
                ErrorCode.END_BEFORE_START,
                f"Bản tin '{self.id}': giờ kết thúc trước giờ bắt đầu.",
                {"window": self.id},
                variant="window",
            )
        framing = self.open_chime + self.heading + self.close_chime
        if min(self.open_chime, self.heading, self.close_chime, self.item_gap) < timedelta(0):
            raise ScheduleError(
                ErrorCode.BAD_DURATION, f"Bản tin '{self.id}': thời lượng âm.", {"window": self.id}, variant="window"
            )
        if framing >= self.end - self.start:
            raise ScheduleError(
                ErrorCode.WINDOW_TOO_SHORT,
                f"Bản tin '{self.id}': không đủ chỗ cho cả nhạc hiệu và lời giới thiệu.",
                {"window": self.id},
            )

    @property
    def title(self) -> str:
        return bulletin_heading(self.start)


@dataclass(frozen=True)
class BulletinProgramme:
    """Recurring bulletin windows for some zones: e.g. 06:00 and 17:00 daily, 30 minutes each.

    The recurrence's times are the windows' opening times.
    """

    id: str
    targets: frozenset[str]
    recurrence: Recurrence
    length: timedelta = timedelta(minutes=30)
    open_chime: timedelta = timedelta(seconds=5)
    heading: timedelta = timedelta(seconds=8)
    close_chime: timedelta = timedelta(seconds=5)
    item_gap: timedelta = timedelta(seconds=2)

    def __post_init__(self) -> None:
        _check_targets(self.targets, self.id)
        if self.length <= timedelta(0):
            raise ScheduleError(
                ErrorCode.BAD_DURATION,
                f"Bản tin '{self.id}': độ dài phải lớn hơn 0.",
                {"window": self.id},
                variant="bulletin",
            )

    def windows(self, start: datetime, end: datetime) -> list[BulletinWindow]:
        """Windows opening in [start, end); ids are "<programme id>@<UTC opening>"."""
        return [
            BulletinWindow(
                id=occurrence_id(self.id, at),
                targets=frozenset(self.targets),
                start=at,
                end=at + self.length,
                open_chime=self.open_chime,
                heading=self.heading,
                close_chime=self.close_chime,
                item_gap=self.item_gap,
            )
            for at in occurrences(self.recurrence, start, end)
        ]
