"""The LED-board agent: shows a title at the start time for as long as the item airs."""

from __future__ import annotations

import threading
from pathlib import Path

from broadcaster.device.agent import DeviceAgent
from broadcaster.device.config import AgentConfig
from broadcaster.device.core import Action, Blank, Show


class LedAgent(DeviceAgent):
    kind = "led"

    def __init__(self, config: AgentConfig) -> None:
        super().__init__(config)
        self.board = self.state_dir / "board.txt"  # what a person would see on the board
        self.shown: str = ""
        self._showing: threading.Event | None = None  # set to end the current show early

    def perform(self, action: Action) -> None:
        if isinstance(action, Show):
            if self._showing is not None:
                self._showing.set()
            self._showing = cut = threading.Event()
            self.show(action.text)
            self._spawn(f"show-{action.command_id[:8]}", self._hold, action, cut)
        elif isinstance(action, Blank):
            if self._showing is not None:
                self._showing.set()
                self._showing = None
            self.show("")
        else:
            super().perform(action)

    def _hold(self, action: Show, cut: threading.Event) -> None:
        if not cut.wait(action.duration_s):
            self.call(lambda now: self.core.ended(action.command_id, now))

    def show(self, text: str) -> None:
        self.shown = text
        tmp = self.board.with_suffix(".tmp")
        tmp.write_text(text, encoding="utf-8")
        tmp.replace(self.board)
        print(f"[{self.device_id}] {text}" if text else f"[{self.device_id}] (trống)", flush=True)


def board_text(state_dir: Path) -> str:
    path = state_dir / "board.txt"
    return path.read_text(encoding="utf-8") if path.exists() else ""
