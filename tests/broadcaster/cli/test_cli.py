"""The `loa` command as a person types it: output, exit codes, and nothing stored on bad input."""

from __future__ import annotations

import contextlib
import io
import os
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy import func, select

from broadcaster.cli.main import main
from broadcaster.db import Announcement, Broadcast, BroadcastStatus, Database

ROOT = Path(__file__).resolve().parents[3]


def loa(tmp_path: Path, *args: str, stdin: str = "", **more_env: str) -> subprocess.CompletedProcess[str]:
    """`loa ARGS` as a person types it, run in this process: a fresh interpreter and its imports cost a
    second or more a call, and these files make some hundred calls. What only a real process shows (a
    closed pipe, a terminal, the entry point) has tests of its own: `_on_a_terminal` here, and
    test_newcomer.py."""
    env = {
        "LOA_GENERAL_DATA_DIR": str(tmp_path / "data"),
        "LOA_SPEECH_CHIMES": "false",
        "LOA_SCHEDULE_QUIET_START": "00:00",  # independent of the hour the test runs at
        "LOA_SCHEDULE_QUIET_END": "00:00",
        **more_env,
    }
    saved = dict(os.environ)
    os.environ.pop("LOA_LANG", None)  # Vietnamese unless a test asks
    os.environ.update(env)
    out, err = (io.TextIOWrapper(io.BytesIO(), encoding="utf-8", write_through=True) for _ in "12")  # .buffer too
    stdin_was = sys.stdin
    sys.stdin = io.StringIO(stdin)
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            try:
                code = main(list(args))
            except SystemExit as exc:  # argparse's refusals and --help
                code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    finally:
        sys.stdin = stdin_was
        os.environ.clear()
        os.environ.update(saved)
    text = [stream.buffer.getvalue().decode() for stream in (out, err)]  # type: ignore[attr-defined]
    return subprocess.CompletedProcess(["loa", *args], code, *text)


def _count(tmp_path: Path) -> tuple[int, int]:
    db = Database(f"sqlite:///{tmp_path / 'data' / 'loa.sqlite3'}")
    with db.session() as s:
        out = (
            s.scalar(select(func.count()).select_from(Announcement)) or 0,
            s.scalar(select(func.count()).select_from(Broadcast)) or 0,
        )
    db.dispose()
    return out


def test_announce_stores_and_reports_in_vietnamese(tmp_path: Path) -> None:
    assert loa(tmp_path, "zone", "add", "thon-1", "--name", "Thôn 1").returncode == 0
    r = loa(
        tmp_path,
        "announce",
        "Thông báo họp thôn lúc 19h.",
        "--zone",
        "all",
        "--at",
        "+1h",
        "--title",
        "Họp thôn",
    )
    assert r.returncode == 0, r.stderr
    assert "Đã lưu thông báo #1: Họp thôn" in r.stdout
    assert _count(tmp_path) == (1, 1)
    assert "thon-1" in loa(tmp_path, "zone", "list").stdout
    s = loa(tmp_path, "status")
    assert s.returncode == 0 and "Thiết bị" in s.stdout


@pytest.mark.parametrize(
    ("args", "code"),
    [
        (["announce", "   "], "empty_text"),
        (["announce", "Họp", "--at", "2001-01-01 07:00"], "time_in_past"),
        (["announce", "Họp", "--zone", "thon-9"], "unknown_zone"),
    ],
)
def test_bad_announce_exits_nonzero_and_stores_nothing(tmp_path: Path, args: list[str], code: str) -> None:
    assert loa(tmp_path, "zone", "add", "thon-1").returncode == 0
    r = loa(tmp_path, *args)
    assert r.returncode == 2
    assert f"({code})" in r.stderr and r.stderr.startswith("Lỗi:")
    assert _count(tmp_path) == (0, 0)


def test_zones_refuse_bad_input(tmp_path: Path) -> None:
    assert loa(tmp_path, "zone", "add", "thon-1").returncode == 0
    for args, code in (
        (["zone", "add", "thon-1"], "zone_exists"),
        (["zone", "add", "Thôn 2"], "bad_zone_id"),
        (["zone", "add", "nhom-a", "--kind", "group", "--members", "thon-1", "thon-9"], "unknown_zone"),
    ):
        r = loa(tmp_path, *args)
        assert r.returncode == 2 and f"({code})" in r.stderr, r.stderr
    assert loa(tmp_path, "zone", "add", "nhom-a", "--kind", "group", "--members", "thon-1").returncode == 0


def test_unreadable_config_is_a_clear_error(tmp_path: Path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text('[speech]\nengine = "robot"\n')
    r = loa(tmp_path, "--config", str(bad), "announce", "x")
    assert r.returncode == 2 and "speech.engine" in r.stderr


def test_normalize_reads_stdin_line_by_line(tmp_path: Path) -> None:
    r = loa(tmp_path, "normalize", stdin="UBND xã họp lúc 7h30\nGọi 114\n")
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert len(lines) == 2
    assert "ủy ban nhân dân" in lines[0].lower() and "bảy giờ ba mươi" in lines[0]
    assert not any(ch.isdigit() for ch in r.stdout)


def test_timeline_and_programmes_from_the_command_line(tmp_path: Path) -> None:
    assert loa(tmp_path, "zone", "add", "thon-1").returncode == 0
    r = loa(
        tmp_path,
        "programme",
        "add",
        "--kind",
        "relay",
        "--title",
        "Thời sự",
        "--when",
        "06:00",
        "--stream",
        "http://127.0.0.1:9/radio.mp3",
        "--duration",
        "900",
    )
    assert r.returncode == 0, r.stderr
    assert "Đã lưu chương trình #1" in r.stdout
    bad = loa(tmp_path, "programme", "add", "--title", "X", "--stream", "rtsp://x", "--duration", "60")
    assert bad.returncode == 2 and "(bad_relay_url)" in bad.stderr
    assert "Thời sự" in loa(tmp_path, "programme", "list").stdout
    timeline = loa(tmp_path, "timeline", "--zone", "thon-1", "--to", "+2d")
    assert timeline.returncode == 0 and "Thời sự" in timeline.stdout and "relay" not in timeline.stderr
    ics = loa(tmp_path, "timeline", "--zone", "thon-1", "--ics")
    assert ics.stdout.startswith("BEGIN:VCALENDAR") and "SUMMARY:Thời sự" in ics.stdout
    assert loa(tmp_path, "timeline", "--zone", "thon-9").returncode == 2


def test_announce_a_recording_and_see_progress_for_a_long_text(tmp_path: Path) -> None:
    assert loa(tmp_path, "zone", "add", "thon-1").returncode == 0
    tone = tmp_path / "ghi-am.wav"
    subprocess.run(
        ["ffmpeg", "-loglevel", "error", "-f", "lavfi", "-i", "sine=frequency=300:duration=1.5", str(tone)], check=True
    )
    r = loa(tmp_path, "announce", "--audio", str(tone), "--title", "Lời chủ tịch xã", "--at", "+1h")
    assert r.returncode == 0, r.stderr
    assert "Lời chủ tịch xã" in r.stdout and "recording" in r.stdout
    long_text = " ".join(f"Câu thứ {n} của thông báo." for n in range(1, 6))
    r = loa(tmp_path, "announce", long_text, "--at", "+2h")
    assert r.returncode == 0, r.stderr
    assert "5/5 câu" in r.stderr and "Đang chuyển thành giọng nói" in r.stderr
    bad = tmp_path / "x.ogg"
    bad.write_bytes(b"\x00" * 2000)
    r = loa(tmp_path, "announce", "--audio", str(bad), "--at", "+1h")
    assert r.returncode == 2 and "(audio_" in r.stderr
    assert _count(tmp_path) == (2, 2)


def test_quiet_hours_per_zone_and_the_report(tmp_path: Path) -> None:
    assert loa(tmp_path, "zone", "add", "thon-1", "--quiet", "22:00-05:30").returncode == 0
    bad = loa(tmp_path, "zone", "add", "thon-2", "--quiet", "late")
    assert bad.returncode == 2 and "(bad_quiet_hours)" in bad.stderr
    r = loa(tmp_path, "report", "--from", "2026-01-01", "--to", "2026-03-31")
    assert r.returncode == 0
    assert "Từ ngày 01/01/2026 đến ngày 31/03/2026, đã thực hiện 0 tin, bài với 0 lượt phát" in r.stdout


def test_argparse_speaks_vietnamese_too(tmp_path: Path) -> None:
    r = loa(tmp_path, "announce", "Họp", "--priority", "loud")
    assert r.returncode == 2
    assert "cách dùng: loa announce" in r.stderr
    assert "loa announce: lỗi: đối số --priority: lựa chọn không hợp lệ: 'loud'" in r.stderr
    r = loa(tmp_path)
    assert r.returncode == 2 and "loa: lỗi: thiếu các đối số bắt buộc: LỆNH" in r.stderr
    r = loa(tmp_path, "--help")
    assert r.returncode == 0
    assert "đối số vị trí:" in r.stdout and "tùy chọn:" in r.stdout and "hiện hướng dẫn này rồi thoát" in r.stdout
    r = loa(tmp_path, "--lang", "en", "announce", "Họp", "--priority", "loud")
    assert r.returncode == 2 and "error: argument --priority: invalid choice: 'loud'" in r.stderr


def test_errors_in_english_when_asked(tmp_path: Path) -> None:
    r = loa(tmp_path, "announce", "   ", LOA_LANG="en")
    assert r.returncode == 2 and r.stderr.strip() == "Error: The announcement text is empty. (empty_text)"
    r = loa(tmp_path, "--lang", "en", "zone", "add", "Thôn 2")
    assert r.returncode == 2 and r.stderr.startswith("Error: A zone id has only") and "(bad_zone_id)" in r.stderr
    r = loa(tmp_path, "zone", "add", "Thôn 2", LOA_LANG="en-US,en;q=0.9")
    assert r.stderr.startswith("Error: ")


def test_only_loas_parser_is_translated() -> None:
    import argparse

    from broadcaster.cli.main import build_parser

    with pytest.raises(SystemExit):
        build_parser("vi").parse_args(["announce", "x", "--priority", "loud"])
    assert build_parser("vi").format_usage().startswith("cách dùng: loa")
    assert argparse.ArgumentParser(prog="other").format_usage().startswith("usage: other")


def test_cancel_recalls_an_announcement_and_says_so(tmp_path: Path) -> None:
    assert loa(tmp_path, "zone", "add", "thon-1", "--name", "Thôn 1").returncode == 0
    sent = loa(tmp_path, "announce", "Thông báo họp thôn lúc 19h.", "--at", "+1h", "--title", "Họp thôn")
    assert sent.returncode == 0, sent.stderr
    r = loa(tmp_path, "cancel", "1", "--reason", "Đổi ngày họp")
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == (
        "Đã thu hồi thông báo số 1: hủy 1 lượt phát chưa gửi và 0 lượt đã gửi; 0 thiết bị được lệnh dừng."
    )
    again = loa(tmp_path, "--lang", "en", "cancel", "1")
    assert again.returncode == 0 and again.stdout.startswith("Announcement 1 was recalled by ")
    assert "nothing is left to stop" in again.stdout
    status = loa(tmp_path, "status")
    assert "THU HỒI: #1 'Họp thôn' bởi " in status.stdout and ": Đổi ngày họp" in status.stdout
    missing = loa(tmp_path, "cancel", "999")
    assert missing.returncode == 2 and missing.stderr.strip() == "Lỗi: Không có thông báo số 999. (not_found)"
    db = Database(f"sqlite:///{tmp_path / 'data' / 'loa.sqlite3'}")
    with db.session() as s:
        assert set(s.scalars(select(Broadcast.status))) == {BroadcastStatus.CANCELLED}
    db.dispose()


# ---------------------------------------------------------------- accounts and emergencies


def _db(tmp_path: Path) -> Database:
    return Database(f"sqlite:///{tmp_path / 'data' / 'loa.sqlite3'}")


def _audit(tmp_path: Path, like: str) -> list[tuple[str, str, str]]:
    from broadcaster.db import AuditEntry

    db = _db(tmp_path)
    with db.session() as s:
        rows = s.execute(
            select(AuditEntry.actor, AuditEntry.action, AuditEntry.detail)
            .where(AuditEntry.action.like(like))
            .order_by(AuditEntry.id)
        ).all()
    db.dispose()
    return [(a, b, c) for a, b, c in rows]


def _on_a_terminal(
    tmp_path: Path, answers: list[str], *args: str, prompts: tuple[str, ...] = ()
) -> subprocess.CompletedProcess[str]:
    """`loa` with a terminal on its stdin (where the person types), its output captured. With
    `prompts`, each answer is typed once its prompt is on stderr: getpass flushes what was typed
    before it asks, as a terminal does."""
    import pty
    import select
    import time

    leader, follower = pty.openpty()
    env = {
        **{k: v for k, v in os.environ.items() if k != "LOA_LANG"},
        "LOA_GENERAL_DATA_DIR": str(tmp_path / "data"),
        "LOA_SPEECH_CHIMES": "false",
        "LOA_SCHEDULE_QUIET_START": "00:00",
        "LOA_SCHEDULE_QUIET_END": "00:00",
    }
    proc = subprocess.Popen(
        [sys.executable, "-m", "broadcaster.cli", *args],
        stdin=follower,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=env,
        cwd=ROOT,
        start_new_session=True,  # no controlling terminal: getpass reads the one given, not the tester's
    )
    os.close(follower)
    shown = b""
    try:
        if not prompts:
            os.write(leader, "".join(a + "\n" for a in answers).encode())
        assert proc.stderr is not None
        for prompt, answer in zip(prompts, answers if prompts else [], strict=True):
            deadline = time.monotonic() + 60
            while prompt.encode() not in shown:
                ready, _, _ = select.select([proc.stderr], [], [], max(0.0, deadline - time.monotonic()))
                chunk = os.read(proc.stderr.fileno(), 4096) if ready else b""
                assert chunk, f"no prompt {prompt!r}: {shown.decode(errors='replace')}"
                shown += chunk
            shown = shown.replace(prompt.encode(), b"", 1)
            os.write(leader, (answer + "\n").encode())
        out, err = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
        os.close(leader)
    return subprocess.CompletedProcess(proc.args, proc.returncode, out.decode(), (shown + err).decode())


def test_accounts_and_tokens_from_the_servers_terminal(tmp_path: Path) -> None:
    import getpass

    from broadcaster.config import load_config
    from broadcaster.services.accounts import LoginThrottle, sign_in, token_principal
    from broadcaster.services.build import build_services
    from schedules.clock import SystemClock

    first = loa(tmp_path, "user", "add", "quan-tri", "--role", "admin", "--password-stdin", stdin="mật khẩu quản trị\n")
    assert first.returncode == 0, first.stderr
    asked = ("Mật khẩu: ", "Nhập lại mật khẩu: ")
    add = ("user", "add", "thu-ky", "--role", "viewer")
    typo = _on_a_terminal(tmp_path, ["mật khẩu một", "mật khẩu hai"], *add, prompts=asked)
    assert typo.returncode == 2 and "(password_mismatch)" in typo.stderr, typo.stderr
    typed = _on_a_terminal(tmp_path, ["mật khẩu thư ký", "mật khẩu thư ký"], *add, prompts=asked)
    assert typed.returncode == 0, typed.stderr
    no_terminal = loa(tmp_path, "user", "add", "can-bo", "--role", "officer")
    assert no_terminal.returncode == 2 and "(password_needed)" in no_terminal.stderr
    bad = loa(tmp_path, "user", "add", "Cán Bộ", "--role", "officer", "--password-stdin", stdin="mật khẩu dài\n")
    assert bad.returncode == 2 and "(bad_username)" in bad.stderr
    made = loa(tmp_path, "user", "add", "can-bo", "--role", "officer", "--display-name", "Cán bộ VH", "--generate")
    assert made.returncode == 0, made.stderr
    one_time = made.stdout.strip().rsplit(": ", 1)[1]
    listed = loa(tmp_path, "user", "list").stdout
    assert "quan-tri" in listed and "can-bo" in listed and "Cán bộ VH" in listed and "chưa đổi mật khẩu" in listed
    assert "thu-ky" in listed

    token = loa(tmp_path, "token", "add", "--user", "can-bo", "--name", "kịch bản")
    assert token.returncode == 0, token.stderr
    secret = token.stdout.strip()
    assert secret.startswith("loa_") and "\n" not in secret  # alone on stdout: TOKEN=$(loa token add ...)
    assert "chỉ hiện một lần" in token.stderr
    svc = build_services(load_config(None, environ={"LOA_GENERAL_DATA_DIR": str(tmp_path / "data")}), SystemClock())
    try:
        assert sign_in(svc, LoginThrottle(svc.clock, 5, 300), "can-bo", one_time, "x").principal.must_change_password
        assert token_principal(svc, secret) is not None
        assert loa(tmp_path, "token", "revoke", "1").returncode == 0
        assert token_principal(svc, secret) is None
        passwd = loa(tmp_path, "user", "passwd", "can-bo", "--password-stdin", stdin="mật khẩu mới dài\n")
        assert passwd.returncode == 0, passwd.stderr
        assert sign_in(svc, LoginThrottle(svc.clock, 5, 300), "can-bo", "mật khẩu mới dài", "x").principal
        assert loa(tmp_path, "user", "disable", "can-bo").returncode == 0
        assert "đã khóa" in loa(tmp_path, "user", "list").stdout
    finally:
        svc.db.dispose()
    actions = _audit(tmp_path, "%")
    mine = [a for a in actions if a[1] in ("user.add", "token.add", "token.revoke", "user.passwd", "user.disable")]
    assert [a[1] for a in mine] == ["user.add"] * 3 + ["token.add", "token.revoke", "user.passwd", "user.disable"]
    assert {a[0] for a in mine} == {getpass.getuser()}  # who the operating system authenticated


def test_an_emergency_from_the_command_line_needs_a_second_look(tmp_path: Path) -> None:
    import getpass

    assert loa(tmp_path, "zone", "add", "thon-1", "--name", "Thôn 1").returncode == 0
    assert loa(tmp_path, "zone", "add", "thon-2", "--name", "Thôn 2").returncode == 0
    alarm = ("announce", "Khẩn cấp: cháy rừng ở đồi thông.", "--priority", "emergency")
    asked = loa(tmp_path, *alarm)
    assert asked.returncode == 2 and "(confirm_emergency)" in asked.stderr
    assert "3 lần" in asked.stderr and "Thôn 1, Thôn 2" in asked.stderr and "--confirm" in asked.stderr
    no_reason = loa(tmp_path, *alarm, "--confirm")
    assert no_reason.returncode == 2 and "(reason_required)" in no_reason.stderr
    declined = _on_a_terminal(tmp_path, ["không"], *alarm)
    assert declined.returncode == 2 and "(confirm_emergency)" in declined.stderr, declined.stderr
    assert "Thôn 1, Thôn 2" in declined.stdout and "3 lần" in declined.stdout
    assert _count(tmp_path) == (0, 0)

    typed = _on_a_terminal(tmp_path, ["phát", "Kiểm lâm báo cháy"], *alarm, "--zone", "thon-1")
    assert typed.returncode == 0, typed.stderr
    assert "Thôn 1" in typed.stdout and "Thôn 2" not in typed.stdout.split("Đã lưu")[0]
    scripted = loa(tmp_path, *alarm, "--confirm", "--reason", "Chủ tịch xã yêu cầu")
    assert scripted.returncode == 0, scripted.stderr
    assert _count(tmp_path) == (2, 3 + 6)
    log = _audit(tmp_path, "emergency.%")
    assert [(actor, action) for actor, action, _ in log] == [
        (getpass.getuser(), "emergency.asked"),
        (getpass.getuser(), "emergency.refused"),
        (getpass.getuser(), "emergency.confirmed"),
        (getpass.getuser(), "emergency.confirmed"),
    ]
    assert "Kiểm lâm báo cháy" in log[2][2] and "Chủ tịch xã yêu cầu" in log[3][2]
