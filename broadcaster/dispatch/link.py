"""The daemon's MQTT connection: signed commands out, device reports in (handed to the EventWriter).

Everything here but `publish` runs on paho's one network thread, and that thread is the daemon's only ear:
if a callback raises, paho's loop ends with it, no ack is heard again, and the message that did it, never
acknowledged, is handed back by the broker at the next start. So the callbacks never raise (a failure
is counted and logged, and paho acknowledges the message), and `running` tells the health check
whether the loop is still there.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import secrets
import threading
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode

from broadcaster import protocol
from broadcaster.dispatch.events import EventWriter, Metrics
from broadcaster.dispatch.reports import BadReport, parse_payload
from broadcaster.protocol.mqtt import (
    BrokerAddress,
    Connected,
    connect,
    new_client,
    on_connect_wrapper,
    publish_properties,
)

log = logging.getLogger(__name__)

REPORT_KINDS = ("ack", "status", "tele")
# The group name every daemon used before it was secret; a session left in it is taken out on connect.
OLD_SHARE_GROUP = "loa"


def share_group(secret: str | bytes) -> str:
    """The daemon's shared-subscription group, derived from a secret it holds (its broker password).

    Mosquitto grants any client's SUBSCRIBE to `$share/<group>/...` and filters only on delivery: a device
    that joined the daemon's group was handed its share of every device's reports, which the ACL then
    dropped, so they reached no one. A device cannot join a group whose name it cannot know; joining any
    other group costs the daemon nothing, since every group gets its own copy of each message. Daemon
    instances that log in with the same password share one group and split the reports, as before."""
    key = secret.encode("utf-8") if isinstance(secret, str) else secret
    return "loa-" + hmac.new(key, b"loa mqtt shared subscription group", hashlib.sha256).hexdigest()[:32]


class DeviceLink:
    """The daemon's MQTT client: publishes signed commands, hands incoming device messages to the writer."""

    def __init__(
        self,
        address: BrokerAddress,
        topics: protocol.Topics,
        writer: EventWriter,
        metrics: Metrics,
        client_id: str = "loa-daemon",
        *,
        group: str | None = None,
    ) -> None:
        self.address = address
        self.topics = topics
        self.writer = writer
        self.metrics = metrics
        # Without a password there is no secret to derive it from, and no ACL worth guarding either.
        self.group = group or share_group(address.password or secrets.token_bytes(32))
        self.client = new_client(client_id)
        self._latch = Connected()
        self._pending: dict[int, str] = {}
        self._early: set[int] = set()
        self._lock = threading.Lock()
        self.client.on_connect = on_connect_wrapper(self._latch, self._subscribe)
        self.client.on_message = self._on_message
        self.client.on_publish = self._on_publish
        self.client.on_disconnect = self._on_disconnect
        self.connected = threading.Event()
        self._loop: threading.Thread | None = None

    def _subscribe(self, client: mqtt.Client) -> None:
        # Shared subscriptions: several daemon instances may split the acks between them.
        reports = (self.topics.all_acks(), self.topics.all_status(), self.topics.all_tele())
        for topic in reports:
            client.subscribe(f"$share/{self.group}/{topic}", qos=1)
        # A persistent session from before the group was secret is still in the guessable one.
        client.unsubscribe([f"$share/{OLD_SHARE_GROUP}/{topic}" for topic in reports])
        self.connected.set()
        log.info("connected to broker %s", self.address.display())

    def _on_disconnect(self, *_args: Any) -> None:
        self.connected.clear()

    def start(self, timeout: float = 10.0) -> None:
        connect(self.client, self.address, persistent=True)
        self.client.loop_start()
        self._loop = self.client._thread  # paho's network thread; paho offers no other handle on it
        if not self._latch.wait(timeout):
            self.client.loop_stop()
            raise RuntimeError(f"cannot connect to broker {self.address.display()} {self._latch.reason}".strip())

    def stop(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()

    @property
    def running(self) -> bool:
        """paho's network loop is alive: without it no report is heard and nothing is acknowledged."""
        return self._loop is not None and self._loop.is_alive()

    def publish(self, device_id: str, command_id: str, payload: bytes, expiry_s: float) -> None:
        info = self.client.publish(self.topics.cmd(device_id), payload, qos=1, properties=publish_properties(expiry_s))
        with self._lock:
            if info.mid in self._early:
                self._early.discard(info.mid)
                done = True
            else:
                self._pending[info.mid] = command_id
                done = False
        if done:
            self.writer.put("sent", device_id, command_id)

    def _on_publish(
        self, _client: mqtt.Client, _userdata: Any, mid: int, reason: ReasonCode, _props: Properties
    ) -> None:
        with self._lock:
            command_id = self._pending.pop(mid, None)
            if command_id is None:
                self._early.add(mid)
                return
        if not reason.is_failure:
            self.writer.put("sent", "", command_id)

    def _on_message(self, _client: mqtt.Client, _userdata: Any, msg: mqtt.MQTTMessage) -> None:
        try:
            self._hear(msg)
        except Exception:  # never out of this callback: see the module's docstring
            self.metrics.bump("handler_error", f"{len(msg.payload)} bytes", exc_info=True)

    def _hear(self, msg: mqtt.MQTTMessage) -> None:
        where = self.topics.device_of(msg.topic)
        if where is None or where[1] not in REPORT_KINDS:
            self.metrics.bump("unexpected_topic", msg.topic[:200])
            return
        device_id, kind = where
        if not msg.payload and kind == "status":
            return  # a cleared retained status
        try:
            data = parse_payload(msg.payload)
        except BadReport as bad:
            self.metrics.bump(bad.code, f"{bad.detail} from {device_id[:64]!r} on {kind}")
            return
        self.writer.put(kind, device_id, data)
