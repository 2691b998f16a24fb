from __future__ import annotations

from datetime import UTC, datetime, timedelta

from schedules import Airing, AiringKind, Placement, PlacementCode, Priority, to_ics
from schedules.ics import escape_text, fold
from tests.schedules.helpers import local, village

STAMP = datetime(2025, 5, 25, 1, 2, 3, tzinfo=UTC)


def placement(title: str, explanation: str = "Phát lúc 17:00 như yêu cầu.", airing_id: str = "n1") -> Placement:
    start = local(2025, 5, 25, 17)
    airing = Airing(
        id=airing_id, title=title, kind=AiringKind.NOTICE, priority=Priority.NORMAL, duration=timedelta(minutes=3),
        targets=frozenset({village(1)}), earliest=start, valid_until=start + timedelta(hours=2),
    )  # fmt: skip
    return Placement(airing, frozenset({village(1)}), start, start + timedelta(minutes=3), PlacementCode.AS_REQUESTED,
                     explanation)  # fmt: skip


def unfold(text: str) -> list[str]:
    return text.replace("\r\n ", "").split("\r\n")


def test_calendar_structure_in_utc_with_crlf() -> None:
    text = to_ics([placement("Họp thôn")], "Thôn 1", stamp=STAMP)
    assert text.endswith("\r\n")
    assert "\n" not in text.replace("\r\n", "")
    lines = unfold(text)[:-1]
    assert lines[0] == "BEGIN:VCALENDAR" and lines[-1] == "END:VCALENDAR"
    assert "VERSION:2.0" in lines and any(line.startswith("PRODID:") for line in lines)
    event = lines[lines.index("BEGIN:VEVENT") : lines.index("END:VEVENT") + 1]
    assert "DTSTART:20250525T100000Z" in event  # 17:00 in Hanoi
    assert "DTEND:20250525T100300Z" in event
    assert "DTSTAMP:20250525T010203Z" in event
    assert "SUMMARY:Họp thôn" in event
    uid = next(line for line in event if line.startswith("UID:"))
    assert uid.startswith("UID:n1-20250525T100000Z-") and uid.endswith("@loa")
    assert to_ics([placement("Họp thôn")], "Thôn 1", stamp=STAMP) == text  # stable


def test_text_is_escaped() -> None:
    assert escape_text("a,b;c\\d\ne") == "a\\,b\\;c\\\\d\\ne"
    text = to_ics([placement("Tiêm chủng, đợt 2; mang sổ\\thẻ\nđúng giờ")], "Xã; A, B", stamp=STAMP)
    lines = unfold(text)
    assert "SUMMARY:Tiêm chủng\\, đợt 2\\; mang sổ\\\\thẻ\\nđúng giờ" in lines
    assert "X-WR-CALNAME:Xã\\; A\\, B" in lines


def test_long_lines_fold_at_75_octets_without_splitting_characters() -> None:
    long_title = "Thông báo về việc tổ chức tiêm chủng mở rộng cho trẻ em dưới năm tuổi tại trạm y tế xã " * 3
    text = to_ics([placement(long_title, explanation="Ễ" * 100)], "Thôn 1", stamp=STAMP)
    physical = text.split("\r\n")[:-1]
    assert all(len(line.encode("utf-8")) <= 75 for line in physical)
    assert any(line.startswith(" ") for line in physical)
    assert f"SUMMARY:{long_title}" in unfold(text)
    assert f"DESCRIPTION:{'Ễ' * 100}" in unfold(text)
    assert fold("x" * 75) == "x" * 75
    assert fold("x" * 76) == "x" * 75 + "\r\n x"


def test_empty_calendar_is_still_valid() -> None:
    lines = unfold(to_ics([], "Thôn 1", stamp=STAMP))
    assert lines[0] == "BEGIN:VCALENDAR" and lines[-2] == "END:VCALENDAR" and "BEGIN:VEVENT" not in lines
