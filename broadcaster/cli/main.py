"""`loa`: the command line for the officer's helpers and the technician.

This module only parses: each command's code is imported when that command runs, so `loa agent` on a
speaker's small computer loads the device side alone (broadcaster.device), never the server's
database, audio or web libraries. A refusal prints `Lỗi: <message> (<code>)` and exits 2; the words,
argparse's own included, are Vietnamese unless `--lang en` or `LOA_LANG=en` asks for English.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import os
import sys
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

from broadcaster.cli.parser import LoaArgumentParser
from broadcaster.messages import LANGUAGES, pick_language, render


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


def build_parser(lang: str = "vi") -> argparse.ArgumentParser:
    p = LoaArgumentParser(prog="loa", description="Loa truyền thanh thông minh cấp xã", lang=lang)
    p.add_argument("--config", type=Path, default=None, help="TOML config (default: $LOA_CONFIG)")
    p.add_argument(
        "--lang", choices=LANGUAGES, default=lang, help="ngôn ngữ của thông báo lỗi (mặc định: $LOA_LANG hoặc vi)"
    )
    sub = p.add_subparsers(dest="command", required=True)

    a = sub.add_parser("announce", help="lưu một thông báo và lên lịch phát")
    a.add_argument("text", nargs="?", default="", help="nội dung ('-' để đọc từ stdin)")
    a.add_argument(
        "--audio", type=Path, default=None, help="phát bản ghi âm này (mp3, m4a, wav, ogg) thay cho giọng đọc"
    )
    a.add_argument("--bulletin", type=int, default=None, help="xếp vào bản tin (số chương trình bản tin)")
    a.add_argument("--order", type=int, default=None, help="thứ tự giữa các tin ưu tiên trùng giờ (nhỏ phát trước)")
    a.add_argument("--zone", action="append", help="khu vực (lặp lại được); mặc định: all")
    a.add_argument("--at", default=None, help="17:30 | 2026-11-25 06:00 | +5m | now")
    a.add_argument("--title", default=None)
    a.add_argument("--priority", default="normal", choices=["normal", "priority", "emergency"])
    a.add_argument("--user", default=None, help="người thực hiện (ghi vào nhật ký)")
    a.add_argument("--json", action="store_true")
    a.set_defaults(run="broadcaster.cli.commands:cmd_announce")

    s = sub.add_parser("status", help="thiết bị và các lượt phát gần đây")
    s.add_argument("--limit", type=int, default=20)
    s.add_argument("--json", action="store_true")
    s.set_defaults(run="broadcaster.cli.commands:cmd_status")

    g = sub.add_parser("agent", help="chạy tác tử thiết bị (loa hoặc bảng LED)")
    g.add_argument("kind", choices=["speaker", "led"])
    g.add_argument("--config", dest="config_file", type=Path, default=None, help="tệp cấu hình thiết bị (JSON)")
    g.add_argument("--id")
    g.add_argument("--broker", help="mqtt://user:pass@host:port")
    g.add_argument("--key", action="append", help="KID:BASE64 khóa công khai của daemon")
    g.add_argument("--state-dir", default=None)
    g.add_argument("--sink", default="file", choices=["auto", "file", "null", "ffplay", "aplay"])
    g.add_argument("--sink-override", default=None, choices=["auto", "file", "null", "ffplay", "aplay"])
    g.add_argument("--exit-with-parent", action="store_true", help="dừng khi tiến trình cha dừng (mô phỏng)")
    g.set_defaults(run="broadcaster.device.cli:cmd_agent")

    t = sub.add_parser("timeline", help="lịch phát theo khu vực")
    t.add_argument("--zone", default=None)
    t.add_argument("--from", dest="from_", default=None, help="YYYY-MM-DD (giờ Việt Nam) hoặc 17:30, +1h")
    t.add_argument("--to", default=None, help="YYYY-MM-DD (cả ngày đó) hoặc 17:30, +1h")
    t.add_argument("--ics", action="store_true", help="xuất tệp lịch iCalendar (.ics) cho điện thoại")
    t.add_argument("--json", action="store_true")
    t.set_defaults(run="broadcaster.cli.commands:cmd_timeline")

    pr = sub.add_parser("programme", help="tiếp sóng và thông báo lặp lại theo lịch")
    pr.add_argument("action", choices=["add", "list"])
    pr.add_argument("--kind", default="relay", choices=["relay", "notice"])
    pr.add_argument("--title", default=None)
    pr.add_argument("--when", default="06:00", help='ví dụ: "06:00", "06:00 và 17:00 trong 3 ngày", "weekdays 06:30"')
    pr.add_argument("--zone", action="append")
    pr.add_argument("--stream", default=None, help="địa chỉ luồng http(s) để tiếp sóng")
    pr.add_argument("--duration", type=float, default=None, help="thời lượng tiếp sóng (giây)")
    pr.add_argument("--text", default=None, help="nội dung thông báo lặp lại")
    pr.add_argument("--priority", default="normal", choices=["normal", "priority"])
    pr.add_argument("--user", default=None)
    pr.set_defaults(run="broadcaster.cli.commands:cmd_programme")

    rp = sub.add_parser("report", help="báo cáo: số mục và số lượt đã phát (mặc định: quý này)")
    rp.add_argument("--from", dest="from_", default=None, help="YYYY-MM-DD")
    rp.add_argument("--to", default=None, help="YYYY-MM-DD (cả ngày đó)")
    rp.add_argument("--json", action="store_true")
    rp.set_defaults(run="broadcaster.cli.commands:cmd_report")

    z = sub.add_parser("zone", help="thôn và nhóm thôn")
    z.add_argument("action", choices=["add", "list"])
    z.add_argument("id", nargs="?")
    z.add_argument("--name", default=None)
    z.add_argument("--kind", default="village", choices=["village", "group"])
    z.add_argument("--members", nargs="*", help="các thôn của nhóm")
    z.add_argument("--quiet", default=None, help="giờ yên tĩnh riêng của khu vực, ví dụ 22:00-05:30")
    z.add_argument("--user", default=None)
    z.set_defaults(run="broadcaster.cli.commands:cmd_zone")

    d = sub.add_parser("db", help="cơ sở dữ liệu")
    d.add_argument("action", choices=["upgrade"])
    d.set_defaults(run="broadcaster.cli.commands:cmd_db")

    y = sub.add_parser("say", help="nghe thử: đọc văn bản ra tệp âm thanh")
    y.add_argument("text")
    y.add_argument("-o", "--output", type=Path, required=True)
    y.add_argument("--engine", choices=["espeak", "gtts", "gtts+espeak"], default=None)
    y.set_defaults(run="broadcaster.cli.commands:cmd_say")

    n = sub.add_parser("normalize", help="in cách đọc của từng dòng trên stdin")
    n.set_defaults(run="broadcaster.cli.commands:cmd_normalize")

    b = sub.add_parser("broker", help="broker MQTT: mật khẩu, ACL, TLS")
    bsub = b.add_subparsers(dest="broker_action", required=True)
    c = bsub.add_parser("config", help="ghi mosquitto.conf, passwd và acl cho mọi thiết bị đã cấp phát")
    c.add_argument("--out", type=Path, default=None, help="thư mục (mặc định: DATA_DIR/mosquitto)")
    c.add_argument("--tls-port", type=int, default=None, help="thêm cổng TLS (mqtts://), ví dụ 8883")
    c.add_argument("--tls-host", action="append", default=[], help="tên hoặc IP máy chủ trong chứng chỉ (lặp lại được)")
    c.add_argument("--owner", default=None, help="người dùng hệ thống chạy mosquitto (đổi chủ các tệp)")
    c.set_defaults(run="broadcaster.cli.admin:cmd_broker_config")

    d = sub.add_parser("device", help="thiết bị: cấp phát")
    dsub = d.add_subparsers(dest="device_action", required=True)
    a = dsub.add_parser("add", help="cấp phát một loa hoặc bảng LED: mật khẩu broker, tệp cấu hình, mã QR")
    a.add_argument("id", help="mã thiết bị, ví dụ thon-1-loa")
    a.add_argument("--kind", required=True, choices=["speaker", "led"])
    a.add_argument("--village", required=True, help="mã thôn")
    a.add_argument("--name", default=None, help="tên hiển thị")
    a.add_argument("--no-diacritics", action="store_true", help="bảng LED không hiển thị được dấu")
    a.add_argument("--group", action="append", help="chỉ nghe các khu vực này (mặc định: mọi khu vực chứa thôn)")
    a.add_argument("--broker-url", default=None, help="mqtt://host:port mà thiết bị kết nối tới")
    a.add_argument("--ca-file", type=Path, default=None, help="CA của broker, với mqtts://")
    a.add_argument("--out", type=Path, default=None, help="tệp cấu hình (mặc định: DATA_DIR/devices/ID.json)")
    a.add_argument("--no-qr", action="store_true", help="không in mã QR ra màn hình")
    a.add_argument("--user", default=None, help="người thực hiện (ghi vào nhật ký)")
    a.set_defaults(run="broadcaster.cli.admin:cmd_device_add")

    sm = sub.add_parser("simulate", help="mô phỏng hàng nghìn loa và bảng LED trong vài tiến trình")
    sm.add_argument("--villages", type=int, required=True, help="số thôn (thon-1 … thon-N)")
    sm.add_argument("--speakers-per-village", type=int, default=1)
    sm.add_argument("--leds-per-village", type=int, default=0)
    sm.add_argument("--processes", type=int, default=None, help="tiến trình mô phỏng (mặc định: số nhân CPU)")
    sm.add_argument("--broker", default=None, help="mqtt://host:port (mặc định: broker của daemon đang chạy)")
    sm.add_argument("--config", type=Path, default=argparse.SUPPRESS, help="TOML config (như loa --config)")
    sm.add_argument("--state-dir", type=Path, default=None, help="mặc định: <data_dir>/fleet")
    sm.set_defaults(run="broadcaster.cli.simulate:cmd_simulate")
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
        return int(handler(args))
    except LoaError as exc:  # bad input, a bad configuration, audio or a plan that cannot be made
        print(render("cli.error", {"message": exc.message(args.lang), "code": exc.code}, args.lang), file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
