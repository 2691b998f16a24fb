"""bench/fanout.py keeps its contract: it runs end to end on a small fleet and its last stdout line is
the JSON object issue #5 names. (Its timings are not judged here: they belong to the bench itself.)"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_fanout_prints_its_figures_as_one_json_line() -> None:
    out = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "fanout.py"), "--devices", "20", "--rounds", "1", "--lead-s", "3",
         "--audio-s", "0.3"],
        capture_output=True, text=True, timeout=240, cwd=ROOT,
    )  # fmt: skip
    assert out.returncode == 0, out.stderr[-3000:]
    result = json.loads(out.stdout.strip().splitlines()[-1])
    for key in ("devices", "acked", "project_s", "baseline_s", "ratio", "start_error_p50_ms", "start_error_p99_ms"):
        assert key in result, key
    assert result["devices"] == result["acked"] == 20
    assert result["broadcasts"] == "one per village, all fired at once"
    assert result["last_deliveries"] == {"done": 20}
    assert result["project_s"] > 0 and result["baseline_s"] > 0
    assert result["ratio"] == round(result["project_s"] / result["baseline_s"], 2)
