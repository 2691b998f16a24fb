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
import time
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
from schedules.clock import Clock

log = logging.getLogger(__name__)

REPORT_KINDS = ("ack", "status", "tele")
# A device asks its time 3 times a round, a second apart: more than one answer per half second is a flood
# (docs/security.md, *Clock offsets*), counted, never signed. Timed on the monotonic clock: the daemon's
# clock may be a test's, standing still.
TIME_ANSWER_EVERY_S = 0.5
TIME_ANSWER_EXPIRY_S = 5  # an answer that waited longer at the broker is worth nothing
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
        signer: protocol.Signer | None = None,
        clock: Clock | None = None,
        persistent: bool = True,
    ) -> None:
        self.address = address
        # The clock offset exchange (docs/protocol.md, *Clock offset*): answered only with the key to sign.
        self.signer = signer
        self.clock = clock
        self.persistent = persistent  # False in a cluster: its daemons use clean sessions
        self._answered: dict[str, float] = {}  # device -> when its last time request was answered (monotonic)
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
        self._connects = 0  # the first is the start; every later one a reconnection (the metrics)
        self._loop: threading.Thread | None = None

    def _subscribe(self, client: mqtt.Client) -> None:
        # Shared subscriptions: several daemon instances may split the acks between them.
        reports = (self.topics.all_acks(), self.topics.all_status(), self.topics.all_tele())
        for topic in reports:
            client.subscribe(f"$share/{self.group}/{topic}", qos=1)
        if self.signer is not None and self.clock is not None:  # time requests, answered by one daemon of the group
            client.subscribe(f"$share/{self.group}/{self.topics.all_time()}", qos=0)
        # A persistent session from before the group was secret is still in the guessable one.
        client.unsubscribe([f"$share/{OLD_SHARE_GROUP}/{topic}" for topic in reports])
        self.connected.set()
        self._connects += 1
        if self._connects > 1 and self.metrics.on_reconnect is not None:
            self.metrics.on_reconnect()
        log.info("connected to broker %s", self.address.display())

    def _on_disconnect(self, *_args: Any) -> None:
        self.connected.clear()

    def start(self, timeout: float = 10.0) -> None:
        connect(self.client, self.address, persistent=self.persistent)
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

    def unconfirmed(self) -> set[str]:
        """Commands handed to paho that the broker has not confirmed yet (no PUBACK). paho sends them itself,
        again after a reconnect; it holds at most 100 in flight and queues the rest, so a bulletin's commands
        wait here for a while on a busy link, and must not be handed over a second time meanwhile."""
        with self._lock:
            return set(self._pending.values())

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
        if where is None or where[1] not in (*REPORT_KINDS, "time"):
            self.metrics.bump("unexpected_topic", msg.topic[:200])
            return
        device_id, kind = where
        if kind == "time":
            self._answer_time(device_id, msg.payload)
            return
        if not msg.payload and kind == "status":
            return  # a cleared retained status
        try:
            data = parse_payload(msg.payload)
        except BadReport as bad:
            self.metrics.bump(bad.code, f"{bad.detail} from {device_id[:64]!r} on {kind}")
            return
        self.writer.put(kind, device_id, data)

    def _answer_time(self, device_id: str, payload: bytes | bytearray) -> None:
        """A device's time request: answered at once, signed, for that device only (docs/protocol.md, *Clock
        offset*); nonsense and a flood are counted, never signed."""
        if self.signer is None or self.clock is None:
            return
        heard = self.clock.now()
        try:
            t1 = protocol.read_time_request(parse_payload(payload))
        except (BadReport, ValueError):
            self.metrics.bump("malformed_time_request", f"from {device_id[:64]!r}")
            return
        tick = time.monotonic()
        last = self._answered.get(device_id)
        if last is not None and tick - last < TIME_ANSWER_EVERY_S:
            self.metrics.bump("time_request_flood", f"from {device_id[:64]!r}")
            return
        if len(self._answered) > 100_000:  # device ids come from the topic: bounded, whatever is sent
            self._answered.clear()
        self._answered[device_id] = tick
        t2 = protocol.to_us(heard.timestamp())
        t3 = protocol.to_us(self.clock.now().timestamp())  # as late as can be: the signature comes after
        reply = protocol.make_time_reply(self.signer, device_id, t1, t2, t3)
        self.client.publish(
            self.topics.clock(device_id),
            protocol.encode(reply),
            qos=0,
            properties=publish_properties(TIME_ANSWER_EXPIRY_S),
        )
