"""Configuration, validated once at the edge.

One TOML file (see `config.example.toml`) plus `LOA_<SECTION>_<KEY>` environment overrides, so a
technician can keep secrets and per-machine values out of the file. Every section is a pydantic model
with `extra="forbid"`: a typo stops the daemon with the key's name instead of being silently ignored.
"""

from __future__ import annotations

import ipaddress
import os
import re
import socket
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from broadcaster.errors import LoaError


class ConfigError(LoaError):
    """A configuration problem, phrased for the person who wrote the file: it names the key and the
    environment variable that set it. A LoaError, so the CLI and the daemon report it like any other."""


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True)


class GeneralConfig(_Section):
    data_dir: Path = Field(Path("data"), description="Where the database, audio and broker state live.")
    audio_dir: str = Field(
        "",
        description="Where the audio store lives; empty means data_dir/audio. Several daemons ([cluster]) point "
        "it at one shared folder (NFS, CephFS) so any of them serves what another rendered.",
    )
    commune: str = Field("Xã mẫu", description="The commune's name, shown to people.")
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    log_format: Literal["text", "json"] = Field(
        "text", description="text: a line for a person; json: one JSON object a line for a log collector."
    )


class DatabaseConfig(_Section):
    url: str = Field("", description="SQLAlchemy URL; empty means a SQLite file in data_dir (loa.sqlite3).")
    upgrade_on_start: Literal["auto", "yes", "no"] = Field(
        "auto",
        description="Migrate the schema when the daemon starts; auto: yes for a single daemon, no in a cluster "
        "(run `loa db upgrade` once, then start the daemons). The CLI never migrates an existing database.",
    )

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


_HOST_NAME = re.compile(r"^(?:[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?)(?:\.[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?)*$")


def _comma_list(v: Any) -> Any:
    """A list from the environment comes as one string: `LOA_HTTP_ALLOWED_HOSTS=loa.xa.vn,192.168.1.10`."""
    return [s.strip() for s in v.split(",") if s.strip()] if isinstance(v, str) else v


def _http_url(v: str) -> str:
    if v and not (v.startswith(("http://", "https://")) and urlsplit(v).hostname):
        raise ValueError("must be an http:// or https:// URL with a host name")
    return v


class HttpConfig(_Section):
    """Two listeners: the API for people and their programs, and the audio files for devices, so the
    API need not face the speakers' network (the audio listener serves nothing else, read-only)."""

    host: str = Field("127.0.0.1", description="Address of the HTTP API.")
    port: int = Field(8080, ge=0, le=65535, description="Preferred port; a free one is used if taken.")
    public_url: str = Field(
        "", description="How people reach the API (https://... behind a TLS proxy); its host is allowed in Host."
    )
    allowed_hosts: list[str] = Field(
        default_factory=list,
        description="Host names the API answers to; empty: host, localhost, 127.0.0.1, ::1 and public_url's host.",
    )
    audio_host: str = Field("127.0.0.1", description="Address of the audio files devices download.")
    audio_port: int = Field(8081, ge=0, le=65535, description="Preferred port; a free one is used if taken.")
    audio_url: str = Field("", description="URL devices use to fetch audio; empty means http://audio_host:port.")
    max_body_kb: int = Field(256, ge=16, le=65536, description="Largest JSON request body the API reads.")
    max_upload_mb: int = Field(50, ge=1, le=2048, description="Largest recording an officer may upload.")

    @field_validator("public_url", "audio_url")
    @classmethod
    def _urls(cls, v: str) -> str:
        return _http_url(v)

    @field_validator("allowed_hosts", mode="before")
    @classmethod
    def _listed(cls, v: Any) -> Any:
        return _comma_list(v)

    @field_validator("allowed_hosts")
    @classmethod
    def _host_names(cls, v: list[str]) -> list[str]:
        """Names only (no port, no wildcard): a `*` would let any DNS name rebind to this server."""
        names = [h.strip().lower().strip("[]") for h in v]
        for h in names:
            if not (_HOST_NAME.match(h) or _is_ip(h)):
                raise ValueError(f"{h!r} is not a host name or an IP address (no port, no wildcard)")
        return names

    def api_hosts(self) -> frozenset[str]:
        """The names a request's Host may carry (DNS rebinding sends a foreign one)."""
        if self.allowed_hosts:
            return frozenset(self.allowed_hosts)
        names = {"localhost", "127.0.0.1", "::1"}
        if self.host not in ("0.0.0.0", "::", ""):
            names.add(self.host.lower())
        if self.public_url:
            names.add((urlsplit(self.public_url).hostname or "").lower())
        return frozenset(names - {""})

    @property
    def secure_cookies(self) -> bool:
        """People reach the API over TLS (a proxy in front of it): the session cookie is then `Secure`."""
        return self.public_url.startswith("https://")


def _is_ip(text: str) -> bool:
    try:
        ipaddress.ip_address(text)
    except ValueError:
        return False
    return True


FPT_KEY_ENV = "LOA_FPT_API_KEY"  # a secret, not a key of the file: read by services/audio.py, never stored


class SpeechConfig(_Section):
    engine: Literal[
        "auto", "espeak", "gtts", "gtts+espeak", "fpt", "fpt+espeak", "piper", "piper+espeak"
    ] = Field(
        "auto",
        description="auto: piper+espeak once the Piper voice `piper_voice` is installed (loa voice install), "
        "else espeak; espeak and piper work offline; gtts and fpt (FPT.AI, needs an API key) need the "
        "internet; a chain such as fpt+espeak falls back to espeak.",
    )
    voice: str = "vi"
    piper_voice: str = Field(
        "vi_VN-vais1000-medium",
        pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,99}$",
        description="The Piper voice (neural, offline) the piper engine speaks with; `loa voice install` fetches it.",
    )
    piper_deadline_s: float = Field(
        30.0, gt=0, le=300, description="How long one sentence may take in the Piper voice before espeak speaks it."
    )
    voices_dir: str = Field("", description="Where installed Piper voices live; empty: DATA_DIR/voices.")
    voices_base_url: str = Field(
        "https://huggingface.co/rhasspy/piper-voices/resolve/main",
        description="Where `loa voice install` fetches voices from (the Piper voices repository, or a mirror).",
    )
    gtts_tld: str = "com.vn"
    gtts_timeout_s: float = Field(5.0, gt=0, le=60)
    fpt_voice: Literal["banmai", "lannhi", "leminh", "myan", "thuminh", "giahuy", "linhsan"] = Field(
        "banmai", description="FPT.AI's voice: banmai, thuminh (female, north), leminh (male, north), myan "
        "(female, centre), giahuy (male, centre), lannhi, linhsan (female, south)."
    )
    fpt_speed: int = Field(0, ge=-3, le=3, description="FPT.AI's speed: -3 slowest, 0 normal, 3 fastest.")
    fpt_deadline_s: float = Field(
        20.0, gt=0, le=180,
        description="How long one sentence may take at FPT.AI (request and audio) before espeak speaks it.",
    )
    fpt_api_key_file: str = Field(
        "",
        description="A file (mode 0600) holding the FPT.AI key; empty: the key is in LOA_FPT_API_KEY. Never the key.",
    )
    loudness_lufs: float = Field(-16.0, ge=-40, le=-5)
    true_peak_dbtp: float = Field(-1.5, ge=-10, le=0)
    bitrate: str = "48k"
    chimes: bool = True
    speaking_rate: float = Field(1.0, ge=0.5, le=2.0)
    lexicon: dict[str, str] = Field(
        default_factory=dict, description="Local abbreviations and names: written form -> spoken form."
    )
    cache_max_mb: int = Field(2048, ge=16)

    @field_validator("voices_base_url")
    @classmethod
    def _voices_url(cls, v: str) -> str:
        if not v:
            raise ValueError("must be an http:// or https:// URL with a host name")
        return _http_url(v.rstrip("/"))


class DispatchConfig(_Section):
    lead_s: float = Field(30.0, ge=1, le=3600, description="How long before start_at commands go out.")
    emergency_lead_s: float = Field(3.0, ge=0.5, le=60)
    validity_s: float = Field(
        900.0,
        ge=10,
        description="How long after start_at an airing may still start (late) before it is missed.",
    )
    reconcile_s: float = Field(1.0, gt=0, le=60, description="How often the database is re-read for new work.")
    clock_warn_ms: float = Field(
        50.0,
        gt=0,
        le=3_600_000,
        description="A speaker whose clock is off the daemon's by more than this is warned about before an airing.",
    )


class ScheduleConfig(_Section):
    quiet_start: str = Field("21:30", pattern=r"^([01]\d|2[0-3]):[0-5]\d$", description="Quiet hours begin (local).")
    quiet_end: str = Field("05:00", pattern=r"^([01]\d|2[0-3]):[0-5]\d$", description="Quiet hours end (local).")
    emergency_repeats: int = Field(3, ge=1, le=10, description="How many times an emergency alert plays.")
    emergency_gap_s: float = Field(60.0, ge=0, le=3600, description="Silence between the repeats of an alert.")


Role = Literal["admin", "officer", "approver", "viewer"]


def _emergency_roles() -> list[Role]:
    return ["admin", "approver"]


class SecurityConfig(_Section):
    emergency_roles: list[Role] = Field(
        default_factory=_emergency_roles, min_length=1, description="Who may send an emergency."
    )
    emergency_confirm_s: float = Field(
        120.0, ge=10, le=900, description="How long the confirmation of an emergency stays valid."
    )
    session_hours: float = Field(12.0, gt=0, le=24 * 30, description="A sign-in lasts at most this long.")
    session_idle_minutes: float = Field(120.0, gt=0, le=24 * 60, description="...and ends after this long unused.")
    login_failures: int = Field(5, ge=1, le=100, description="Failed sign-ins (per name, per address) before a pause.")
    login_window_s: float = Field(300.0, ge=10, le=86400, description="The window those failures are counted in.")
    require_approval: bool = Field(
        True,
        description="Normal and priority items composed over the API wait for an approver's approval before "
        "they are planned (an emergency has its own second look; `loa announce` is the server's operator).",
    )

    @field_validator("emergency_roles", mode="before")
    @classmethod
    def _listed(cls, v: Any) -> Any:
        return _comma_list(v)


class LedConfig(_Section):
    """The LED boards between broadcasts: the commune's slogans (khẩu hiệu), in turn."""

    slogan_every_s: float = Field(
        30.0, ge=0, le=3600, description="Each slogan is shown this long, then the next; 0 turns the rotation off."
    )
    slogan_max_chars: int = Field(200, ge=10, le=2000, description="The longest slogan a board can show.")

    @field_validator("slogan_every_s")
    @classmethod
    def _off_or_a_few_seconds(cls, v: float) -> float:
        if 0 < v < 1:
            raise ValueError("must be 0 (off) or at least 1 second")
        return v


class LiveConfig(_Section):
    """The officer's voice, live from the browser (docs/api.md, *Going live*)."""

    lead_s: float = Field(
        1.0, ge=0.2, le=10, description="How far ahead of now speakers are told to open a live stream."
    )
    idle_s: float = Field(
        10.0, ge=2, le=300, description="A live session the browser sent nothing to for this long ends by itself."
    )
    max_s: float = Field(1800.0, ge=30, le=3600, description="The longest a live session may last.")
    bitrate: str = Field("64k", pattern=r"^(32|48|64|96|128)k$", description="MP3 bitrate of the live stream.")


class VillagersConfig(_Section):
    """The villagers' side, on the audio listener (docs/villagers.md): listening again to what aired, and
    the feedback forms behind the QR codes on speakers and in villages."""

    public_url: str = Field(
        "",
        description="How villagers' phones reach the public pages (printed in the QR codes); "
        "empty: [http] audio_url, else http://audio_host:audio_port.",
    )
    listen_days: int = Field(30, ge=1, le=366, description="How far back the public pages and podcasts go.")
    feedback_retention_days: int = Field(
        180, ge=1, le=3650, description="Feedback (and any phone number in it) is deleted after this many days."
    )
    feedback_per_address: int = Field(
        5, ge=1, le=1000, description="Feedback forms one address may send per hour (counted in memory)."
    )
    feedback_per_qr: int = Field(
        60, ge=1, le=10000, description="Feedback forms one QR code may bring per hour (counted in memory)."
    )

    @field_validator("public_url")
    @classmethod
    def _url(cls, v: str) -> str:
        return _http_url(v)


CapSeverity = Literal["Extreme", "Severe", "Moderate", "Minor", "Unknown"]
CapUrgency = Literal["Immediate", "Expected", "Future", "Past", "Unknown"]
CapCertainty = Literal["Observed", "Likely", "Possible", "Unlikely", "Unknown"]
_SOURCE_NAME = re.compile(r"^[a-z0-9][a-z0-9_-]{0,39}$")


class AlertSourceConfig(_Section):
    """One official source of alerts (docs/api.md, *Official alerts*)."""

    kind: Literal["cap-url", "cap-post", "tt39"] = Field(
        description="cap-url: a CAP 1.2 document polled at `url`; cap-post: CAP 1.2 posted to "
        "/api/v1/alerts/cap; tt39: bulletins of Thông tư 39/2020 posted to /api/v1/bulletins/tt39."
    )
    url: str = Field("", description="cap-url: where the CAP document is fetched (http:// or https://).")
    require_signature: bool = Field(
        False, description="Refuse a CAP document without a valid enveloped XML signature by `certificate`."
    )
    certificate: Path | None = Field(None, description="PEM X.509 certificate the source signs with.")
    poll_every_s: float = Field(60.0, ge=5, le=86400, description="cap-url: how often it is fetched.")

    @field_validator("url")
    @classmethod
    def _url(cls, v: str) -> str:
        return _http_url(v)


class AlertArea(_Section):
    """Which zone an alert's `area` means: by its name (`areaDesc`, case and spacing aside) or a geocode."""

    zone: str = Field(description="A zone id (a village, a group, or `all`).")
    names: list[str] = Field(default_factory=list, description="areaDesc values that mean this zone.")
    geocodes: list[str] = Field(default_factory=list, description="`valueName=value` (or a bare value) geocodes.")


class AlertRule(_Section):
    """A line of the severity/urgency/certainty table; an empty list matches any value."""

    severity: list[CapSeverity] = Field(default_factory=list)
    urgency: list[CapUrgency] = Field(default_factory=list)
    certainty: list[CapCertainty] = Field(default_factory=list)
    priority: Literal["normal", "priority", "emergency"]
    action: Literal["air", "draft"] = Field(description="air: planned at once; draft: waits for an approver.")

    @field_validator("action")
    @classmethod
    def _no_emergency_draft(cls, v: str, info: Any) -> str:
        if info.data.get("priority") == "emergency" and v != "air":
            raise ValueError("an emergency is aired, never drafted (use priority = 'priority' for a draft)")
        return v


def _alert_rules() -> list[AlertRule]:
    """Extreme (immediate or expected) and Severe+Immediate air at once as an emergency, unless the event is
    unlikely; the rest of Severe and Extreme waits as a priority item, everything else as a normal one."""
    likely: list[CapCertainty] = ["Observed", "Likely", "Possible", "Unknown"]
    return [
        AlertRule(severity=["Extreme"], urgency=["Immediate", "Expected"], certainty=likely, priority="emergency",
                  action="air"),
        AlertRule(severity=["Severe"], urgency=["Immediate"], certainty=likely, priority="emergency", action="air"),
        AlertRule(severity=["Extreme", "Severe"], priority="priority", action="draft"),
        AlertRule(priority="normal", action="draft"),
    ]


class AlertsConfig(_Section):
    """Official alerts: CAP 1.2 and the provincial bulletins of Thông tư 39/2020 (services/alerts.py)."""

    sources: dict[str, AlertSourceConfig] = Field(default_factory=dict, description="By name (a-z, 0-9, - and _).")
    areas: list[AlertArea] = Field(default_factory=list, description="Area names and geocodes to zones.")
    rules: list[AlertRule] = Field(
        default_factory=_alert_rules, description="severity/urgency/certainty to priority; the first match wins."
    )
    auto_air: bool = Field(
        True, description="Air what the rules make an emergency at once; false: it waits as a priority item."
    )
    tt39_priority: Literal["draft", "air"] = Field(
        "draft", description="A TT39 bulletin of level `priority`: waits for an approver, or is planned at once."
    )
    max_kb: int = Field(256, ge=4, le=4096, description="The largest alert document read (posted or fetched).")
    fetch_timeout_s: float = Field(10.0, gt=0, le=120, description="cap-url: the most one fetch may take.")

    @field_validator("sources")
    @classmethod
    def _names(cls, v: dict[str, AlertSourceConfig]) -> dict[str, AlertSourceConfig]:
        for name, source in v.items():
            if not _SOURCE_NAME.match(name):
                raise ValueError(f"{name!r}: a source name is a-z, 0-9, - and _ (at most 40)")
            if source.kind == "cap-url" and not source.url:
                raise ValueError(f"{name}: a cap-url source needs a url")
            if source.require_signature and source.certificate is None:
                raise ValueError(f"{name}: require_signature needs a certificate")
            if source.require_signature and source.kind == "tt39":
                raise ValueError(f"{name}: a tt39 bulletin is JSON and carries no XML signature")
        return v


class ClusterConfig(_Section):
    """Several daemons on one PostgreSQL database and one external broker (docs/deployment.md): one leads
    (plans, fires, runs the chores), every one serves the API and records what devices report."""

    enabled: bool = Field(False, description="This daemon is one of several on the same PostgreSQL database.")
    instance: str = Field(
        "",
        max_length=40,
        pattern=r"^[A-Za-z0-9_.-]*$",
        description="This daemon's name, unique in the cluster (part of its MQTT client id); empty: the host name.",
    )
    poll_s: float = Field(
        2.0, gt=0, le=10, description="How often a follower tries to take the lead and the leader checks its lock."
    )
    lock_timeout_s: int = Field(
        15,
        ge=5,
        le=120,
        description="PostgreSQL ends a lock session silent this long (a paused leader, a cut cable), freeing the lead.",
    )


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
    security: SecurityConfig = SecurityConfig()
    led: LedConfig = LedConfig()
    simulation: SimulationConfig = SimulationConfig()
    live: LiveConfig = LiveConfig()
    alerts: AlertsConfig = AlertsConfig()
    villagers: VillagersConfig = VillagersConfig()
    cluster: ClusterConfig = ClusterConfig()

    @property
    def audio_dir(self) -> Path:
        """The audio store's folder: `[general] audio_dir`, else data_dir/audio."""
        return Path(self.general.audio_dir) if self.general.audio_dir else self.general.data_dir / "audio"

    @property
    def instance(self) -> str:
        """This daemon's name in a cluster: `[cluster] instance`, else the host name."""
        return self.cluster.instance or socket.gethostname().split(".")[0][:40]

    @property
    def upgrade_on_start(self) -> bool:
        """A single daemon migrates at start, as it always did; in a cluster that is one deliberate step
        (`loa db upgrade`), never a race between daemons starting together."""
        if self.database.upgrade_on_start == "auto":
            return not self.cluster.enabled
        return self.database.upgrade_on_start == "yes"

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
        not_keys = ("LOA_CONFIG", "LOA_LANG", "LOA_LIVE_TESTS", "LOA_TEST_POSTGRES_URL", FPT_KEY_ENV)
        if not name.startswith("LOA_") or name in not_keys:
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
