"""`loa`: the command line for the officer's helpers and the technician.

Commands that change data work on the database directly (the daemon picks the change up within its
reconcile interval), so they also work while the daemon is down. Errors print in Vietnamese with the
English code and exit non-zero.
"""

from __future__ import annotations

import argparse
import contextlib
import getpass
import json
import logging
import os
import re
import sys
from datetime import timedelta
from pathlib import Path
from typing import Any

from broadcaster import cli_admin, fleet
from broadcaster.config import ConfigError, load_config
from broadcaster.service import BadInput
from schedules.clock import SystemClock


def _config(args: argparse.Namespace) -> Any:
    return load_config(args.config)


_HHMM = re.compile(r"^([01]\d|2[0-3]):[0-5]\d$")


def _user() -> str:
    try:
        return getpass.getuser()
    except Exception:
        return "cli"


def cmd_announce(args: argparse.Namespace) -> int:
    from broadcaster import service
    from broadcaster.app import build_services

    svc = build_services(_config(args), SystemClock())
    text = sys.stdin.read() if args.text == "-" else args.text
    bar = ProgressBar("Đang chuyển thành giọng nói")
    result = service.announce(
        svc,
        text,
        args.zone or ["all"],
        args.at,
        title=args.title,
        priority=args.priority,
        actor=args.user or _user(),
        recording=args.audio,
        bulletin=args.bulletin,
        order=args.order,
        progress=bar.update,
    )
    bar.close()
    if args.json:
        print(json.dumps(result, ensure_ascii=False, indent=2))
    else:
        print(f"Đã lưu thông báo #{result['id']}: {result['title']}")
        for b in result["broadcasts"]:
            print(f"  phát tại {b['zone']} lúc {b['start_at_local']} (lượt phát #{b['id']})")
        print(f"  âm thanh: {result['audio']['duration_ms'] / 1000:.1f} s, giọng {result['audio']['engine']}")
    return 0


class ProgressBar:
    """Sentence-by-sentence progress on stderr, so stdout stays clean for scripts."""

    def __init__(self, label: str, width: int = 30) -> None:
        self.label = label
        self.width = width
        self.shown = False

    def update(self, done: int, total: int) -> None:
        if total <= 1:
            return
        filled = self.width * done // total
        sys.stderr.write(f"\r{self.label} [{'#' * filled}{'.' * (self.width - filled)}] {done}/{total} câu")
        sys.stderr.flush()
        self.shown = True

    def close(self) -> None:
        if self.shown:
            sys.stderr.write("\n")


def cmd_status(args: argparse.Namespace) -> int:
    from broadcaster import service
    from broadcaster.app import build_services

    svc = build_services(_config(args), SystemClock())
    devices = service.list_devices(svc)
    deliveries = service.recent_deliveries(svc, args.limit)
    warnings = service.offline_warnings(svc)
    if args.json:
        print(
            json.dumps(
                {"devices": devices, "deliveries": deliveries, "warnings": warnings}, ensure_ascii=False, indent=2
            )
        )
        return 0
    for w in warnings:
        print(f"CẢNH BÁO: {w['message']}")
    print("Thiết bị / devices:")
    for d in devices:
        state = "trực tuyến" if d["online"] else "mất kết nối"
        print(f"  {d['id']:<20} {d['kind']:<8} {d['village']:<12} {state:<12} {d['last_seen'] or '-'}")
    print("Lượt phát gần đây / recent deliveries:")
    for r in deliveries:
        err = f"{r['start_error_ms']:+.1f} ms" if r["start_error_ms"] is not None else ""
        where = f"#{r['broadcast']:<5} {r['start_at_local']} {r['device']:<20}"
        print(f"  {where} {r['status']:<10} {err} {r['reason']}")
    return 0


def cmd_agent(args: argparse.Namespace) -> int:
    from broadcaster.agents.base import AgentConfig
    from broadcaster.agents.led import LedAgent
    from broadcaster.agents.speaker import SpeakerAgent

    if args.config_file:
        cfg = AgentConfig.load(args.config_file)
    else:
        if not (args.id and args.broker and args.key):
            print("Cần --config FILE, hoặc đủ --id, --broker và --key (agent_config_missing)", file=sys.stderr)
            return 2
        keys = dict(k.split(":", 1) for k in args.key)
        cfg = AgentConfig(
            device_id=args.id,
            kind=args.kind,
            broker_url=args.broker,
            public_keys=keys,
            state_dir=args.state_dir or f"agent-state/{args.id}",
            sink=args.sink,
        )
    if args.sink_override:
        cfg.sink = args.sink_override
    agent = SpeakerAgent(cfg) if args.kind == "speaker" else LedAgent(cfg)
    if args.exit_with_parent:
        agent.exit_with_parent(os.getppid())
    import signal

    signal.signal(signal.SIGTERM, lambda *_: agent._stop.set())
    with contextlib.suppress(KeyboardInterrupt):
        agent.run_forever()
    return 0


def _local_day(text: str | None, end: bool = False) -> Any:
    """--from/--to as a local date (the whole day) or anything `loa announce --at` accepts."""
    from datetime import datetime, time, timedelta

    from schedules.clock import LOCAL_TZ
    from schedules.when import parse_when

    if text is None:
        return None
    try:
        day = datetime.strptime(text, "%Y-%m-%d").date()
    except ValueError:
        return parse_when(text, datetime.now(LOCAL_TZ), allow_past_s=10**9)
    return datetime.combine(day + timedelta(days=1 if end else 0), time(0), LOCAL_TZ)


def cmd_timeline(args: argparse.Namespace) -> int:
    from broadcaster import service
    from broadcaster.app import build_services
    from schedules.when import WhenError

    svc = build_services(_config(args), SystemClock())
    try:
        start, end = _local_day(args.from_), _local_day(args.to, end=True)
    except WhenError as exc:
        raise BadInput(exc.code, exc.message_vi) from exc
    if args.ics:
        if not args.zone:
            raise BadInput("no_zone", "Cần --zone để xuất lịch .ics.")
        sys.stdout.write(service.calendar(svc, args.zone))
        return 0
    rows = service.timeline(svc, args.zone, start, end)
    if args.json:
        print(json.dumps(rows, ensure_ascii=False, indent=2))
        return 0
    if not rows:
        print("Không có lượt phát nào trong khoảng này.")
    for r in rows:
        print(f"  {r['start_at_local']}  {r['zone_name']:<12} {r['priority']:<9} {r['status']:<10} {r['title']}")
        if r["explanation"]:
            print(f"      {r['explanation']}")
    return 0


def cmd_programme(args: argparse.Namespace) -> int:
    from broadcaster.app import build_services
    from broadcaster.programmes import add_programme, list_programmes

    svc = build_services(_config(args), SystemClock())
    if args.action == "list":
        for p in list_programmes(svc):
            where = ", ".join(p["zones"])
            print(f"  #{p['id']:<4} {p['kind']:<7} {p['recurrence']:<28} {where:<16} {p['title']}")
        return 0
    if not args.title:
        raise BadInput("empty_title", "Chương trình cần có tên (--title).")
    result = add_programme(
        svc,
        args.kind,
        args.title,
        args.zone or ["all"],
        args.when,
        stream_url=args.stream,
        duration_s=args.duration,
        text=args.text,
        priority=args.priority,
        actor=args.user or _user(),
    )
    print(f"Đã lưu chương trình #{result['id']}: {result['title']} ({result['recurrence']})")
    for p in result["placements"]:
        print(f"  {p['start_at_local']}  {', '.join(p['villages'])}  {p['explanation']}")
    return 0


def cmd_report(args: argparse.Namespace) -> int:
    from datetime import datetime, time

    from broadcaster import service
    from broadcaster.app import build_services
    from schedules.clock import LOCAL_TZ

    svc = build_services(_config(args), SystemClock())
    today = datetime.now(LOCAL_TZ).date()
    quarter_start = today.replace(month=3 * ((today.month - 1) // 3) + 1, day=1)
    start = _local_day(args.from_) or datetime.combine(quarter_start, time(0), LOCAL_TZ)
    end = _local_day(args.to, end=True) or datetime.combine(today, time(0), LOCAL_TZ) + timedelta(days=1)
    result = service.report(svc, start, end)
    print(json.dumps(result, ensure_ascii=False, indent=2) if args.json else result["text"])
    return 0


def cmd_zone(args: argparse.Namespace) -> int:
    from broadcaster import service
    from broadcaster.app import build_services

    svc = build_services(_config(args), SystemClock())
    if args.action == "add":
        if not args.id:
            print("Cần mã khu vực (zone_id_missing)", file=sys.stderr)
            return 2
        quiet = None
        if args.quiet:
            first, _, last = args.quiet.partition("-")
            if not (_HHMM.match(first) and _HHMM.match(last)):
                raise BadInput("bad_quiet_hours", "Giờ yên tĩnh viết dạng HH:MM-HH:MM, ví dụ 22:00-05:30.")
            quiet = (first, last)
        z = service.add_zone(
            svc, args.id, args.name or args.id, args.kind, args.members or [], actor=args.user or _user(), quiet=quiet
        )
        print(f"Đã thêm {z['kind']} {z['id']} ({z['name']})")
        return 0
    for z in service.list_zones(svc):
        print(f"  {z['id']:<16} {z['kind']:<8} {z['name']}")
    return 0


def cmd_db(args: argparse.Namespace) -> int:
    from broadcaster.db import Database

    cfg = _config(args)
    Path(cfg.general.data_dir).mkdir(parents=True, exist_ok=True)
    Database(cfg.database_url).upgrade()
    print("Cơ sở dữ liệu đã cập nhật / database is at the latest schema")
    return 0


def cmd_say(args: argparse.Namespace) -> int:
    import shutil

    from broadcaster.app import audio_pipeline

    cfg = _config(args)
    if args.engine:
        cfg.speech.engine = args.engine
    bar = ProgressBar("Đang đọc")
    stored = audio_pipeline(cfg).render(args.text, bar.update)
    bar.close()
    shutil.copyfile(stored.path, args.output)
    print(f"{args.output}: {stored.duration_ms / 1000:.1f} s, {stored.engine}, sha256 {stored.sha256[:12]}")
    return 0


def cmd_normalize(args: argparse.Namespace) -> int:
    from audio.normalize import normalize

    lexicon = _config(args).speech.lexicon
    for line in sys.stdin:
        print(normalize(line.rstrip("\n"), lexicon))
    return 0


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="loa", description="Loa truyền thanh thông minh cấp xã")
    p.add_argument("--config", type=Path, default=None, help="TOML config (default: $LOA_CONFIG)")
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
    a.set_defaults(func=cmd_announce)

    s = sub.add_parser("status", help="thiết bị và các lượt phát gần đây")
    s.add_argument("--limit", type=int, default=20)
    s.add_argument("--json", action="store_true")
    s.set_defaults(func=cmd_status)

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
    g.set_defaults(func=cmd_agent)

    t = sub.add_parser("timeline", help="lịch phát theo khu vực")
    t.add_argument("--zone", default=None)
    t.add_argument("--from", dest="from_", default=None, help="YYYY-MM-DD (giờ Việt Nam) hoặc 17:30, +1h")
    t.add_argument("--to", default=None, help="YYYY-MM-DD (cả ngày đó) hoặc 17:30, +1h")
    t.add_argument("--ics", action="store_true", help="xuất tệp lịch iCalendar (.ics) cho điện thoại")
    t.add_argument("--json", action="store_true")
    t.set_defaults(func=cmd_timeline)

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
    pr.set_defaults(func=cmd_programme)

    rp = sub.add_parser("report", help="báo cáo: số mục và số lượt đã phát (mặc định: quý này)")
    rp.add_argument("--from", dest="from_", default=None, help="YYYY-MM-DD")
    rp.add_argument("--to", default=None, help="YYYY-MM-DD (cả ngày đó)")
    rp.add_argument("--json", action="store_true")
    rp.set_defaults(func=cmd_report)

    z = sub.add_parser("zone", help="thôn và nhóm thôn")
    z.add_argument("action", choices=["add", "list"])
    z.add_argument("id", nargs="?")
    z.add_argument("--name", default=None)
    z.add_argument("--kind", default="village", choices=["village", "group"])
    z.add_argument("--members", nargs="*", help="các thôn của nhóm")
    z.add_argument("--quiet", default=None, help="giờ yên tĩnh riêng của khu vực, ví dụ 22:00-05:30")
    z.add_argument("--user", default=None)
    z.set_defaults(func=cmd_zone)

    d = sub.add_parser("db", help="cơ sở dữ liệu")
    d.add_argument("action", choices=["upgrade"])
    d.set_defaults(func=cmd_db)

    y = sub.add_parser("say", help="nghe thử: đọc văn bản ra tệp âm thanh")
    y.add_argument("text")
    y.add_argument("-o", "--output", type=Path, required=True)
    y.add_argument("--engine", choices=["espeak", "gtts", "gtts+espeak"], default=None)
    y.set_defaults(func=cmd_say)

    n = sub.add_parser("normalize", help="in cách đọc của từng dòng trên stdin")
    n.set_defaults(func=cmd_normalize)
    cli_admin.register(sub)  # loa broker config, loa device add
    fleet.register(sub)  # loa simulate
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    try:
        return int(args.func(args))
    except BadInput as exc:
        print(f"Lỗi: {exc.message_vi} ({exc.code})", file=sys.stderr)
        return 2
    except ConfigError as exc:
        print(exc, file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
