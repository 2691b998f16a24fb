"""MQTT v5 plumbing shared by the daemon and the device agents (paho-mqtt 2).

paho 2 silently falls back to its v1 callback signatures unless told otherwise, so every client here
is built by `new_client`, which pins CallbackAPIVersion.VERSION2 and MQTT v5.
"""

from __future__ import annotations

import functools
import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode

log = logging.getLogger(__name__)

SESSION_EXPIRY_S = 48 * 3600  # a device offline over a weekend still gets its queued commands
WILL_DELAY_S = 10  # a reconnect shorter than this does not flap the device offline


@dataclass(frozen=True)
class BrokerAddress:
    host: str
    port: int
    username: str | None = None
    password: str | None = None
    tls: bool = False

    @classmethod
    def parse(cls, url: str) -> BrokerAddress:
        parts = urlsplit(url)
        if parts.scheme not in ("mqtt", "mqtts"):
            raise ValueError(f"broker URL must be mqtt:// or mqtts://, got {url!r}")
        tls = parts.scheme == "mqtts"
        return cls(
            host=parts.hostname or "127.0.0.1",
            port=parts.port or (8883 if tls else 1883),
            username=unquote(parts.username) if parts.username else None,
            password=unquote(parts.password) if parts.password else None,
            tls=tls,
        )

    def with_credentials(self, username: str | None, password: str | None) -> BrokerAddress:
        return BrokerAddress(self.host, self.port, username, password, self.tls)

    def display(self) -> str:
        """The address without its password, for logs."""
        user = f"{self.username}@" if self.username else ""
        return f"{'mqtts' if self.tls else 'mqtt'}://{user}{self.host}:{self.port}"


def new_client(client_id: str, *, persistent: bool = True) -> mqtt.Client:
    client = mqtt.Client(
        callback_api_version=CallbackAPIVersion.VERSION2,
        client_id=client_id,
        protocol=mqtt.MQTTv5,
    )
    client.reconnect_delay_set(min_delay=1, max_delay=30)
    client.max_queued_messages_set(0)
    client.max_inflight_messages_set(100)
    client._loa_persistent = persistent  # type: ignore[attr-defined]
    return client


def connect_properties(persistent: bool) -> Properties:
    props = Properties(PacketTypes.CONNECT)
    props.SessionExpiryInterval = SESSION_EXPIRY_S if persistent else 0
    return props


def set_will(client: mqtt.Client, topic: str, payload: bytes) -> None:
    props = Properties(PacketTypes.WILLMESSAGE)
    props.WillDelayInterval = WILL_DELAY_S
    client.will_set(topic, payload, qos=1, retain=True, properties=props)


def publish_properties(expiry_s: float | None) -> Properties | None:
    if expiry_s is None:
        return None
    return _expiry_properties(max(1, int(expiry_s)))


@functools.lru_cache(maxsize=4096)
def _expiry_properties(seconds: int) -> Properties:
    """paho takes ~0.1 ms to build a Properties; a bulletin publishes thousands with the same expiry.
    Shared instances are safe: paho only reads them when packing the message."""
    props = Properties(PacketTypes.PUBLISH)
    props.MessageExpiryInterval = seconds
    return props


def connect(
    client: mqtt.Client,
    address: BrokerAddress,
    *,
    persistent: bool = True,
    keepalive: int = 30,
    ca_file: str | Path | None = None,
) -> None:
    """Start connecting in the background. With mqtts://, the server certificate and host name are always
    verified: against `ca_file` (a commune's own CA, see broadcaster.broker.tls.make_ca) or else the
    system's trust store."""
    if address.username:
        client.username_pw_set(address.username, address.password)
    if address.tls:
        client.tls_set(ca_certs=str(ca_file) if ca_file else None)
    client.connect_async(
        address.host,
        address.port,
        keepalive=keepalive,
        clean_start=not persistent,
        properties=connect_properties(persistent),
    )


class Connected:
    """A latch set in on_connect, so callers can wait for the first successful connection."""

    def __init__(self) -> None:
        self.event = threading.Event()
        self.reason: str = ""

    def wait(self, timeout: float) -> bool:
        return self.event.wait(timeout)


def on_connect_wrapper(
    latch: Connected, then: Callable[[mqtt.Client], None]
) -> Callable[[mqtt.Client, Any, mqtt.ConnectFlags, ReasonCode, Properties | None], None]:
    def _on_connect(
        client: mqtt.Client,
        _userdata: Any,
        _flags: mqtt.ConnectFlags,
        reason: ReasonCode,
        _props: Properties | None,
    ) -> None:
        if reason.is_failure:
            latch.reason = str(reason)
            log.error("MQTT connection refused: %s", reason)
            return
        then(client)
        latch.event.set()

    return _on_connect
