"""The LED-board agent: shows a title at the start time for as long as the item airs."""

from __future__ import annotations

import threading
from datetime import datetime
from pathlib import Path
from typing import Any

from broadcaster import protocol
from broadcaster.device.agent import AgentConfig, DeviceAgent, wait_until


class LedAgent(DeviceAgent):
    kind = "led"

    def __init__(self, config: AgentConfig) -> None:
        super().__init__(config)
        self.board = self.state_dir / "board.txt"  # what a person would see on the board
        self.shown: str = ""
        self._clear = threading.Event()

    def status_extra(self) -> dict[str, Any]:
        return {**super().status_extra(), "diacritics": self.config.diacritics}

    def show(self, text: str) -> None:
        self.shown = text
        tmp = self.board.with_suffix(".tmp")
        tmp.write_text(text, encoding="utf-8")
        tmp.replace(self.board)
        print(f"[{self.device_id}] {text}" if text else f"[{self.device_id}] (trống)", flush=True)

    def handle(self, command: dict[str, Any]) -> None:
        ctype, cid = command.get("type"), command["id"]
        if ctype == "led.clear":
            self._clear.set()
            self.show("")
            self.ack(cid, "done")
            return
        if ctype != "led.show":
            super().handle(command)
            return
        body = command.get("body") or {}
        text = body.get("text")
        if not isinstance(text, str):
            self.ack(cid, "failed", reason="bad_body")
            return
        if not self.config.diacritics:
            text = protocol.strip_diacritics(text)
        self.ack(cid, "received")
        if not wait_until(protocol.parse_time(command["start_at"]).timestamp(), self._stop):
            return
        started = datetime.now().timestamp()
        error_ms = (started - protocol.parse_time(command["start_at"]).timestamp()) * 1000
        self._clear = clear = threading.Event()
        self.show(text)
        self.ack(cid, "playing", start_error_ms=round(error_ms, 3))
        clear.wait(float(body.get("duration_s") or 10))
        if self.shown == text:
            self.show("")
        self.ack(cid, "done")


def board_text(state_dir: Path) -> str:
    path = state_dir / "board.txt"
    return path.read_text(encoding="utf-8") if path.exists() else ""
