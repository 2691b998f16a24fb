"""The daemon's MQTT connection: signed commands out, device reports in (handed to the EventWriter)."""

from __future__ import annotations

import json
import logging
import threading
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode

from broadcaster import protocol
from broadcaster.dispatch.events import EventWriter, Metrics
from broadcaster.protocol.mqtt import (
    BrokerAddress,
    Connected,
    connect,
    new_client,
    on_connect_wrapper,
    publish_properties,
)

log = logging.getLogger(__name__)


class DeviceLink:
    """The daemon's MQTT client: publishes signed commands, hands incoming device messages to the writer."""

    def __init__(
        self,
        address: BrokerAddress,
        topics: protocol.Topics,
        writer: EventWriter,
        metrics: Metrics,
        client_id: str = "loa-daemon",
    ) -> None:
        self.address = address
        self.topics = topics
        self.writer = writer
        self.metrics = metrics
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

    def _subscribe(self, client: mqtt.Client) -> None:
        # Shared subscriptions: several daemon instances may split the acks between them.
        for topic in (self.topics.all_acks(), self.topics.all_status(), self.topics.all_tele()):
            client.subscribe(f"$share/loa/{topic}", qos=1)
        self.connected.set()
        log.info("connected to broker %s", self.address.display())

    def _on_disconnect(self, *_args: Any) -> None:
        self.connected.clear()

    def start(self, timeout: float = 10.0) -> None:
        connect(self.client, self.address, persistent=True)
        self.client.loop_start()
        if not self._latch.wait(timeout):
            self.client.loop_stop()
            raise RuntimeError(f"cannot connect to broker {self.address.display()} {self._latch.reason}".strip())

    def stop(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()

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
        where = self.topics.device_of(msg.topic)
        if where is None:
            self.metrics.bump("unexpected_topic", msg.topic)
            return
        device_id, kind = where
        if len(msg.payload) > protocol.MAX_PAYLOAD_BYTES:
            self.metrics.bump("oversized_payload", f"{len(msg.payload)} bytes from {device_id!r}")
            return
        if not msg.payload and kind == "status":
            return  # a cleared retained status
        try:
            data = json.loads(msg.payload)
        except (UnicodeDecodeError, ValueError):
            self.metrics.bump("malformed_json", f"from {device_id!r} on {kind}")
            return
        if not isinstance(data, dict):
            self.metrics.bump("malformed_json", f"from {device_id!r} on {kind}")
            return
        if kind in ("ack", "status", "tele"):
            self.writer.put(kind, device_id, data)
