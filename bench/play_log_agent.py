"""`loa agent speaker` as a village runs it, writing down every play it starts and ends (bench/faults.py).

    python bench/play_log_agent.py DEVICE_CONFIG.json PLAYS.jsonl

The agent is the reference one (broadcaster.device.speaker.SpeakerAgent, its core, its seen.json and
held.json); only its play is wrapped, so the fault bench judges "played exactly once" and "never after
its expiry" from what the device really did, not from what the database says it did. Each line is
{"ev": "start"|"end"|"cut", "cmd": command id, "at": epoch seconds, "pid": this process}, appended and
flushed at once: a SIGKILL loses nothing written before it.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import signal
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from broadcaster.device.config import AgentConfig
from broadcaster.device.core import Action, Play, Silence
from broadcaster.device.speaker import SpeakerAgent


class LoggingSpeaker(SpeakerAgent):
    """The speaker agent, with a line per play start, end and cut in `plays`."""

    def __init__(self, config: AgentConfig, plays: Path) -> None:
        super().__init__(config)
        self.plays = plays

    def _note(self, ev: str, cmd: str, at: float, **extra: Any) -> None:
        line = json.dumps({"ev": ev, "cmd": cmd, "at": at, "pid": os.getpid(), **extra})
        with self.plays.open("a", encoding="utf-8") as f:  # one write per line: whole or not at all
            f.write(line + "\n")

    def _play(self, action: Play) -> None:
        self._note("start", action.command_id, action.started_at, error_ms=action.start_error_ms)
        try:
            super()._play(action)
        finally:
            self._note("end", action.command_id, time.time())

    def perform(self, action: Action) -> None:
        if isinstance(action, Silence):
            self._note("cut", action.command_id, time.time())
        super().perform(action)


def main(argv: list[str]) -> int:
    config_path, plays = Path(argv[0]), Path(argv[1])
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    agent = LoggingSpeaker(AgentConfig.load(config_path), plays)
    agent.exit_with_parent(os.getppid())  # the bench's speakers never outlive the bench
    signal.signal(signal.SIGTERM, lambda *_: agent.request_stop())
    with contextlib.suppress(KeyboardInterrupt):
        agent.run_forever()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
