"""Getting a command's audio onto the device: downloaded once, kept only if its hash is the signed one."""

from __future__ import annotations

import hashlib
import logging
import random
import threading
import time
import urllib.request
from pathlib import Path
from typing import Any

DOWNLOAD_TIMEOUT_S = 20
RETRY_FIRST_S = 0.5
RETRY_MAX_S = 2.0
LAST_TRY_S = 0.2  # no try starts closer to the expiry than this: what it fetched could not play

log = logging.getLogger(__name__)


class HashMismatch(ValueError):
    """The whole file arrived and it is not the one the command names: downloading it again will not
    help. (A short file is a broken download, retried: see `fetch_audio`.)"""


class Incomplete(OSError):
    """Fewer (or more) bytes than the command's `size`: the connection broke, or the server died
    mid-answer. Retried like any network error."""


def file_sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def cached_path(audio: dict[str, Any], cache_dir: Path) -> Path:
    """Where an item's audio lives once fetched: named by its hash, so it is fetched once."""
    ext = audio.get("format") if audio.get("format") in ("mp3", "ogg", "opus", "wav") else "mp3"
    return cache_dir / f"{audio['sha256']}.{ext}"


def fetch_audio(audio: dict[str, Any], cache_dir: Path, tag: str = "") -> Path:
    """Download an item once into the cache, keeping it only if its SHA-256 is the one signed in the
    command. `tag` keeps the temporary names of processes sharing one cache apart."""
    sha = audio["sha256"]
    path = cached_path(audio, cache_dir)
    if path.exists() and file_sha256(path) == sha:
        return path
    cache_dir.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f"{path.name}.{tag}.part" if tag else f"{path.name}.part")
    try:
        with urllib.request.urlopen(audio["url"], timeout=DOWNLOAD_TIMEOUT_S) as resp, tmp.open("wb") as out:
            while chunk := resp.read(1 << 16):
                out.write(chunk)
        size = audio.get("size")
        if isinstance(size, int) and not isinstance(size, bool) and tmp.stat().st_size != size:
            raise Incomplete(f"got {tmp.stat().st_size} of {size} bytes")
        got = file_sha256(tmp)
        if got != sha:
            raise HashMismatch(f"hash_mismatch: expected {sha[:12]}, got {got[:12]}")
        tmp.replace(path)
    finally:
        tmp.unlink(missing_ok=True)
    return path


def retry_pause(attempt: int) -> float:
    """The pause after the attempt-th failed download (0 first): doubling from RETRY_FIRST_S up to
    RETRY_MAX_S, each drawn between half and all of that ("equal jitter"), so the speakers of a commune
    that all failed together (the server restarting) do not all come back in the same instant."""
    ceiling = min(RETRY_FIRST_S * 2 ** min(attempt, 8), RETRY_MAX_S)
    return ceiling / 2 + random.uniform(0, ceiling / 2)


def fetch_until(audio: dict[str, Any], cache_dir: Path, until: float, cancel: threading.Event) -> Path:
    """Keep trying while the command is still valid, to its expiry and not only to its start: a 4G link
    drops, the server restarts, a command arrives late; the item then starts late, whole (docs/
    protocol.md, "Timing and priorities"). A wrong hash is not retried; the file will not change. Raises
    the last error. The pause stays short (at most RETRY_MAX_S): after a daemon restart the audio is back
    within seconds, and every second of backing off is a second the item may start late."""
    attempt = 0
    while True:
        try:
            return fetch_audio(audio, cache_dir)
        except HashMismatch:
            raise
        except (OSError, ValueError) as exc:
            left = until - LAST_TRY_S - time.time()
            if left <= 0 or cancel.is_set():
                raise
            if attempt == 0:
                log.warning("download of %s failed (%s); retrying until it expires", audio.get("url"), exc)
            cancel.wait(min(retry_pause(attempt), left))  # the last try just before the expiry
            attempt += 1


def download_error(exc: Exception) -> str:
    """The reason a failed download is acked with."""
    return str(exc) if isinstance(exc, HashMismatch) else f"download_failed: {exc}"
