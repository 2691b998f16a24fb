from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta

import pytest

from schedules import ErrorCode, Frequency, Recurrence, ScheduleError, occurrences, parse_recurrence, to_local
from tests.schedules.helpers import local


def local_times(found: list[datetime]) -> list[str]:
    return [f"{to_local(t):%Y-%m-%d %H:%M}" for t in found]


def test_six_and_seventeen_for_three_days_is_six_occurrences_in_utc() -> None:
    rule = Recurrence.for_days([time(17), time(6)], date(2025, 5, 25), 3)
    found = occurrences(rule, local(2025, 5, 1), local(2025, 7, 1))
    assert local_times(found) == [
        "2025-05-25 06:00", "2025-05-25 17:00",
        "2025-05-26 06:00", "2025-05-26 17:00",
        "2025-05-27 06:00", "2025-05-27 17:00",
    ]  # fmt: skip
    assert all(t.tzinfo is UTC for t in found)
    assert found[0] == datetime(2025, 5, 24, 23, 0, tzinfo=UTC)  # 06:00 in Hanoi is 23:00 UTC the day before


def test_range_is_half_open() -> None:
    rule = Recurrence.daily([time(6)], date(2025, 5, 25))
    found = occurrences(rule, local(2025, 5, 25, 6), local(2025, 5, 27, 6))
    assert local_times(found) == ["2025-05-25 06:00", "2025-05-26 06:00"]
    assert rule.occurrences(local(2025, 5, 25, 6), local(2025, 5, 25, 6)) == []


def test_every_n_days_across_month_and_year_end() -> None:
    rule = Recurrence.every_n_days(3, [time(7, 30)], date(2025, 1, 28))
    found = occurrences(rule, local(2025, 1, 1), local(2025, 2, 10))
    assert local_times(found) == [
        "2025-01-28 07:30", "2025-01-31 07:30", "2025-02-03 07:30", "2025-02-06 07:30", "2025-02-09 07:30",
    ]  # fmt: skip
    leap = Recurrence.every_n_days(2, [time(6)], date(2024, 2, 27))
    assert local_times(occurrences(leap, local(2024, 2, 1), local(2024, 3, 5))) == [
        "2024-02-27 06:00", "2024-02-29 06:00", "2024-03-02 06:00", "2024-03-04 06:00",
    ]  # fmt: skip
    new_year = Recurrence.every_n_days(10, [time(6)], date(2024, 12, 25))
    assert local_times(occurrences(new_year, local(2024, 12, 1), local(2025, 1, 20))) == [
        "2024-12-25 06:00", "2025-01-04 06:00", "2025-01-14 06:00",
    ]  # fmt: skip


def test_every_n_days_counts_from_start_not_from_query() -> None:
    rule = Recurrence.every_n_days(2, [time(6)], date(2025, 5, 1))
    assert local_times(occurrences(rule, local(2025, 5, 4), local(2025, 5, 8))) == [
        "2025-05-05 06:00", "2025-05-07 06:00",
    ]  # fmt: skip


def test_weekly_on_given_days_and_weekdays() -> None:
    monday = date(2025, 5, 26)
    weekly = Recurrence.weekly([0, 2, 4], [time(17, 30)], monday)
    found = occurrences(weekly, local(2025, 5, 26), local(2025, 6, 9))
    assert [to_local(t).strftime("%a %d") for t in found] == [
        "Mon 26", "Wed 28", "Fri 30", "Mon 02", "Wed 04", "Fri 06",
    ]  # fmt: skip
    weekdays = Recurrence.on_weekdays([time(6, 30)], date(2025, 5, 24))  # a Saturday
    found = occurrences(weekdays, local(2025, 5, 24), local(2025, 6, 2))
    assert [to_local(t).strftime("%a") for t in found] == ["Mon", "Tue", "Wed", "Thu", "Fri"]


def test_end_date_is_inclusive() -> None:
    rule = Recurrence.daily([time(6), time(21)], date(2025, 5, 25), date(2025, 5, 26))
    found = occurrences(rule, local(2025, 5, 1), local(2025, 6, 1))
    assert local_times(found)[-1] == "2025-05-26 21:00"
    assert len(found) == 4
    assert rule.fires_on(date(2025, 5, 26)) and not rule.fires_on(date(2025, 5, 27))


def test_late_evening_local_time_is_found_when_query_starts_the_previous_utc_day() -> None:
    rule = Recurrence.daily([time(6)], date(2025, 5, 25), date(2025, 5, 25))
    # 06:00 on the 25th local is 23:00 on the 24th UTC.
    found = occurrences(rule, datetime(2025, 5, 24, 22, tzinfo=UTC), datetime(2025, 5, 25, tzinfo=UTC))
    assert found == [datetime(2025, 5, 24, 23, tzinfo=UTC)]


@pytest.mark.parametrize(
    ("make", "code"),
    [
        (lambda: Recurrence.daily([], date(2025, 5, 25)), ErrorCode.NEVER_FIRES),
        (
            lambda: Recurrence.daily([time(6)], date(2025, 5, 25), date(2025, 5, 24)),
            ErrorCode.END_BEFORE_START,
        ),
        # Saturday–Sunday only, but weekdays wanted:
        (
            lambda: Recurrence.on_weekdays([time(6)], date(2025, 5, 24), date(2025, 5, 25)),
            ErrorCode.NEVER_FIRES,
        ),
        # Tuesday to Thursday, but only Sundays wanted:
        (
            lambda: Recurrence.weekly([6], [time(6)], date(2025, 5, 27), date(2025, 5, 29)),
            ErrorCode.NEVER_FIRES,
        ),
        (lambda: Recurrence.weekly([], [time(6)], date(2025, 5, 27)), ErrorCode.NEVER_FIRES),
        (lambda: Recurrence.weekly([7], [time(6)], date(2025, 5, 27)), ErrorCode.BAD_RECURRENCE),
        (lambda: Recurrence.every_n_days(0, [time(6)], date(2025, 5, 27)), ErrorCode.BAD_RECURRENCE),
        (lambda: Recurrence.for_days([time(6)], date(2025, 5, 27), 0), ErrorCode.NEVER_FIRES),
        (lambda: Recurrence(times=(time(6),), start=date(2025, 5, 27), interval=2), ErrorCode.BAD_RECURRENCE),
        (lambda: Recurrence.daily([time(6, tzinfo=UTC)], date(2025, 5, 27)), ErrorCode.BAD_RECURRENCE),
    ],
)
def test_bad_recurrences(make: object, code: ErrorCode) -> None:
    with pytest.raises(ScheduleError) as caught:
        make()  # type: ignore[operator]
    assert caught.value.code == code
    assert caught.value.message_vi


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        (
            "06:00 và 17:00 trong 3 ngày",
            Recurrence.for_days([time(6), time(17)], date(2025, 5, 25), 3),
        ),
        (
            "06:00 and 17:00 for 3 days from 2025-06-01",
            Recurrence.for_days([time(6), time(17)], date(2025, 6, 1), 3),
        ),
        ("weekdays 06:30", Recurrence.on_weekdays([time(6, 30)], date(2025, 5, 25))),
        (
            "ngày thường 6h30 đến 30/06/2025",
            Recurrence.on_weekdays([time(6, 30)], date(2025, 5, 25), date(2025, 6, 30)),
        ),
        (
            "weekly mon,fri 17:30 from 2025-06-02",
            Recurrence.weekly([0, 4], [time(17, 30)], date(2025, 6, 2)),
        ),
        (
            "hằng tuần thứ hai, thứ 4 và chủ nhật lúc 07:00",
            Recurrence.weekly([0, 2, 6], [time(7)], date(2025, 5, 25)),
        ),
        (
            "mỗi 2 ngày 06:00 từ 30/05/2025 đến 10/06/2025",
            Recurrence.every_n_days(2, [time(6)], date(2025, 5, 30), date(2025, 6, 10)),
        ),
        ("hằng ngày 05:45", Recurrence.daily([time(5, 45)], date(2025, 5, 25))),
    ],
)
def test_parse_compact_spec(spec: str, expected: Recurrence) -> None:
    assert parse_recurrence(spec, today=date(2025, 5, 25)) == expected


@pytest.mark.parametrize(
    ("spec", "code"),
    [
        ("hằng ngày", ErrorCode.NEVER_FIRES),
        ("weekly 06:00", ErrorCode.NEVER_FIRES),
        ("06:00 từ 31/02/2025", ErrorCode.BAD_RECURRENCE),
        ("06:00 đến 01/05/2025", ErrorCode.END_BEFORE_START),
        ("06:00 trong 0 ngày", ErrorCode.NEVER_FIRES),
        ("06:00 trong 3 ngày đến 30/05/2025", ErrorCode.BAD_RECURRENCE),
    ],
)
def test_parse_rejects(spec: str, code: ErrorCode) -> None:
    with pytest.raises(ScheduleError) as caught:
        parse_recurrence(spec, today=date(2025, 5, 25))
    assert caught.value.code == code


def test_parsed_times_are_deduplicated_and_sorted() -> None:
    rule = parse_recurrence("17:00, 06:00, 17:00", today=date(2025, 5, 25))
    assert rule.times == (time(6), time(17))
    assert rule.frequency is Frequency.DAILY
    assert timedelta(days=0) == rule.start - date(2025, 5, 25)


@pytest.mark.parametrize(
    ("spec", "variant"),
    [("06:00 trong 99999999999 ngày", "too_long"), ("mỗi 99999999999 ngày 06:00", "interval_too_long"),
     ("06:00 từ 31/12/9999 trong 10 ngày", "date"), ("weekly mon 06:00 từ 31/12/9999", "date")],
)  # fmt: skip
def test_a_series_beyond_any_calendar_is_refused_not_computed(spec: str, variant: str) -> None:
    with pytest.raises(ScheduleError) as err:
        parse_recurrence(spec, today=date(2026, 11, 25))
    assert err.value.code is ErrorCode.BAD_RECURRENCE and err.value.variant == variant
    longest = parse_recurrence("06:00 trong 3660 ngày", today=date(2026, 11, 25))
    assert longest.end == date(2026, 11, 25) + timedelta(days=3659)
