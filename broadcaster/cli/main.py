"""`loa`: the command line for the officer's helpers and the technician.

This module only parses: each command's code is imported when that command runs, so `loa agent` on a
speaker's small computer loads the device side alone (broadcaster.device), never the server's
database, audio or web libraries. A refusal prints `Lỗi: <message> (<code>)` and exits 2; the words,
argparse's own included, are Vietnamese unless `--lang en` or `LOA_LANG=en` asks for English.
"""

from __future__ import annotations

import argparse
import importlib
import io
import logging
import os
import sys
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from broadcaster.cli.backup import add_backup_commands
from broadcaster.cli.desk import add_desk_commands
from broadcaster.cli.feeds import add_feed_commands
from broadcaster.cli.parser import LoaArgumentParser
from broadcaster.cli.voices import add_voice_commands
from broadcaster.messages import LANGUAGES, pick_language, render

if TYPE_CHECKING:
    from broadcaster.errors import LoaError


def language(argv: Sequence[str], environ: Mapping[str, str]) -> str:
    """`--lang` if given, else LOA_LANG, else Vietnamese. Read before parsing, because parsing itself
    (its errors, its help) already speaks it."""
    for i, arg in enumerate(argv):
        if arg == "--":
            break
        if arg.startswith("--lang="):
            return pick_language(arg.split("=", 1)[1])
        if arg == "--lang" and i + 1 < len(argv):
            return pick_language(argv[i + 1])
    return pick_language(environ.get("LOA_LANG"))


# Help texts several commands share.
JSON_HELP = "in kết quả dạng JSON, cho chương trình khác đọc"
ZONES_HELP = "khu vực: mã thôn, nhóm thôn hoặc all (lặp lại được; mặc định: all)"
PRIORITY_HELP = "mức ưu tiên: normal (thường), priority (ưu tiên), emergency (khẩn cấp; phát cả giờ yên tĩnh)"
VOICE_HELP = ("giọng đọc: vi-vn-x-south (một giọng của bộ đọc của xã), espeak:vi-vn-x-central, fpt+espeak:banmai "
              "(mặc định: giọng của xã, [speech])")
RATE_HELP = "tốc độ đọc, 0.5-2 (1: bình thường; mặc định: [speech] speaking_rate)"
AT_HELP = "khi nào phát (giờ Việt Nam): 17:30, 7h30 tối, 25/12 7h30, ngày mai 7h, thứ hai 7h30, +10m (mặc định: ngay)"
FROM_HELP = "từ ngày hoặc lúc (giờ Việt Nam): 25/12, 2026-12-25, thứ hai, ngày mai, 17:30, +1h"
TO_HELP = "đến ngày (hết ngày đó) hoặc lúc (giờ Việt Nam): 31/12, 2026-12-31, ngày mai, 17:30, +2d"


def build_parser(lang: str = "vi") -> argparse.ArgumentParser:
    p = LoaArgumentParser(prog="loa", description="Loa truyền thanh thông minh cấp xã", lang=lang)
    p.add_argument("--config", type=Path, default=None, metavar="TỆP", help="tệp cấu hình TOML (mặc định: $LOA_CONFIG)")
    p.add_argument(
        "--lang", choices=LANGUAGES, default=lang, help="ngôn ngữ của thông báo lỗi (mặc định: $LOA_LANG hoặc vi)"
    )
    sub = p.add_subparsers(dest="command", required=True, metavar="LỆNH")

    a = sub.add_parser("announce", help="lưu một thông báo và lên lịch phát")
    a.add_argument("text", nargs="?", default="", metavar="NỘI_DUNG", help="nội dung ('-' để đọc từ stdin)")
    a.add_argument("--audio", type=Path, default=None, metavar="TỆP",
                   help="phát bản ghi âm này (mp3, m4a, wav, ogg) thay cho giọng đọc")  # fmt: skip
    a.add_argument("--bulletin", type=int, default=None, metavar="SỐ", help="xếp vào bản tin (số chương trình bản tin)")
    a.add_argument("--order", type=int, default=None, metavar="SỐ",
                   help="thứ tự giữa các tin ưu tiên trùng giờ (nhỏ phát trước)")  # fmt: skip
    a.add_argument("--zone", action="append", metavar="KHU_VỰC", help=ZONES_HELP)
    a.add_argument("--at", default=None, metavar="THỜI_ĐIỂM", help=AT_HELP)
    a.add_argument("--title", default=None, metavar="TIÊU_ĐỀ", help="tiêu đề, hiện trên bảng LED (mặc định: dòng đầu)")
    a.add_argument("--priority", default="normal", choices=["normal", "priority", "emergency"], help=PRIORITY_HELP)
    a.add_argument(
        "--confirm", action="store_true", help="tin khẩn cấp: đã xem các thôn và số lần phát, phát luôn (cần --reason)"
    )
    a.add_argument("--reason", default=None, metavar="LÝ_DO",
                   help="tin khẩn cấp: lý do (ai yêu cầu, vì sao), ghi vào nhật ký")  # fmt: skip
    a.add_argument("--voice", default=None, metavar="GIỌNG", help=VOICE_HELP)
    a.add_argument("--rate", default=None, metavar="TỐC_ĐỘ", help=RATE_HELP)
    a.add_argument("--json", action="store_true", help=JSON_HELP)
    a.set_defaults(run="broadcaster.cli.commands:cmd_announce")

    k = sub.add_parser("cancel", help="thu hồi một thông báo: hủy mọi lượt phát chưa xong, lệnh các loa dừng ngay")
    k.add_argument("id", type=int, metavar="SỐ", help="số thông báo (loa announce in ra)")
    k.add_argument("--reason", default="", metavar="LÝ_DO",
                   help="lý do thu hồi (ghi vào nhật ký, cùng tài khoản máy chạy lệnh)")  # fmt: skip
    k.add_argument("--json", action="store_true", help=JSON_HELP)
    k.set_defaults(run="broadcaster.cli.commands:cmd_cancel")

    s = sub.add_parser("status", help="thiết bị và các lượt phát gần đây")
    s.add_argument("--limit", type=int, default=20, metavar="SỐ", help="số lượt phát gần đây hiện ra (mặc định: 20)")
    s.add_argument("--json", action="store_true", help=JSON_HELP)
    s.set_defaults(run="broadcaster.cli.commands:cmd_status")

    g = sub.add_parser("agent", help="chạy tác tử thiết bị (loa hoặc bảng LED)")
    g.add_argument("kind", choices=["speaker", "led"], metavar="LOẠI", help="speaker (loa) hoặc led (bảng LED)")
    g.add_argument("--config", dest="config_file", type=Path, default=None, metavar="TỆP",
                   help="tệp cấu hình thiết bị (JSON, do loa device add ghi ra)")  # fmt: skip
    g.add_argument("--id", metavar="MÃ", help="mã thiết bị (khi không có --config)")
    g.add_argument("--broker", metavar="URL", help="broker: mqtt://user:pass@host:port (khi không có --config)")
    g.add_argument("--key", action="append", metavar="KID:BASE64",
                   help="khóa công khai của daemon (lặp lại được; khi không có --config)")  # fmt: skip
    g.add_argument("--state-dir", default=None, metavar="THƯ_MỤC",
                   help="nơi thiết bị giữ trạng thái: lệnh đã nhận, âm thanh đã tải")  # fmt: skip
    g.add_argument("--sink", default="file", choices=["auto", "file", "null", "ffplay", "aplay"],
                   help="phát ra đâu: auto, file (ghi tệp), null (bỏ), ffplay, aplay (không có --config)")  # fmt: skip
    g.add_argument("--sink-override", default=None, choices=["auto", "file", "null", "ffplay", "aplay"],
                   help="phát ra đâu, thay cho giá trị trong tệp cấu hình")  # fmt: skip
    g.add_argument("--exit-with-parent", action="store_true", help="dừng khi tiến trình cha dừng (mô phỏng)")
    g.set_defaults(run="broadcaster.device.cli:cmd_agent")

    t = sub.add_parser("timeline", help="lịch phát theo khu vực")
    t.add_argument("--zone", default=None, metavar="KHU_VỰC", help="thôn hoặc nhóm thôn (mặc định: mọi khu vực)")
    t.add_argument("--from", dest="from_", default=None, metavar="TỪ", help=FROM_HELP)
    t.add_argument("--to", default=None, metavar="ĐẾN", help=TO_HELP)
    t.add_argument("--ics", action="store_true", help="xuất tệp lịch iCalendar (.ics) cho điện thoại")
    t.add_argument("--json", action="store_true", help=JSON_HELP)
    t.set_defaults(run="broadcaster.cli.commands:cmd_timeline")

    pr = sub.add_parser("programme", help="chương trình theo lịch: tiếp sóng, thông báo lặp lại, bản tin")
    pr.add_argument("action", choices=["add", "list"], metavar="VIỆC", help="add: thêm; list: liệt kê")
    pr.add_argument("--kind", default="relay", choices=["relay", "notice", "bulletin"],
                    help="relay: tiếp sóng (cần --stream, --duration); notice: thông báo lặp lại (cần --text); "
                         "bulletin: bản tin (cần --duration; xếp tin vào bằng loa announce --bulletin SỐ)")  # fmt: skip
    pr.add_argument("--title", default=None, metavar="TIÊU_ĐỀ", help="tên chương trình")
    pr.add_argument("--when", default="06:00", metavar="LỊCH",
                    help='giờ phát, ví dụ: "06:00", "06:00 và 17:00 trong 3 ngày", "weekdays 06:30"')  # fmt: skip
    pr.add_argument("--zone", action="append", metavar="KHU_VỰC", help=ZONES_HELP)
    pr.add_argument("--stream", default=None, metavar="URL", help="địa chỉ luồng http(s) để tiếp sóng")
    pr.add_argument("--duration", type=float, default=None, metavar="GIÂY",
                    help="thời lượng (giây) của buổi tiếp sóng hoặc bản tin")  # fmt: skip
    pr.add_argument("--text", default=None, metavar="NỘI_DUNG", help="nội dung thông báo lặp lại")
    pr.add_argument("--priority", default="normal", choices=["normal", "priority"],
                    help="mức ưu tiên: normal (thường) hoặc priority (ưu tiên)")  # fmt: skip
    pr.set_defaults(run="broadcaster.cli.commands:cmd_programme")

    rp = sub.add_parser("report", help="báo cáo theo kỳ: tin, bài, lượt phát, từng thôn, từng loa (mặc định: quý này)")
    rp.add_argument("--from", dest="from_", default=None, metavar="TỪ", help="từ ngày: 01/11/2026, 2026-11-01")
    rp.add_argument("--to", default=None, metavar="ĐẾN", help="đến hết ngày: 30/11/2026, 2026-11-30")
    rp.add_argument("--zone", default="all", metavar="KHU_VỰC", help="thôn hoặc nhóm thôn (mặc định: cả xã)")
    rp.add_argument("--format", default="text", choices=["text", "csv", "xlsx", "png", "pdf"],
                    help="text: chữ; csv, xlsx: bảng tính; png: biểu đồ; pdf: báo cáo gửi huyện")  # fmt: skip
    rp.add_argument("--output", type=Path, default=None, metavar="TỆP", help="ghi vào tệp (cần cho xlsx, png, pdf)")
    rp.add_argument("--json", action="store_true", help=JSON_HELP)
    rp.set_defaults(run="broadcaster.cli.report:cmd_report")

    z = sub.add_parser("zone", help="thôn và nhóm thôn")
    z.add_argument("action", choices=["add", "list"], metavar="VIỆC", help="add: thêm; list: liệt kê")
    z.add_argument("id", nargs="?", metavar="MÃ", help="mã khu vực, chữ thường không dấu, ví dụ thon-1")
    z.add_argument("--name", default=None, metavar="TÊN", help="tên hiển thị, ví dụ 'Thôn 1'")
    z.add_argument("--kind", default="village", choices=["village", "group"], help="village: thôn; group: nhóm thôn")
    z.add_argument("--members", nargs="*", metavar="MÃ_THÔN", help="các thôn của nhóm")
    z.add_argument("--quiet", default=None, metavar="TỪ-ĐẾN", help="giờ yên tĩnh riêng của khu vực, ví dụ 22:00-05:30")
    z.set_defaults(run="broadcaster.cli.commands:cmd_zone")

    d = sub.add_parser("db", help="cơ sở dữ liệu")
    d.add_argument("action", choices=["upgrade"], metavar="VIỆC", help="upgrade: đưa cơ sở dữ liệu lên bản mới nhất")
    d.set_defaults(run="broadcaster.cli.commands:cmd_db")

    y = sub.add_parser("say", help="nghe thử: đọc văn bản ra tệp âm thanh")
    y.add_argument("text", metavar="NỘI_DUNG", help="văn bản cần đọc")
    y.add_argument("-o", "--output", type=Path, required=True, metavar="TỆP", help="tệp âm thanh ghi ra (mp3)")
    y.add_argument("--engine", choices=["espeak", "gtts", "gtts+espeak", "piper", "piper+espeak"], default=None,
                   help="giọng đọc: espeak (không cần mạng), gtts (Google, cần internet), gtts+espeak, piper "
                        "(giọng tự nhiên, không cần mạng; loa voice install), piper+espeak "
                        "(mặc định: theo cấu hình)")  # fmt: skip
    y.add_argument("--voice", default=None, metavar="GIỌNG", help=VOICE_HELP)
    y.add_argument("--rate", default=None, metavar="TỐC_ĐỘ", help=RATE_HELP)
    y.set_defaults(run="broadcaster.cli.commands:cmd_say")

    n = sub.add_parser("normalize", help="in cách đọc của từng dòng trên stdin")
    n.set_defaults(run="broadcaster.cli.commands:cmd_normalize")

    b = sub.add_parser("broker", help="broker MQTT: mật khẩu, ACL, TLS")
    bsub = b.add_subparsers(dest="broker_action", required=True, metavar="VIỆC")
    c = bsub.add_parser("config", help="ghi mosquitto.conf, passwd và acl cho mọi thiết bị đã cấp phát")
    c.add_argument("--out", type=Path, default=None, metavar="THƯ_MỤC", help="thư mục (mặc định: DATA_DIR/mosquitto)")
    c.add_argument("--tls-port", type=int, default=None, metavar="CỔNG", help="thêm cổng TLS (mqtts://), ví dụ 8883")
    c.add_argument("--tls-host", action="append", default=[], metavar="TÊN",
                   help="tên hoặc IP máy chủ trong chứng chỉ (lặp lại được)")  # fmt: skip
    c.add_argument("--owner", default=None, metavar="NGƯỜI_DÙNG",
                   help="người dùng hệ thống chạy mosquitto (đổi chủ các tệp)")  # fmt: skip
    c.set_defaults(run="broadcaster.cli.admin:cmd_broker_config")

    d = sub.add_parser("device", help="thiết bị: cấp phát")
    dsub = d.add_subparsers(dest="device_action", required=True, metavar="VIỆC")
    a = dsub.add_parser("add", help="cấp phát một loa hoặc bảng LED: mật khẩu broker, tệp cấu hình, mã QR")
    a.add_argument("id", metavar="MÃ", help="mã thiết bị, ví dụ thon-1-loa")
    a.add_argument("--kind", required=True, choices=["speaker", "led"], help="speaker: loa; led: bảng LED")
    a.add_argument("--village", required=True, metavar="MÃ_THÔN", help="mã thôn, ví dụ thon-1")
    a.add_argument("--name", default=None, metavar="TÊN", help="tên hiển thị")
    a.add_argument("--no-diacritics", action="store_true", help="bảng LED không hiển thị được dấu")
    a.add_argument("--group", action="append", metavar="KHU_VỰC",
                   help="chỉ nghe các khu vực này (mặc định: mọi khu vực chứa thôn)")  # fmt: skip
    a.add_argument("--broker-url", default=None, metavar="URL", help="mqtt://host:port mà thiết bị kết nối tới")
    a.add_argument("--state-dir", default=None, metavar="THƯ_MỤC",
                   help="thư mục trạng thái trên thiết bị, tuyệt đối (mặc định: /var/lib/loa-agent/MÃ)")  # fmt: skip
    a.add_argument("--ca-file", type=Path, default=None, metavar="TỆP", help="CA của broker, với mqtts://")
    a.add_argument("--out", type=Path, default=None, metavar="TỆP",
                   help="tệp cấu hình (mặc định: DATA_DIR/devices/MÃ.json)")  # fmt: skip
    a.add_argument("--no-qr", action="store_true", help="không in mã QR ra màn hình")
    a.set_defaults(run="broadcaster.cli.admin:cmd_device_add")

    u = sub.add_parser("user", help="tài khoản: ai được đăng nhập, với vai trò nào")
    usub = u.add_subparsers(dest="user_action", required=True, metavar="VIỆC")
    ua = usub.add_parser("add", help="tạo tài khoản (quản trị viên đầu tiên cũng tạo bằng lệnh này)")
    ua.add_argument("name", metavar="TÊN", help="tên đăng nhập: chữ thường không dấu, số, '.', '-', '_'")
    ua.add_argument("--role", required=True, choices=["admin", "officer", "approver", "viewer"],
                    help="admin: quản trị; officer: soạn và lên lịch; approver: duyệt; viewer: chỉ xem")  # fmt: skip
    ua.add_argument("--display-name", default=None, metavar="TÊN", help="tên hiển thị, ví dụ 'Nguyễn Văn A'")
    for cmd in (ua, usub.add_parser("passwd", help="đặt mật khẩu mới (các phiên đăng nhập cũ kết thúc)")):
        if cmd is not ua:
            cmd.add_argument("name", metavar="TÊN", help="tên đăng nhập")
        how = cmd.add_mutually_exclusive_group()
        how.add_argument("--password-stdin", action="store_true", help="đọc mật khẩu từ một dòng trên stdin")
        how.add_argument("--generate", action="store_true", help="tạo mật khẩu dùng một lần và in ra")
        cmd.set_defaults(run="broadcaster.cli.accounts:cmd_user")
    ul = usub.add_parser("list", help="các tài khoản")
    ul.add_argument("--json", action="store_true", help=JSON_HELP)
    ul.set_defaults(run="broadcaster.cli.accounts:cmd_user")
    ud = usub.add_parser("disable", help="khóa tài khoản: phiên đăng nhập và mã truy cập ngừng hoạt động")
    ud.add_argument("name", metavar="TÊN", help="tên đăng nhập")
    ud.set_defaults(run="broadcaster.cli.accounts:cmd_user")

    tk = sub.add_parser("token", help="mã truy cập API cho chương trình (Authorization: Bearer)")
    tsub = tk.add_subparsers(dest="token_action", required=True, metavar="VIỆC")
    ta = tsub.add_parser("add", help="tạo mã truy cập; in mã ra stdout một lần duy nhất")
    ta.add_argument("--user", required=True, metavar="TÊN", help="tài khoản sở hữu mã")
    ta.add_argument("--name", required=True, metavar="MỤC_ĐÍCH", help="dùng vào việc gì, ví dụ 'kịch bản bản tin'")
    ta.add_argument("--role", default=None, choices=["admin", "officer", "approver", "viewer"],
                    help="quyền tối đa của mã (mặc định: vai trò của tài khoản; không vượt quá nó)")  # fmt: skip
    ta.add_argument("--scope", action="append", default=[], choices=["alerts:ingest"], dest="scopes",
                    help="quyền thêm ngoài vai trò: alerts:ingest gửi cảnh báo chính thức (CAP, TT39)")  # fmt: skip
    ta.set_defaults(run="broadcaster.cli.accounts:cmd_token")
    tl = tsub.add_parser("list", help="các mã truy cập (không hiện mã)")
    tl.add_argument("--user", default=None, metavar="TÊN", help="chỉ các mã của tài khoản này")
    tl.add_argument("--json", action="store_true", help=JSON_HELP)
    tl.set_defaults(run="broadcaster.cli.accounts:cmd_token")
    tr = tsub.add_parser("revoke", help="thu hồi mã truy cập: bị từ chối từ nay, dù ai giữ bản sao")
    tr.add_argument("id", type=int, metavar="SỐ", help="số của mã (loa token list)")
    tr.set_defaults(run="broadcaster.cli.accounts:cmd_token")

    sm = sub.add_parser("simulate", help="mô phỏng hàng nghìn loa và bảng LED trong vài tiến trình")
    sm.add_argument("--villages", type=int, required=True, metavar="SỐ", help="số thôn (thon-1 … thon-N)")
    sm.add_argument("--speakers-per-village", type=int, default=1, metavar="SỐ", help="số loa mỗi thôn (mặc định: 1)")
    sm.add_argument("--leds-per-village", type=int, default=0, metavar="SỐ",
                    help="số bảng LED mỗi thôn (mặc định: 0)")  # fmt: skip
    sm.add_argument("--processes", type=int, default=None, metavar="SỐ",
                    help="số tiến trình mô phỏng (mặc định: số nhân CPU)")  # fmt: skip
    sm.add_argument("--broker", default=None, metavar="URL",
                    help="mqtt://host:port (mặc định: broker của daemon đang chạy)")  # fmt: skip
    sm.add_argument("--config", type=Path, default=argparse.SUPPRESS, metavar="TỆP",
                    help="tệp cấu hình TOML (như loa --config)")  # fmt: skip
    sm.add_argument("--state-dir", type=Path, default=None, metavar="THƯ_MỤC",
                    help="nơi giữ trạng thái các thiết bị mô phỏng (mặc định: DATA_DIR/fleet)")  # fmt: skip
    sm.set_defaults(run="broadcaster.cli.simulate:cmd_simulate")
    add_desk_commands(sub)  # approvals, lexicon, slogans: broadcaster/cli/desk.py
    add_backup_commands(sub)  # loa backup, loa restore: broadcaster/cli/backup.py
    add_feed_commands(sub)  # news feeds: broadcaster/cli/feeds.py
    add_voice_commands(sub)  # loa voice install / list: broadcaster/cli/voices.py
    return p


def _handler(spec: str) -> Callable[[argparse.Namespace], int]:
    module, _, name = spec.partition(":")
    handler: Callable[[argparse.Namespace], int] = getattr(importlib.import_module(module), name)
    return handler


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    lang = language(argv, os.environ)
    args = build_parser(lang).parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    try:
        return _run(args)
    except BrokenPipeError:
        return _reader_gone()
    except KeyboardInterrupt:  # Ctrl-C: the person stopped it; whatever was being stored was rolled back
        print(file=sys.stderr)
        return 130


def _run(args: argparse.Namespace) -> int:
    if args.command == "agent":  # the device side: none of the server's errors can arise
        return int(_handler(args.run)(args))
    from broadcaster.errors import LoaError  # the standard library only, like this module

    try:
        try:
            handler = _handler(args.run)
        except ModuleNotFoundError as exc:
            if not exc.name or exc.name.split(".")[0] in ("broadcaster", "audio", "schedules"):
                raise
            raise LoaError("server_not_installed", {"module": exc.name}) from exc  # a device install
        code = int(handler(args))
        sys.stdout.flush()  # a reader that went away is found here, where it can still be answered quietly
        return code
    except Exception as exc:  # bad input, a bad configuration, audio or a plan that cannot be made
        refusal = _refusal(exc)
        if refusal is None:
            raise
        print(render("cli.error", {"message": refusal.message(args.lang), "code": refusal.code}, args.lang),
              file=sys.stderr)  # fmt: skip
        return 2


def _refusal(exc: Exception) -> LoaError | None:
    """Ours, or an error of audio/ or schedules/ said as ours (`loa say ""`); None for a bug."""
    from broadcaster.errors import LoaError

    try:
        return LoaError.from_domain(exc)
    except TypeError:
        return None


def _reader_gone() -> int:
    """`loa status | head`: the reader closed the pipe once it had what it wanted. Not an error to
    report: stdout goes to /dev/null so the interpreter's last flush cannot fail either, and the exit
    status is the one of a program that SIGPIPE ended (128 + 13), as the shell reports for `cat`."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError, io.UnsupportedOperation):
        pass  # stdout is not a file (a test's capture): nothing will flush to the closed pipe
    return 141


if __name__ == "__main__":
    sys.exit(main())
