"""The officer's commands of `loa`: announce, cancel, status, timeline, programme, zone, db, say,
normalize.

Commands that change data work on the database directly (the daemon picks the change up within its
reconcile interval), so they also work while the daemon is down.
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import sys
from datetime import datetime, time, timedelta
from pathlib import Path
from typing import Any

from audio.normalize import normalize
from broadcaster.cli import os_account
from broadcaster.config import load_config
from broadcaster.db import Database
from broadcaster.errors import LoaError
from broadcaster.services import Services
from broadcaster.services.announcements import announce
from broadcaster.services.audio import audio_pipeline
from broadcaster.services.build import build_services
from broadcaster.services.devices import clock_warnings, list_devices, offline_warnings
from broadcaster.services.emergencies import check_reason, note, reach
from broadcaster.services.programmes import add_programme, list_programmes
from broadcaster.services.recall import recall, recent_recalls
from broadcaster.services.speech import configured_for, parse_voice
from broadcaster.services.views import calendar, recent_deliveries, timeline
from broadcaster.services.zones import add_zone, list_zones
from schedules.clock import LOCAL_TZ, SystemClock
from schedules.when import WhenError, read_time


def _config(args: argparse.Namespace) -> Any:
    return load_config(args.config)


ZONE_KINDS_VI = {"commune": "xã", "village": "thôn", "group": "nhóm thôn"}
_HHMM = re.compile(r"^([01]\d|2[0-3]):[0-5]\d$")


def _emergency_reason(svc: Services, args: argparse.Namespace, zones: list[str]) -> str:
    """An emergency from the terminal needs the same second look as over HTTP: on a terminal the person
    is shown the villages and the repeats and must type 'phát' and a reason; a script must say
    `--confirm --reason "..."` (the refusal names the villages and the repeats too)."""
    where = reach(svc, zones)
    actor = os_account()
    if args.confirm:
        return check_reason(args.reason)
    if not sys.stdin.isatty():
        note(svc, actor, "emergency.asked", zones=zones, villages=list(where.villages), repeats=where.repeats)
        raise LoaError("confirm_emergency.cli", {"villages": ", ".join(where.villages), "repeats": where.repeats})
    print(f"TIN KHẨN CẤP: phát {where.repeats} lần, cả trong giờ yên tĩnh, tại: {', '.join(where.villages)}.")
    if input("Gõ 'phát' để phát / type 'yes' to send: ").strip().lower() not in ("phát", "phat", "yes"):
        note(svc, actor, "emergency.refused", why="declined", zones=zones)
        raise LoaError("confirm_emergency.declined", {})
    return check_reason(args.reason or input("Lý do (ai yêu cầu, vì sao) / reason: "))


def cmd_announce(args: argparse.Namespace) -> int:

    svc = build_services(_config(args), SystemClock())
    text = sys.stdin.read() if args.text == "-" else args.text
    zones = args.zone or ["all"]
    reason = _emergency_reason(svc, args, zones) if args.priority == "emergency" else ""
    with ProgressBar("Đang chuyển thành giọng nói") as bar:
        result = announce(
            svc,
            text,
            zones,
            args.at,
            title=args.title,
            priority=args.priority,
            actor=os_account(),
            recording=args.audio,
            bulletin=args.bulletin,
            order=args.order,
            progress=bar.update,
            reason=reason,
            voice=parse_voice(svc.config, args.voice, args.rate),
        )
    if args.json:
        print(json.dumps(result, ensure_ascii=False, indent=2))
    else:
        print(f"Đã lưu thông báo #{result['id']}: {result['title']}")
        for b in result["broadcasts"]:
            print(f"  phát tại {b['zone']} lúc {b['start_at_local']} (lượt phát #{b['id']})")
        voice = result["voice"] or {}
        asked = f" ({voice['engine']}:{voice['voice']}, tốc độ {voice['rate']:g})" if voice else ""
        print(f"  âm thanh: {result['audio']['duration_ms'] / 1000:.1f} s, giọng {result['audio']['engine']}{asked}")
    return 0


def cmd_cancel(args: argparse.Namespace) -> int:
    """Recall an announcement. Written to the database only: a running daemon sends the stops within its
    reconcile interval (about a second), and one that is down sends them when it starts. The audit log
    names the account running `loa` (see `os_account`)."""
    svc = build_services(_config(args), SystemClock())
    result = recall(svc, args.id, actor=os_account(), reason=args.reason, lang=args.lang)
    if args.json:
        print(json.dumps(result, ensure_ascii=False, indent=2))
    else:
        print(result["summary"])
    return 0


class ProgressBar:
    """Sentence-by-sentence progress on stderr, so stdout stays clean for scripts. Used with `with`: the
    bar's line is ended however the work ends, so a refusal after rendering (a plan that has no room)
    starts on a line of its own instead of after the bar."""

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
            sys.stderr.flush()
            self.shown = False

    def __enter__(self) -> ProgressBar:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def cmd_status(args: argparse.Namespace) -> int:

    svc = build_services(_config(args), SystemClock())
    devices = list_devices(svc)
    deliveries = recent_deliveries(svc, args.limit, args.lang)
    warnings = offline_warnings(svc)
    clocks = clock_warnings(svc)
    recalls = recent_recalls(svc, svc.clock.now() - timedelta(days=1))
    if args.json:
        print(
            json.dumps(
                {
                    "devices": devices,
                    "deliveries": deliveries,
                    "warnings": warnings,
                    "clock_warnings": clocks,
                    "recalls": recalls,
                },
                ensure_ascii=False,
                indent=2,
            )
        )
        return 0
    for w in [*warnings, *clocks]:
        print(f"CẢNH BÁO: {w['message']}")
    for r in recalls:
        why = f": {r['reason']}" if r["reason"] else ""
        print(f"THU HỒI: #{r['announcement']} '{r['title']}' bởi {r['by']} lúc {r['at_local']}{why}")
    print("Thiết bị / devices:")
    for d in devices:
        state = "trực tuyến" if d["online"] else "mất kết nối"
        seen = f"thấy lần cuối {d['last_seen_local']}" if d["last_seen_local"] else "chưa kết nối lần nào"
        # the daemon's clock minus the device's, as it last measured it: + is a clock behind
        clock = f"đồng hồ {d['clock_offset_ms']:+.1f} ms" if d["clock_offset_ms"] is not None else "đồng hồ chưa đo"
        print(f"  {d['id']:<20} {d['kind']:<8} {d['village']:<12} {state:<12} {seen}  {clock}")
    print("Lượt phát gần đây / recent deliveries:")
    for r in deliveries:
        err = f"{r['start_error_ms']:+.1f} ms" if r["start_error_ms"] is not None else ""
        where = f"#{r['broadcast']:<5} {r['start_at_local']} {r['device']:<20}"
        print(f"  {where} {r['status']:<10} {err} {r['reason']}")
    return 0


def _local_day(text: str | None, end: bool = False) -> datetime | None:
    """--from/--to: a day ("25/12", "2026-12-25", "thứ hai": the whole day, so --to includes it) or a
    moment ("17:30", "+1h"), past or future, read as `loa announce --at` reads it."""
    try:
        reading = read_time(text, datetime.now(LOCAL_TZ))
    except WhenError as exc:
        raise LoaError.from_domain(exc) from exc
    if reading is None:
        return None
    if reading.day is None:
        return reading.at
    return datetime.combine(reading.day + timedelta(days=1 if end else 0), time(0), LOCAL_TZ)


def cmd_timeline(args: argparse.Namespace) -> int:

    svc = build_services(_config(args), SystemClock())
    start, end = _local_day(args.from_), _local_day(args.to, end=True)
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
        actor=os_account(),
    )
    print(f"Đã lưu chương trình #{result['id']}: {result['title']} ({result['recurrence']})")
    for p in result.get("placements", []):
        print(f"  {p['start_at_local']}  {', '.join(p['villages'])}  {p['explanation']}")
    for w in result.get("windows", []):  # a bulletin: its coming windows, filled by `announce --bulletin`
        print(f"  {w['start_at_local']}–{w['end_at_local']}  {w['title']}")
    if args.kind == "bulletin":
        print(f"  Xếp tin vào bản tin: loa announce \"...\" --bulletin {result['id']}")
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
            svc, args.id, args.name or args.id, args.kind, args.members or [], actor=os_account(), quiet=quiet
        )
        print(f"Đã thêm {ZONE_KINDS_VI.get(z['kind'], z['kind'])} {z['id']} ({z['name']})")
        return 0
    for z in list_zones(svc):
        print(f"  {z['id']:<16} {ZONE_KINDS_VI.get(z['kind'], z['kind']):<9} {z['name']}")
    return 0


def cmd_db(args: argparse.Namespace) -> int:

    """The one place an existing database is migrated (besides a single daemon's start): run once per
    release, after a backup, before the cluster's daemons start (docs/deployment.md)."""
    from broadcaster.db.migrations import current_revision, head_revision

    cfg = _config(args)
    Path(cfg.general.data_dir).mkdir(parents=True, exist_ok=True)
    db = Database(cfg.database_url)
    try:
        before = current_revision(db.engine)
        db.upgrade()
    finally:
        db.dispose()
    print(f"Cơ sở dữ liệu đã cập nhật / database is at the latest schema: {before or '-'} → {head_revision()}")
    return 0


def cmd_say(args: argparse.Namespace) -> int:


    cfg = _config(args)
    if args.engine:
        cfg.speech.engine = args.engine
    choice = parse_voice(cfg, args.voice, args.rate)  # as `loa announce --voice` reads it: the same file
    if choice is not None:
        cfg = configured_for(cfg, choice)
    with ProgressBar("Đang đọc") as bar:
        stored = audio_pipeline(cfg).render(args.text, bar.update)  # an empty text is refused, as audio_empty_text
    shutil.copyfile(stored.path, args.output)
    print(f"{args.output}: {stored.duration_ms / 1000:.1f} s, {stored.engine}, sha256 {stored.sha256[:12]}")
    return 0


def cmd_normalize(args: argparse.Namespace) -> int:

    lexicon = _config(args).speech.lexicon
    for line in sys.stdin:
        print(normalize(line.rstrip("\n"), lexicon))
    return 0
