"""Period report benchmark (#14): a year of a 50-village commune, reported in under 2 s.

Run from the repository root: `.venv/bin/python bench/reports.py` (SQLite in a temp folder), add
`--postgres postgresql+psycopg://postgres@127.0.0.1:5432/test` for a throw-away schema there too.
The history is broadcaster/simulation/history.py's: 3 items a day (60 % to every village), a daily
relay and a bulletin chime, 2 speakers and an LED board per village, outcomes of every kind and devices
going away now and then — about 55,000 item broadcasts and 200,000 deliveries a year.

Timed: `period_report` of the whole year (the slowest case: a month reads a twelfth of it), the median
of `--runs`, and a month. Baseline, in the same run and on the same rows: one plain
`SELECT count(*)` of the year's speaker deliveries joined to their broadcasts — the least any report of
them must read — so the ratio says what the report's grouping costs, whatever the machine's load.
The last stdout line is one JSON object; goal: year_s < 2.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from datetime import UTC, date, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from common import throwaway_database  # noqa: E402  (bench/common.py)
from sqlalchemy import func, select  # noqa: E402

from broadcaster.config import load_config  # noqa: E402
from broadcaster.db import Broadcast, BroadcastStatus, Delivery, Device, DeviceKind  # noqa: E402
from broadcaster.services.build import build_services  # noqa: E402
from broadcaster.services.period_report import ITEM_KINDS, period, period_report  # noqa: E402
from broadcaster.simulation.history import generate  # noqa: E402
from schedules.clock import FakeClock  # noqa: E402

GOAL_S = 2.0
YEAR = (date(2026, 1, 1), date(2026, 12, 31))
MONTH = (date(2026, 11, 1), date(2026, 11, 30))


def _timed(fn: object, runs: int) -> tuple[float, object]:
    times, out = [], None
    for _ in range(runs):
        t = time.perf_counter()
        out = fn()  # type: ignore[operator]
        times.append(time.perf_counter() - t)
    return statistics.median(times), out


def measure(url: str | None, tmp: Path, days: int, villages: int, runs: int) -> dict[str, float | int]:
    with throwaway_database(url, tmp) as db_url:
        environ = {"LOA_GENERAL_DATA_DIR": str(tmp / "data"), "LOA_DATABASE_URL": db_url,
                   "LOA_SPEECH_ENGINE": "espeak"}  # fmt: skip
        svc = build_services(load_config(None, environ=environ), FakeClock(datetime(2027, 1, 5, tzinfo=UTC)))
        t = time.perf_counter()
        history = generate(svc.db, YEAR[0], days, villages=villages)
        made_s = time.perf_counter() - t
        if url:  # what autovacuum does to a table that grew: without statistics even the baseline took 17 s
            with svc.db.engine.begin() as conn:
                conn.exec_driver_sql("ANALYZE")
        last = min(YEAR[1], date.fromordinal(YEAR[0].toordinal() + days - 1))
        start, end = period(YEAR[0], last)
        baseline = (
            select(func.count())
            .select_from(Delivery)
            .join(Broadcast, Delivery.broadcast_id == Broadcast.id)
            .join(Device, Delivery.device_id == Device.id)
            .where(Broadcast.start_at >= start, Broadcast.start_at < end, Broadcast.kind.in_(ITEM_KINDS),
                   Broadcast.status != BroadcastStatus.CANCELLED, Device.kind == DeviceKind.SPEAKER)
        )  # fmt: skip

        def count() -> int:
            with svc.db.engine.connect() as conn:
                return int(conn.execute(baseline).scalar_one())

        baseline_s, counted = _timed(count, runs)
        year_s, report = _timed(lambda: period_report(svc, YEAR[0], last), runs)
        month_s, _ = _timed(lambda: period_report(svc, *MONTH), runs)
        svc.db.dispose()
    assert report is not None
    assert counted == report.totals.plays, (counted, report.totals.plays)  # type: ignore[attr-defined]
    return {
        "broadcasts": len(history.broadcasts),
        "deliveries": len(history.deliveries),
        "status_events": len(history.events),
        "speaker_deliveries_counted": counted,  # type: ignore[dict-item]
        "generate_s": round(made_s, 2),
        "year_s": round(year_s, 3),
        "month_s": round(month_s, 3),
        "baseline_count_s": round(baseline_s, 3),
        "ratio_to_count": round(year_s / baseline_s, 2) if baseline_s else 0.0,
        "airings": report.airings,  # type: ignore[attr-defined]
        "plays": report.totals.plays,  # type: ignore[attr-defined]
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--days", type=int, default=365)
    ap.add_argument("--villages", type=int, default=50)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--postgres", default=None, metavar="URL", help="also on this PostgreSQL (a schema of its own)")
    args = ap.parse_args()
    result: dict[str, object] = {"goal_year_s": GOAL_S}
    with tempfile.TemporaryDirectory() as tmp:
        sqlite = measure(None, Path(tmp) / "sqlite", args.days, args.villages, args.runs)
    print(f"SQLite: {sqlite}")
    result.update({f"sqlite_{k}": v for k, v in sqlite.items()})
    result["year_s"], result["baseline_s"] = sqlite["year_s"], sqlite["baseline_count_s"]
    if args.postgres:
        with tempfile.TemporaryDirectory() as tmp:
            pg = measure(args.postgres, Path(tmp) / "pg", args.days, args.villages, args.runs)
        print(f"PostgreSQL: {pg}")
        result.update({f"postgres_{k}": v for k, v in pg.items()})
    result["goal_met"] = float(result["year_s"]) < GOAL_S  # type: ignore[arg-type]
    print(json.dumps(result))


if __name__ == "__main__":
    main()
