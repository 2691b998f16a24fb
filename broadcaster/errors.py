"""Errors a person sees: an English code for programs and a Vietnamese message for the officer."""

from __future__ import annotations

from typing import Any


class BadInput(Exception):
    """A request we refuse; nothing was stored."""

    def __init__(self, code: str, message_vi: str, status: int = 400) -> None:
        super().__init__(f"{code}: {message_vi}")
        self.code = code
        self.message_vi = message_vi
        self.status = status

    def as_json(self) -> dict[str, Any]:
        return {"error": {"code": self.code, "message": self.message_vi}}
