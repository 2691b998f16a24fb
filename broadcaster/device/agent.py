"""The reference device agent: one device per process, the core driven by threads and a real MQTT session.

What a technician runs on a Raspberry Pi next to a speaker or an LED board (`loa agent speaker|led`),
and what the two simulated villages of `make run` run. Every decision is the core's
(`broadcaster.device.core`); this driver only waits, downloads, plays and publishes. A thread per task
is fine for one device (the fleet simulator drives the same core from one loop for thousands).

Command ids it has taken survive a reboot (`seen.json` in the state folder), so a recorded command is
never acted on twice, and a re-sent id is answered with its last ack. So do the plays it has taken and
not finished (`held.json`, their signed payloads): a speaker that reboots between downloading a bulletin
and its start still plays it, on time, once (docs/protocol.md, "Across a reboot").
"""

from __future__ import annotations

import contextlib
import functools
import json
import logging
import os
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, cast

import paho.mqtt.client as mqtt
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from broadcaster import protocol
from broadcaster.device.config import AgentConfig
from broadcaster.device.core import (
    FIRMWARE,
    Ack,
    Action,
    DeviceCore,
    DeviceKind,
    Refused,
    Resend,
    Restatus,
    SeenCommands,
    Wake,
)
from broadcaster.protocol.mqtt import BrokerAddress, Connected, connect, new_client, on_connect_wrapper, set_will

__all__ = ["FIRMWARE", "AgentConfig", "DeviceAgent", "wait_until"]

log = logging.getLogger(__name__)


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
    """The part every device shares: its identity, the MQTT session, the memory of ids, the timers.
    Subclasses carry out what only their kind does (`perform`)."""

    kind = "device"

    def __init__(self, config: AgentConfig) -> None:
        self.config = config
        self.device_id = config.device_id
        self.topics = protocol.Topics(config.topic_prefix)
        self.state_dir = Path(config.state_dir)
        self.state_dir.mkdir(parents=True, exist_ok=True)
        keys: dict[str, Ed25519PublicKey] = {
            kid: protocol.load_public_key(b64) for kid, b64 in config.public_keys.items()
        }
        self._seen_file = self.state_dir / "seen.json"
        self._held_file = self.state_dir / "held.json"
        self._held: set[str] = set()
        seen = SeenCommands()
        if self._seen_file.exists():
            try:
                seen.restore(json.loads(self._seen_file.read_text(encoding="utf-8")))
            except (OSError, ValueError, AttributeError):
                log.error("seen-commands file %s is unreadable; starting empty", self._seen_file)
        seen.prune(time.time())
        kind = cast(DeviceKind, config.kind)  # checked by AgentConfig
        self.core = DeviceCore(
            config.device_id, kind, keys, diacritics=config.diacritics, seen=seen, zones=config.groups
        )
        self._lock = threading.RLock()  # one caller of the core at a time
        self._parent_pid: int | None = None
        self._stop = threading.Event()
        self._latch = Connected()
        self._started = time.monotonic()
        address = BrokerAddress.parse(config.broker_url)
        if config.username:
            address = address.with_credentials(config.username, config.password)
        self.address = address
        self.client = new_client(config.device_id)
        set_will(self.client, self.topics.status(self.device_id), protocol.encode(self.core.status(False)))
        self.client.on_connect = on_connect_wrapper(self._latch, self._on_connected)
        self.client.on_message = self._on_message

    @property
    def refused(self) -> dict[str, int]:
        return dict(self.core.refused)

    # ------------------------------------------------------------ connection

    def status_extra(self) -> dict[str, Any]:
        return {}

    def _on_connected(self, client: mqtt.Client) -> None:
        self._publish_status(client)
        client.subscribe(self.topics.cmd(self.device_id), qos=1)
        client.subscribe(self.topics.clock(self.device_id), qos=0)  # a late answer is worth nothing
        for group in self.config.groups:
            client.subscribe(self.topics.group_cmd(group), qos=1)
        with self._lock:
            self.core.clock.start(time.time())  # a round of time requests now (_clock_loop)
        self.call(self.core.reconnected)  # final outcomes the lost link may have lost with it
        log.info("%s connected to %s", self.device_id, self.address.display())

    def start(self, timeout: float = 10.0) -> None:
        connect(self.client, self.address, persistent=True, ca_file=self.config.ca_file)
        self.client.loop_start()
        if not self._latch.wait(timeout):
            raise RuntimeError(f"{self.device_id}: cannot connect to {self.address.display()} {self._latch.reason}")
        self._resume()
        self._spawn("clock", self._clock_loop)
        if self.config.tele_s:
            self._spawn("tele", self._telemetry_loop)

    def stop(self) -> None:
        self._stop.set()
        # A clean stop says "offline" itself; the last will covers crashes and lost links.
        info = self.client.publish(
            self.topics.status(self.device_id), protocol.encode(self.core.status(False)), qos=1, retain=True
        )
        with contextlib.suppress(RuntimeError, ValueError):
            info.wait_for_publish(timeout=2)
        self.client.disconnect()
        self.client.loop_stop()

    def request_stop(self) -> None:
        """From a signal handler: `run_forever` then stops cleanly (offline status, disconnect)."""
        self._stop.set()

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

    def _telemetry_loop(self) -> None:
        while not self._stop.wait(self.config.tele_s):
            with self._lock:
                tele = self.core.telemetry(time.time(), uptime_s=int(time.monotonic() - self._started))
            self.client.publish(self.topics.tele(self.device_id), protocol.encode(tele), qos=0)

    def _clock_loop(self) -> None:
        """Ask the daemon's time when the core says (docs/protocol.md, *Clock offset*)."""
        while not self._stop.is_set():
            with self._lock:
                due = self.core.clock.next_at
                now = time.time()
                message = self.core.time_request(now) if due is not None and now >= due else None
            if message is None:
                wait = 1.0 if due is None else min(1.0, max(0.01, due - time.time()))
                self._stop.wait(wait)
                continue
            self.client.publish(self.topics.time(self.device_id), protocol.encode(message), qos=0)

    def _publish_status(self, client: mqtt.Client) -> None:
        with self._lock:
            status = self.core.status(True, time.time(), **self.status_extra())
        client.publish(self.topics.status(self.device_id), protocol.encode(status), qos=1, retain=True)

    # ------------------------------------------------------------ the core, driven

    def _on_message(self, _client: mqtt.Client, _userdata: Any, msg: mqtt.MQTTMessage) -> None:
        if msg.topic == self.topics.clock(self.device_id):
            heard = time.time()  # t4: before waiting for the lock, which would count as network delay
            self.call(lambda _now: self.core.time_reply(bytes(msg.payload), heard))
            return
        self.call(lambda now: self.core.receive(bytes(msg.payload), now))

    def call(self, step: Callable[[float], list[Action]]) -> None:
        """Feed the core one event, at the time it happened, and carry out what it asks."""
        with self._lock:
            actions = step(time.time())
            for action in actions:
                try:
                    self.perform(action)
                except Exception:
                    log.exception("%s: could not carry out %s", self.device_id, action)
            if self.core.seen.dirty:
                self._save_seen()
            held = self.core.held()
            if held.keys() != self._held:
                self._save_held(held)

    def perform(self, action: Action) -> None:
        if isinstance(action, Ack):
            self._publish_ack(action.message())
        elif isinstance(action, Resend):
            self._publish_ack(action.message)
        elif isinstance(action, Wake):
            self._spawn(f"wake-{action.command_id[:8]}", self._wake, action)
        elif isinstance(action, Restatus):
            self._publish_status(self.client)
        elif isinstance(action, Refused):
            if self.core.refused[action.code] == 1:
                log.warning("%s refused a command: %s", self.device_id, action.code)
        else:
            raise TypeError(f"a {self.kind} cannot carry out {action!r}")

    def _wake(self, action: Wake) -> None:
        if wait_until(action.at, self._stop):
            self.call(lambda now: self.core.wake(action.command_id, now))

    def _spawn(self, name: str, target: Callable[..., None], *args: Any) -> None:
        threading.Thread(target=target, args=args, name=name, daemon=True).start()

    def _publish_ack(self, message: dict[str, Any]) -> None:
        self.client.publish(self.topics.ack(self.device_id), protocol.encode(message), qos=1)

    def _resume(self) -> None:
        """Take up the plays a reboot interrupted, once connected (their acks go out). A damaged file is
        logged and set aside: the daemon's record then shows those plays unfinished."""
        try:
            held = json.loads(self._held_file.read_text(encoding="utf-8")) if self._held_file.exists() else {}
            payloads = [p.encode("latin-1") for p in held.values()] if isinstance(held, dict) else []
        except (OSError, ValueError, AttributeError):
            log.error("held-commands file %s is unreadable; not resumed", self._held_file)
            payloads = []
        for payload in payloads:
            self.call(functools.partial(self._resume_one, payload))
        if payloads:
            log.info("%s resumed %d commands taken before a restart", self.device_id, len(payloads))

    def _resume_one(self, payload: bytes, now: float) -> list[Action]:
        return self.core.resume(payload, now)

    def _save_held(self, held: dict[str, bytes]) -> None:
        tmp = self._held_file.with_suffix(".tmp")
        # latin-1: each byte one character, so the payload comes back byte for byte whatever it held
        tmp.write_text(json.dumps({cid: p.decode("latin-1") for cid, p in held.items()}), encoding="utf-8")
        os.replace(tmp, self._held_file)
        self._held = set(held)

    def _save_seen(self) -> None:
        self.core.seen.prune(time.time())
        tmp = self._seen_file.with_suffix(".tmp")
        tmp.write_text(json.dumps(self.core.seen.export()), encoding="utf-8")
        os.replace(tmp, self._seen_file)
        self.core.seen.dirty = False
