"""bench/reports.py keeps its contract: it makes a commune's history, reports it, checks the report read
the same deliveries as its baseline, and prints its figures as one JSON line. (The 2-s goal is the
bench's to judge on a year of 50 villages, not this test's on two weeks of three.)"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_reports_bench_prints_its_figures_as_one_json_line() -> None:
    out = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "reports.py"), "--days", "14", "--villages", "3", "--runs", "1"],
        capture_output=True, text=True, timeout=120, cwd=ROOT,
    )  # fmt: skip
    assert out.returncode == 0, out.stderr[-3000:]
    result = json.loads(out.stdout.strip().splitlines()[-1])
    for key in ("year_s", "baseline_s", "sqlite_month_s", "sqlite_ratio_to_count", "goal_year_s"):
        assert isinstance(result[key], int | float) and result[key] > 0, key
    assert result["sqlite_plays"] == result["sqlite_speaker_deliveries_counted"] > 0
