"""Where an airing is heard: the commune, its villages (thôn), and named groups of villages.

Everything is resolved down to villages because a loudspeaker belongs to exactly one village,
and the timeline that must never overlap is a village's.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import time
from enum import StrEnum

from schedules.errors import ErrorCode, ScheduleError


class ZoneKind(StrEnum):
    COMMUNE = "commune"
    VILLAGE = "village"
    GROUP = "group"


@dataclass(frozen=True)
class Zone:
    """A village names its commune in `parent`; a group lists its villages in `members`."""

    id: str
    name: str
    kind: ZoneKind
    parent: str | None = None
    members: frozenset[str] = field(default_factory=frozenset)


@dataclass(frozen=True)
class QuietHours:
    """A nightly local-time stretch when only emergencies may sound.

    `start > end` crosses midnight (the default 21:30–05:00); `start == end` means none.
    """

    start: time = time(21, 30)
    end: time = time(5, 0)

    @property
    def is_empty(self) -> bool:
        return self.start == self.end

    def label(self) -> str:
        return f"{self.start:%H:%M}–{self.end:%H:%M}"

    def contains(self, local: time) -> bool:
        """Whether this local wall-clock time falls in the quiet hours."""
        if self.is_empty:
            return False
        if self.start > self.end:  # across midnight
            return local >= self.start or local < self.end
        return self.start <= local < self.end


DEFAULT_QUIET_HOURS = QuietHours()
NO_QUIET_HOURS = QuietHours(time(0), time(0))


class ZoneTree:
    """The communes, villages and groups the daemon serves, checked once when built."""

    def __init__(self, zones: Iterable[Zone]) -> None:
        self._zones: dict[str, Zone] = {}
        for zone in zones:
            if zone.id in self._zones:
                raise ScheduleError(
                    ErrorCode.BAD_ZONE, f"Mã vùng '{zone.id}' bị trùng.", {"zone": zone.id}, variant="duplicate"
                )
            self._zones[zone.id] = zone
        self._villages_of: dict[str, frozenset[str]] = {}
        self._groups_of: dict[str, list[str]] = {}
        for zone in self._zones.values():
            if zone.kind is ZoneKind.VILLAGE:
                parent = self._zones.get(zone.parent or "")
                if parent is None or parent.kind is not ZoneKind.COMMUNE:
                    raise ScheduleError(
                        ErrorCode.BAD_ZONE,
                        f"Thôn '{zone.name}' phải thuộc một xã đã khai báo.",
                        {"name": zone.name},
                        variant="orphan",
                    )
                self._villages_of[zone.id] = frozenset({zone.id})
        for zone in self._zones.values():
            if zone.kind is ZoneKind.COMMUNE:
                self._villages_of[zone.id] = frozenset(
                    v.id for v in self._zones.values() if v.kind is ZoneKind.VILLAGE and v.parent == zone.id
                )
            elif zone.kind is ZoneKind.GROUP:
                bad = sorted(m for m in zone.members if m not in self._zones or self.kind(m) is not ZoneKind.VILLAGE)
                if bad or not zone.members:
                    raise ScheduleError(
                        ErrorCode.BAD_ZONE,
                        f"Cụm '{zone.name}' chỉ được gồm các thôn đã khai báo (sai: {', '.join(bad) or 'trống'}).",
                        {"name": zone.name, "wrong": ", ".join(bad) or "—"},
                        variant="group",
                    )
                self._villages_of[zone.id] = frozenset(zone.members)
                for member in zone.members:
                    self._groups_of.setdefault(member, []).append(zone.id)

    def zone(self, zone_id: str) -> Zone:
        try:
            return self._zones[zone_id]
        except KeyError:
            raise ScheduleError(
                ErrorCode.UNKNOWN_ZONE, f"Không có vùng mã '{zone_id}'.", {"zone": zone_id}, variant="id"
            ) from None

    def kind(self, zone_id: str) -> ZoneKind:
        return self.zone(zone_id).kind

    def name(self, zone_id: str) -> str:
        return self.zone(zone_id).name

    @property
    def villages(self) -> frozenset[str]:
        return frozenset(z.id for z in self._zones.values() if z.kind is ZoneKind.VILLAGE)

    def expand(self, targets: Iterable[str]) -> frozenset[str]:
        """The villages an airing aimed at `targets` is heard in."""
        found: set[str] = set()
        for target in targets:
            self.zone(target)
            found |= self._villages_of[target]
        if not found:
            raise ScheduleError(
                ErrorCode.UNKNOWN_ZONE, "Vùng phát không có thôn nào, không có loa nào nghe được.", {}, variant="empty"
            )
        return frozenset(found)

    def quiet_hours_for(self, village: str, quiet_hours: Mapping[str, QuietHours] | None) -> tuple[QuietHours, ...]:
        """The most specific setting wins: the village's own, else its groups' (all of them,
        since a village in two groups must respect both), else its commune's, else 21:30–05:00.
        """
        settings = quiet_hours or {}
        if village in settings:
            return (settings[village],)
        from_groups = tuple(settings[g] for g in sorted(self._groups_of.get(village, ())) if g in settings)
        if from_groups:
            return from_groups
        commune = self.zone(village).parent or ""
        return (settings.get(commune, DEFAULT_QUIET_HOURS),)

    def check_quiet_hours_keys(self, quiet_hours: Mapping[str, QuietHours] | None) -> None:
        for zone_id in quiet_hours or {}:
            self.zone(zone_id)

    def describe(self, villages: Iterable[str]) -> str:
        """Village names for explanations, in a stable order."""
        return ", ".join(sorted(self.name(v) for v in villages))
