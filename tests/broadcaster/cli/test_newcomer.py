"""What a new user hit at the terminal, each mended: the README's commands run, a refusal is a sentence
and never a traceback, times are the commune's, argparse speaks Vietnamese, `--at` reads what officers
type, and a bulletin's frame takes none of the officer's announcement numbers.

In-process (`main(argv)` with captured output) except where a real process is the point (a closed pipe).
"""

from __future__ import annotations

import argparse
import io
import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import func, select

from broadcaster.cli.main import build_parser, main
from broadcaster.db import Announcement, Clip, Database, DeviceKind
from broadcaster.errors import LoaError
from broadcaster.messages import CATALOGUE
from schedules.clock import LOCAL_TZ
from schedules.when import WhenError, parse_when

ROOT = Path(__file__).resolve().parents[3]


@dataclass
class Ran:
    code: int
    out: str
    err: str


Loa = Callable[..., Ran]


@pytest.fixture
def loa(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> Iterator[Loa]:
    """`loa ARGS` as a person types it, in this process, on a data folder of its own."""
    for name in [k for k in os.environ if k.startswith("LOA_")]:
        monkeypatch.delenv(name)
    monkeypatch.setenv("LOA_GENERAL_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("LOA_SPEECH_CHIMES", "false")
    monkeypatch.setenv("LOA_SCHEDULE_QUIET_START", "00:00")  # independent of the hour the test runs at
    monkeypatch.setenv("LOA_SCHEDULE_QUIET_END", "00:00")

    def run(*args: str, stdin: str = "") -> Ran:
        monkeypatch.setattr(sys, "stdin", io.StringIO(stdin))
        capsys.readouterr()
        try:
            code = main(list(args))
        except SystemExit as exc:  # argparse's refusals and --help
            code = int(exc.code or 0)
        out, err = capsys.readouterr()
        return Ran(code, out, err)

    yield run


def _db(tmp_path: Path) -> Database:
    return Database(f"sqlite:///{tmp_path / 'data' / 'loa.sqlite3'}")


def _count(tmp_path: Path, model: type) -> int:
    db = _db(tmp_path)
    try:
        with db.session() as s:
            return s.scalar(select(func.count()).select_from(model)) or 0
    finally:
        db.dispose()


def test_the_readmes_programme_commands_run_and_the_frame_takes_no_announcement_number(
    loa: Loa, tmp_path: Path
) -> None:
    assert loa("zone", "add", "thon-1", "--name", "Thôn 1").code == 0
    relay = loa("programme", "add", "--kind", "relay", "--title", "Thời sự VOV1", "--when", "06:00",
                "--stream", "http://127.0.0.1:9/vov1", "--duration", "1800")  # fmt: skip
    assert relay.code == 0, relay.err
    bulletin = loa("programme", "add", "--kind", "bulletin", "--title", "Bản tin", "--when", "06:00 và 17:00",
                   "--duration", "1800")  # fmt: skip
    assert bulletin.code == 0, bulletin.err
    assert "Đã lưu chương trình #2: Bản tin (06:00 và 17:00)" in bulletin.out
    assert "Bản tin sáng ngày" in bulletin.out and "--bulletin 2" in bulletin.out
    queued = loa("announce", "Thông báo thu quỹ phòng chống thiên tai.", "--bulletin", "2")
    assert queued.code == 0, queued.err
    assert "Đã lưu thông báo #1:" in queued.out
    after = loa("announce", "Thông báo họp thôn.", "--at", "+1h")
    assert after.code == 0, after.err
    assert "Đã lưu thông báo #2:" in after.out  # not #5: the chimes and the heading are not announcements
    assert _count(tmp_path, Announcement) == 2 and _count(tmp_path, Clip) == 3
    listed = loa("programme", "list").out
    assert "bulletin" in listed and "Bản tin" in listed
    missing = loa("cancel", "3")  # no third announcement, though the frame aired pieces of sound
    assert missing.code == 2 and "(not_found)" in missing.err


def test_say_with_nothing_to_say_is_a_sentence_not_a_traceback(loa: Loa, tmp_path: Path) -> None:
    for text in ("", "   "):
        r = loa("say", text, "-o", str(tmp_path / "thu.mp3"))
        assert r.code == 2
        assert r.err == "Lỗi: Văn bản không có nội dung để đọc. (audio_empty_text)\n"
    assert not (tmp_path / "thu.mp3").exists()
    english = loa("--lang", "en", "say", "", "-o", str(tmp_path / "thu.mp3"))
    assert english.code == 2 and english.err.startswith("Error: ") and "(audio_empty_text)" in english.err


def test_status_into_a_pipe_closed_early_ends_quietly(tmp_path: Path) -> None:
    """`loa status | head`: a real process, its stdout a pipe whose reader has gone."""
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("LOA_")},
        "LOA_GENERAL_DATA_DIR": str(tmp_path / "data"),
    }
    proc = subprocess.Popen(
        [sys.executable, "-m", "broadcaster.cli", "status"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=env,
        cwd=ROOT,
    )
    assert proc.stdout is not None and proc.stderr is not None
    proc.stdout.close()  # before it has written anything: its first write meets a closed pipe
    err = proc.stderr.read().decode()
    assert proc.wait(timeout=120) == 141  # as a program ended by SIGPIPE
    assert err == ""  # no BrokenPipeError traceback, no "Exception ignored" at exit


def test_last_seen_is_on_the_communes_clock(loa: Loa, tmp_path: Path) -> None:
    from broadcaster.db import Device
    from broadcaster.services.zones import add_device

    assert loa("zone", "add", "thon-1").code == 0
    db = _db(tmp_path)
    with db.session() as s:
        add_device(s, "thon-1-loa", DeviceKind.SPEAKER, "thon-1")
        add_device(s, "thon-1-led", DeviceKind.LED, "thon-1")
    with db.session() as s:
        device = s.get(Device, "thon-1-loa")
        assert device is not None
        device.last_seen = datetime(2026, 11, 25, 3, 0, 5, tzinfo=UTC)
    db.dispose()
    status = loa("status")
    assert status.code == 0, status.err
    assert "thấy lần cuối 10:00:05 25/11/2026" in status.out  # 03:00 UTC is 10:00 on the office wall
    assert "03:00" not in status.out and "+00:00" not in status.out
    assert "chưa kết nối lần nào" in status.out  # the board that never connected
    devices = loa("status", "--json").out
    assert '"last_seen_local": "10:00:05 25/11/2026"' in devices


def _actions(parser: argparse.ArgumentParser, path: str) -> Iterator[tuple[str, argparse.Action]]:
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            yield path, action
            for name, sub in action.choices.items():
                yield from _actions(sub, f"{path} {name}")
        elif not isinstance(action, argparse._HelpAction):
            yield path, action


def test_every_option_says_what_it_is_for_with_a_vietnamese_metavar() -> None:
    parser = build_parser("vi")
    found = list(_actions(parser, "loa"))
    assert len(found) > 80  # every command, every option
    options = [(p, a) for p, a in found if not isinstance(a, argparse._SubParsersAction)]
    no_help = [f"{p} {a.option_strings or a.dest}" for p, a in options if not a.help]
    assert no_help == [], no_help
    said = {f"{p} {c.dest}" for p, a in found if isinstance(a, argparse._SubParsersAction) for c in a._choices_actions}
    named = {f"{p} {name}" for p, a in found if isinstance(a, argparse._SubParsersAction) for name in a.choices}
    assert named - said == set()  # every command is listed with what it does
    takes_a_value = [(p, a) for p, a in found if a.nargs != 0 and not isinstance(a, argparse._SubParsersAction)]
    unnamed = [f"{p} {a.option_strings or a.dest}" for p, a in takes_a_value if a.choices is None and not a.metavar]
    assert unnamed == [], unnamed  # argparse would show the dest: FROM_, STATE_DIR, TEXT
    commands = [p for p, a in found if isinstance(a, argparse._SubParsersAction) and not a.metavar]
    assert commands == [], commands
    timeline = parser._subparsers._group_actions[0].choices["timeline"]  # type: ignore[union-attr]
    assert "--from TỪ" in timeline.format_help() and "FROM_" not in timeline.format_help()


def test_argparse_own_words_are_vietnamese(loa: Loa) -> None:
    bad_number = loa("status", "--limit", "mười")
    assert bad_number.code == 2
    assert "loa status: lỗi: đối số --limit: cần số nguyên, không phải 'mười'" in bad_number.err
    assert "int" not in bad_number.err
    nothing = loa()
    assert nothing.code == 2 and "loa: lỗi: thiếu các đối số bắt buộc: LỆNH" in nothing.err
    half = loa("zone")
    assert half.code == 2 and "thiếu các đối số bắt buộc: VIỆC" in half.err and "action" not in half.err
    duration = loa("programme", "add", "--duration", "nửa tiếng")
    assert "cần số, không phải 'nửa tiếng'" in duration.err
    english = loa("--lang", "en", "status", "--limit", "ten")
    assert english.code == 2 and "invalid int value: 'ten'" in english.err


def test_at_reads_what_officers_type(loa: Loa, tmp_path: Path) -> None:
    assert loa("zone", "add", "thon-1").code == 0
    tomorrow = datetime.now(LOCAL_TZ).date() + timedelta(days=1)
    r = loa("announce", "Họp thôn.", "--at", "ngày mai 9h")
    assert r.code == 0, r.err
    assert f"lúc 09:00:00 {tomorrow:%d/%m/%Y}" in r.out
    r = loa("announce", "Họp chi bộ.", "--at", "thu hai 7h30")  # without diacritics, as a phone types it
    assert r.code == 0, r.err
    assert "lúc 07:30:00" in r.out
    unreadable = loa("announce", "Họp.", "--at", "mai nhé")
    assert unreadable.code == 2 and "(bad_time)" in unreadable.err
    assert "25/12 7h30, ngày mai 7h, thứ hai 7h30" in unreadable.err  # the forms it does read
    day_only = loa("announce", "Họp.", "--at", "25/12")
    assert day_only.code == 2 and "ví dụ: 25/12 7h30" in day_only.err
    assert _count(tmp_path, Announcement) == 2
    timeline = loa("timeline", "--zone", "thon-1", "--from", "ngày mai", "--to", "ngày mai")
    assert timeline.code == 0, timeline.err
    assert "Họp thôn." in timeline.out  # tomorrow, the whole day


def test_the_progress_bar_ends_its_line_before_a_refusal(loa: Loa, tmp_path: Path) -> None:
    assert loa("zone", "add", "thon-1").code == 0
    r = loa("announce", "Câu một. Câu hai. Câu ba.", "--bulletin", "99")  # rendered, then no bulletin 99
    assert r.code == 2
    assert "3/3 câu\nLỗi: " in r.err and "(no_bulletin)" in r.err
    assert _count(tmp_path, Announcement) == 0


@pytest.mark.parametrize(
    ("commune", "shown"),
    [("Xã mẫu", "loa đang chạy — Xã mẫu\n"), ("Tân Lập", "loa đang chạy — xã Tân Lập\n"),
     ("Phường 3", "loa đang chạy — Phường 3\n"), ("Thị trấn Mỹ Lộc", "loa đang chạy — Thị trấn Mỹ Lộc\n")],
)  # fmt: skip
def test_the_banner_names_the_commune_once(commune: str, shown: str) -> None:
    from broadcaster.config import load_config
    from broadcaster.runtime.banner import banner
    from schedules.clock import SystemClock

    config = load_config(None, environ={"LOA_GENERAL_COMMUNE": commune})
    text = banner(config, SystemClock(), api_url="http://127.0.0.1:8080", broker_url="mqtt://127.0.0.1:1883",
                  managed_broker=True, simulated=True)  # fmt: skip
    assert text.startswith(shown) and "xã Xã" not in text


@pytest.mark.parametrize("text", ["mai nhé", "25/12", "31/2 7h", "thứ ba 28/12 7h", "17h sáng", "25/12 7h30", "7h"])
def test_the_catalogue_says_what_the_time_reader_says(text: str) -> None:
    """The CLI and the API speak from the catalogue; the web desk may show the reader's own sentence."""
    now = datetime(2026, 12, 26, 9, 0, tzinfo=LOCAL_TZ)
    with pytest.raises(WhenError) as err:
        parse_when(text, now)
    ours = LoaError.from_domain(err.value)
    assert ours.key in CATALOGUE and ours.message("vi") == err.value.message_vi
    assert ours.message("en") != ours.message("vi")


def test_ctrl_c_ends_a_command_without_a_traceback(loa: Loa, monkeypatch: pytest.MonkeyPatch) -> None:
    import broadcaster.cli.commands

    def interrupted(args: argparse.Namespace) -> int:
        raise KeyboardInterrupt

    monkeypatch.setattr(broadcaster.cli.commands, "cmd_normalize", interrupted)
    r = loa("normalize")
    assert (r.code, r.err) == (130, "\n")
