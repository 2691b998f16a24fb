"""The device configuration file: everything a field device needs, written once by `loa device add`.

docs/protocol.md ("The device configuration file") gives its JSON schema; `load` checks a file
against the same rules, so a technician's typo stops the agent with the field's name.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

from broadcaster.protocol import DEFAULT_PREFIX

SINKS = ("auto", "file", "null", "ffplay", "aplay")
# What `loa device add` wrote before #15 into every config: one relative folder, so the agents of two
# configs kept side by side, started from one folder, shared their memory of ids and their audio.
SHARED_STATE_DIR = "agent-state"
KINDS = ("speaker", "led")


class AgentConfigError(ValueError):
    """A configuration file the agent cannot run with; the message names the field."""


@dataclass
class AgentConfig:
    device_id: str
    kind: str  # "speaker" | "led"
    broker_url: str
    public_keys: dict[str, str]  # key id -> base64 Ed25519 public key
    topic_prefix: str = DEFAULT_PREFIX
    username: str | None = None
    password: str | None = None
    state_dir: str = "agent-state"
    sink: str = "file"
    diacritics: bool = True
    groups: list[str] = field(default_factory=list)
    ca_file: str | None = None  # the commune's CA, for mqtts:// brokers with a generated certificate
    tele_s: float = 60.0  # how often telemetry goes out; 0 turns it off

    def __post_init__(self) -> None:
        self._check()

    def _check(self) -> None:
        def bad(name: str, why: str) -> AgentConfigError:
            return AgentConfigError(f"device config: {name}: {why}")

        for name in ("device_id", "kind", "broker_url", "topic_prefix", "state_dir", "sink"):
            if not isinstance(getattr(self, name), str) or not getattr(self, name):
                raise bad(name, "a non-empty string is required")
        if self.kind not in KINDS:
            raise bad("kind", f"must be one of {', '.join(KINDS)}")
        if self.sink not in SINKS:
            raise bad("sink", f"must be one of {', '.join(SINKS)}")
        if not self.broker_url.startswith(("mqtt://", "mqtts://")):
            raise bad("broker_url", "must start with mqtt:// or mqtts://")
        if not isinstance(self.public_keys, dict) or not self.public_keys:
            raise bad("public_keys", "at least one {key id: base64 public key} is required")
        if not all(isinstance(k, str) and isinstance(v, str) for k, v in self.public_keys.items()):
            raise bad("public_keys", "key ids and keys are strings")
        for name in ("username", "password", "ca_file"):
            if getattr(self, name) is not None and not isinstance(getattr(self, name), str):
                raise bad(name, "a string or null")
        if not isinstance(self.diacritics, bool):
            raise bad("diacritics", "true or false")
        if not isinstance(self.groups, list) or not all(isinstance(g, str) for g in self.groups):
            raise bad("groups", "a list of zone ids")
        if isinstance(self.tele_s, bool) or not isinstance(self.tele_s, int | float) or self.tele_s < 0:
            raise bad("tele_s", "a number of seconds, 0 or more")

    @classmethod
    def load(cls, path: Path) -> AgentConfig:
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, ValueError) as exc:
            raise AgentConfigError(f"device config {path}: cannot be read: {exc}") from exc
        if not isinstance(data, dict):
            raise AgentConfigError(f"device config {path}: must be a JSON object")
        known = {f.name for f in fields(cls)}
        try:
            cfg = cls(**{k: v for k, v in data.items() if k in known})  # unknown keys: a newer daemon's
        except TypeError as exc:
            raise AgentConfigError(f"device config {path}: {exc}") from exc
        cfg.state_dir = str(cfg.resolve_state_dir(path.resolve().parent))
        return cfg

    def resolve_state_dir(self, folder: Path) -> Path:
        """An absolute `state_dir` as it is. A relative one (configs written before #15) is taken from
        `folder`, the config file's own, not from wherever the agent is started; the old shared default
        becomes a folder per device inside it, which starts with the ids the shared one remembered (they
        are unique, so another device's are harmless) so that none is acted on twice."""
        state = Path(self.state_dir).expanduser()
        if state.is_absolute():
            return state
        if self.state_dir.rstrip("/") != SHARED_STATE_DIR:
            return folder / state
        shared, own = folder / state, folder / state / self.device_id
        if (shared / "seen.json").is_file() and not (own / "seen.json").exists():
            own.mkdir(parents=True, exist_ok=True)
            tmp = own / "seen.json.tmp"
            tmp.write_bytes((shared / "seen.json").read_bytes())
            os.replace(tmp, own / "seen.json")
        return own

    def as_json(self) -> dict[str, Any]:
        return asdict(self)

    def save(self, path: Path) -> None:
        """Owner-only (it holds the broker password), written whole or not at all."""
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            json.dump(self.as_json(), out, ensure_ascii=False, indent=2)
        tmp.replace(path)
