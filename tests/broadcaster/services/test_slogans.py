"""The LED slogans: the list officers keep (checked, audited), and whose turn it is on each board, never
over a broadcast. SQLite and PostgreSQL; the boards really showing them:
tests/broadcaster/test_slogans_end_to_end.py."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import func, select

from broadcaster.db import AuditEntry, Device, DeviceKind, Role, Slogan, User
from broadcaster.errors import LoaError
from broadcaster.services import Services
from broadcaster.services.accounts import Principal
from broadcaster.services.announcements import announce
from broadcaster.services.slogans import Key, add_slogan, delete_slogan, edit_slogan, list_slogans, rotation_turn
from broadcaster.services.zones import add_device, add_zone
from schedules.clock import LOCAL_TZ, FakeClock
from tests.broadcaster.conftest import make_services, make_user

MORNING = datetime(2026, 11, 25, 7, 0, tzinfo=LOCAL_TZ)
VALID = timedelta(seconds=10)


@pytest.fixture
def svc(tmp_path: Path, database_url: str) -> Iterator[Services]:
    services = make_services(tmp_path, database_url, FakeClock(MORNING))
    for village in ("thon-1", "thon-2"):
        add_zone(services, village, village.replace("thon-", "Thôn "), "village", [], actor="t")
        with services.db.session() as s:
            add_device(s, f"{village}-led", DeviceKind.LED, village)
            add_device(s, f"{village}-loa", DeviceKind.SPEAKER, village)
            for d in s.scalars(select(Device)):
                d.online = True
    add_zone(services, "nhom-a", "Nhóm A", "group", ["thon-2"], actor="t")
    yield services
    services.db.dispose()


def _principal(svc: Services, username: str, role: Role) -> Principal:
    make_user(svc, username, role)
    with svc.db.session() as s:
        user = s.scalars(select(User).where(User.username == username)).one()
        return Principal(user.id, user.username, user.display_name, user.role, "token")


def _turns(svc: Services, count: int) -> list[dict[str, str]]:
    """What each board shows, turn after turn, as the daemon's rotation asks."""
    last: dict[str, Key] = {}
    seen = []
    for _ in range(count):
        shows = rotation_turn(svc, last, VALID)
        seen.append({s.device_id: s.text for s in shows})
        last.update({s.device_id: s.key for s in shows})
    return seen


def test_boards_show_the_active_slogans_in_order_each_its_own_zones(svc: Services) -> None:
    officer = _principal(svc, "can-bo", Role.OFFICER)
    add_slogan(svc, "Một", actor="can-bo", by=officer)
    add_slogan(svc, "Hai", actor="can-bo", by=officer)
    add_slogan(svc, "Ba (nhóm A)", zones=["nhom-a"], actor="can-bo", by=officer)
    hidden = add_slogan(svc, "Tạm ẩn", active=False, actor="can-bo", by=officer)
    first = add_slogan(svc, "Trước tiên", order=0, actor="can-bo", by=officer)
    assert [s["text"] for s in list_slogans(svc)] == ["Trước tiên", "Một", "Hai", "Ba (nhóm A)", "Tạm ẩn"]
    assert [t["thon-1-led"] for t in _turns(svc, 4)] == ["Trước tiên", "Một", "Hai", "Trước tiên"]
    assert [t["thon-2-led"] for t in _turns(svc, 5)] == ["Trước tiên", "Một", "Hai", "Ba (nhóm A)", "Trước tiên"]

    edit_slogan(svc, hidden["id"], {"active": True}, actor="can-bo", by=officer)
    delete_slogan(svc, first["id"], actor="can-bo", by=officer)
    assert [t["thon-1-led"] for t in _turns(svc, 4)] == ["Một", "Hai", "Tạm ẩn", "Một"]
    with svc.db.session() as s:
        log = [(a.actor, a.action) for a in s.scalars(select(AuditEntry).where(AuditEntry.action.like("slogan.%")))]
    assert log == [("can-bo", "slogan.add")] * 5 + [("can-bo", "slogan.edit"), ("can-bo", "slogan.delete")]


def test_a_board_is_left_alone_while_a_broadcast_of_its_village_is_or_will_soon_be_on_it(svc: Services) -> None:
    add_slogan(svc, "Khẩu hiệu", actor="t")
    announce(svc, "Họp thôn 1.", ["thon-1"], MORNING + timedelta(seconds=8))  # within the slogan's validity
    assert [s.device_id for s in rotation_turn(svc, {}, VALID)] == ["thon-2-led"]  # thôn 1 is about to air
    clock = svc.clock
    assert isinstance(clock, FakeClock)
    clock.advance(timedelta(seconds=10))  # on air in thôn 1 now
    assert [s.device_id for s in rotation_turn(svc, {}, VALID)] == ["thon-2-led"]
    clock.advance(timedelta(minutes=2))  # long over
    assert [s.device_id for s in rotation_turn(svc, {}, VALID)] == ["thon-1-led", "thon-2-led"]
    with svc.db.session() as s:
        s.scalars(select(Device).where(Device.id == "thon-2-led")).one().online = False
    assert [s.device_id for s in rotation_turn(svc, {}, VALID)] == ["thon-1-led"]  # an offline board gets nothing


def test_the_diacritics_of_a_board_come_with_its_turn(svc: Services) -> None:
    add_slogan(svc, "Đoàn kết", actor="t")
    with svc.db.session() as s:
        s.scalars(select(Device).where(Device.id == "thon-1-led")).one().diacritics = False
    assert {s.device_id: s.diacritics for s in rotation_turn(svc, {}, VALID)} == {"thon-1-led": False,
                                                                                   "thon-2-led": True}  # fmt: skip


@pytest.mark.parametrize(
    ("text", "extra", "code", "status"),
    [
        ("", {}, "slogan_empty", 400),
        ("  \n ", {}, "slogan_empty", 400),
        ("x" * 201, {}, "slogan_too_long", 400),
        ("Đúng", {"zones": ["thon-9"]}, "unknown_zone", 404),
        ("Đúng", {"order": 10**12}, "bad_order", 400),
        ("Sai \ud800", {}, "bad_text", 400),
    ],
)
def test_bad_slogans_are_refused_and_nothing_is_stored(
    svc: Services, text: str, extra: dict[str, object], code: str, status: int
) -> None:
    with pytest.raises(LoaError) as refused:
        add_slogan(svc, text, actor="t", **extra)  # type: ignore[arg-type]
    assert (refused.value.code, refused.value.status) == (code, status)
    with svc.db.session() as s:
        assert s.scalar(select(func.count()).select_from(Slogan)) == 0
        assert s.scalar(select(func.count()).select_from(AuditEntry).where(AuditEntry.action.like("slogan%"))) == 0


def test_only_officers_and_admins_keep_the_slogans(svc: Services) -> None:
    kept = add_slogan(svc, "Đoàn kết", actor="t")
    for role in (Role.APPROVER, Role.VIEWER):
        who = _principal(svc, f"nguoi-{role.value}", role)
        for call in (
            lambda w=who: add_slogan(svc, "X", actor=w.username, by=w),
            lambda w=who: edit_slogan(svc, kept["id"], {"text": "Y"}, actor=w.username, by=w),
            lambda w=who: delete_slogan(svc, kept["id"], actor=w.username, by=w),
        ):
            with pytest.raises(LoaError) as refused:
                call()
            assert refused.value.status == 403
    with pytest.raises(LoaError) as refused:
        edit_slogan(svc, 2**70, {"text": "Y"}, actor="t")
    assert refused.value.code == "not_found"
    assert [s["text"] for s in list_slogans(svc)] == ["Đoàn kết"]
