"""Firmware in another language accepts what the daemon really sends: every kind of command, captured
off a real broker and checked by an independent verifier in JavaScript (verify_commands.mjs: Node's
own crypto and its own RFC 8785), which must also refuse what was edited or signed over other bytes."""

from __future__ import annotations

import base64
import json
import shutil
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from broadcaster import protocol
from broadcaster.broker.managed import ManagedBroker
from broadcaster.config import DispatchConfig
from broadcaster.db import Announcement, Broadcast, Database, DeviceKind, Programme
from broadcaster.protocol.mqtt import BrokerAddress, connect, new_client
from broadcaster.runtime.path import DevicePath
from broadcaster.services.zones import add_device, add_village, ensure_commune
from schedules.clock import FakeClock

VERIFIER = Path(__file__).with_name("verify_commands.mjs")
T0 = datetime(2026, 11, 25, 0, 0, tzinfo=UTC)  # 07:00 in the commune
SPEAKER, LED, LED_PLAIN = "thon-1-loa", "thon-1-led", "thon-1-bang"  # the last shows text without marks
TRICKY_TITLE = 'Trích "Luật" \\ khẩn\nSơ tán ngay 🌊📢'


@pytest.fixture
def node() -> str:
    path = shutil.which("node")
    if path is None:
        pytest.skip("node is not installed: the JavaScript verifier cannot run")
    return path


class Capture:
    """A bare MQTT client in the devices' place: keeps each command payload exactly as it arrived."""

    def __init__(self, broker: ManagedBroker, device_ids: list[str]) -> None:
        self.got: list[tuple[str, bytes]] = []
        self._lock = threading.Lock()
        subscribed = threading.Event()
        self.client = new_client("interop-capture")
        self.client.on_connect = lambda c, *_: c.subscribe([(protocol.Topics().cmd(d), 1) for d in device_ids])
        self.client.on_subscribe = lambda *_: subscribed.set()
        self.client.on_message = lambda _c, _u, m: self._keep(m.topic, m.payload)
        connect(self.client, BrokerAddress.parse(broker.url), persistent=False)
        self.client.loop_start()
        assert subscribed.wait(5), "no SUBACK from the broker"

    def _keep(self, topic: str, payload: bytes | bytearray) -> None:
        with self._lock:
            self.got.append((topic, bytes(payload)))

    def wait(self, count: int, timeout: float = 10) -> list[tuple[str, bytes]]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self._lock:
                if len(self.got) >= count:
                    return list(self.got)
            time.sleep(0.05)
        raise AssertionError(f"{len(self.got)} of {count} commands arrived")

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


@dataclass
class Daemon:
    path: DevicePath
    db: Database
    signer: protocol.Signer


@pytest.fixture
def daemon(tmp_path: Path, broker: ManagedBroker, sqlite_url: str) -> Iterator[Daemon]:
    """The daemon's own way to the devices: database, dispatcher, signer and MQTT link, as wired in daemon.py."""
    db = Database(sqlite_url)
    db.upgrade()
    with db.session() as s:
        ensure_commune(s, "Xã thử")
        add_village(s, "thon-1", "Thôn 1")
        add_device(s, SPEAKER, DeviceKind.SPEAKER, "thon-1")
        add_device(s, LED, DeviceKind.LED, "thon-1")
        add_device(s, LED_PLAIN, DeviceKind.LED, "thon-1").diacritics = False
    signer = protocol.load_or_create_signer(tmp_path / "k.pem")
    path = DevicePath.build(
        db,
        FakeClock(T0),
        DispatchConfig(lead_s=30, validity_s=600),
        signer,
        BrokerAddress.parse(broker.url),
        lambda sha, ext: f"http://192.168.1.10:8080/audio/{sha}.{ext}",
    )
    path.start(dispatch=False)  # driven by hand below
    yield Daemon(path, db, signer)
    path.stop()
    db.dispose()


def _announcement(db: Database, title: str) -> int:
    with db.session() as s:
        a = Announcement(title=title, text=title, created_at=T0, created_by="t", audio_sha256="4f" * 32,
                         audio_size=61440, audio_duration_ms=10240)  # fmt: skip
        s.add(a)
        s.flush()
        b = Broadcast(announcement_id=a.id, title=title, zone_id="thon-1", start_at=T0 + timedelta(seconds=10),
                      expires_at=T0 + timedelta(minutes=10), duration_ms=10240)  # fmt: skip
        s.add(b)
        s.flush()
        return b.id


def _relay(db: Database, duration_ms: int) -> int:
    """A relay of the central station, as the planner stores one: the duration becomes a float on the wire."""
    with db.session() as s:
        p = Programme(kind="relay", title="Thời sự VOV1", targets='["thon-1"]', recurrence="06:00",
                      starts_on="2026-11-25", duration_ms=duration_ms, stream_url="http://vov1.vov.vn/live.mp3",
                      priority="background", created_at=T0, created_by="t")  # fmt: skip
        s.add(p)
        s.flush()
        b = Broadcast(programme_id=p.id, title=p.title, zone_id="thon-1", start_at=T0 + timedelta(seconds=10),
                      expires_at=T0 + timedelta(minutes=10, milliseconds=duration_ms), airing_id=f"p{p.id}@x",
                      kind="relay", priority="background", duration_ms=duration_ms)  # fmt: skip
        s.add(b)
        s.flush()
        return b.id


def _node(node: str, payloads: list[bytes], keys: dict[str, str]) -> list[str]:
    lines = "".join(json.dumps({"payload": p.decode("utf-8"), "keys": keys}) + "\n" for p in payloads)
    out = subprocess.run([node, str(VERIFIER)], input=lines, capture_output=True, text=True, timeout=60, check=True)
    results = out.stdout.splitlines()
    assert len(results) == len(payloads), out.stdout + out.stderr
    return results


def _edited(payload: bytes, change: Callable[[dict[str, Any]], None]) -> bytes:
    command = json.loads(payload)
    change(command)
    return protocol.encode(command)


def test_node_verifies_every_command_the_daemon_sends_and_refuses_forgeries(
    node: str, broker: ManagedBroker, daemon: Daemon
) -> None:
    path, db, signer = daemon.path, daemon.db, daemon.signer
    capture = Capture(broker, [SPEAKER, LED, LED_PLAIN])
    try:
        # play, relay and led.show: planned broadcasts, dispatched by the daemon's own code
        broadcasts = [
            _announcement(db, "Thông báo: Đảng ủy, HĐND, UBND xã họp lúc 7h30 tại nhà văn hóa thôn"),
            _announcement(db, TRICKY_TITLE),
            _relay(db, 1_800_000),  # "duration_s": 1800.0 in the body the daemon signs
            _relay(db, 12_500),  # 12.5
        ]
        for bid in broadcasts:
            assert path.dispatcher.dispatch(bid) == 3
        # the rest: signed by make_command and published through the daemon's link
        start, expires = T0 + timedelta(seconds=10), T0 + timedelta(minutes=10)
        times: dict[str, Any] = {"issued_at": T0, "start_at": start, "expires_at": expires}
        config = {  # reserved in v2: here it carries the number and key-order rules end to end
            "volume": 80, "tele_interval_s": 300.0, "gain": 1e-7, "limit": 1e21, "label": "Loa thôn 1 🔊",
            "\ufb33": "after the emoji", "\U0001f600": "before U+FB33",
        }  # fmt: skip
        others: list[tuple[str, protocol.CommandType, dict[str, Any]]] = [
            (SPEAKER, "stop", {}),
            (SPEAKER, "volume", {"level": 80}),
            (SPEAKER, "ping", {}),
            (SPEAKER, "config", config),
            (LED, "led.clear", {}),
            (LED_PLAIN, "led.clear", {}),
        ]
        for device_id, kind, body in others:
            command = protocol.make_command(signer, kind, body, to=device_id, priority="priority", **times)
            path.link.publish(device_id, command["id"], protocol.encode(command), 600)
        arrived = capture.wait(len(broadcasts) * 3 + len(others))
    finally:
        capture.close()

    payloads = [p for _, p in arrived]
    commands = [json.loads(p) for p in payloads]
    sent = list(zip(payloads, commands, strict=True))
    assert {c["type"] for c in commands} == set(protocol.COMMAND_TYPES)
    keys = {signer.kid: signer.public_b64}
    python_keys = {signer.kid: signer.private.public_key()}

    # every command, exactly as it arrived, verifies in JavaScript; and in Python, as the reference agents check
    verdicts = _node(node, payloads, keys)
    assert verdicts == ["ok"] * len(payloads), list(zip(commands, verdicts, strict=True))
    for command in commands:
        protocol.check_command(command, python_keys, T0)

    def relay(duration_s: float) -> bytes:
        return next(p for p, c in sent if c["body"].get("stream", {}).get("duration_s") == duration_s)

    relay_1800, relay_12_5 = relay(1800), relay(12.5)
    assert b'"duration_s":1800,' in relay_1800 and b'"duration_s":12.5,' in relay_12_5  # written canonically
    shows = {c["body"]["text"] for c in commands if c["type"] == "led.show"}
    assert TRICKY_TITLE in shows and protocol.strip_diacritics(TRICKY_TITLE) in shows

    # The same commands as another JSON writer puts them: keys reversed, \u escapes, 1800.0 for 1800.
    # A device re-encodes what it parsed, so none of that matters.
    rewritten = [json.dumps(dict(reversed(c.items()))).encode() for c in commands]
    rewritten.append(_edited(relay_1800, lambda c: c["body"]["stream"].__setitem__("duration_s", 1800.0)))
    assert b'"duration_s":1800.0' in rewritten[-1]
    assert _node(node, rewritten, keys) == ["ok"] * len(rewritten)

    # What a device must refuse. First the bug version 2 fixes: a command signed over Python's `1800.0`.
    unsigned_1800 = {k: v for k, v in json.loads(relay_1800).items() if k != "sig"}
    unsigned_1800["body"]["stream"]["duration_s"] = 1800.0
    v1_bytes = json.dumps(unsigned_1800, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()
    assert b'"duration_s":1800.0' in v1_bytes
    signed_over_v1_bytes = v1_bytes[:-1] + b',"sig":"' + base64.b64encode(signer.private.sign(v1_bytes)) + b'"}'
    volume = next(p for p, c in sent if c["type"] == "volume")
    forged = {
        "signed over 1800.0, not the canonical 1800": signed_over_v1_bytes,
        "one number changed (12.5 -> 12.6)": relay_12_5.replace(b'"duration_s":12.5', b'"duration_s":12.6'),
        "one number changed (volume)": _edited(volume, lambda c: c["body"].__setitem__("level", 100)),
        "start time moved": _edited(relay_1800, lambda c: c.__setitem__("start_at", "2026-11-25T01:00:00.000Z")),
        "version 1": _edited(relay_1800, lambda c: c.__setitem__("v", 1)),
    }
    assert dict(zip(forged, _node(node, list(forged.values()), keys), strict=True)) == {
        "signed over 1800.0, not the canonical 1800": "bad_signature",
        "one number changed (12.5 -> 12.6)": "bad_signature",
        "one number changed (volume)": "bad_signature",
        "start time moved": "bad_signature",
        "version 1": "bad_version",
    }
    for payload in forged.values():  # and the Python device agrees
        with pytest.raises(protocol.Refusal):
            protocol.check_command(json.loads(payload), python_keys, T0)
