"""The planner: from requests and what is already placed, a timeline per village.

`plan()` is pure and deterministic: no clock, no I/O, nothing mutated, same input gives the
same `Plan` (whatever the order of the requests or the hash seed). The caller commits the plan
(writes `changed`, deletes `dropped`) only after an officer has seen its conflicts and
explanations. Re-planning a committed plan with no new requests changes nothing.

Rules, in the order they are applied:

1. Dispatched placements (flag set, or start already passed) never move. Emergencies never
   move either.
2. New emergencies start at their earliest time (normally "now"), ignoring quiet hours and
   everything except other emergencies, which they queue behind. The gap between the repeats
   of an alert (`Airing.hold_after`) is kept silent.
3. Pre-emption: a dispatched item overlapping a new emergency is cut at the emergency's
   start in the villages the emergency covers (it keeps playing elsewhere). The cut item is
   replayed *from the beginning* at the first free slot after the emergency, provided it
   still ends within its validity (a bulletin item: within its window); otherwise it is
   reported `missed_after_emergency`. The cut piece's explanation states which happened.
4. Bulletin windows: queued items play back to back in order (priority items first, then
   `order_key`), after the opening chime and the spoken heading, `item_gap` apart, followed by
   the closing chime. What does not fit is reported `window_too_short`; a window with nothing
   queued stays silent.
5. Priority items, ordered by the officer's `order_key`, then normal items, first come first
   served. Each goes to the earliest slot free in *all* its villages (so a group starts
   together), outside quiet hours and inside its validity. A placement not yet dispatched is
   re-placed from its current start: a higher-priority item may push it later, never earlier;
   pushed past its validity it is reported `pushed_out`. A new normal item never displaces an
   existing one.
6. Relays yield to everything: a relay is cut wherever anything else plays, and rejoins the
   live stream afterwards (it never moves and the cut minutes are lost). Pieces shorter than
   `MIN_RELAY_PIECE` are dropped as not worth starting a stream for. A relay that has ended is
   history and is returned as given.
"""

from __future__ import annotations

from bisect import bisect_left, insort
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from enum import StrEnum

from schedules.clock import to_local, utc
from schedules.errors import ErrorCode, ScheduleError
from schedules.model import (
    FRAMING_KINDS,
    Airing,
    AiringKind,
    BulletinWindow,
    Placement,
    Priority,
)
from schedules.recurrence import local_instant
from schedules.zones import QuietHours, ZoneTree

MIN_RELAY_PIECE = timedelta(seconds=30)


class PlacementCode(StrEnum):
    AS_REQUESTED = "as_requested"
    ASAP = "asap"  # its requested time had passed; plays as soon as possible
    MOVED = "moved"  # later than asked because of a clash
    PUSHED_LATER = "pushed_later"  # was placed, not dispatched, moved later
    QUIET_HOURS = "moved_quiet_hours"
    GROUP_ALIGNED = "group_aligned"  # later so that all its villages start together
    EMERGENCY = "emergency"
    CUT = "cut_by_emergency"  # the piece that aired before an emergency cut in
    REPLAYED = "replayed_after_emergency"
    BULLETIN_ITEM = "bulletin_item"
    BULLETIN_FRAME = "bulletin_frame"
    RELAY = "relay"
    RELAY_CUT = "relay_cut"  # one piece of a relay that something else interrupted


@dataclass(frozen=True)
class Conflict:
    """Something the plan could not do for `airing` in `villages`, to show before committing."""

    code: ErrorCode
    airing: Airing
    villages: frozenset[str]
    message_vi: str
    # The values in the message, and which way of saying `code` it is: for other languages.
    params: Mapping[str, str | int] = field(default_factory=dict, hash=False)
    variant: str = ""


@dataclass(frozen=True)
class Plan:
    placements: tuple[Placement, ...]
    conflicts: tuple[Conflict, ...]
    changed: tuple[Placement, ...]
    """Placements not identical to one given as existing: insert or update these."""
    dropped: tuple[Placement, ...]
    """Existing placements the plan no longer contains: delete these (or mark them missed)."""

    @property
    def ok(self) -> bool:
        return not self.conflicts

    def timeline(self, village: str) -> tuple[Placement, ...]:
        return tuple(p for p in self.placements if village in p.villages)

    def for_airing(self, airing_id: str) -> tuple[Placement, ...]:
        return tuple(p for p in self.placements if p.airing.id == airing_id)


# --- Explanations ----------------------------------------------------------------------------


def _hm(when: datetime) -> str:
    return f"{to_local(when):%H:%M}"


def _at_neutral(when: datetime, reference: datetime) -> str:
    """ "17:05", or "05:00 26/05" when the local day differs: `_at` without words, for params."""
    local = to_local(when)
    return f"{local:%H:%M}" if local.date() == to_local(reference).date() else f"{local:%H:%M %d/%m}"


def _at(when: datetime, reference: datetime) -> str:
    """ "17:05", or "05:00 ngày 26/05" when the local day differs from `reference`'s."""
    local = to_local(when)
    if local.date() == to_local(reference).date():
        return f"{local:%H:%M}"
    return f"{local:%H:%M} ngày {local:%d/%m}"


def _is_started(p: Placement, now: datetime) -> bool:
    return p.dispatched or p.start < now


def _relation(blocker: Placement, airing: Airing, now: datetime) -> str:
    if blocker.airing.priority is Priority.EMERGENCY:
        return "(khẩn cấp)"
    if _is_started(blocker, now):
        return "(đã phát đi)"
    if blocker.airing.window_id is not None:
        return "(trong bản tin)"
    if blocker.airing.priority > airing.priority:
        return "(ưu tiên cao hơn)"
    if blocker.airing.priority == airing.priority:
        return "(cùng mức ưu tiên, xếp trước)"
    return "(đã xếp trước)"


# --- The board: busy time per village --------------------------------------------------------


@dataclass(frozen=True)
class _Busy:
    start: datetime
    end: datetime
    placement: Placement = field(compare=False)


@dataclass(frozen=True)
class _Cause:
    village: str
    blocker: Placement | None = None  # None: quiet hours
    quiet: QuietHours | None = None


def _by_start(b: _Busy) -> datetime:
    return b.start


class _Board:
    """Busy intervals per village, plus the quiet hours they must respect."""

    def __init__(self, tree: ZoneTree, quiet_hours: Mapping[str, QuietHours] | None) -> None:
        self.tree = tree
        self._busy: dict[str, list[_Busy]] = {}
        self._longest: dict[str, timedelta] = {}
        self._quiet = {v: tree.quiet_hours_for(v, quiet_hours) for v in tree.villages}

    def add(self, p: Placement) -> None:
        end = p.end + p.airing.hold_after
        for v in p.villages:
            insort(self._busy.setdefault(v, []), _Busy(p.start, end, p), key=_by_start)
            self._longest[v] = max(self._longest.get(v, timedelta(0)), end - p.start)

    def remove(self, p: Placement) -> None:
        for v in p.villages:
            self._busy[v] = [b for b in self._busy.get(v, []) if b.placement is not p]

    def overlapping(self, village: str, start: datetime, end: datetime) -> Iterator[_Busy]:
        busy = self._busy.get(village, [])
        longest = self._longest.get(village, timedelta(0))
        i = bisect_left(busy, end, key=_by_start)
        while i > 0:
            i -= 1
            b = busy[i]
            if b.start + longest <= start:
                break
            if b.end > start:
                yield b

    def quiet(self, village: str, start: datetime, end: datetime) -> Iterator[tuple[datetime, datetime, QuietHours]]:
        """Quiet stretches of `village` overlapping [start, end)."""
        for q in self._quiet[village]:
            if q.is_empty:
                continue
            day = to_local(start).date() - timedelta(days=1)
            last = to_local(end).date()
            while day <= last:
                q_start = local_instant(day, q.start)
                q_end = local_instant(day + timedelta(days=1) if q.start > q.end else day, q.end)
                if q_start < end and q_end > start:
                    yield q_start, q_end, q
                day += timedelta(days=1)

    def find(
        self,
        villages: frozenset[str],
        duration: timedelta,
        earliest: datetime,
        latest_end: datetime,
        *,
        emergency: bool = False,
        quiet_only: bool = False,
    ) -> tuple[datetime, _Cause | None] | None:
        """Earliest start ≥ `earliest` free in every village, ending by `latest_end`.

        Jumping to the end of the furthest-reaching clash is safe: any start before that end
        still overlaps it. The clash behind the last jump is why the slot is where it is.
        An emergency only clashes with emergencies and ignores quiet hours.
        """
        ordered = sorted(villages)
        t, cause = earliest, None
        while t + duration <= latest_end:
            end = t + duration
            jump: datetime | None = None
            jump_cause: _Cause | None = None
            for v in ordered:
                if not quiet_only:
                    for b in self.overlapping(v, t, end):
                        if emergency and b.placement.airing.priority is not Priority.EMERGENCY:
                            continue
                        if jump is None or b.end > jump:
                            jump, jump_cause = b.end, _Cause(v, blocker=b.placement)
                if not emergency:
                    for _, q_end, q in self.quiet(v, t, end):
                        if jump is None or q_end > jump:
                            jump, jump_cause = q_end, _Cause(v, quiet=q)
            if jump is None:
                return t, cause
            t, cause = jump, jump_cause
        return None


# --- Planning --------------------------------------------------------------------------------


@dataclass
class _Replay:
    airing: Airing
    villages: frozenset[str]
    cut_at: datetime
    original_start: datetime
    emergency: Placement
    aired_piece: Placement | None


class _Planner:
    def __init__(
        self,
        tree: ZoneTree,
        now: datetime,
        windows: Sequence[BulletinWindow],
        quiet_hours: Mapping[str, QuietHours] | None,
    ) -> None:
        self.tree = tree
        self.now = now
        self.board = _Board(tree, quiet_hours)
        self.windows = {w.id: w for w in windows}
        self.placed: list[Placement] = []
        self.conflicts: list[Conflict] = []

    # helpers
    def conflict(
        self,
        code: ErrorCode,
        airing: Airing,
        villages: frozenset[str],
        message: str,
        params: Mapping[str, str | int],
        variant: str = "",
    ) -> None:
        self.conflicts.append(Conflict(code, airing, villages, message, dict(params), variant))

    def put(self, p: Placement) -> Placement:
        self.board.add(p)
        self.placed.append(p)
        return p

    def unfit_code(self, villages: frozenset[str], airing: Airing, earliest: datetime, latest: datetime) -> ErrorCode:
        if earliest + airing.duration > latest:
            return ErrorCode.NO_FREE_SLOT
        if self.board.find(villages, airing.duration, earliest, latest, quiet_only=True) is None:
            return ErrorCode.IN_QUIET_HOURS
        return ErrorCode.NO_FREE_SLOT

    def explain_move(
        self,
        airing: Airing,
        villages: frozenset[str],
        start: datetime,
        want: datetime,
        cause: _Cause | None,
        previous: Placement | None,
    ) -> tuple[PlacementCode, str]:
        if start == want or cause is None:
            if previous is None and want > airing.earliest:
                return PlacementCode.ASAP, f"Giờ yêu cầu đã qua; phát ngay lúc {_at(start, airing.earliest)}."
            return PlacementCode.AS_REQUESTED, f"Phát lúc {_hm(start)} như yêu cầu."
        where = _at(start, want)
        if cause.blocker is None:
            assert cause.quiet is not None
            why = f"vì giờ yên tĩnh {cause.quiet.label()} ở {self.tree.name(cause.village)}"
            code = PlacementCode.QUIET_HOURS
        else:
            b = cause.blocker
            rel = _relation(b, airing, self.now)
            if len(villages) > 1 and not villages <= b.villages:
                code = PlacementCode.GROUP_ALIGNED
                why = (
                    f"để các thôn cùng bắt đầu một lúc: {self.tree.name(cause.village)} bận với "
                    f"'{b.airing.title}' {rel} đến {_hm(start)}"
                )
            else:
                code = PlacementCode.MOVED
                why = f"vì trùng với '{b.airing.title}' {rel}"
        if previous is not None:
            return PlacementCode.PUSHED_LATER, f"Lùi từ {_hm(previous.start)} sang {where} {why}."
        return code, f"Dời sang {where} {why}."

    # 2. emergencies
    def place_emergencies(self, requests: Sequence[Airing]) -> list[Placement]:
        placed = []
        for a in sorted(requests, key=lambda a: (max(a.earliest, self.now), a.order_key, a.id)):
            villages = self.tree.expand(a.targets)
            want = max(a.earliest, self.now)
            found = self.board.find(villages, a.duration, want, a.valid_until, emergency=True)
            if want + a.duration > a.valid_until:
                self.conflict(
                    ErrorCode.IN_PAST,
                    a,
                    villages,
                    f"'{a.title}' đã hết hiệu lực lúc {_hm(a.valid_until)}.",
                    {"title": a.title, "until": _hm(a.valid_until)},
                    "expired",
                )
                continue
            if found is None:
                self.conflict(
                    ErrorCode.NO_FREE_SLOT,
                    a,
                    villages,
                    f"Cảnh báo khẩn '{a.title}' không phát được trước {_hm(a.valid_until)}: "
                    "các cảnh báo khẩn khác chiếm hết thời gian.",
                    {"title": a.title, "until": _hm(a.valid_until)},
                    "emergency",
                )
                continue
            start, cause = found
            text = f"Phát khẩn cấp lúc {_hm(start)}, ngắt mọi nội dung khác ở {self.tree.describe(villages)}."
            if cause is not None and cause.blocker is not None:
                text = (
                    f"Phát khẩn cấp lúc {_hm(start)}, ngay sau cảnh báo khẩn '{cause.blocker.airing.title}'; "
                    f"ngắt mọi nội dung khác ở {self.tree.describe(villages)}."
                )
            placed.append(self.put(Placement(a, villages, start, start + a.duration, PlacementCode.EMERGENCY, text)))
        return placed

    # 3. pre-emption
    def cut(self, fixed: list[Placement], emergencies: list[Placement]) -> tuple[list[Placement], list[_Replay]]:
        replays: list[_Replay] = []
        kept = list(fixed)
        for e in sorted(emergencies, key=lambda p: (p.start, p.airing.id)):
            for f in list(kept):
                hit = f.villages & e.villages
                held_until = e.end + e.airing.hold_after  # the gap between repeats is the alert's too
                if f.airing.priority is Priority.EMERGENCY or not hit or not (f.start < held_until and f.end > e.start):
                    continue
                kept.remove(f)
                self.board.remove(f)
                rest = f.villages - e.villages
                if rest:
                    kept.append(replace(f, villages=rest))
                    self.board.add(kept[-1])
                piece = None
                if f.start < e.start:
                    piece = replace(f, villages=hit, end=e.start, code=PlacementCode.CUT)
                    kept.append(piece)
                    self.board.add(piece)
                if f.airing.kind is not AiringKind.RELAY:
                    replays.append(_Replay(f.airing, hit, max(e.start, f.start), f.start, e, piece))
        return kept, replays

    def place_replays(self, replays: list[_Replay], kept: list[Placement]) -> list[Placement]:
        """Rule 3's second half; also finishes the cut pieces' explanations."""
        for r in sorted(replays, key=lambda r: (r.cut_at, r.original_start, r.airing.id, sorted(r.villages))):
            a, e = r.airing, r.emergency
            window = self.windows.get(a.window_id or "")
            latest = window.end - window.close_chime if window is not None else a.valid_until
            found = self.board.find(r.villages, a.duration, e.end, latest)
            cut_text = f"Bị ngắt lúc {_hm(r.cut_at)} bởi cảnh báo khẩn '{e.airing.title}'"
            if found is None:
                self.conflict(
                    ErrorCode.MISSED_AFTER_EMERGENCY,
                    a,
                    r.villages,
                    f"{cut_text}; không còn chỗ phát lại trước khi hết hiệu lực lúc {_hm(latest)} "
                    f"ở {self.tree.describe(r.villages)}: đánh dấu bỏ lỡ.",
                    {
                        "cut_at": _hm(r.cut_at),
                        "emergency": e.airing.title,
                        "until": _hm(latest),
                        "villages": self.tree.describe(r.villages),
                    },
                )
                outcome = f"{cut_text}; không phát lại được trước {_hm(latest)} nên đánh dấu bỏ lỡ."
            else:
                start = found[0]
                self.put(
                    Placement(
                        a,
                        r.villages,
                        start,
                        start + a.duration,
                        PlacementCode.REPLAYED,
                        f"Phát lại từ đầu lúc {_hm(start)} sau cảnh báo khẩn '{e.airing.title}' "
                        f"(bị ngắt lúc {_hm(r.cut_at)}).",
                    )
                )
                outcome = f"{cut_text}; phát lại từ đầu lúc {_hm(start)}."
            if r.aired_piece is not None:
                i = next(i for i, p in enumerate(kept) if p is r.aired_piece)
                kept[i] = replace(r.aired_piece, explanation=outcome)
        return kept

    # 4. bulletin windows
    def layout_window(
        self, w: BulletinWindow, queued: list[tuple[Airing, Placement | None]], done: list[Placement]
    ) -> None:
        villages = self.tree.expand(w.targets)
        queued.sort(key=lambda q: (-q[0].priority, q[0].order_key, q[0].id))
        if not queued:
            return
        if w.end <= self.now:
            for a, _ in queued:
                self.conflict(
                    ErrorCode.IN_PAST,
                    a,
                    villages,
                    f"Bản tin '{w.title}' đã kết thúc lúc {_hm(w.end)}.",
                    {"bulletin": w.title, "until": _hm(w.end)},
                    "bulletin",
                )
            return
        title = w.title
        done_kinds = {p.airing.kind for p in done}
        cursor = max([w.start, self.now, *(p.end for p in done)])
        content_end = w.end - w.close_chime
        frame: list[Placement] = []
        framed = True
        for kind, length, name in (
            (AiringKind.CHIME_OPEN, w.open_chime, "Nhạc hiệu mở đầu"),
            (AiringKind.HEADING, w.heading, title),
        ):
            if kind in done_kinds or length <= timedelta(0):
                continue
            framing = self._framing(w, kind, length, name)
            found = self.board.find(villages, length, cursor, content_end)
            if found is None:
                framed = False
                break
            cursor = found[0] + length
            text = f"Nhạc hiệu mở đầu {title.lower()}." if kind is AiringKind.CHIME_OPEN else f"Đọc: “{title}”."
            frame.append(self.put(self._frame(framing, villages, found[0], text)))
        items_aired = len({p.airing.id for p in done if p.airing.kind not in FRAMING_KINDS})
        total = items_aired + len(queued)
        for a, previous in queued:
            want = cursor + w.item_gap
            found = None if not framed else self.board.find(villages, a.duration, want, content_end)
            if found is None:
                code = self.unfit_code(villages, a, want, content_end)
                if code is ErrorCode.NO_FREE_SLOT:
                    code = ErrorCode.WINDOW_TOO_SHORT
                self.conflict(
                    code,
                    a,
                    villages,
                    f"'{a.title}' không vừa {title.lower()} ({_hm(w.start)}–{_hm(w.end)}): "
                    f"cần {_minutes(a.duration)}, chỉ còn đến {_hm(content_end)}.",
                    {
                        "title": a.title,
                        "bulletin": title.lower(),
                        "start": _hm(w.start),
                        "end": _hm(w.end),
                        "duration": int(a.duration.total_seconds()),
                        "room_until": _hm(content_end),
                    },
                    "bulletin",
                )
                continue
            start, cause = found
            items_aired += 1
            cursor = start + a.duration
            if previous is not None and previous.start == start and previous.villages == villages:
                self.put(previous)
                continue
            text = f"{title}: mục {items_aired}/{total}, phát lúc {_hm(start)}."
            if cause is not None and cause.blocker is not None and start > want:
                text += f" Lùi vì '{cause.blocker.airing.title}' {_relation(cause.blocker, a, self.now)}."
            self.put(Placement(a, villages, start, cursor, PlacementCode.BULLETIN_ITEM, text))
        if items_aired == 0:
            for p in frame:
                self.board.remove(p)
                self.placed.remove(p)
            return
        if AiringKind.CHIME_CLOSE not in done_kinds and w.close_chime > timedelta(0):
            framing = self._framing(w, AiringKind.CHIME_CLOSE, w.close_chime, "Nhạc hiệu kết thúc")
            found = self.board.find(villages, w.close_chime, cursor, w.end)
            if found is not None:
                self.put(self._frame(framing, villages, found[0], f"Nhạc hiệu kết thúc {title.lower()}."))

    def _framing(self, w: BulletinWindow, kind: AiringKind, length: timedelta, name: str) -> Airing:
        return Airing(
            id=f"{w.id}/{kind.value}",
            title=name,
            kind=kind,
            priority=Priority.NORMAL,
            duration=length,
            targets=w.targets,
            earliest=w.start,
            valid_until=w.end,
            window_id=w.id,
        )

    @staticmethod
    def _frame(a: Airing, villages: frozenset[str], start: datetime, text: str) -> Placement:
        return Placement(a, villages, start, start + a.duration, PlacementCode.BULLETIN_FRAME, text)

    # 5. priority and normal items
    def place_item(self, a: Airing, previous: Placement | None) -> None:
        villages = previous.villages if previous is not None else self.tree.expand(a.targets)
        want = previous.start if previous is not None else max(a.earliest, self.now)
        found = self.board.find(villages, a.duration, want, a.valid_until)
        if found is None:
            if previous is not None:
                self.conflict(
                    ErrorCode.PUSHED_OUT,
                    a,
                    villages,
                    f"'{a.title}' (đang xếp lúc {_hm(previous.start)}) bị đẩy ra ngoài thời hạn hiệu lực "
                    f"({_hm(a.valid_until)}) bởi mục ưu tiên hơn: cần xếp lại hoặc hủy.",
                    {"title": a.title, "start": _hm(previous.start), "until": _hm(a.valid_until)},
                )
                return
            unfit = self.unfit_code(villages, a, want, a.valid_until)
            reason = (
                "toàn bộ thời hạn rơi vào giờ yên tĩnh"
                if unfit is ErrorCode.IN_QUIET_HOURS
                else f"lịch ở {self.tree.describe(villages)} đã kín"
            )
            self.conflict(
                unfit,
                a,
                villages,
                f"Không xếp được '{a.title}' ({_minutes(a.duration)}) từ {_hm(want)} đến "
                f"{_at(a.valid_until, want)}: {reason}.",
                {
                    "title": a.title,
                    "duration": int(a.duration.total_seconds()),
                    "start": _hm(want),
                    "until": _at_neutral(a.valid_until, want),
                    "villages": self.tree.describe(villages),
                },
                "item" if unfit is ErrorCode.IN_QUIET_HOURS else "",
            )
            return
        start, cause = found
        if previous is not None and previous.start == start:
            self.put(previous)
            return
        code, text = self.explain_move(a, villages, start, want, cause, previous)
        self.put(Placement(a, villages, start, start + a.duration, code, text))

    # 6. relays
    def place_relays(self, relays: Iterable[Airing]) -> list[Placement]:
        """Pieces are recomputed over each relay's whole span, so they stay the same unless
        something new cuts in. A relay requested after its start gets its whole span too: a
        piece already begun is dispatched late, which for a live stream means joining it now."""
        placed: list[Placement] = []
        relay_busy: dict[str, list[tuple[datetime, datetime, Placement]]] = {}
        for a in sorted(relays, key=lambda a: (a.earliest, a.order_key, a.id)):
            villages = self.tree.expand(a.targets)
            if a.valid_until <= self.now:
                self.conflict(
                    ErrorCode.IN_PAST,
                    a,
                    villages,
                    f"Tiếp sóng '{a.title}' đã kết thúc lúc {_hm(a.valid_until)}.",
                    {"title": a.title, "until": _hm(a.valid_until)},
                    "relay",
                )
                continue
            pieces: dict[tuple[datetime, datetime], set[str]] = {}
            gaps: dict[str, list[tuple[datetime, str]]] = {}
            for v in sorted(villages):
                holes: list[tuple[datetime, datetime, str]] = [
                    (b.start, b.end, f"'{b.placement.airing.title}'")
                    for b in self.board.overlapping(v, a.earliest, a.valid_until)
                ]
                holes += [(s, e, "giờ yên tĩnh") for s, e, _ in self.board.quiet(v, a.earliest, a.valid_until)]
                holes += [
                    (s, e, f"'{p.airing.title}'")
                    for s, e, p in relay_busy.get(v, [])
                    if s < a.valid_until and e > a.earliest
                ]
                gaps[v] = sorted((s, why) for s, _, why in holes)
                for piece in _subtract(a.earliest, a.valid_until, [(s, e) for s, e, _ in holes]):
                    if piece[1] - piece[0] >= MIN_RELAY_PIECE:
                        pieces.setdefault(piece, set()).add(v)
            silent = villages - set().union(*pieces.values()) if pieces else villages
            if silent:
                hushed = all(
                    e - s < MIN_RELAY_PIECE
                    for v in silent
                    for s, e in _subtract(
                        a.earliest,
                        a.valid_until,
                        [(s, e) for s, e, _ in self.board.quiet(v, a.earliest, a.valid_until)],
                    )
                )
                code = ErrorCode.IN_QUIET_HOURS if hushed else ErrorCode.RELAY_PREEMPTED
                self.conflict(
                    code,
                    a,
                    frozenset(silent),
                    f"Tiếp sóng '{a.title}' {_hm(a.earliest)}–{_hm(a.valid_until)} không phát được ở "
                    f"{self.tree.describe(silent)}: cả chương trình bị các mục khác hoặc giờ yên tĩnh chiếm.",
                    {
                        "title": a.title,
                        "start": _hm(a.earliest),
                        "end": _hm(a.valid_until),
                        "villages": self.tree.describe(silent),
                    },
                    "relay" if code is ErrorCode.IN_QUIET_HOURS else "",
                )
            for (s, e), vs in sorted(pieces.items()):
                frozen = frozenset(vs)
                span = f"{_hm(a.earliest)}–{_hm(a.valid_until)}"
                if (s, e) == (a.earliest, a.valid_until):
                    p = Placement(a, frozen, s, e, PlacementCode.RELAY, f"Tiếp sóng '{a.title}' {span}.")
                else:
                    yielded = sorted({why for v in vs for _, why in gaps[v]})
                    p = Placement(
                        a,
                        frozen,
                        s,
                        e,
                        PlacementCode.RELAY_CUT,
                        f"Tiếp sóng '{a.title}' ({span}) phát đoạn {_hm(s)}–{_hm(e)}; "
                        f"phần còn lại nhường cho {', '.join(yielded)} rồi nối lại luồng trực tiếp.",
                    )
                placed.append(p)
                for v in vs:
                    relay_busy.setdefault(v, []).append((s, e, p))
        return placed


def _subtract(
    start: datetime, end: datetime, holes: list[tuple[datetime, datetime]]
) -> list[tuple[datetime, datetime]]:
    pieces, t = [], start
    for h_start, h_end in sorted(holes):
        if h_start > t:
            pieces.append((t, min(h_start, end)))
        t = max(t, h_end)
        if t >= end:
            break
    if t < end:
        pieces.append((t, end))
    return [(s, e) for s, e in pieces if e > s]


def _minutes(d: timedelta) -> str:
    seconds = int(d.total_seconds())
    if seconds % 60:
        return f"{seconds // 60} phút {seconds % 60} giây" if seconds >= 60 else f"{seconds} giây"
    return f"{seconds // 60} phút"


def _placement_key(p: Placement) -> tuple[datetime, str, tuple[str, ...], datetime]:
    return (p.start, p.airing.id, tuple(sorted(p.villages)), p.end)


def plan(
    tree: ZoneTree,
    requests: Sequence[Airing],
    *,
    now: datetime,
    existing: Sequence[Placement] = (),
    windows: Sequence[BulletinWindow] = (),
    quiet_hours: Mapping[str, QuietHours] | None = None,
) -> Plan:
    """Place `requests` among `existing` placements; see the module docstring for the rules.

    `windows` must include every window that a request or a not-yet-dispatched existing
    placement is queued in. A request whose id matches existing placements replaces the
    ones not yet dispatched (an edit); if one is already on air that is an error.
    `quiet_hours` maps zone ids to their quiet hours (default 21:30–05:00 everywhere).

    Raises ScheduleError for input that can never be planned (unknown zone or window,
    duplicate ids, editing an airing already on air); everything that depends on the
    timeline is reported in `Plan.conflicts` instead.
    """
    now = utc(now)
    tree.check_quiet_hours_keys(quiet_hours)
    seen: set[str] = set()
    for a in requests:
        if a.id in seen:
            raise ScheduleError(ErrorCode.DUPLICATE_ID, f"Mã mục phát '{a.id}' bị trùng trong yêu cầu.", {"id": a.id})
        seen.add(a.id)
        tree.expand(a.targets)
    window_ids: set[str] = set()
    for w in windows:
        if w.id in window_ids:
            raise ScheduleError(
                ErrorCode.DUPLICATE_ID, f"Mã bản tin '{w.id}' bị trùng.", {"window": w.id}, variant="window"
            )
        window_ids.add(w.id)
        tree.expand(w.targets)

    planner = _Planner(tree, now, windows, quiet_hours)
    fixed: list[Placement] = []
    pool: list[tuple[Airing, Placement | None]] = []
    relays: dict[str, Airing] = {}
    finished_relays: list[Placement] = []
    for p in existing:
        a = p.airing
        if a.kind is AiringKind.RELAY:
            if a.valid_until <= now and a.id not in seen:
                finished_relays.append(p)  # history: kept as it was, whatever is loaded around it
            else:
                relays.setdefault(a.id, a)
        elif _is_started(p, now) or a.priority is Priority.EMERGENCY:
            if a.id in seen:
                raise ScheduleError(
                    ErrorCode.ALREADY_ON_AIR, f"'{a.title}' đã phát đi, không sửa được nữa.", {"title": a.title}
                )
            fixed.append(p)
        elif a.id not in seen and a.kind not in FRAMING_KINDS:
            pool.append((a, p))
    for a in requests:
        if a.kind is AiringKind.RELAY:
            relays[a.id] = a
        elif a.priority is not Priority.EMERGENCY:
            pool.append((a, None))
    for a, _ in pool:
        if a.window_id is not None and a.window_id not in window_ids:
            raise ScheduleError(
                ErrorCode.UNKNOWN_WINDOW,
                f"'{a.title}' xếp vào bản tin '{a.window_id}' không có.",
                {"title": a.title, "window": a.window_id},
            )

    for p in fixed:
        planner.board.add(p)
    emergencies = planner.place_emergencies([a for a in requests if a.priority is Priority.EMERGENCY])
    fixed, replays = planner.cut(fixed, emergencies)
    fixed = planner.place_replays(replays, fixed)

    def stale(a: Airing) -> bool:
        return a.window_id is None and max(a.earliest, now) + a.duration > a.valid_until

    live: list[tuple[Airing, Placement | None]] = []
    for a, previous in pool:
        if previous is None and stale(a):
            planner.conflict(
                ErrorCode.IN_PAST,
                a,
                tree.expand(a.targets),
                f"'{a.title}' hết hiệu lực lúc {_hm(a.valid_until)}, không còn kịp phát.",
                {"title": a.title, "until": _hm(a.valid_until)},
            )
        else:
            live.append((a, previous))

    for w in sorted(windows, key=lambda w: (w.start, w.id)):
        done = [p for p in (*fixed, *planner.placed) if p.airing.window_id == w.id]
        planner.layout_window(w, [(a, p) for a, p in live if a.window_id == w.id], done)

    loose = [(a, p) for a, p in live if a.window_id is None]
    urgent = sorted(
        (q for q in loose if q[0].priority is Priority.PRIORITY),
        key=lambda q: (q[0].order_key, q[1] is None, q[1].start if q[1] else q[0].earliest, q[0].id),
    )
    normal = sorted(
        (q for q in loose if q[0].priority is Priority.NORMAL),
        key=lambda q: (q[1] is None, q[1].start if q[1] else q[0].earliest, q[0].order_key, q[0].id),
    )
    for a, previous in (*urgent, *normal):
        planner.place_item(a, previous)

    # Recomputed relay pieces that match existing ones keep the existing (maybe dispatched) object.
    previous_relays = {replace(p, dispatched=False): p for p in existing if p.airing.kind is AiringKind.RELAY}
    relay_placements = [previous_relays.get(p, p) for p in planner.place_relays(relays.values())]
    relay_placements += finished_relays
    existing_set = set(existing)
    placements = tuple(sorted((*fixed, *planner.placed, *relay_placements), key=_placement_key))
    placed_set = set(placements)
    return Plan(
        placements=placements,
        conflicts=tuple(sorted(planner.conflicts, key=lambda c: (c.airing.id, c.code, sorted(c.villages)))),
        changed=tuple(p for p in placements if p not in existing_set),
        dropped=tuple(p for p in existing if p not in placed_set),
    )


def check_request(
    tree: ZoneTree,
    airing: Airing,
    *,
    now: datetime,
    quiet_hours: Mapping[str, QuietHours] | None = None,
) -> None:
    """Rejects, as the officer types it, a request that could never air whatever else is
    planned: unknown zone (`unknown_zone`), validity already over (`in_past`), or, for all
    but emergencies, no stretch outside quiet hours long enough inside its validity
    (`in_quiet_hours`). `plan()` reports the same things as conflicts."""
    now = utc(now)
    tree.check_quiet_hours_keys(quiet_hours)
    villages = tree.expand(airing.targets)
    want = max(airing.earliest, now)
    if want + airing.duration > airing.valid_until:
        raise ScheduleError(
            ErrorCode.IN_PAST,
            f"'{airing.title}' hết hiệu lực lúc {_hm(airing.valid_until)}, không còn kịp phát.",
            {"title": airing.title, "until": _hm(airing.valid_until)},
        )
    if airing.priority is Priority.EMERGENCY or airing.window_id is not None:
        return
    board = _Board(tree, quiet_hours)
    if board.find(villages, airing.duration, want, airing.valid_until, quiet_only=True) is None:
        raise ScheduleError(
            ErrorCode.IN_QUIET_HOURS,
            f"'{airing.title}': toàn bộ thời hạn {_hm(want)}–{_hm(airing.valid_until)} rơi vào giờ yên tĩnh.",
            {"title": airing.title, "start": _hm(want), "end": _hm(airing.valid_until)},
        )
