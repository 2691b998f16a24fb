"""The officer's commands of `loa`: announce, status, timeline, programme, report, zone, db, say, normalize.

Commands that change data work on the database directly (the daemon picks the change up within its
reconcile interval), so they also work while the daemon is down.
"""

from __future__ import annotations

import argparse
import getpass
import json
import re
import shutil
import sys
from datetime import datetime, time, timedelta
from pathlib import Path
from typing import Any

from audio.normalize import normalize
from broadcaster.config import load_config
from broadcaster.db import Database
from broadcaster.errors import LoaError
from broadcaster.services.announcements import announce
from broadcaster.services.audio import audio_pipeline
from broadcaster.services.build import build_services
from broadcaster.services.devices import list_devices, offline_warnings
from broadcaster.services.programmes import add_programme, list_programmes
from broadcaster.services.reports import report
from broadcaster.services.views import calendar, recent_deliveries, timeline
from broadcaster.services.zones import add_zone, list_zones
from schedules.clock import LOCAL_TZ, SystemClock
from schedules.when import WhenError, parse_when


def _config(args: argparse.Namespace) -> Any:
    return load_config(args.config)


_HHMM = re.compile(r"^([01]\d|2[0-3]):[0-5]\d$")


def _user() -> str:
    try:
        return getpass.getuser()
    except Exception:
        return "cli"


def cmd_announce(args: argparse.Namespace) -> int:

    svc = build_services(_config(args), SystemClock())
    text = sys.stdin.read() if args.text == "-" else args.text
    bar = ProgressBar("Đang chuyển thành giọng nói")
    result = announce(
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

    svc = build_services(_config(args), SystemClock())
    devices = list_devices(svc)
    deliveries = recent_deliveries(svc, args.limit, args.lang)
    warnings = offline_warnings(svc)
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


def _local_day(text: str | None, end: bool = False) -> Any:
    """--from/--to as a local date (the whole day) or anything `loa announce --at` accepts."""


    if text is None:
        return None
    try:
        day = datetime.strptime(text, "%Y-%m-%d").date()
    except ValueError:
        return parse_when(text, datetime.now(LOCAL_TZ), allow_past_s=10**9)
    return datetime.combine(day + timedelta(days=1 if end else 0), time(0), LOCAL_TZ)


def cmd_timeline(args: argparse.Namespace) -> int:

    svc = build_services(_config(args), SystemClock())
    try:
        start, end = _local_day(args.from_), _local_day(args.to, end=True)
    except WhenError as exc:
        raise LoaError.from_domain(exc) from exc
    if args.ics:
        if not args.zone:
            raise LoaError("no_zone.ics", {})
        sys.stdout.write(calendar(svc, args.zone))
        return 0
    rows = timeline(svc, args.zone, start, end, args.lang)
    if args.json:
        print(json.dumps(rows, ensure_ascii=False, indent=2))
        return 0
    if not rows:
        print("Không có lượt phát nào trong khoảng này.")
    for r in rows:
        print(f"  {r['start_at_local']}  {r['zone_name']:<12} {r['priority']:<9} {r['status']:<10} {r['title']}")
        for line in (r["explanation"], r["reason"]):
            if line:
                print(f"      {line}")
    return 0


def cmd_programme(args: argparse.Namespace) -> int:

    svc = build_services(_config(args), SystemClock())
    if args.action == "list":
        for p in list_programmes(svc):
            where = ", ".join(p["zones"])
            print(f"  #{p['id']:<4} {p['kind']:<7} {p['recurrence']:<28} {where:<16} {p['title']}")
        return 0
    if not args.title:
        raise LoaError("empty_title.option", {})
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


    svc = build_services(_config(args), SystemClock())
    today = datetime.now(LOCAL_TZ).date()
    quarter_start = today.replace(month=3 * ((today.month - 1) // 3) + 1, day=1)
    start = _local_day(args.from_) or datetime.combine(quarter_start, time(0), LOCAL_TZ)
    end = _local_day(args.to, end=True) or datetime.combine(today, time(0), LOCAL_TZ) + timedelta(days=1)
    result = report(svc, start, end)
    print(json.dumps(result, ensure_ascii=False, indent=2) if args.json else result["text"])
    return 0


def cmd_zone(args: argparse.Namespace) -> int:

    svc = build_services(_config(args), SystemClock())
    if args.action == "add":
        if not args.id:
            raise LoaError("zone_id_missing", {})
        quiet = None
        if args.quiet:
            first, _, last = args.quiet.partition("-")
            if not (_HHMM.match(first) and _HHMM.match(last)):
                raise LoaError("bad_quiet_hours", {})
            quiet = (first, last)
        z = add_zone(
            svc, args.id, args.name or args.id, args.kind, args.members or [], actor=args.user or _user(), quiet=quiet
        )
        print(f"Đã thêm {z['kind']} {z['id']} ({z['name']})")
        return 0
    for z in list_zones(svc):
        print(f"  {z['id']:<16} {z['kind']:<8} {z['name']}")
    return 0


def cmd_db(args: argparse.Namespace) -> int:

    cfg = _config(args)
    Path(cfg.general.data_dir).mkdir(parents=True, exist_ok=True)
    Database(cfg.database_url).upgrade()
    print("Cơ sở dữ liệu đã cập nhật / database is at the latest schema")
    return 0


def cmd_say(args: argparse.Namespace) -> int:


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

    lexicon = _config(args).speech.lexicon
    for line in sys.stdin:
        print(normalize(line.rstrip("\n"), lexicon))
    return 0
