"""`/api/v1/health` tells the truth about the daemon's ear: it once answered ok while the MQTT loop was
dead, no ack was heard and every command was re-sent each second."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import paho.mqtt.client as mqtt
import pytest

from broadcaster import protocol
from broadcaster.api.app import create_app
from broadcaster.api.server import HttpServer
from broadcaster.broker.managed import ManagedBroker
from broadcaster.config import DispatchConfig
from broadcaster.protocol.mqtt import BrokerAddress, connect, new_client
from broadcaster.runtime.path import DevicePath
from schedules.clock import SystemClock
from tests.broadcaster.conftest import make_services
from tests.broadcaster.harness import wait_for


@pytest.fixture
def daemon_parts(tmp_path: Path, broker: ManagedBroker, sqlite_url: str) -> Iterator[tuple[DevicePath, str]]:
    svc = make_services(tmp_path, sqlite_url, SystemClock())
    path = DevicePath.build(
        svc.db,
        svc.clock,
        DispatchConfig(),
        protocol.load_or_create_signer(tmp_path / "k.pem"),
        BrokerAddress.parse(broker.url),
        lambda sha, ext: f"http://127.0.0.1:1/audio/{sha}.{ext}",
    )
    http = HttpServer(create_app(svc, svc.audio.store, health_probe=path.failing), "127.0.0.1", 0)
    http.start()
    path.start(dispatch=False)
    yield path, http.url + "/api/v1/health"
    path.stop()
    http.stop()
    svc.db.dispose()


@pytest.mark.filterwarnings("ignore::pytest.PytestUnhandledThreadExceptionWarning")
def test_health_names_the_part_that_stopped(daemon_parts: tuple[DevicePath, str], broker: ManagedBroker) -> None:
    path, url = daemon_parts
    answer = httpx.get(url, timeout=10)
    assert answer.status_code == 200 and answer.json() == {"ok": True, "version": "v1", "failing": []}

    def dies(_c: mqtt.Client, _u: Any, _m: mqtt.MQTTMessage) -> None:
        raise RecursionError("maximum recursion depth exceeded while decoding a JSON array")

    path.link.client.on_message = dies  # how the MQTT loop died before the link caught everything
    device = new_client("thon-1-loa", persistent=False)
    connected = threading.Event()
    device.on_connect = lambda *_: connected.set()
    connect(device, BrokerAddress.parse(broker.url), persistent=False)
    device.loop_start()
    try:
        assert connected.wait(5)
        device.publish(protocol.Topics().ack("thon-1-loa"), b"{}", qos=1).wait_for_publish(5)
        wait_for(lambda: httpx.get(url, timeout=10).status_code == 503, 5, "health to see the dead loop")
    finally:
        device.disconnect()
        device.loop_stop()
    answer = httpx.get(url, timeout=10)
    assert answer.json() == {"ok": False, "version": "v1", "failing": ["mqtt_loop"]}

    path.writer.stop()
    answer = httpx.get(url, timeout=10)
    assert answer.status_code == 503 and answer.json()["failing"] == ["mqtt_loop", "event_writer"]
