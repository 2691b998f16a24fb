"""A simulated speaker that notes when it first hears something: the reference speaker agent (the very
`SpeakerAgent` a Raspberry Pi runs, on the device core, over the real broker), with a sink that decodes
the stream it is told to play the way a speaker's player does (ffmpeg reading the URL, as the reference
sinks do) and writes the instant the first loud samples come out of the decoder.

    python -m tests.broadcaster.web.onset_speaker --config thon-1-loa.json --out onsets.jsonl

Each play of a stream adds a line to `--out` the moment it first hears something loud, {"url",
"started_at", "onset_at"} (epoch seconds, this machine's clock), and one when it ends, {"url", "ended_at"}.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import threading
import time
from pathlib import Path

from broadcaster.device.config import AgentConfig
from broadcaster.device.sinks import NullSink, PlaybackError
from broadcaster.device.speaker import SpeakerAgent

LOUD = 3000  # a 16-bit sample above this is the tone, not silence or codec noise
BLOCK = 640  # 20 ms of 16 kHz mono 16-bit samples: the decoder hands over a frame at a time anyway


def loudest(pcm: bytes) -> int:
    samples = memoryview(pcm[: len(pcm) // 2 * 2]).cast("h")
    return max((abs(s) for s in samples), default=0)


class OnsetSink(NullSink):
    name = "onset"

    def __init__(self, out: Path) -> None:
        super().__init__()
        self.out = out

    def _note(self, entry: dict[str, object]) -> None:
        with self.out.open("a", encoding="utf-8") as f:
            f.write(json.dumps(entry) + "\n")

    def play_stream(self, url: str, duration_s: float, started_at: float) -> None:
        self._stop = stop = threading.Event()
        proc = subprocess.Popen(
            ["ffmpeg", "-nostdin", "-loglevel", "error", "-t", f"{duration_s:.3f}", "-i", url,
             "-f", "s16le", "-ac", "1", "-ar", "16000", "-flush_packets", "1", "pipe:1"],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )  # fmt: skip

        def cut() -> None:  # a stop (a recall, a higher priority) ends the player
            stop.wait()
            proc.terminate()

        threading.Thread(target=cut, daemon=True).start()
        assert proc.stdout is not None
        onset: float | None = None
        while block := os.read(proc.stdout.fileno(), BLOCK):
            if onset is None and loudest(block) > LOUD:
                onset = time.time()
                self._note({"url": url, "started_at": started_at, "onset_at": onset})
        proc.wait()
        self._note({"url": url, "ended_at": time.time()})
        stop.set()
        if proc.returncode != 0 and onset is None:
            err = proc.stderr.read().decode("utf-8", "replace").strip() if proc.stderr else ""
            raise PlaybackError(f"playback_failed: {err[-150:] or proc.returncode}")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--config", type=Path, required=True)
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    agent = SpeakerAgent(AgentConfig.load(args.config), sink=OnsetSink(args.out))
    agent.exit_with_parent(os.getppid())
    signal.signal(signal.SIGTERM, lambda *_: agent.request_stop())
    agent.run_forever()


if __name__ == "__main__":
    main()
