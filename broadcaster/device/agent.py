"""What every device agent shares: its provisioned identity, the MQTT session, and the refusal rules.

A device acts only on a command that is signed by a key it trusts, not yet expired, and never seen
before; the ids it has seen survive a reboot (seen.json), so a recorded command cannot be replayed.
A command id seen again is not played again, but its last state is re-acknowledged, which is what
makes the daemon's re-sends from its outbox safe.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from broadcaster import protocol
from broadcaster.protocol.mqtt import BrokerAddress, Connected, connect, new_client, on_connect_wrapper, set_will

log = logging.getLogger(__name__)

FIRMWARE = "loa-agent/0.1"


@dataclass
class AgentConfig:
    """Everything a field device needs; `loa device add` writes it as one JSON file."""

    device_id: str
    kind: str  # "speaker" | "led"
    broker_url: str
    public_keys: dict[str, str]  # key id -> base64 Ed25519 public key
    topic_prefix: str = protocol.DEFAULT_PREFIX
    username: str | None = None
    password: str | None = None
    state_dir: str = "agent-state"
    sink: str = "file"
    diacritics: bool = True
    groups: list[str] = field(default_factory=list)
    ca_file: str | None = None  # the commune's CA, for mqtts:// brokers with a generated certificate

    @classmethod
    def load(cls, path: Path) -> AgentConfig:
        data = json.loads(path.read_text(encoding="utf-8"))
        known = set(cls.__dataclass_fields__)
        return cls(**{k: v for k, v in data.items() if k in known})

    def save(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        tmp.touch(mode=0o600)
        tmp.write_text(json.dumps(self.__dict__, ensure_ascii=False, indent=2), encoding="utf-8")
        tmp.replace(path)


class SeenCommands:
    """Command ids this device has acted on, with their last state, kept until a day past expiry."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.Lock()
        self._items: dict[str, dict[str, Any]] = {}
        if path.exists():
            try:
                self._items = json.loads(path.read_text(encoding="utf-8"))
            except ValueError:
                log.error("seen-commands file %s is unreadable; starting empty", path)

    def ids(self) -> set[str]:
        with self._lock:
            return set(self._items)

    def last_state(self, command_id: str) -> dict[str, Any] | None:
        with self._lock:
            return self._items.get(command_id, {}).get("ack")

    def add(self, command_id: str, expires_at: str) -> bool:
        """Record a new id; False if it was already there (a replay or a re-send)."""
        with self._lock:
            if command_id in self._items:
                return False
            self._items[command_id] = {"expires_at": expires_at, "ack": None}
            self._prune()
            self._save()
            return True

    def set_state(self, command_id: str, ack: dict[str, Any]) -> None:
        with self._lock:
            if command_id in self._items:
                self._items[command_id]["ack"] = ack
                self._save()

    def _prune(self) -> None:
        cutoff = time.time() - 86400
        for cid in [c for c, v in self._items.items() if _epoch(v["expires_at"]) < cutoff]:
            del self._items[cid]

    def _save(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text(json.dumps(self._items), encoding="utf-8")
        os.replace(tmp, self.path)


def _epoch(text: str) -> float:
    try:
        return protocol.parse_time(text).timestamp()
    except ValueError:
        return 0.0


def wait_until(epoch: float, cancel: threading.Event | None = None) -> bool:
    """Sleep until `epoch` with ~1 ms precision: coarse sleeps, then short ones. False if cancelled."""
    while True:
        remaining = epoch - time.time()
        if remaining <= 0:
            return True
        if cancel is not None and cancel.is_set():
            return False
        if remaining > 0.05:
            time.sleep(min(remaining - 0.02, 0.5))
        elif remaining > 0.002:
            time.sleep(remaining / 2)
        # the last ~2 ms are spun: sleep granularity would eat the precision


class DeviceAgent:
    """Base of the speaker and LED agents; subclasses implement `handle`."""

    kind = "device"

    def __init__(self, config: AgentConfig) -> None:
        self.config = config
        self.device_id = config.device_id
        self.topics = protocol.Topics(config.topic_prefix)
        self.state_dir = Path(config.state_dir)
        self.state_dir.mkdir(parents=True, exist_ok=True)
        self.keys: dict[str, Ed25519PublicKey] = {
            kid: protocol.load_public_key(b64) for kid, b64 in config.public_keys.items()
        }
        self.seen = SeenCommands(self.state_dir / "seen.json")
        self.refused: dict[str, int] = {}
        self._parent_pid: int | None = None
        self._stop = threading.Event()
        self._latch = Connected()
        address = BrokerAddress.parse(config.broker_url)
        if config.username:
            address = address.with_credentials(config.username, config.password)
        self.address = address
        self.client = new_client(config.device_id)
        set_will(self.client, self.topics.status(self.device_id), protocol.encode(protocol.make_status(False)))
        self.client.on_connect = on_connect_wrapper(self._latch, self._on_connected)
        self.client.on_message = self._on_message

    # ------------------------------------------------------------ connection

    def status_extra(self) -> dict[str, Any]:
        return {"kind": self.kind, "firmware": FIRMWARE}

    def _on_connected(self, client: mqtt.Client) -> None:
        status = protocol.make_status(True, datetime.now(UTC), **self.status_extra())
        client.publish(self.topics.status(self.device_id), protocol.encode(status), qos=1, retain=True)
        client.subscribe(self.topics.cmd(self.device_id), qos=1)
        for group in self.config.groups:
            client.subscribe(self.topics.group_cmd(group), qos=1)
        log.info("%s connected to %s", self.device_id, self.address.display())

    def start(self, timeout: float = 10.0) -> None:
        connect(self.client, self.address, persistent=True, ca_file=self.config.ca_file)
        self.client.loop_start()
        if not self._latch.wait(timeout):
            raise RuntimeError(f"{self.device_id}: cannot connect to {self.address.display()} {self._latch.reason}")

    def stop(self) -> None:
        self._stop.set()
        # A clean stop says "offline" itself; the last will covers crashes and lost links.
        info = self.client.publish(
            self.topics.status(self.device_id),
            protocol.encode(protocol.make_status(False)),
            qos=1,
            retain=True,
        )
        with contextlib.suppress(RuntimeError, ValueError):
            info.wait_for_publish(timeout=2)
        self.client.disconnect()
        self.client.loop_stop()

    def exit_with_parent(self, parent_pid: int) -> None:
        """Simulated devices must not outlive the daemon that started them (a killed daemon's orphans
        would share client ids with the next run's agents and knock each other off the broker)."""
        self._parent_pid = parent_pid

    def run_forever(self) -> None:
        self.start(timeout=60)
        try:
            while not self._stop.wait(1.0):
                if self._parent_pid is not None and os.getppid() != self._parent_pid:
                    log.warning("%s: parent process is gone; stopping", self.device_id)
                    break
        finally:
            self.stop()

    # ------------------------------------------------------------ commands

    def _on_message(self, _client: mqtt.Client, _userdata: Any, msg: mqtt.MQTTMessage) -> None:
        if len(msg.payload) > protocol.MAX_PAYLOAD_BYTES:
            self._refuse("oversized")
            return
        try:
            command = json.loads(msg.payload)
            if not isinstance(command, dict):
                raise ValueError("not an object")
        except (UnicodeDecodeError, ValueError):
            self._refuse("malformed")
            return
        try:
            protocol.check_command(command, self.keys, datetime.now(UTC))
        except protocol.Refusal as refusal:
            self._refuse(refusal.code)
            if refusal.code == "expired" and isinstance(command.get("id"), str):
                self.ack(command["id"], "expired", reason="expired")
            return
        cid = command["id"]
        if not self.seen.add(cid, command["expires_at"]):
            last = self.seen.last_state(cid)
            if last is not None:  # a re-send: tell the daemon where we are, do nothing else
                self._publish_ack(last)
            return
        threading.Thread(target=self._handle_safely, args=(command,), name=f"cmd-{cid[:8]}", daemon=True).start()

    def _refuse(self, code: str) -> None:
        self.refused[code] = self.refused.get(code, 0) + 1
        if self.refused[code] == 1:
            log.warning("%s refused a command: %s", self.device_id, code)

    def _handle_safely(self, command: dict[str, Any]) -> None:
        try:
            self.handle(command)
        except Exception as exc:
            log.exception("%s: command %s failed", self.device_id, command.get("id"))
            self.ack(command["id"], "failed", reason=f"agent_error: {exc}"[:200])

    def handle(self, command: dict[str, Any]) -> None:
        ctype = command.get("type")
        if ctype == "ping":
            self.ack(command["id"], "done", pong=protocol.format_time(datetime.now(UTC)))
        elif ctype == "config":
            self.ack(command["id"], "done")
        else:
            self.ack(command["id"], "failed", reason=f"unsupported: {ctype}")

    def ack(self, command_id: str, state: protocol.AckState, **extra: Any) -> None:
        message = protocol.make_ack(command_id, state, datetime.now(UTC), **extra)
        self.seen.set_state(command_id, message)
        self._publish_ack(message)

    def _publish_ack(self, message: dict[str, Any]) -> None:
        self.client.publish(self.topics.ack(self.device_id), protocol.encode(message), qos=1)
