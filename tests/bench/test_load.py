"""bench/load.py keeps its promise in short (#15 item 4): the real daemon and 200 simulated speakers, a
tenth of them losing their link every minute, a day's items compressed into half a minute (an emergency
among them); every airing reaches every speaker it names, once, and the figures come as one JSON line.
(The memory goal is the bench's to judge over ten minutes and 5,000 speakers, not this test's.)"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_every_airing_of_a_compressed_day_reaches_every_speaker_while_links_drop() -> None:
    out = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "load.py"), "--devices", "200", "--minutes", "0.3", "--items", "3",
         "--lead-s", "3", "--baseline-s", "2", "--churn", "0.5"],
        capture_output=True, text=True, timeout=300, cwd=ROOT,
    )  # fmt: skip
    result = json.loads(out.stdout.strip().splitlines()[-1])
    brief = {k: v for k, v in result.items() if k != "rss_samples"}
    for key in ("devices", "airings", "expected", "delivered", "baseline_rss_mb", "rss_end_mb", "growth_pct"):
        assert key in result, key
    assert result["devices"] == 200 and result["item_kinds"]["emergency"] == 1, brief
    assert result["airings"] >= 3 and result["expected"] >= 3 * 20, brief
    assert result["delivered"] == result["expected"] and result["all_delivered"], brief
    assert result["duplicated"] == 0 and result["reconnects"] > 0, brief
    assert out.returncode == 0, brief
