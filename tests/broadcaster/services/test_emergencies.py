"""The second look at an emergency: a confirmation code binds one person to one request, once, briefly.
Over HTTP: tests/broadcaster/api/test_auth.py; from the terminal: tests/broadcaster/cli/test_cli.py."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from broadcaster.services.emergencies import Confirmations, fingerprint
from schedules.clock import FakeClock

T0 = datetime(2026, 11, 25, 2, 0, tzinfo=UTC)


def test_a_confirmation_is_for_one_person_one_request_once_and_not_for_long() -> None:
    clock = FakeClock(T0)
    confirmations = Confirmations(clock, 120)
    request = fingerprint(text="Khẩn cấp", zones=["all"], at=None)
    code = confirmations.issue(1, request)
    assert not confirmations.accept(code, 2, request)  # another person
    assert not confirmations.accept(code, 1, fingerprint(text="Khẩn cấp", zones=["thon-1"], at=None))
    assert not confirmations.accept(code[:-1] + ("A" if code[-1] != "A" else "B"), 1, request)  # forged
    expires, _, mac = code.partition(".")
    assert not confirmations.accept(f"{int(expires) + 3600}.{mac}", 1, request)  # its expiry is signed
    assert confirmations.accept(code, 1, request)
    assert not confirmations.accept(code, 1, request)  # once
    late = confirmations.issue(1, request)
    clock.advance(timedelta(seconds=121))
    assert not confirmations.accept(late, 1, request)
    assert not Confirmations(clock, 120).accept(confirmations.issue(1, request), 1, request)  # another process
