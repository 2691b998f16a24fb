"""The data folder of a running daemon: one daemon per folder, and where it listens for everyone else.

`runtime.json` tells the CLI, `loa simulate`, scripts and tests which ports this instance took (8080 and
1883 are often taken), and the next run prefers the same ones: devices already hold those URLs.
"""

from __future__ import annotations

import fcntl
import json
import os
from pathlib import Path
from typing import TextIO
from urllib.parse import urlsplit

RUNTIME_FILE = "runtime.json"


class DataDirLock:
    """An exclusive lock on the data folder: two daemons on one folder would fight over the broker
    session and the devices."""

    def __init__(self, data: Path) -> None:
        self.data = data
        self._file: TextIO | None = None

    def acquire(self) -> None:
        self.data.mkdir(parents=True, exist_ok=True)
        self._file = (self.data / "daemon.lock").open("a+")
        try:
            fcntl.flock(self._file, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            self._file.seek(0)
            other = self._file.read().strip() or "?"
            self._file.close()
            self._file = None
            raise RuntimeError(
                f"một daemon loa khác đang chạy với thư mục dữ liệu {self.data} (pid {other}) / "
                "another daemon already uses this data folder"
            ) from None
        self._file.seek(0)
        self._file.truncate()
        self._file.write(str(os.getpid()))
        self._file.flush()

    def release(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None


def previous_ports(data: Path) -> tuple[int, int]:
    """The API and broker ports of the last run: commands and device configs already carry them."""
    try:
        info = json.loads((data / RUNTIME_FILE).read_text(encoding="utf-8"))
        return urlsplit(info["api_url"]).port or 0, urlsplit(info["broker_url"]).port or 0
    except (OSError, ValueError, KeyError):
        return 0, 0


def write_runtime(data: Path, api_url: str, broker_url: str) -> None:
    """Where this instance listens (the broker URL without its password)."""
    info = {"api_url": api_url, "broker_url": broker_url, "pid": os.getpid()}
    tmp = data / f"{RUNTIME_FILE}.tmp"
    tmp.write_text(json.dumps(info), encoding="utf-8")
    tmp.replace(data / RUNTIME_FILE)


def running_broker_url(data: Path) -> str | None:
    """The broker the running daemon wrote down, if any."""
    try:
        url = json.loads((data / RUNTIME_FILE).read_text(encoding="utf-8")).get("broker_url")
    except (OSError, ValueError):
        return None
    return url if isinstance(url, str) and url else None
