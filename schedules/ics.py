"""iCalendar (RFC 5545) export of a timeline, so officers can see the programme in any
calendar app. Hand-written: the subset used is small and a dependency would be larger.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from datetime import UTC, datetime

from schedules.clock import utc
from schedules.model import Placement

CRLF = "\r\n"
MAX_OCTETS = 75


def escape_text(value: str) -> str:
    """TEXT escaping of RFC 5545 §3.3.11: backslash, semicolon, comma and newlines."""
    return (
        value.replace("\\", "\\\\")
        .replace(";", "\\;")
        .replace(",", "\\,")
        .replace("\r\n", "\\n")
        .replace("\r", "\\n")
        .replace("\n", "\\n")
    )


def fold(line: str) -> str:
    """Folds a content line at 75 octets (§3.1), never inside a UTF-8 character; each
    continuation starts with a space, which counts towards its 75."""
    chunks: list[str] = []
    current, size = "", 0
    for ch in line:
        width = len(ch.encode("utf-8"))
        if size + width > MAX_OCTETS:
            chunks.append(current)
            current, size = " ", 1
        current += ch
        size += width
    chunks.append(current)
    return CRLF.join(chunks)


def _stamp(when: datetime) -> str:
    return f"{utc(when):%Y%m%dT%H%M%SZ}"


def placement_uid(p: Placement) -> str:
    """Stable across exports, so calendar apps update events instead of duplicating them."""
    villages = hashlib.sha1(",".join(sorted(p.villages)).encode()).hexdigest()[:10]
    return f"{p.airing.id}-{_stamp(p.start)}-{villages}@loa"


def to_ics(placements: Iterable[Placement], zone_name: str, *, stamp: datetime | None = None) -> str:
    """A VCALENDAR with one VEVENT per placement. `stamp` (DTSTAMP) defaults to now."""
    dtstamp = _stamp(stamp if stamp is not None else datetime.now(UTC))
    lines = [
        "BEGIN:VCALENDAR",
        "VERSION:2.0",
        "PRODID:-//loa//schedules//VI",
        "CALSCALE:GREGORIAN",
        "METHOD:PUBLISH",
        f"X-WR-CALNAME:{escape_text(zone_name)}",
    ]
    for p in sorted(placements, key=lambda p: (p.start, p.airing.id, sorted(p.villages))):
        lines += [
            "BEGIN:VEVENT",
            f"UID:{escape_text(placement_uid(p))}",
            f"DTSTAMP:{dtstamp}",
            f"DTSTART:{_stamp(p.start)}",
            f"DTEND:{_stamp(p.end)}",
            f"SUMMARY:{escape_text(p.airing.title)}",
            f"DESCRIPTION:{escape_text(p.explanation)}",
            f"LOCATION:{escape_text(zone_name)}",
            f"CATEGORIES:{escape_text(p.airing.kind.value)}",
            "END:VEVENT",
        ]
    lines.append("END:VCALENDAR")
    return "".join(fold(line) + CRLF for line in lines)
