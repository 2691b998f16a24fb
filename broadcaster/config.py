"""Configuration, validated once at the edge.

One TOML file (see `config.example.toml`) plus `LOA_<SECTION>_<KEY>` environment overrides, so a
technician can keep secrets and per-machine values out of the file. Every section is a pydantic model
with `extra="forbid"`: a typo stops the daemon with the key's name instead of being silently ignored.
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from broadcaster.errors import LoaError


class ConfigError(LoaError):
    """A configuration problem, phrased for the person who wrote the file: it names the key and the
    environment variable that set it. A LoaError, so the CLI and the daemon report it like any other."""


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True)


class GeneralConfig(_Section):
    data_dir: Path = Field(Path("data"), description="Where the database, audio and broker state live.")
    commune: str = Field("Xã mẫu", description="The commune's name, shown to people.")
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"


class DatabaseConfig(_Section):
    url: str = Field("", description="SQLAlchemy URL; empty means a SQLite file in data_dir (loa.sqlite3).")

    @field_validator("url")
    @classmethod
    def _known_backend(cls, v: str) -> str:
        if v and not v.startswith(("sqlite", "postgresql")):
            raise ValueError("only sqlite:/// and postgresql:// URLs are supported")
        return v


class BrokerConfig(_Section):
    url: str = Field(
        "", description="mqtt://user:pass@host:port of an existing broker; empty means a managed Mosquitto."
    )
    host: str = Field("127.0.0.1", description="Address the managed Mosquitto listens on.")
    port: int = Field(1883, ge=0, le=65535, description="Preferred port; a free one is used if taken.")
    mosquitto: str = Field("mosquitto", description="The mosquitto binary.")
    topic_prefix: str = Field("pa/v2", description="Root of every topic; the protocol version is part of it.")
    password: str = Field("", description="The daemon's broker password (for an external broker).")

    @field_validator("url")
    @classmethod
    def _mqtt_scheme(cls, v: str) -> str:
        if v and not v.startswith(("mqtt://", "mqtts://")):
            raise ValueError("must start with mqtt:// or mqtts://")
        return v


class HttpConfig(_Section):
    host: str = Field("127.0.0.1", description="Address of the HTTP API and the audio files.")
    port: int = Field(8080, ge=0, le=65535, description="Preferred port; a free one is used if taken.")
    public_url: str = Field("", description="URL devices use to fetch audio; empty means http://host:port as bound.")


class SpeechConfig(_Section):
    engine: Literal["espeak", "gtts", "gtts+espeak"] = Field(
        "espeak", description="espeak works offline; gtts needs the internet and falls back to espeak."
    )
    voice: str = "vi"
    gtts_tld: str = "com.vn"
    gtts_timeout_s: float = Field(5.0, gt=0, le=60)
    loudness_lufs: float = Field(-16.0, ge=-40, le=-5)
    true_peak_dbtp: float = Field(-1.5, ge=-10, le=0)
    bitrate: str = "48k"
    chimes: bool = True
    speaking_rate: float = Field(1.0, ge=0.5, le=2.0)
    lexicon: dict[str, str] = Field(
        default_factory=dict, description="Local abbreviations and names: written form -> spoken form."
    )
    cache_max_mb: int = Field(2048, ge=16)


class DispatchConfig(_Section):
    lead_s: float = Field(30.0, ge=1, le=3600, description="How long before start_at commands go out.")
    emergency_lead_s: float = Field(3.0, ge=0.5, le=60)
    validity_s: float = Field(
        900.0,
        ge=10,
        description="How long after start_at an airing may still start (late) before it is missed.",
    )
    reconcile_s: float = Field(1.0, gt=0, le=60, description="How often the database is re-read for new work.")


class ScheduleConfig(_Section):
    quiet_start: str = Field("21:30", pattern=r"^([01]\d|2[0-3]):[0-5]\d$", description="Quiet hours begin (local).")
    quiet_end: str = Field("05:00", pattern=r"^([01]\d|2[0-3]):[0-5]\d$", description="Quiet hours end (local).")
    emergency_repeats: int = Field(3, ge=1, le=10, description="How many times an emergency alert plays.")
    emergency_gap_s: float = Field(60.0, ge=0, le=3600, description="Silence between the repeats of an alert.")


class SimulationConfig(_Section):
    villages: int = Field(2, ge=0, le=50, description="Simulated villages; 0 disables the simulation.")
    sink: Literal["auto", "file", "null", "ffplay", "aplay"] = Field(
        "auto", description="How simulated speakers play: auto = ffplay if a sound card exists, else file."
    )


class Config(_Section):
    general: GeneralConfig = GeneralConfig()
    database: DatabaseConfig = DatabaseConfig()
    broker: BrokerConfig = BrokerConfig()
    http: HttpConfig = HttpConfig()
    speech: SpeechConfig = SpeechConfig()
    dispatch: DispatchConfig = DispatchConfig()
    schedule: ScheduleConfig = ScheduleConfig()
    simulation: SimulationConfig = SimulationConfig()

    @property
    def database_url(self) -> str:
        if self.database.url:
            return self.database.url
        return f"sqlite:///{(self.general.data_dir / 'loa.sqlite3').resolve()}"


_SECTIONS = tuple(Config.model_fields)


def _env_overrides(environ: Mapping[str, str]) -> dict[str, dict[str, Any]]:
    """`LOA_BROKER_URL=...` becomes {"broker": {"url": ...}}; unknown names are errors, not ignored."""
    out: dict[str, dict[str, Any]] = {}
    for name, value in environ.items():
        if not name.startswith("LOA_") or name in ("LOA_CONFIG", "LOA_LANG", "LOA_LIVE_TESTS", "LOA_TEST_POSTGRES_URL"):
            continue
        rest = name[4:].lower()
        section = next((s for s in _SECTIONS if rest.startswith(s + "_")), None)
        if section is None:
            raise ConfigError("config_unknown_section", {"name": name, "known": ", ".join(_SECTIONS)})
        key = rest[len(section) + 1 :]
        out.setdefault(section, {})[key] = value
    return out


def _merge(base: dict[str, Any], extra: Mapping[str, Mapping[str, Any]]) -> dict[str, Any]:
    merged = {k: dict(v) if isinstance(v, dict) else v for k, v in base.items()}
    for section, values in extra.items():
        target = merged.setdefault(section, {})
        if not isinstance(target, dict):
            raise ConfigError("config_not_table", {"section": section})
        target.update(values)
    return merged


def _problems(err: ValidationError) -> str:
    """One line per problem: the key, the variable that would set it, and what is allowed."""
    lines = []
    for e in err.errors():
        key = ".".join(str(p) for p in e["loc"])
        env = "LOA_" + "_".join(str(p) for p in e["loc"]).upper()
        allowed = ""
        ctx = e.get("ctx") or {}
        if "expected" in ctx:
            allowed = f" (allowed: {ctx['expected']})"
        lines.append(f"  {key} [{env}]: {e['msg']}{allowed}")
    return "\n".join(lines)


def load_config(path: Path | None = None, environ: Mapping[str, str] | None = None) -> Config:
    """Read the TOML file (if any), apply LOA_* overrides, validate everything at once."""
    environ = os.environ if environ is None else environ
    if path is None and environ.get("LOA_CONFIG"):
        path = Path(environ["LOA_CONFIG"])
    raw: dict[str, Any] = {}
    origin = "defaults"
    if path is not None:
        origin = str(path)
        try:
            raw = tomllib.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError as exc:
            raise ConfigError("config_not_found", {"path": str(path)}) from exc
        except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
            raise ConfigError("config_unreadable", {"path": str(path), "error": str(exc)}) from exc
    merged = _merge(raw, _env_overrides(environ))
    try:
        return Config.model_validate(merged)
    except ValidationError as exc:
        raise ConfigError("config_invalid", {"origin": origin, "problems": _problems(exc)}) from exc
