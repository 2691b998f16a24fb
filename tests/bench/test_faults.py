"""bench/faults.py keeps its promise in short (#15 item 3): the real daemon killed with SIGKILL at a random
moment of dispatch, and a real speaker killed between `downloaded` and its start, then started again;
every accepted airing plays exactly once on every speaker, or is reported with a reason; nothing plays
twice, nothing after its expiry; and the rebooted speaker still plays its item. (The full campaign, with
every scenario and 20 trials of each kill, is the bench's own run.)"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_a_killed_daemon_and_a_rebooted_speaker_lose_nothing_and_play_nothing_twice() -> None:
    out = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "faults.py"), "--quick", "--seed", "15"],
        capture_output=True, text=True, timeout=240, cwd=ROOT,
    )  # fmt: skip
    result = json.loads(out.stdout.strip().splitlines()[-1])
    details = json.dumps(result["scenarios"], ensure_ascii=False, indent=1) + out.stderr[-3000:]
    for key in ("trials", "airings", "lost", "duplicated", "stale", "misrecorded", "scenarios", "duration_s"):
        assert key in result, key
    assert set(result["scenarios"]) == {"daemon_kill", "speaker_reboot"}, details
    assert result["trials"] == 2 and result["airings"] == 4 and result["deliveries"] == 8, details
    assert result["lost"] == result["duplicated"] == result["stale"] == 0, details
    assert result["misrecorded"] == 0, details
    reboot = result["scenarios"]["speaker_reboot"]
    assert any(" rebooted " in note for note in reboot["notes"]), details  # between `downloaded` and the start
    assert reboot["played"] == 4, details  # the rebooted speaker too: it resumed what it held
    assert out.returncode == 0, details
