"""Piper voices on this server: which are pinned, which are installed, and installing one.

A voice is fetched once (`loa voice install NAME`, or the desk's /voices page), then used offline, as
Home Assistant installs Piper voices. Only voices pinned in the repository (audio/data/voices.json) are
installed: a model is accepted only with its pinned size and SHA-256, and a config only when it is under
its size cap (and its hash, where one is pinned) and reads as a Piper config. Both files are streamed to
temporary files in the voices folder (so os.replace is a rename on one file system), checked, synced,
then renamed into place; a wrong hash, a truncated or oversized file, an HTTP error, a server that does
not answer in time or no network at all is refused with its own reason, and every temporary file is
removed, so the folder never holds half a voice. Every attempt is in the audit log under its person.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import threading
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from importlib import resources
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import requests
from urllib3.exceptions import ReadTimeoutError

from audio.piper import PiperConfig, VoiceConfigError
from broadcaster.config import Config
from broadcaster.db import audit
from broadcaster.errors import LoaError
from broadcaster.services import Services
from broadcaster.services.accounts import Principal, require

CHUNK = 64 * 1024
Progress = Callable[[int, int], None]  # (bytes so far, bytes expected)


@dataclass(frozen=True)
class FilePin:
    """One file of a voice: where it is under the base URL, and what it must be."""

    path: str
    size: int | None = None  # exact size, when pinned
    sha256: str | None = None
    max_size: int | None = None  # a cap, for a file whose size is not pinned

    @property
    def limit(self) -> int:
        return self.size if self.size is not None else (self.max_size or 1024 * 1024)


@dataclass(frozen=True)
class VoicePin:
    name: str
    model: FilePin
    config: FilePin
    language: str = ""
    description: str = ""
    licence: str = ""


def _file_pin(raw: Mapping[str, Any]) -> FilePin:
    return FilePin(str(raw["path"]), raw.get("size"), raw.get("sha256"), raw.get("max_size"))


def load_pins(source: Path | None = None) -> dict[str, VoicePin]:
    """The voices pinned in the repository (or in `source`, a file of the same shape)."""
    if source is None:
        text = resources.files("audio").joinpath("data/voices.json").read_text(encoding="utf-8")
    else:
        text = source.read_text(encoding="utf-8")
    voices = json.loads(text)["voices"]
    return {
        name: VoicePin(
            name,
            _file_pin(v["model"]),
            _file_pin(v["config"]),
            v.get("language", ""),
            v.get("description", ""),
            v.get("licence", ""),
        )
        for name, v in voices.items()
    }


def voices_dir(config: Config) -> Path:
    configured = config.speech.voices_dir
    return Path(configured).expanduser() if configured else Path(config.general.data_dir) / "voices"


def model_path(config: Config, name: str) -> Path:
    return voices_dir(config) / f"{name}.onnx"


def _config_path(config: Config, name: str) -> Path:
    return voices_dir(config) / f"{name}.onnx.json"


def voice_installed(config: Config, name: str, pins: Mapping[str, VoicePin] | None = None) -> bool:
    """Both files are there, the model has its pinned size (the hash was checked when it was installed;
    reading 63 MB at every start would cost more than it guards) and the config reads as a Piper one."""
    model, conf = model_path(config, name), _config_path(config, name)
    try:
        size = model.stat().st_size
    except OSError:
        return False
    pin = (load_pins() if pins is None else pins).get(name)
    if pin is not None and pin.model.size is not None and size != pin.model.size:
        return False
    try:
        PiperConfig.read(conf)
    except VoiceConfigError:
        return False
    return size > 0


def list_voices(config: Config, pins: Mapping[str, VoicePin] | None = None) -> list[dict[str, Any]]:
    """Every pinned voice and every voice found in the folder: installed or not, its size, whether it
    is the one `[speech] piper_voice` names."""
    pins = load_pins() if pins is None else pins
    folder = voices_dir(config)
    names = set(pins)
    if folder.is_dir():
        names |= {p.name.removesuffix(".onnx") for p in folder.glob("*.onnx") if not p.name.startswith(".")}
    out = []
    for name in sorted(names):
        model = model_path(config, name)
        pin = pins.get(name)
        installed = voice_installed(config, name, pins)
        rate = None
        if installed:
            with contextlib.suppress(VoiceConfigError):
                rate = PiperConfig.read(_config_path(config, name)).sample_rate
        out.append({
            "name": name,
            "installed": installed,
            "size": model.stat().st_size if model.is_file() else 0,
            "sample_rate": rate,
            "default": name == config.speech.piper_voice,
            "pinned": pin is not None,
            "expected_size": pin.model.size if pin else None,
            "description": pin.description if pin else "",
            "licence": pin.licence if pin else "",
        })  # fmt: skip
    return out


# ------------------------------------------------------------------------------------------ download


def _fetch(
    url: str,
    dest: Path,
    pin: FilePin,
    name: str,
    *,
    timeout: tuple[float, float],
    deadline: float,
    progress: Progress | None,
) -> str:
    """Stream `url` into `dest`, checking size and hash on the way; its SHA-256. Raises LoaError on any
    fault (the caller removes `dest`)."""
    label = pin.path.rsplit("/", 1)[-1]
    try:
        with requests.get(url, stream=True, timeout=timeout, headers={"Accept-Encoding": "identity"}) as rsp:
            if rsp.status_code != 200:
                raise LoaError(
                    "voice_download_http", {"name": name, "file": label, "status_code": rsp.status_code}, status=502
                )
            declared = rsp.headers.get("Content-Length", "")
            if declared.isdigit() and int(declared) > pin.limit:
                raise LoaError(
                    "voice_download_size",
                    {"name": name, "file": label, "got": int(declared), "expected": pin.limit},
                    status=502,
                )
            digest = hashlib.sha256()
            got = 0
            with dest.open("wb") as fh:
                for chunk in rsp.iter_content(CHUNK):
                    if time.monotonic() > deadline:
                        raise LoaError(
                            "voice_download_timeout", {"name": name, "seconds": round(timeout[1])}, status=502
                        )
                    got += len(chunk)
                    if got > pin.limit:
                        raise LoaError(
                            "voice_download_size",
                            {"name": name, "file": label, "got": got, "expected": pin.limit},
                            status=502,
                        )
                    digest.update(chunk)
                    fh.write(chunk)
                    if progress:
                        progress(got, pin.limit)
                fh.flush()
                os.fsync(fh.fileno())
    except requests.Timeout as exc:
        raise LoaError("voice_download_timeout", {"name": name, "seconds": round(timeout[1])}, status=502) from exc
    except requests.exceptions.ChunkedEncodingError as exc:  # the body ended before its Content-Length
        got = dest.stat().st_size if dest.exists() else 0
        raise LoaError(
            "voice_download_truncated", {"name": name, "file": label, "got": got, "expected": pin.limit}, status=502
        ) from exc
    except requests.ConnectionError as exc:
        if exc.args and isinstance(exc.args[0], ReadTimeoutError):  # requests' name for a stalled body
            raise LoaError("voice_download_timeout", {"name": name, "seconds": round(timeout[1])}, status=502) from exc
        raise LoaError(
            "voice_download_unreachable", {"name": name, "host": urlsplit(url).hostname or url}, status=502
        ) from exc
    except requests.RequestException as exc:
        raise LoaError(
            "voice_download_unreachable", {"name": name, "host": urlsplit(url).hostname or url}, status=502
        ) from exc
    except OSError as exc:
        raise LoaError("voice_disk", {"name": name, "error": exc.strerror or type(exc).__name__}, status=500) from exc
    if pin.size is not None and got != pin.size:
        if got < pin.size:
            raise LoaError(
                "voice_download_truncated", {"name": name, "file": label, "got": got, "expected": pin.size}, status=502
            )
        raise LoaError(
            "voice_download_size", {"name": name, "file": label, "got": got, "expected": pin.size}, status=502
        )
    if pin.sha256 and digest.hexdigest() != pin.sha256.lower():
        raise LoaError("voice_download_hash", {"name": name, "file": label}, status=502)
    return digest.hexdigest()


def download_voice(config: Config, name: str, *, base_url: str | None = None,
                   pins: Mapping[str, VoicePin] | None = None, connect_timeout: float = 10.0,
                   read_timeout: float = 30.0, deadline_s: float = 3600.0,
                   progress: Progress | None = None) -> dict[str, Any]:  # fmt: skip
    """Fetch, check and install the pinned voice `name` (no audit: `install_voice` is the action)."""
    pins = load_pins() if pins is None else pins
    pin = pins.get(name)
    if pin is None:
        raise LoaError("voice_not_pinned", {"name": name[:100], "known": ", ".join(sorted(pins))}, status=404)
    base = (base_url or config.speech.voices_base_url).rstrip("/")
    if urlsplit(base).scheme not in ("http", "https") or not urlsplit(base).hostname:
        raise LoaError("voice_bad_url", {"url": base[:200]})
    folder = voices_dir(config)
    try:
        folder.mkdir(mode=0o755, parents=True, exist_ok=True)
    except OSError as exc:
        raise LoaError("voice_disk", {"name": name, "error": exc.strerror or type(exc).__name__}, status=500) from exc
    stamp = uuid.uuid4().hex
    tmp_config = folder / f".{name}.onnx.json.{stamp}.part"
    tmp_model = folder / f".{name}.onnx.{stamp}.part"
    deadline = time.monotonic() + deadline_s
    timeout = (connect_timeout, read_timeout)
    try:
        _fetch(f"{base}/{pin.config.path}", tmp_config, pin.config, name, timeout=timeout, deadline=deadline,
               progress=None)  # fmt: skip
        try:
            voice_config = PiperConfig.from_json(json.loads(tmp_config.read_text(encoding="utf-8")))
        except (ValueError, UnicodeDecodeError) as exc:  # VoiceConfigError and JSONDecodeError are ValueErrors
            raise LoaError("voice_bad_config", {"name": name, "reason": str(exc)[:200]}, status=502) from exc
        sha = _fetch(f"{base}/{pin.model.path}", tmp_model, pin.model, name, timeout=timeout, deadline=deadline,
                     progress=progress)  # fmt: skip
        os.chmod(tmp_model, 0o644)
        os.chmod(tmp_config, 0o644)
        os.replace(tmp_config, _config_path(config, name))
        os.replace(tmp_model, model_path(config, name))
        with contextlib.suppress(OSError):  # the renames themselves survive a power cut
            dir_fd = os.open(folder, os.O_RDONLY)
            try:
                os.fsync(dir_fd)
            finally:
                os.close(dir_fd)
    except OSError as exc:
        raise LoaError("voice_disk", {"name": name, "error": exc.strerror or type(exc).__name__}, status=500) from exc
    finally:
        for tmp in (tmp_config, tmp_model):
            with contextlib.suppress(FileNotFoundError):
                tmp.unlink()
    return {"name": name, "size": model_path(config, name).stat().st_size, "sha256": sha,
            "sample_rate": voice_config.sample_rate, "path": str(model_path(config, name))}  # fmt: skip


def install_voice(svc: Services, name: str, *, actor: str, by: Principal | None = None,
                  base_url: str | None = None, pins: Mapping[str, VoicePin] | None = None,
                  progress: Progress | None = None, **timeouts: float) -> dict[str, Any]:  # fmt: skip
    """An admin installs a voice: `download_voice`, audited whether it succeeds or is refused."""
    require(by, "admin")
    source = (base_url or svc.config.speech.voices_base_url).rstrip("/")
    try:
        done = download_voice(svc.config, name, base_url=base_url, pins=pins, progress=progress, **timeouts)
    except LoaError as exc:
        with svc.db.session() as session:
            audit(session, svc.clock.now(), actor, "voice.install_failed", voice=name[:100], source=source,
                  code=exc.code, params=dict(exc.params))  # fmt: skip
        raise
    with svc.db.session() as session:
        audit(session, svc.clock.now(), actor, "voice.install", voice=name, source=source, size=done["size"],
              sha256=done["sha256"])  # fmt: skip
    return done


# ------------------------------------------------------------------------------------------ the desk's


@dataclass
class InstallJob:
    """An install the desk started in the background; the page reads it until it is over."""

    name: str
    actor: str
    started_at: datetime
    got: int = 0
    total: int = 0
    state: str = "running"  # running | done | failed
    error: LoaError | None = None
    result: dict[str, Any] = field(default_factory=dict)

    @property
    def percent(self) -> int:
        return int(100 * self.got / self.total) if self.total else 0


_JOBS: dict[tuple[str, str], InstallJob] = {}
_JOBS_LOCK = threading.Lock()


def install_job(svc: Services, name: str) -> InstallJob | None:
    with _JOBS_LOCK:
        return _JOBS.get((str(voices_dir(svc.config)), name))


def start_install(svc: Services, name: str, *, actor: str, by: Principal | None = None,
                  base_url: str | None = None, pins: Mapping[str, VoicePin] | None = None,
                  **timeouts: float) -> InstallJob:  # fmt: skip
    """Install in a thread of its own (a 63 MB download outlasts any page request); one at a time per
    voice. Refusals known at once (not an admin, not a pinned voice) are raised here."""
    require(by, "admin")
    known = load_pins() if pins is None else pins
    if name not in known:
        raise LoaError("voice_not_pinned", {"name": name[:100], "known": ", ".join(sorted(known))}, status=404)
    key = (str(voices_dir(svc.config)), name)
    with _JOBS_LOCK:
        running = _JOBS.get(key)
        if running is not None and running.state == "running":
            raise LoaError("voice_install_busy", {"name": name}, status=409)
        job = InstallJob(name, actor, svc.clock.now())
        _JOBS[key] = job

    def progress(got: int, total: int) -> None:
        job.got, job.total = got, total

    def run() -> None:
        try:
            job.result = install_voice(svc, name, actor=actor, by=by, base_url=base_url, pins=known,
                                       progress=progress, **timeouts)  # fmt: skip
            job.state = "done"
        except LoaError as exc:
            job.error, job.state = exc, "failed"
        except Exception as exc:  # a bug: said on the page rather than lost in a thread
            job.error = LoaError("voice_disk", {"name": name, "error": type(exc).__name__}, status=500)
            job.state = "failed"

    threading.Thread(target=run, name=f"voice-install-{name}", daemon=True).start()
    return job
