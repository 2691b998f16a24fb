"""The technician's desk at the server's terminal: `loa approvals`, `loa approve`, `loa reject`,
`loa lexicon`, `loa slogan`, as a person types them (Vietnamese output, exit code 2 and nothing changed
on a refusal, the operating-system account in the audit log)."""

from __future__ import annotations

import getpass
import json
from pathlib import Path

from sqlalchemy import select

from broadcaster.config import load_config
from broadcaster.db import AuditEntry, Broadcast, Role, User
from broadcaster.services import Services
from broadcaster.services.accounts import Principal
from broadcaster.services.approvals import compose
from broadcaster.services.build import build_services
from broadcaster.services.programmes import add_programme
from broadcaster.services.zones import add_village
from schedules.clock import SystemClock
from tests.broadcaster.cli.test_cli import loa
from tests.broadcaster.conftest import make_user


def _services(tmp_path: Path, **environ: str) -> Services:
    """The database `loa` uses in these tests, with a village and an officer."""
    environ |= {"LOA_GENERAL_DATA_DIR": str(tmp_path / "data"), "LOA_SPEECH_CHIMES": "false",
                "LOA_SCHEDULE_QUIET_START": "00:00", "LOA_SCHEDULE_QUIET_END": "00:00"}  # fmt: skip
    svc = build_services(load_config(None, environ=environ), SystemClock())
    with svc.db.session() as s:
        add_village(s, "thon-1", "Thôn 1")
    make_user(svc, "can-bo", Role.OFFICER)
    return svc


def test_what_waits_is_listed_approved_and_rejected_from_the_terminal(tmp_path: Path) -> None:
    svc = _services(tmp_path)
    first = compose(svc, "Họp thôn 1 lúc 19h.", ["thon-1"], "+1h", title="Họp thôn", actor="can-bo")
    second = compose(svc, "Thu quỹ phòng chống thiên tai.", ["all"], "+2h", actor="can-bo")

    listed = loa(tmp_path, "approvals")
    assert listed.returncode == 0, listed.stderr
    assert f"#{first['id']} Họp thôn (normal)" in listed.stdout and "soạn bởi can-bo" in listed.stdout
    waiting = json.loads(loa(tmp_path, "approvals", "--json").stdout)
    assert [w["id"] for w in waiting["announcements"]] == [first["id"], second["id"]]

    approved = loa(tmp_path, "approve", str(first["id"]))
    assert approved.returncode == 0, approved.stderr
    assert f"Đã duyệt thông báo #{first['id']}: Họp thôn" in approved.stdout
    assert "phát tại Thôn 1 lúc" in approved.stdout
    again = loa(tmp_path, "approve", str(first["id"]))
    assert again.returncode == 2 and again.stderr.startswith("Lỗi:") and "(bad_state)" in again.stderr

    no_reason = loa(tmp_path, "reject", str(second["id"]))
    assert no_reason.returncode == 2 and "--reason" in no_reason.stderr  # argparse, in Vietnamese
    rejected = loa(tmp_path, "reject", str(second["id"]), "--reason", "Ghi rõ mức thu.")
    assert rejected.returncode == 0 and "lý do: Ghi rõ mức thu." in rejected.stdout
    assert "Không có thông báo hay chương trình nào chờ duyệt." in loa(tmp_path, "approvals").stdout

    with svc.db.session() as s:
        entries = s.scalars(select(AuditEntry).where(AuditEntry.action.like("announcement.%")))
        log = [(a.actor, a.action) for a in entries]
    me = getpass.getuser()
    assert log[-2:] == [(me, "announcement.approve"), (me, "announcement.reject")]
    svc.db.dispose()


def test_an_officers_programme_is_approved_or_rejected_from_the_terminal(tmp_path: Path) -> None:
    """A recurring notice an officer made waits; the terminal lists it and approves it (placed there and
    then), and rejects another with its reason: neither airs before, the rejected one never."""
    svc = _services(tmp_path, LOA_SECURITY_REQUIRE_APPROVAL="true")
    with svc.db.session() as s:
        user = s.scalars(select(User).where(User.username == "can-bo")).one()
        officer = Principal(user.id, user.username, user.display_name, user.role, "token")
    rule = "07:00 và 19:00"
    first = add_programme(svc, "notice", "Dọn vệ sinh", ["thon-1"], rule, text="Ra quân dọn vệ sinh.",
                          actor="can-bo", by=officer)  # fmt: skip
    second = add_programme(svc, "notice", "Thu quỹ", ["thon-1"], rule, text="Nộp quỹ phòng chống thiên tai.",
                           actor="can-bo", by=officer)  # fmt: skip
    assert (first["state"], second["state"]) == ("awaiting_approval", "awaiting_approval")

    listed = loa(tmp_path, "approvals")
    assert f"chương trình #{first['id']} Dọn vệ sinh" in listed.stdout, listed.stdout
    approved = loa(tmp_path, "approve", str(first["id"]), "--programme")
    assert approved.returncode == 0, approved.stderr
    assert f"Đã duyệt chương trình #{first['id']}" in approved.stdout
    rejected = loa(tmp_path, "reject", str(second["id"]), "--programme", "--reason", "Ghi rõ mức thu.")
    assert rejected.returncode == 0 and "lý do: Ghi rõ mức thu." in rejected.stdout, rejected.stderr
    with svc.db.session() as s:
        placed = {pid for pid in s.scalars(select(Broadcast.programme_id))}
    assert placed == {first["id"]}
    svc.db.dispose()


def test_the_lexicon_and_the_slogans_from_the_terminal(tmp_path: Path) -> None:
    svc = _services(tmp_path)
    added = loa(tmp_path, "lexicon", "add", "KVC", "khu vui chơi")
    assert added.returncode == 0 and "KVC → khu vui chơi" in added.stdout
    twice = loa(tmp_path, "lexicon", "add", "kvc", "ca vê xê")
    assert twice.returncode == 2 and "(lexicon_exists)" in twice.stderr
    assert [e["written"] for e in json.loads(loa(tmp_path, "lexicon", "list", "--json").stdout)] == ["KVC"]
    assert loa(tmp_path, "lexicon", "remove", "1").returncode == 0
    assert "Từ điển của xã đang trống." in loa(tmp_path, "lexicon", "list").stdout

    assert loa(tmp_path, "slogan", "add", "Toàn dân đoàn kết").returncode == 0
    assert loa(tmp_path, "slogan", "add", "Giữ gìn vệ sinh", "--zone", "thon-1", "--order", "0").returncode == 0
    bad = loa(tmp_path, "slogan", "add", "Sai", "--zone", "thon-9")
    assert bad.returncode == 2 and "(unknown_zone)" in bad.stderr
    listed = loa(tmp_path, "slogan", "list").stdout.splitlines()
    assert listed == ["#2 [0] Giữ gìn vệ sinh — thon-1", "#1 [1] Toàn dân đoàn kết — mọi bảng LED"]
    svc.db.dispose()
