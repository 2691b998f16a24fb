"""`loa report`: the period report (services/period_report.py) at the terminal, or into a file.

    loa report --from 01/11/2026 --to 30/11/2026 [--zone thon-1] --format text|csv|xlsx|png|pdf --output FILE

Periods are commune days, both ends included; without --from/--to, this quarter so far. Text and CSV
go to the terminal unless --output names a file; XLSX, PNG and PDF need --output. A file is written
whole or not at all (beside its place, then renamed), and nothing is written when a date, the zone or
the output is refused. `--json` keeps the short figures of the API's /api/v1/report for scripts.
"""

from __future__ import annotations

import argparse
import json
import sys
from datetime import date, datetime
from pathlib import Path

from broadcaster.errors import LoaError
from schedules.clock import SystemClock, to_local
from schedules.when import WhenError, read_time


def report_day(text: str, now: datetime) -> date:
    """A commune day as an officer types it (01/11/2026, 2026-11-01, 1/11, thứ hai, hôm nay...): read as
    `loa announce --at` reads it, but a day only — a report counts whole days."""
    try:
        reading = read_time(text, now)
    except WhenError as exc:
        raise LoaError("bad_report_day", {"text": text[:40]}) from exc
    if reading is None or reading.day is None:
        raise LoaError("bad_report_day", {"text": text[:40]})
    return reading.day


def cmd_report(args: argparse.Namespace) -> int:
    clock = SystemClock()
    # What the person typed is checked before the database is opened: a refusal is quick and touches nothing.
    now = to_local(clock.now())
    today = now.date()
    quarter = today.replace(month=3 * ((today.month - 1) // 3) + 1, day=1)
    first = report_day(args.from_, now) if args.from_ else quarter
    last = report_day(args.to, now) if args.to else today
    if last < first:
        raise LoaError("end_before_start.range", {})
    fmt = args.format
    output: Path | None = args.output
    if fmt in ("xlsx", "png", "pdf") and output is None:
        raise LoaError("report_output_missing", {"format": fmt})
    if output is not None and not output.parent.resolve().is_dir():
        raise LoaError("report_output_dir", {"path": str(output)})
    # The server's modules only now: a refusal above answers at once.
    from broadcaster.config import load_config
    from broadcaster.services.build import build_services
    from broadcaster.services.period_report import period, period_report
    from broadcaster.services.report_exports import render, write_atomically
    from broadcaster.services.reports import report

    svc = build_services(load_config(args.config), clock)
    if args.json:
        print(json.dumps(report(svc, *period(first, last)), ensure_ascii=False, indent=2))
        return 0
    data = render(period_report(svc, first, last, args.zone), fmt, args.lang, made_at=svc.clock.now())
    if output is None:
        sys.stdout.buffer.write(data)
        sys.stdout.flush()
        return 0
    write_atomically(output, data)
    print(f"Đã ghi {output} ({len(data):,} byte)".replace(",", "."), file=sys.stderr)
    return 0
