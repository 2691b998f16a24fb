"""The data folder of a running daemon: one daemon per folder, and where it listens for everyone else.

`runtime.json` tells the CLI, `loa simulate`, scripts and tests which ports this instance took (8080 and
1883 are often taken), and the next run prefers the same ones: devices already hold those URLs.

Everything in the folder is the daemon's alone (`keep_private`): the database, the audio, the signing
key, the broker's passwords and every provisioned device's config with its password.
"""

from __future__ import annotations

import fcntl
import json
import os
import stat
from pathlib import Path
from typing import TextIO
from urllib.parse import urlsplit

RUNTIME_FILE = "runtime.json"
# Folders made by earlier versions with the default umask, closed again at every start.
PRIVATE_DIRS = ("keys", "audio", "devices", "sim", "broker", "mosquitto")


def keep_private(data: Path) -> None:
    """Make the data folder and whatever the daemon writes from now on owner-only (0700 folders, 0600
    files). A umask, not a chmod per file: files are written in many places (the audio store, the keys,
    device configs, the simulated agents' state), and a mode forgotten in one of them would be the
    leak. Folders from before lose what others may do; their group keeps its rights, which is how a
    system Mosquitto reaches the files `loa broker config --owner` gave it (0750, its group)."""
    os.umask(0o077)
    data.mkdir(mode=0o700, parents=True, exist_ok=True)
    for folder in (data, *(data / name for name in PRIVATE_DIRS)):
        if folder.is_dir():
            folder.chmod(stat.S_IMODE(folder.stat().st_mode) & ~0o007)


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


def previous_ports(data: Path) -> tuple[int, int, int]:
    """The API, broker and audio ports of the last run: people's bookmarks and scripts carry the first,
    device configs the second, commands already sent the third."""
    try:
        info = json.loads((data / RUNTIME_FILE).read_text(encoding="utf-8"))
        api, broker, audio = (urlsplit(info.get(key) or "").port or 0 for key in ("api_url", "broker_url", "audio_url"))
        return api, broker, audio
    except (OSError, ValueError, AttributeError):
        return 0, 0, 0


def write_runtime(data: Path, api_url: str, broker_url: str, audio_url: str = "") -> None:
    """Where this instance listens: the API, the broker (its URL without the password) and the audio
    files devices fetch."""
    info = {"api_url": api_url, "broker_url": broker_url, "audio_url": audio_url, "pid": os.getpid()}
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
