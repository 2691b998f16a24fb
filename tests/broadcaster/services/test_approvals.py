"""The approval of announcements, the services' half: draft → awaiting approval → approved (planned) →
scheduled → on air → aired, or rejected with a reason, on SQLite and PostgreSQL with the clock in the
test's hand. Over HTTP: tests/broadcaster/api/test_approvals.py; at the terminal: tests/broadcaster/cli/test_desk.py."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

from broadcaster.db import Announcement, AnnouncementState, AuditEntry, Broadcast, BroadcastStatus, Role, User
from broadcaster.errors import LoaError
from broadcaster.services import Services
from broadcaster.services.accounts import Principal
from broadcaster.services.announcements import get_announcement
from broadcaster.services.approvals import (
    approve,
    approve_programme,
    compose,
    edit,
    list_announcements,
    recallable,
    reject,
    reject_programme,
    submit,
    waiting,
    waiting_programmes,
)
from broadcaster.services.audio import pinned_audio
from broadcaster.services.programmes import add_programme, expand_programmes, list_programmes
from broadcaster.services.recall import recall
from broadcaster.services.zones import add_zone
from schedules.clock import LOCAL_TZ, FakeClock
from tests.broadcaster.conftest import make_services, make_user

MORNING = datetime(2026, 11, 25, 7, 0, tzinfo=LOCAL_TZ)
NOTICE = "Thông báo: 8h sáng thứ bảy, thôn 2 ra quân dọn vệ sinh đường làng."


def _principal(svc: Services, username: str, role: Role) -> Principal:
    make_user(svc, username, role)
    with svc.db.session() as s:
        user = s.scalars(select(User).where(User.username == username)).one()
        return Principal(user.id, user.username, user.display_name, user.role, "token")


@pytest.fixture
def svc(tmp_path: Path, database_url: str) -> Iterator[Services]:
    services = make_services(tmp_path, database_url, FakeClock(MORNING), LOA_SECURITY_REQUIRE_APPROVAL="true")
    add_zone(services, "thon-1", "Thôn 1", "village", [], actor="t")
    add_zone(services, "thon-2", "Thôn 2", "village", [], actor="t")
    yield services
    services.db.dispose()


@pytest.fixture
def officer(svc: Services) -> Principal:
    return _principal(svc, "can-bo", Role.OFFICER)


@pytest.fixture
def approver(svc: Services) -> Principal:
    return _principal(svc, "chu-tich", Role.APPROVER)


def _as(p: Principal) -> dict[str, Any]:
    return {"actor": p.username, "by": p}


def _audit(svc: Services) -> list[tuple[str, str]]:
    with svc.db.session() as s:
        rows = s.execute(
            select(AuditEntry.actor, AuditEntry.action)
            .where(AuditEntry.action.notin_(("user.add", "token.add", "zone.add")))
            .order_by(AuditEntry.id)
        )
        return [(actor, action) for actor, action in rows]


def _stored(svc: Services) -> tuple[Any, ...]:
    """Everything a refused step must leave as it was: each item's state and decision, the broadcasts,
    the audit log."""
    with svc.db.session() as s:
        items = [
            (a.id, a.state, a.decided_by, a.decision_reason, a.text, a.audio_sha256)
            for a in s.scalars(select(Announcement).order_by(Announcement.id))
        ]
        return (items, s.scalar(select(func.count()).select_from(Broadcast)), len(_audit(svc)))


def _refused(code: str, status: int, call: Any, *args: Any, **kwargs: Any) -> LoaError:
    with pytest.raises(LoaError) as refused:
        call(*args, **kwargs)
    assert (refused.value.code, refused.value.status) == (code, status), refused.value
    assert refused.value.message("vi") and refused.value.message("en")
    return refused.value


def test_a_submitted_item_waits_for_its_approval_and_is_planned_by_it(
    svc: Services, officer: Principal, approver: Principal
) -> None:
    item = compose(svc, NOTICE, ["thon-2"], "+2h", title="Dọn vệ sinh", **_as(officer))
    assert item["state"] == "awaiting_approval"
    assert item["broadcasts"] == [] and item["audio"]["sha256"]  # rendered, so the approver hears it
    assert [p["villages"] for p in item["placements"]] == [["thon-2"]]  # where it would go now
    assert item["approval"]["submitted_by"] == "can-bo" and item["approval"]["decision"] is None
    assert item["audio"]["sha256"] in pinned_audio(svc)  # kept in the store while it waits

    queue = waiting(svc, by=approver)
    assert [(w["id"], w["may_approve"]) for w in queue] == [(item["id"], True)]
    assert [w["may_approve"] for w in waiting(svc, by=officer)] == [False]

    svc.clock.advance(timedelta(minutes=5))  # type: ignore[attr-defined]
    done = approve(svc, item["id"], **_as(approver))
    assert done["state"] == "scheduled"
    assert [(b["zone"], b["status"]) for b in done["broadcasts"]] == [("thon-2", "planned")]
    assert done["broadcasts"][0]["start_at_local"] == "09:00:00 25/11/2026"  # as asked when it was submitted
    approval = done["approval"]
    assert (approval["decision"], approval["decided_by"], approval["via"]) == ("approved", "chu-tich", "approver")
    assert approval["decided"]["at_local"] == "07:05:00 25/11/2026"
    assert waiting(svc, by=approver) == []
    assert _audit(svc) == [("can-bo", "announcement.submit"), ("chu-tich", "announcement.approve")]


def test_nobody_approves_their_own_item_and_a_step_from_the_wrong_state_changes_nothing(
    svc: Services, officer: Principal, approver: Principal
) -> None:
    admin = _principal(svc, "quan-tri", Role.ADMIN)
    own = compose(svc, NOTICE, ["all"], "+1h", **_as(admin))
    before = _stored(svc)
    _refused("forbidden", 403, approve, svc, own["id"], **_as(admin))
    _refused("forbidden", 403, approve, svc, own["id"], **_as(officer))  # an officer's role does not approve
    _refused("forbidden", 403, compose, svc, NOTICE, ["all"], **_as(approver))  # nor an approver's compose
    _refused("bad_state", 409, edit, svc, own["id"], {"text": "Khác"}, **_as(officer))
    _refused("bad_state", 409, submit, svc, own["id"], **_as(officer))
    _refused("bad_state", 409, recall, svc, own["id"], actor="can-bo")  # nothing of it is planned
    _refused("not_found", 404, approve, svc, 999, **_as(approver))
    _refused("not_found", 404, approve, svc, 2**70, **_as(approver))
    assert _stored(svc) == before

    approve(svc, own["id"], **_as(approver))
    before = _stored(svc)
    _refused("bad_state", 409, approve, svc, own["id"], **_as(approver))  # twice: planned once
    _refused("bad_state", 409, reject, svc, own["id"], "muộn", **_as(approver))
    _refused("bad_state", 409, edit, svc, own["id"], {"title": "Khác"}, **_as(admin))
    assert _stored(svc) == before
    assert recall(svc, own["id"], actor="can-bo")["cancelled_before_dispatch"] == 2  # once planned, it can be


def test_a_draft_is_edited_submitted_sent_back_and_mended(
    svc: Services, officer: Principal, approver: Principal
) -> None:
    draft = compose(svc, "Họp thôn 1 lúc 19h.", ["thon-1"], submit=False, **_as(officer))
    assert (draft["state"], draft["audio"]["url"], draft["placements"]) == ("draft", None, [])
    changed = edit(svc, draft["id"], {"text": "Họp thôn 1 lúc 19h tại KVC.", "zones": ["all"]}, **_as(officer))
    assert changed["text"] == "Họp thôn 1 lúc 19h tại KVC." and changed["request"]["zones"] == ["all"]
    assert changed["title"] == "Họp thôn 1 lúc 19h tại KVC."  # a title from the text follows the text

    sent = submit(svc, draft["id"], **_as(officer))
    assert sent["state"] == "awaiting_approval" and sent["audio"]["sha256"]
    before = _stored(svc)
    _refused("reason_required", 400, reject, svc, draft["id"], "  ", **_as(approver))
    _refused("reason_too_long", 400, reject, svc, draft["id"], "x" * 501, **_as(approver))
    _refused("bad_text", 400, reject, svc, draft["id"], "lỗi \ud800", **_as(approver))
    assert _stored(svc) == before

    back = reject(svc, draft["id"], "Ghi rõ ngày họp.", **_as(approver))
    assert back["state"] == "rejected" and back["broadcasts"] == []
    assert (back["approval"]["decision"], back["approval"]["reason"]) == ("rejected", "Ghi rõ ngày họp.")
    mine = list_announcements(svc, created_by="can-bo")
    assert [(m["id"], m["state"], m["approval"]["reason"]) for m in mine] == [
        (draft["id"], "rejected", "Ghi rõ ngày họp.")
    ]

    mended = edit(svc, draft["id"], {"text": "Họp thôn 1 lúc 19h ngày 5/12."}, **_as(officer))
    assert mended["state"] == "draft" and mended["audio"]["sha256"] is None  # the old speech is not what it says
    assert mended["approval"]["reason"] == "Ghi rõ ngày họp."  # the officer still reads why
    again = submit(svc, draft["id"], **_as(officer))
    assert again["state"] == "awaiting_approval"
    assert approve(svc, draft["id"], **_as(approver))["state"] == "scheduled"
    actions = [a for _, a in _audit(svc)]
    assert actions == ["announcement.draft", "announcement.edit", "announcement.submit", "announcement.reject",
                       "announcement.edit", "announcement.submit", "announcement.approve"]  # fmt: skip


def test_bad_input_and_what_cannot_be_planned_are_refused_with_nothing_stored(
    svc: Services, officer: Principal, approver: Principal
) -> None:
    for args, kwargs, code in (
        (("", ["all"]), {}, "empty_text"),
        ((NOTICE, ["thon-9"]), {}, "unknown_zone"),
        ((NOTICE, ["all"], "2001-01-01 07:00"), {}, "time_in_past"),
        ((NOTICE, ["all"]), {"priority": "emergency"}, "bad_priority"),  # an emergency is never drafted
        ((NOTICE, ["all"]), {"bulletin": 2**40}, "no_bulletin"),
        ((NOTICE, ["all"], "23:00"), {}, "in_quiet_hours"),  # refused when submitted, not at approval
    ):
        with pytest.raises(LoaError) as refused:
            compose(svc, *args, **kwargs, **_as(officer))
        assert refused.value.code == code
    assert _stored(svc) == ([], 0, 0)
    assert not list((svc.config.general.data_dir / "audio").glob("**/*.mp3"))  # no audio left behind either

    night = compose(svc, NOTICE, ["all"], "23:00", submit=False, **_as(officer))  # a draft is not planned
    before = _stored(svc)
    _refused("in_quiet_hours", 409, submit, svc, night["id"], **_as(officer))
    assert _stored(svc) == before and get_announcement(svc, night["id"])["state"] == "draft"

    late = compose(svc, NOTICE, ["all"], "+1h", **_as(officer))
    svc.clock.advance(timedelta(hours=2))  # type: ignore[attr-defined]
    before = _stored(svc)
    _refused("approval_late", 409, approve, svc, late["id"], **_as(approver))
    assert _stored(svc) == before and get_announcement(svc, late["id"])["state"] == "awaiting_approval"


def test_without_required_approval_submitting_plans_at_once(tmp_path: Path, sqlite_url: str) -> None:
    svc = make_services(tmp_path, sqlite_url, FakeClock(MORNING))  # require_approval = false
    add_zone(svc, "thon-1", "Thôn 1", "village", [], actor="t")
    officer = _principal(svc, "can-bo", Role.OFFICER)
    now = compose(svc, NOTICE, ["all"], "+1h", **_as(officer))
    assert (now["state"], now["approval"]["via"]) == ("scheduled", "not_required")
    draft = compose(svc, "Họp thôn.", ["all"], "+2h", submit=False, **_as(officer))
    assert submit(svc, draft["id"], **_as(officer))["state"] == "scheduled"
    assert [a for _, a in _audit(svc)] == ["announce", "announcement.draft", "announce"]
    svc.db.dispose()


def test_after_approval_the_state_is_read_from_the_broadcasts(
    svc: Services, officer: Principal, approver: Principal
) -> None:
    item = compose(svc, NOTICE, ["all"], "+10m", **_as(officer))
    assert approve(svc, item["id"], **_as(approver))["state"] == "scheduled"

    def set_status(status: BroadcastStatus) -> None:
        with svc.db.session() as s:
            for b in s.scalars(select(Broadcast).where(Broadcast.announcement_id == item["id"])):
                b.status = status

    set_status(BroadcastStatus.DISPATCHED)
    assert get_announcement(svc, item["id"])["state"] == "scheduled"  # sent, not yet started
    svc.clock.advance(timedelta(minutes=10, seconds=1))  # type: ignore[attr-defined]
    assert get_announcement(svc, item["id"])["state"] == "on_air"
    set_status(BroadcastStatus.DONE)
    assert get_announcement(svc, item["id"])["state"] == "aired"
    assert [m["state"] for m in list_announcements(svc, state="aired")] == ["aired"]
    assert list_announcements(svc, state="awaiting_approval") == []
    set_status(BroadcastStatus.MISSED)
    assert get_announcement(svc, item["id"])["state"] == "missed"

    other = compose(svc, NOTICE, ["thon-1"], "+1h", **_as(officer))
    approve(svc, other["id"], **_as(approver))
    recall(svc, other["id"], actor="can-bo", reason="Báo nhầm")
    assert get_announcement(svc, other["id"])["state"] == "recalled"
    with svc.db.session() as s:
        assert s.get(Announcement, other["id"]).state is AnnouncementState.APPROVED  # type: ignore[union-attr]
    assert json.loads(json.dumps(list_announcements(svc)))  # the list is plain JSON


def test_two_approvers_at_once_plan_it_once(svc: Services, officer: Principal, approver: Principal) -> None:
    import threading

    other = _principal(svc, "pho-chu-tich", Role.APPROVER)
    item = compose(svc, NOTICE, ["all"], "+1h", **_as(officer))
    start = threading.Barrier(2)
    outcomes: list[str] = []

    def click(who: Principal) -> None:
        start.wait()
        try:
            outcomes.append(approve(svc, item["id"], **_as(who))["state"])
        except LoaError as exc:
            outcomes.append(exc.code)

    threads = [threading.Thread(target=click, args=(p,)) for p in (approver, other)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert sorted(outcomes) == ["bad_state", "scheduled"]
    assert [b["zone"] for b in get_announcement(svc, item["id"])["broadcasts"]] == ["thon-1", "thon-2"]
    assert [a for _, a in _audit(svc)].count("announcement.approve") == 1


def _broadcasts(svc: Services) -> list[tuple[int | None, str]]:
    with svc.db.session() as s:
        return [(b.programme_id, b.zone_id) for b in s.scalars(select(Broadcast).order_by(Broadcast.id))]


def test_an_officers_programme_airs_only_once_another_person_approves_it(
    svc: Services, officer: Principal, approver: Principal
) -> None:
    """A recurring notice or a relay is as loud as an announcement: it waits, stored but never
    expanded, until an approver who is not its author approves it; a rejection needs a reason."""
    admin = _principal(svc, "quan-tri", Role.ADMIN)
    notice = add_programme(svc, "notice", "Dọn vệ sinh", ["thon-2"], "17:00", text=NOTICE, **_as(officer))
    assert notice["state"] == "awaiting_approval"
    assert len(notice["placements"]) == 2  # where it would go (today and tomorrow at 17:00), not placed
    relay = add_programme(
        svc, "relay", "Thời sự VOV1", ["all"], "18:00", stream_url="http://radio.example/vov1", duration_s=600,
        **_as(admin),
    )  # fmt: skip
    assert expand_programmes(svc) == 0 and _broadcasts(svc) == []  # the chore skips what waits

    queue = waiting_programmes(svc, by=approver)
    assert [(p["id"], p["text"], p["may_approve"]) for p in queue] == [
        (notice["id"], NOTICE, True),
        (relay["id"], "", True),
    ]
    assert [p["may_approve"] for p in waiting_programmes(svc, by=admin)] == [True, False]
    before = _stored(svc), list_programmes(svc)
    _refused("forbidden", 403, approve_programme, svc, relay["id"], **_as(admin))  # its own author
    _refused("forbidden", 403, approve_programme, svc, notice["id"], **_as(officer))  # an officer's role
    _refused("reason_required", 400, reject_programme, svc, relay["id"], "  ", **_as(approver))
    _refused("not_found", 404, approve_programme, svc, 999, **_as(approver))
    assert (_stored(svc), list_programmes(svc)) == before

    svc.clock.advance(timedelta(minutes=5))  # type: ignore[attr-defined]
    approved = approve_programme(svc, notice["id"], **_as(admin))  # an admin who is not its author
    assert approved["state"] == "approved" and len(approved["placements"]) == 2
    assert _broadcasts(svc) == [(notice["id"], "thon-2")] * 2
    assert expand_programmes(svc) == 0  # placed once, by the approval
    _refused("bad_state", 409, approve_programme, svc, notice["id"], **_as(approver))  # twice: placed once

    rejected = reject_programme(svc, relay["id"], "Sai đài, cần VOV2", **_as(approver))
    assert (rejected["state"], rejected["decision_reason"], rejected["active"]) == (
        "rejected",
        "Sai đài, cần VOV2",
        False,
    )
    assert expand_programmes(svc, timedelta(days=3)) == 1  # the notice's third day, never the rejected relay
    assert {p for p, _ in _broadcasts(svc)} == {notice["id"]}
    assert waiting_programmes(svc, by=approver) == []
    assert [a for a in _audit(svc) if a[1].startswith("programme.")] == [
        ("can-bo", "programme.submit"), ("quan-tri", "programme.submit"),
        ("quan-tri", "programme.approve"), ("chu-tich", "programme.reject"),
    ]  # fmt: skip
    spoken = queue[0]["announcement"]
    assert recallable(svc, {spoken}) == {spoken}  # an approved notice is scheduled: the desk offers its recall


def test_without_required_approval_a_programme_is_placed_at_once(tmp_path: Path, sqlite_url: str) -> None:
    services = make_services(tmp_path, sqlite_url, FakeClock(MORNING), LOA_SECURITY_REQUIRE_APPROVAL="false")
    try:
        officer = _principal(services, "can-bo", Role.OFFICER)
        add_zone(services, "thon-1", "Thôn 1", "village", [], actor="t")
        made = add_programme(
            services, "relay", "Thời sự VOV1", ["all"], "18:00", stream_url="http://radio.example/vov1",
            duration_s=600, **_as(officer),
        )  # fmt: skip
        assert made["state"] == "approved" and len(_broadcasts(services)) == 2
        assert waiting_programmes(services) == []
    finally:
        services.db.dispose()
