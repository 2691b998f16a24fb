"""No one but the daemon can make a speaker talk: proved against a real Mosquitto, by what it delivers.

Mosquitto 2 grants every SUBSCRIBE and filters at delivery, so a SUBACK proves nothing; each test here
watches what actually arrives. A "nothing arrived" check always follows a positive control that went
the same way later (the broker delivers to one client in order, and it acknowledges a QoS 1 publish only
after routing it), so no test waits on a fixed sleep.
"""

from __future__ import annotations

import base64
import contextlib
import getpass
import hashlib
import json
import os
import pwd
import socket
import ssl
import stat
import struct
import subprocess
import sys
import threading
import time
import uuid
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from paho.mqtt.reasoncodes import ReasonCode
from sqlalchemy import func, select

from broadcaster import protocol
from broadcaster.broker.access import BrokerAccess, acl_text, broker_files
from broadcaster.broker.credentials import (
    DAEMON_SECRET_FILE,
    DAEMON_USER,
    check_password,
    hash_password,
    issue_credentials,
    new_secret,
)
from broadcaster.broker.managed import BrokerSettings, ManagedBroker, pick_port, wait_for_port
from broadcaster.broker.tls import make_ca, make_server_cert, tls_listener_lines
from broadcaster.config import DispatchConfig
from broadcaster.db import AuditEntry, Database, Delivery, DeliveryStatus, Device, DeviceKind
from broadcaster.device.agent import AgentConfig
from broadcaster.device.sinks import FileSink, NullSink
from broadcaster.device.speaker import SpeakerAgent
from broadcaster.dispatch.link import DeviceLink, share_group
from broadcaster.protocol.mqtt import BrokerAddress, connect, new_client
from broadcaster.runtime.datadir import keep_private
from broadcaster.runtime.path import DevicePath
from broadcaster.services.zones import add_device, add_village, ensure_commune
from schedules.clock import SystemClock
from tests.broadcaster.dispatch.test_dispatch import plan
from tests.broadcaster.harness import DaemonProcess, wait_for
from tests.broadcaster.harness import write_config as write_daemon_config

ROOT = Path(__file__).resolve().parents[3]
TOPICS = protocol.Topics()
A, B = "thon-1-loa", "thon-2-loa"
DAEMON = DAEMON_USER


# ---------------------------------------------------------------- a bare MQTT client that records


class Probe:
    """An MQTT client logged in with one credential, recording exactly what the broker delivers to it."""

    def __init__(
        self,
        port: int,
        username: str | None,
        password: str | None,
        *,
        client_id: str | None = None,
        host: str = "127.0.0.1",
        tls: bool = False,
        ca_file: Path | None = None,
    ) -> None:
        self.address = BrokerAddress(host, port, username, password, tls)
        self.ca_file = ca_file
        self.client = new_client(client_id or f"probe-{uuid.uuid4().hex[:8]}", persistent=False)
        self.messages: list[tuple[str, bytes]] = []
        self._lock = threading.Lock()
        self.answered = threading.Event()
        self.refused: str | None = None
        self.disconnected = threading.Event()
        self._subacks: dict[int, threading.Event] = {}
        self.client.on_connect = self._on_connect
        self.client.on_disconnect = self._on_disconnect
        self.client.on_subscribe = self._on_subscribe
        self.client.on_message = self._on_message

    def _on_connect(self, _c: mqtt.Client, _u: Any, _f: Any, reason: ReasonCode, _p: Any) -> None:
        if reason.is_failure:
            self.refused = str(reason)
            _c.disconnect()  # no retry: a refused login is the result
        self.answered.set()

    def _on_disconnect(self, *_args: Any) -> None:
        self.disconnected.set()

    def _on_subscribe(self, _c: mqtt.Client, _u: Any, mid: int, _rc: Any, _p: Any) -> None:
        self._subacks.setdefault(mid, threading.Event()).set()

    def _on_message(self, _c: mqtt.Client, _u: Any, msg: mqtt.MQTTMessage) -> None:
        with self._lock:
            self.messages.append((msg.topic, bytes(msg.payload)))

    def start(self, timeout: float = 5.0) -> Probe:
        connect(self.client, self.address, persistent=False, ca_file=self.ca_file)
        self.client.loop_start()
        assert self.answered.wait(timeout), "the broker never answered CONNECT"
        return self

    @property
    def ok(self) -> bool:
        return self.answered.is_set() and self.refused is None

    def subscribe(self, *topics: str) -> None:
        for topic in topics:
            _rc, mid = self.client.subscribe(topic, qos=1)
            assert mid is not None
            event = self._subacks.setdefault(mid, threading.Event())
            assert event.wait(5), f"no SUBACK for {topic}"

    def publish(self, topic: str, payload: bytes | dict[str, Any], *, retain: bool = False) -> None:
        """Returns once the broker acknowledged it, i.e. after the broker has routed (or dropped) it."""
        body = protocol.encode(payload) if isinstance(payload, dict) else payload
        info = self.client.publish(topic, body, qos=1, retain=retain)
        info.wait_for_publish(timeout=5)
        assert info.is_published(), f"no PUBACK for {topic}"

    def got(self) -> list[tuple[str, bytes]]:
        with self._lock:
            return list(self.messages)

    def topics(self) -> set[str]:
        return {t for t, _ in self.got()}

    def wait_for(self, topic: str, payload: bytes | None = None, timeout: float = 5.0) -> None:
        wait_for(
            lambda: any(t == topic and (payload is None or p == payload) for t, p in self.got()),
            timeout,
            f"{topic} {payload!r} to reach {self.address.username}",
            interval=0.01,
        )

    def json_on(self, topic: str) -> list[dict[str, Any]]:
        return [json.loads(p) for t, p in self.got() if t == topic and p]

    def stop(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


# ---------------------------------------------------------------- a secured commune


@dataclass
class Commune:
    broker: ManagedBroker
    passwords: dict[str, str]
    signer: protocol.Signer
    tmp: Path
    probes: list[Probe]
    agents: list[SpeakerAgent]

    @property
    def port(self) -> int:
        return self.broker.port

    def probe(self, user: str | None, password: str | None = None, **kw: Any) -> Probe:
        if user is not None and password is None:
            password = self.passwords[user]
        p = Probe(self.port, user, password, **kw).start()
        self.probes.append(p)
        return p

    def agent(self, device_id: str, groups: list[str] | None = None, sink: Any = None) -> SpeakerAgent:
        cfg = AgentConfig(
            device_id=device_id,
            kind="speaker",
            broker_url=f"mqtt://127.0.0.1:{self.port}",
            public_keys={self.signer.kid: self.signer.public_b64},
            username=device_id,
            password=self.passwords[device_id],
            state_dir=str(self.tmp / "agents" / device_id),
            groups=groups or [],
        )
        agent = SpeakerAgent(cfg, sink=sink or NullSink())
        agent.start(timeout=5)
        self.agents.append(agent)
        return agent


ZONES = {A: ["all", "thon-1"], B: ["all", "thon-2"]}


@pytest.fixture
def commune(tmp_path: Path) -> Iterator[Commune]:
    passwords = {DAEMON: new_secret(), A: new_secret(), B: new_secret()}
    devices = [(d, hash_password(passwords[d]), ZONES[d]) for d in (A, B)]
    lines = broker_files(tmp_path / "broker", DAEMON, passwords[DAEMON], devices)
    broker = ManagedBroker(tmp_path / "broker", BrokerSettings(port=0, extra_lines=lines))
    broker.start()
    signer = protocol.load_or_create_signer(tmp_path / "keys" / "daemon-ed25519.pem")
    c = Commune(broker, passwords, signer, tmp_path, [], [])
    yield c
    for agent in c.agents:
        agent.stop()
    for probe in c.probes:
        probe.stop()
    broker.stop()


def command(
    signer: protocol.Signer,
    ctype: protocol.CommandType = "ping",
    body: dict[str, Any] | None = None,
    *,
    to: str = A,
    **kw: Any,
) -> dict[str, Any]:
    now = datetime.now(UTC)
    times = {"issued_at": now, "start_at": now, "expires_at": now + timedelta(seconds=60), **kw}
    return protocol.make_command(signer, ctype, body or {}, to=to, **times)


def recipient_of(topic: str) -> str:
    """The `to` a command published on this topic names: the device, or the zone."""
    parts = topic.split("/")
    return parts[-2] if parts[-3] == "dev" else protocol.zone_recipient(parts[-2])


def acks_for(daemon: Probe, command_id: str) -> list[str]:
    return [
        json.loads(p)["state"] for t, p in daemon.got() if t.endswith("/ack") and json.loads(p).get("cmd") == command_id
    ]


def shared(topic: str) -> str:
    return f"$share/loa/{topic}"


def until_acked(daemon: Probe, topic: str, signer: protocol.Signer, timeout: float = 5.0) -> dict[str, Any]:
    """Ping until a device acks, re-sending like the daemon's outbox does: an agent's SUBSCRIBE and the
    daemon's first PUBLISH travel on different connections, so the first ping may overtake it."""
    ping = command(signer, to=recipient_of(topic))
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        daemon.publish(topic, ping)
        if wait_until(lambda: "done" in acks_for(daemon, ping["id"]), 0.25):
            return ping
    raise AssertionError(f"no ack on {topic} within {timeout}s")


def wait_until(predicate: Callable[[], bool], timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.01)
    return predicate()


# ---------------------------------------------------------------- passwords and CONNECT


def test_hash_password_is_mosquittos_own_format(tmp_path: Path) -> None:
    hashed = hash_password("bí mật", salt=b"\x01" * 12)
    _, seven, iterations, salt, digest = hashed.split("$")
    assert (seven, iterations, salt) == ("7", "101", "AQEBAQEBAQEBAQEB")
    assert digest == base64.b64encode(hashlib.pbkdf2_hmac("sha512", "bí mật".encode(), b"\x01" * 12, 101, 64)).decode()
    assert check_password("bí mật", hashed)
    assert not check_password("bi mat", hashed)

    # and it reads what the real mosquitto_passwd writes
    pwfile = tmp_path / "pw"
    subprocess.run(["mosquitto_passwd", "-c", "-b", str(pwfile), "u", "s3cret"], check=True)
    theirs = pwfile.read_text().strip().split(":", 1)[1]
    assert theirs.startswith("$7$101$")
    assert check_password("s3cret", theirs)
    assert not check_password("wrong", theirs)


def test_a_real_broker_accepts_our_hashes_and_refuses_everyone_else(tmp_path: Path) -> None:
    strong = new_secret()
    devices: list[tuple[str, str, list[str]]] = [
        (A, hash_password("pa"), []),
        (B, hash_password(strong, iterations=1000), []),  # the broker reads the count from the hash
    ]
    lines = broker_files(tmp_path / "b", DAEMON, "daemon-pw", devices)
    broker = ManagedBroker(tmp_path / "b", BrokerSettings(port=0, extra_lines=lines))
    broker.start()
    probes: list[Probe] = []
    try:

        def attempt(user: str | None, password: str | None) -> Probe:
            probes.append(Probe(broker.port, user, password).start())
            return probes[-1]

        assert attempt(DAEMON, "daemon-pw").ok
        assert attempt(A, "pa").ok
        assert attempt(B, strong).ok  # the iteration count is read from the hash
        for user, password in ((A, "wrong"), (A, None), (None, None), ("stranger", "pa"), (A, strong)):
            p = attempt(user, password)
            assert not p.ok and p.refused, (user, password)
    finally:
        for p in probes:
            p.stop()
        broker.stop()
    for name in ("passwd", "acl"):
        assert stat.S_IMODE((tmp_path / "b" / name).stat().st_mode) == 0o600


def _uid_of(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("Uid:"):
            return int(line.split()[1])  # the real uid; effective and saved follow it after setuid
    raise AssertionError(f"no Uid line for {pid}")


def test_the_managed_broker_never_runs_as_root_and_still_keeps_the_acl(commune: Commune) -> None:
    """Started by root (as this machine runs the tests), mosquitto runs as `mosquitto`; started by anyone
    else, as them. Either way devices log in and the ACL holds, reloads included."""
    assert commune.broker.pid is not None
    uid = _uid_of(commune.broker.pid)
    assert uid != 0
    assert uid == (pwd.getpwnam("mosquitto").pw_uid if os.geteuid() == 0 else os.geteuid())
    for name in ("passwd", "acl", "mosquitto.conf"):
        assert (commune.tmp / "broker" / name).stat().st_uid == uid  # it reads them again on SIGHUP
    assert commune.broker.reload()
    daemon, a = commune.probe(DAEMON), commune.probe(A)
    a.subscribe("#")
    daemon.publish(TOPICS.cmd(B), b"for B only")
    daemon.publish(TOPICS.cmd(A), b"for A")
    a.wait_for(TOPICS.cmd(A), b"for A")
    assert a.topics() == {TOPICS.cmd(A)}
    assert not commune.probe(A, "wrong password").ok


def test_who_the_managed_broker_runs_as(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    broker = ManagedBroker(tmp_path, BrokerSettings())
    monkeypatch.setattr(os, "geteuid", lambda: 1000)
    assert broker.user_line() == []  # an ordinary user: mosquitto stays that user
    monkeypatch.setattr(os, "geteuid", lambda: 0)
    assert broker.user_line() == ["user mosquitto"]
    external = ManagedBroker(tmp_path, BrokerSettings(managed=False))
    assert external.user_line() == ["user root"]  # `loa broker config` without --owner, as documented

    def no_such_user(name: str) -> Any:
        raise KeyError(name)

    monkeypatch.setattr(pwd, "getpwnam", no_such_user)
    with pytest.raises(RuntimeError, match="must not"):
        broker.user_line()  # root, and no unprivileged user to run as: refused rather than run as root


def test_the_anonymous_test_broker_still_works(broker: ManagedBroker) -> None:
    probe = Probe(broker.port, None, None).start()
    try:
        assert probe.ok
        probe.subscribe("x/y")
        probe.publish("x/y", b"hi")
        probe.wait_for("x/y", b"hi")
    finally:
        probe.stop()


# ---------------------------------------------------------------- the ACL, by what is delivered


def test_a_device_cannot_command_another_device(commune: Commune) -> None:
    daemon, a, b = commune.probe(DAEMON), commune.probe(A), commune.probe(B)
    b.subscribe(TOPICS.cmd(B), TOPICS.group_cmd("all"))
    forged = command(commune.signer, to=B)  # even a validly signed one, replayed from a recording
    a.publish(TOPICS.cmd(B), forged)
    a.publish(TOPICS.group_cmd("all"), forged)
    a.publish(TOPICS.group_cmd("thon-1"), forged)
    daemon.publish(TOPICS.cmd(B), b"from the daemon")  # the positive control
    b.wait_for(TOPICS.cmd(B), b"from the daemon")
    assert b.got() == [(TOPICS.cmd(B), b"from the daemon")]


def test_a_device_cannot_overhear_another_device(commune: Commune) -> None:
    daemon, a, b = commune.probe(DAEMON), commune.probe(A), commune.probe(B)
    a.subscribe(TOPICS.cmd(B), TOPICS.ack(B), TOPICS.status(B), "pa/v2/dev/+/cmd", "pa/v2/#", "#")
    daemon.publish(TOPICS.cmd(B), b"for B only")
    daemon.publish(TOPICS.group_cmd("thon-2"), b"for thon-2 only")
    b.publish(TOPICS.ack(B), b"B's ack")
    b.publish(TOPICS.tele(B), b"B's telemetry")
    b.publish(TOPICS.status(B), b"B's status", retain=True)
    daemon.publish(TOPICS.cmd(A), b"for A")  # the positive control, through A's wildcards
    a.wait_for(TOPICS.cmd(A), b"for A")
    assert a.topics() == {TOPICS.cmd(A)}

    a.stop()  # one session per device: a second login as A would take this one over
    late = commune.probe(A, client_id="late")  # a retained status is not readable either
    late.subscribe("#")
    daemon.publish(TOPICS.cmd(A), b"again")
    late.wait_for(TOPICS.cmd(A), b"again")
    assert late.topics() == {TOPICS.cmd(A)}


def test_a_device_cannot_speak_for_another_device(commune: Commune) -> None:
    daemon, a = commune.probe(DAEMON), commune.probe(A)
    daemon.subscribe(shared(TOPICS.all_acks()), shared(TOPICS.all_status()), shared(TOPICS.all_tele()))
    fake_ack = protocol.make_ack(str(uuid.uuid4()), "done", datetime.now(UTC))
    a.publish(TOPICS.ack(B), fake_ack)
    a.publish(TOPICS.status(B), protocol.make_status(False), retain=True)
    a.publish(TOPICS.tele(B), {"v": 2, "signal": -50})
    a.publish(TOPICS.ack(A), fake_ack)  # the positive control: its own ack is heard
    daemon.wait_for(TOPICS.ack(A))
    assert daemon.topics() == {TOPICS.ack(A)}

    daemon.stop()  # one session per user: the next login as the daemon would take this one over
    a.stop()
    watcher = commune.probe(DAEMON, client_id="watcher")  # nothing retained for B either
    watcher.subscribe(TOPICS.status(B), TOPICS.status(A))
    commune.probe(A, client_id="again").publish(TOPICS.status(A), b"A is here", retain=True)
    watcher.wait_for(TOPICS.status(A))
    assert watcher.topics() == {TOPICS.status(A)}


def test_a_device_cannot_take_over_another_devices_session(commune: Commune) -> None:
    daemon, b = commune.probe(DAEMON), commune.probe(B, client_id=B)
    b.subscribe(TOPICS.cmd(B))
    intruder = commune.probe(A, client_id=B)  # A's credential, B's client id
    assert intruder.ok  # it is let in, but as client "thon-1-loa" (use_username_as_clientid)
    intruder.subscribe(TOPICS.cmd(B))
    daemon.publish(TOPICS.cmd(B), b"still yours")
    b.wait_for(TOPICS.cmd(B), b"still yours")
    assert not b.disconnected.is_set()
    assert intruder.got() == []


def test_the_daemon_commands_every_device_and_hears_acks_through_its_shared_subscription(
    commune: Commune,
) -> None:
    daemon = commune.probe(DAEMON)
    daemon.subscribe(shared(TOPICS.all_acks()), shared(TOPICS.all_status()))
    commune.agent(A)
    commune.agent(B)
    for device in (A, B):
        until_acked(daemon, TOPICS.cmd(device), commune.signer)
    assert {t for t in daemon.topics() if t.endswith("/ack")} == {TOPICS.ack(A), TOPICS.ack(B)}
    wait_for(lambda: {TOPICS.status(A), TOPICS.status(B)} <= daemon.topics(), 5, "both statuses")


def test_a_device_that_joins_the_daemons_shared_subscription_costs_it_no_report(commune: Commune) -> None:
    """Mosquitto granted a device's SUBSCRIBE to `$share/loa/...` and handed it every other report of the
    daemon's group, which the ACL then dropped: devices that played were recorded as expired. Measured by
    what the daemon stores: every delivery a device acked is done."""
    db = Database(f"sqlite:///{commune.tmp / 'loa.sqlite3'}")
    db.upgrade()
    with db.session() as s:
        ensure_commune(s, "Xã")
        for device, (_all, village) in ZONES.items():
            add_village(s, village, village)
            add_device(s, device, DeviceKind.SPEAKER, village)
    address = BrokerAddress("127.0.0.1", commune.port, DAEMON, commune.passwords[DAEMON])
    path = DevicePath.build(
        db, SystemClock(), DispatchConfig(lead_s=60, validity_s=600), commune.signer, address,
        lambda sha, ext: f"http://127.0.0.1:9/audio/{sha}.{ext}",
    )  # fmt: skip
    intruder = commune.probe(A)  # a credential from a stolen speaker joins every group it can think of
    reports = (TOPICS.all_acks(), TOPICS.all_status(), TOPICS.all_tele())
    for group in ("loa", DAEMON, "daemon", share_group(""), share_group(A)):
        intruder.subscribe(*(f"$share/{group}/{topic}" for topic in reports))
    b = commune.probe(B)
    b.subscribe(TOPICS.cmd(B))
    path.start(dispatch=False)
    try:
        start = datetime.now(UTC) + timedelta(seconds=60)
        for n in range(20):
            path.dispatcher.dispatch(plan(db, start + timedelta(minutes=n), zone=ZONES[B][1]))
        wait_for(lambda: len(b.json_on(TOPICS.cmd(B))) == 20, 10, "twenty commands for B")
        for cmd in b.json_on(TOPICS.cmd(B)):
            b.publish(TOPICS.ack(B), protocol.make_ack(cmd["id"], "done", datetime.now(UTC)))
        b.publish(TOPICS.tele(B), {"v": 2, "at": protocol.format_time(datetime.now(UTC)), "signal": -60})

        def done() -> int:
            with db.session() as s:
                return len(s.scalars(select(Delivery).where(Delivery.status == DeliveryStatus.DONE)).all())

        wait_for(lambda: done() == 20, 10, "every acked delivery recorded done")
        wait_for(lambda: (d := _device_row(db, B)) is not None and d.signal == -60, 5, "B's telemetry")
        assert intruder.got() == []
    finally:
        path.stop()
        db.dispose()


def _device_row(db: Database, device_id: str) -> Device | None:
    with db.session() as s:
        return s.get(Device, device_id)


def test_an_upgraded_daemon_leaves_the_old_group_its_session_was_in(broker: ManagedBroker, tmp_path: Path) -> None:
    """A daemon from before the secret group left its persistent session in `$share/loa/...`: the new
    one takes it out, or each report would come twice (and a device in `loa` would still get copies)."""
    from tests.broadcaster.dispatch.test_bad_input import Heard

    old = new_client("loa-daemon", persistent=True)
    subscribed = threading.Event()
    old.on_subscribe = lambda *_: subscribed.set()
    old.on_connect = lambda c, *_: c.subscribe(shared(TOPICS.all_acks()), qos=1)
    connect(old, BrokerAddress.parse(broker.url), persistent=True)
    old.loop_start()
    assert subscribed.wait(5)
    old.disconnect()
    old.loop_stop()

    db = Database(f"sqlite:///{tmp_path / 'loa.sqlite3'}")
    writer = Heard(db)
    link = DeviceLink(BrokerAddress.parse(broker.url), TOPICS, writer, writer.metrics, "loa-daemon", group="g")
    link.start()
    device = Probe(broker.port, None, None, client_id=A).start()
    try:
        device.publish(TOPICS.ack(A), {"v": 2, "n": "warm"})  # the link's SUBSCRIBE and UNSUBSCRIBE are in
        wait_for(lambda: writer.heard, 5, "the first ack")
        for n in range(3):
            device.publish(TOPICS.ack(A), {"v": 2, "n": n})
        device.publish(TOPICS.ack(A), {"v": 2, "n": "last"})
        wait_for(lambda: any(h.get("n") == "last" for h in writer.heard), 5, "the last ack")
        assert [h["n"] for h in writer.heard if h["n"] != "warm"] == [0, 1, 2, "last"]  # each once
    finally:
        device.stop()
        link.stop()
        db.dispose()


def test_the_daemons_group_is_derived_from_its_secret() -> None:
    """Unguessable without the daemon's password, the same for instances that share it, never `loa`."""
    one, other = new_secret(), new_secret()
    assert share_group(one) == share_group(one) != share_group(other)
    assert share_group(one) != "loa" and one not in share_group(one) and len(share_group(one)) == 36


def test_a_device_hears_its_own_zones_and_no_other(commune: Commune) -> None:
    daemon, a = commune.probe(DAEMON), commune.probe(A)
    a.subscribe(*(TOPICS.group_cmd(z) for z in ("all", "thon-1", "thon-2", "other")))
    for zone in ("thon-2", "other", "all", "thon-1"):
        daemon.publish(TOPICS.group_cmd(zone), zone.encode())
    a.wait_for(TOPICS.group_cmd("thon-1"))
    assert a.got() == [(TOPICS.group_cmd("all"), b"all"), (TOPICS.group_cmd("thon-1"), b"thon-1")]

    # and a real agent whose config asks for more than its zones still hears only its own
    daemon.subscribe(shared(TOPICS.all_acks()))
    agent = commune.agent(B, groups=["thon-1", "all", "thon-2"])  # subscribed in this order
    until_acked(daemon, TOPICS.group_cmd("thon-2"), commune.signer)  # so thon-1's is in place too
    wrong = command(commune.signer, to=protocol.zone_recipient("thon-1"))  # B's config claims thon-1 too
    right = command(commune.signer, to=protocol.zone_recipient("thon-2"))
    daemon.publish(TOPICS.group_cmd("thon-1"), wrong)
    daemon.publish(TOPICS.group_cmd("thon-2"), right)
    wait_for(lambda: "done" in acks_for(daemon, right["id"]), 5, "B acks its zone's ping")
    # the agent records ids in delivery order, on its network thread
    assert wrong["id"] not in agent.core.seen and right["id"] in agent.core.seen


# ---------------------------------------------------------------- the signature wall, on a real speaker


def test_a_speaker_plays_only_fresh_commands_signed_by_the_daemon(commune: Commune) -> None:
    daemon = commune.probe(DAEMON)
    daemon.subscribe(shared(TOPICS.all_acks()))
    state = commune.tmp / "agents" / A
    audio = b"ID3 not really an mp3, but the speaker only checks its hash"
    sha = hashlib.sha256(audio).hexdigest()
    (state / "audio").mkdir(parents=True)
    (state / "audio" / f"{sha}.mp3").write_bytes(audio)  # already downloaded: no HTTP needed
    agent = commune.agent(A, sink=FileSink(state / "played"))
    until_acked(daemon, TOPICS.cmd(A), commune.signer)
    body = {
        "title": "Họp thôn",
        "audio": {"url": "http://127.0.0.1:9/x.mp3", "sha256": sha, "size": len(audio), "duration_ms": 20},
    }

    def played() -> int:
        log = state / "played" / "played.jsonl"
        return len(log.read_text().splitlines()) if log.exists() else 0

    genuine = command(commune.signer, "play", body)
    daemon.publish(TOPICS.cmd(A), genuine)
    wait_for(lambda: "done" in acks_for(daemon, genuine["id"]), 5, "the genuine command played")
    assert played() == 1

    attacker = protocol.Signer(Ed25519PrivateKey.generate())
    own_key = command(attacker, "play", body)
    claims_daemon_kid = {**command(attacker, "play", body), "kid": commune.signer.kid}
    unsigned = {k: v for k, v in claims_daemon_kid.items() if k != "sig"}
    claims_daemon_kid["sig"] = base64.b64encode(attacker.private.sign(protocol.canonical(unsigned))).decode()
    tampered = {**command(commune.signer, "play", body), "priority": "emergency"}
    for forged in (own_key, claims_daemon_kid, tampered):
        daemon.publish(TOPICS.cmd(A), forged)
    wait_for(lambda: agent.refused.get("bad_signature") == 3, 5, "three forgeries refused")

    daemon.publish(TOPICS.cmd(A), genuine)  # replayed: the same id again
    wait_for(lambda: acks_for(daemon, genuine["id"]).count("done") == 2, 5, "the replay re-acked")

    past = datetime.now(UTC) - timedelta(minutes=5)
    expired = command(
        commune.signer, "play", body, issued_at=past, start_at=past, expires_at=past + timedelta(minutes=1)
    )
    daemon.publish(TOPICS.cmd(A), expired)
    wait_for(lambda: acks_for(daemon, expired["id"]) == ["expired"], 5, "the expired command acked")

    assert played() == 1
    for forged in (own_key, claims_daemon_kid, tampered):
        assert acks_for(daemon, forged["id"]) == []


# ---------------------------------------------------------------- reloading access


def test_reload_admits_new_devices_and_shuts_out_revoked_ones(tmp_path: Path) -> None:
    db = Database(f"sqlite:///{tmp_path / 'loa.sqlite3'}")
    db.upgrade()
    secrets: dict[str, str] = {}
    with db.session() as s:
        ensure_commune(s, "Xã")
        add_village(s, "thon-1", "Thôn 1")
        secrets[A] = issue_credentials(add_device(s, A, DeviceKind.SPEAKER, "thon-1"))
    access = BrokerAccess(db, tmp_path / "broker", DAEMON, "daemon-pw")
    broker = ManagedBroker(tmp_path / "broker", BrokerSettings(port=0, extra_lines=access.write()))
    broker.start()

    def login(user: str) -> bool:
        probe = Probe(broker.port, user, secrets[user]).start()
        probe.stop()  # one session per user: keep none open to be taken over by the next try
        return probe.ok

    try:
        assert login(A)
        assert access.refresh(broker) is False  # nothing changed, nothing reloaded
        held = Probe(broker.port, A, secrets[A]).start()  # A stays connected throughout
        with db.session() as s:
            secrets[B] = issue_credentials(add_device(s, B, DeviceKind.SPEAKER, "thon-1"))
        assert not login(B)
        assert access.refresh(broker) is True
        wait_for(lambda: login(B), 5, "B admitted after the reload")
        with db.session() as s:
            device = s.get(Device, A)
            assert device is not None
            device.broker_password_hash = ""  # revoked
        assert not held.disconnected.is_set()  # reloading kept everyone connected
        assert access.refresh(broker) is True
        assert held.disconnected.wait(5), "the revoked device is disconnected at once"
        held.stop()
        assert not login(A)
        assert broker.restarts == 0
    finally:
        broker.stop()
        db.dispose()


def test_acl_text_refuses_names_that_would_widen_a_topic() -> None:
    for bad in ("+", "#", "a/b", "a b", "", "$SYS", "x\nuser loa-daemon"):
        with pytest.raises(ValueError):
            acl_text([DAEMON], [(bad, [])])
        with pytest.raises(ValueError):
            acl_text([DAEMON], [(A, [bad])])
    with pytest.raises(ValueError):
        acl_text([DAEMON], [(DAEMON, [])])
    with pytest.raises(ValueError):
        acl_text([DAEMON], [], prefix="pa/+")


# ---------------------------------------------------------------- TLS


def test_a_tls_broker_accepts_an_agent_that_trusts_the_commune_ca(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Inside the broker's folder: a managed broker reads them after dropping root, from where it runs.
    tls_dir = tmp_path / "broker" / "tls"
    tls = make_server_cert(tls_dir, ["localhost", "127.0.0.1"])
    for key in (tls.key, tls_dir / "ca.key"):
        assert stat.S_IMODE(key.stat().st_mode) == 0o600
    ca_again = make_ca(tls_dir)
    assert ca_again.cert.read_bytes() == tls.ca_cert.read_bytes()  # the CA is made once

    passwords = {DAEMON: new_secret(), A: new_secret()}
    lines = broker_files(
        tmp_path / "broker", DAEMON, passwords[DAEMON], [(A, hash_password(passwords[A]), ["all"])]
    )
    tls_port = pick_port("127.0.0.1", 0)
    lines += tls_listener_lines(tls, tls_port, "127.0.0.1")
    broker = ManagedBroker(tmp_path / "broker", BrokerSettings(port=0, extra_lines=lines))
    broker.start()
    probes: list[Probe] = []
    agent: SpeakerAgent | None = None
    try:
        assert wait_for_port("127.0.0.1", tls_port, 5)
        # without the CA the handshake fails; with it, it succeeds (for the name in the certificate)
        with pytest.raises(ssl.SSLCertVerificationError), socket.create_connection(("127.0.0.1", tls_port)) as raw:
            ssl.create_default_context().wrap_socket(raw, server_hostname="localhost")
        ctx = ssl.create_default_context(cafile=str(tls.ca_cert))
        with (
            socket.create_connection(("127.0.0.1", tls_port)) as raw,
            ctx.wrap_socket(raw, server_hostname="localhost"),
        ):
            pass

        daemon = Probe(tls_port, DAEMON, passwords[DAEMON], host="localhost", tls=True, ca_file=tls.ca_cert)
        probes.append(daemon.start())
        assert daemon.ok
        daemon.subscribe(shared(TOPICS.all_acks()))
        no_password = Probe(tls_port, A, "wrong", host="localhost", tls=True, ca_file=tls.ca_cert)
        probes.append(no_password.start())
        assert not no_password.ok  # TLS does not replace the password

        # A device agent from its provisioned config, trusting the commune's CA named there.
        signer = protocol.load_or_create_signer(tmp_path / "keys" / "k.pem")
        cfg = AgentConfig(
            device_id=A,
            kind="speaker",
            broker_url=f"mqtts://localhost:{tls_port}",
            public_keys={signer.kid: signer.public_b64},
            username=A,
            password=passwords[A],
            state_dir=str(tmp_path / "agent"),
            ca_file=str(tls.ca_cert),
        )
        agent = SpeakerAgent(cfg, sink=NullSink())
        agent.start(timeout=5)
        until_acked(daemon, TOPICS.cmd(A), signer)
    finally:
        if agent:
            agent.stop()
        for p in probes:
            p.stop()
        broker.stop()


# ---------------------------------------------------------------- `loa device add`, `loa broker config`


def loa_here(
    data: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], *args: str
) -> tuple[int, str, str]:
    """`loa` in this process, for the many refusal cases; the end-to-end test runs the real command."""
    from broadcaster.cli.main import main

    monkeypatch.setenv("LOA_GENERAL_DATA_DIR", str(data))
    monkeypatch.delenv("LOA_CONFIG", raising=False)
    capsys.readouterr()
    code = main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


def loa(data: Path, *args: str, port: int = 1883) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "LOA_GENERAL_DATA_DIR": str(data), "LOA_BROKER_PORT": str(port)}
    env.pop("LOA_CONFIG", None)
    return subprocess.run(
        [sys.executable, "-m", "broadcaster.cli", *args],
        capture_output=True,
        text=True,
        env=env,
        cwd=ROOT,
        timeout=60,
    )


@pytest.fixture
def data_dir(tmp_path: Path) -> Iterator[Path]:
    data = tmp_path / "data"
    db = Database(f"sqlite:///{data / 'loa.sqlite3'}")
    db.upgrade()
    with db.session() as s:
        ensure_commune(s, "Xã thử nghiệm")
        add_village(s, "thon-1", "Thôn 1")
    db.dispose()
    # As a daemon leaves it: where its managed broker listened (`loa device add` hands devices that).
    runtime = {"api_url": "http://127.0.0.1:8080", "broker_url": f"mqtt://{DAEMON}@127.0.0.1:18830", "pid": 0}
    (data / "runtime.json").write_text(json.dumps(runtime))
    yield data


def _devices(data: Path) -> list[Device]:
    db = Database(f"sqlite:///{data / 'loa.sqlite3'}")
    try:
        with db.session() as s:
            return list(s.scalars(select(Device)))
    finally:
        db.dispose()


def _png_size(path: Path) -> tuple[int, int]:
    raw = path.read_bytes()
    assert raw[:8] == b"\x89PNG\r\n\x1a\n"
    width, height = struct.unpack(">II", raw[16:24])
    length = struct.unpack(">I", raw[33:37])[0]
    assert raw[37:41] == b"IDAT"
    pixels = zlib.decompress(raw[41 : 41 + length])
    assert len(pixels) == height * (width + 1)
    return width, height


@pytest.fixture
def mosquitto_from(tmp_path: Path) -> Iterator[Callable[[Path, int], None]]:
    procs: list[subprocess.Popen[bytes]] = []

    def start(conf: Path, port: int) -> None:
        log = (tmp_path / "mosquitto.log").open("ab")
        binary = ManagedBroker(tmp_path, BrokerSettings()).binary()
        procs.append(subprocess.Popen([binary, "-c", str(conf)], stdout=log, stderr=subprocess.STDOUT))
        log.close()
        assert wait_for_port("127.0.0.1", port, 10), (tmp_path / "mosquitto.log").read_text()

    yield start
    for proc in procs:
        proc.terminate()
        proc.wait(timeout=10)


def test_device_add_provisions_a_speaker_that_works_end_to_end(
    tmp_path: Path, data_dir: Path, mosquitto_from: Callable[[Path, int], None]
) -> None:
    port = pick_port("127.0.0.1", 0)
    out = tmp_path / "provisioned" / "loa1.json"
    r = loa(
        data_dir,
        "device", "add", A, "--kind", "speaker", "--village", "thon-1", "--name", "Loa thôn 1",
        "--broker-url", f"mqtt://127.0.0.1:{port}", "--out", str(out),
    )  # fmt: skip
    assert r.returncode == 0, r.stderr
    assert "█" in r.stdout and "Hướng dẫn cho kỹ thuật viên" in r.stdout
    assert f"loa agent speaker --config {out.name}" in r.stdout

    cfg = AgentConfig.load(out)
    signer = protocol.load_or_create_signer(data_dir / "keys" / "daemon-ed25519.pem")
    assert (cfg.device_id, cfg.kind, cfg.username) == (A, "speaker", A)
    assert cfg.broker_url == f"mqtt://127.0.0.1:{port}"
    assert cfg.public_keys == {signer.kid: signer.public_b64}
    assert cfg.groups == ["all", "thon-1"] and cfg.topic_prefix == "pa/v2" and cfg.diacritics
    stored = b"".join(p.read_bytes() for p in data_dir.glob("loa.sqlite3*"))
    assert cfg.password and cfg.password.encode() not in stored
    png = out.with_suffix(".png")
    for path in (out, png):
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
    width, height = _png_size(png)
    assert width == height >= 21 * 8
    [device] = _devices(data_dir)
    assert (device.id, device.village_id, device.name) == (A, "thon-1", "Loa thôn 1")
    assert check_password(cfg.password, device.broker_password_hash)
    db = Database(f"sqlite:///{data_dir / 'loa.sqlite3'}")
    with db.session() as s:
        entry = s.scalars(select(AuditEntry).where(AuditEntry.action == "device.add")).one()
        # the technician the server's login authenticated: the account running `loa`
        assert entry.actor == getpass.getuser() and json.loads(entry.detail)["device"] == A
        assert cfg.password not in entry.detail
    db.dispose()

    r = loa(data_dir, "broker", "config", "--out", str(tmp_path / "mq"), port=port)
    assert r.returncode == 0, r.stderr
    mosquitto_from(tmp_path / "mq" / "mosquitto.conf", port)
    daemon_password = (data_dir / "keys" / DAEMON_SECRET_FILE).read_text().strip()
    daemon = Probe(port, DAEMON, daemon_password).start()
    cfg.state_dir = str(tmp_path / "agent")
    agent = SpeakerAgent(cfg, sink=NullSink())
    try:
        assert daemon.ok
        daemon.subscribe(shared(TOPICS.all_acks()))
        agent.start(timeout=5)
        until_acked(daemon, TOPICS.cmd(A), signer)
        anonymous = Probe(port, None, None).start()
        assert not anonymous.ok
        anonymous.stop()
    finally:
        agent.stop()
        daemon.stop()


@pytest.mark.parametrize(
    ("args", "code"),
    [
        (["--village", "thon-9"], "unknown_zone"),
        (["--village", "all"], "unknown_zone"),  # the commune is not a village
        (["--village", "thon-1", "--group", "nowhere"], "unknown_zone"),
        (["--village", "thon-1", "--broker-url", "http://x"], "bad_broker_url"),
    ],
)
def test_device_add_refuses_bad_input_and_stores_nothing(
    tmp_path: Path,
    data_dir: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    args: list[str],
    code: str,
) -> None:
    out = tmp_path / "x.json"
    rc, _, err = loa_here(
        data_dir, monkeypatch, capsys, "device", "add", A, "--kind", "speaker", *args, "--out", str(out)
    )
    assert rc == 2
    assert f"({code})" in err and "Lỗi:" in err
    assert _devices(data_dir) == []
    assert not out.exists() and not out.with_suffix(".png").exists()


@pytest.mark.parametrize("bad_id", ["thon/1", "#", "a" * 65, DAEMON])
def test_device_add_refuses_ids_unfit_for_the_broker(
    data_dir: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], bad_id: str
) -> None:
    rc, _, err = loa_here(
        data_dir, monkeypatch, capsys, "device", "add", bad_id, "--kind", "led", "--village", "thon-1"
    )
    assert rc == 2 and "(bad_device_id)" in err
    assert _devices(data_dir) == []


def test_device_add_twice_keeps_the_first_provisioning(
    tmp_path: Path, data_dir: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    first, second = tmp_path / "first.json", tmp_path / "second.json"
    add = ("device", "add", A, "--village", "thon-1", "--no-qr", "--out")
    rc, _, err = loa_here(data_dir, monkeypatch, capsys, *add, str(first), "--kind", "speaker")
    assert rc == 0, err
    before = first.read_bytes()
    [device] = _devices(data_dir)
    rc, _, err = loa_here(data_dir, monkeypatch, capsys, *add, str(second), "--kind", "led")
    assert rc == 2 and "(device_exists)" in err
    [again] = _devices(data_dir)
    assert again.broker_password_hash == device.broker_password_hash and again.kind is DeviceKind.SPEAKER
    assert first.read_bytes() == before and not second.exists()
    db = Database(f"sqlite:///{data_dir / 'loa.sqlite3'}")
    with db.session() as s:
        assert s.scalar(select(func.count()).select_from(AuditEntry)) == 1
    db.dispose()


def test_device_add_refuses_to_guess_the_broker_before_any_daemon_ran(
    tmp_path: Path, data_dir: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    (data_dir / "runtime.json").unlink()
    out = tmp_path / "x.json"
    rc, _, err = loa_here(
        data_dir, monkeypatch, capsys, "device", "add", A, "--kind", "speaker", "--village", "thon-1", "--out", str(out)
    )
    assert rc == 2 and "(broker_url_unknown)" in err and "--broker-url" in err
    assert _devices(data_dir) == [] and not out.exists()


def test_device_add_hands_a_device_the_broker_the_daemon_really_runs(tmp_path: Path, data_dir: Path) -> None:
    """The configured port (1883) was written into every device's config. When it was taken the managed
    broker moved elsewhere, and whoever held it (on this machine, another Mosquitto) would have been
    handed the device's password at its first CONNECT."""
    (data_dir / "runtime.json").unlink()  # the daemon writes its own
    rogue = socket.create_server(("127.0.0.1", 0))
    port = rogue.getsockname()[1]
    knocks: list[bytes] = []

    def listen() -> None:
        while True:
            try:
                conn, _ = rogue.accept()
            except OSError:
                return
            with conn:
                conn.settimeout(2)
                with contextlib.suppress(OSError):
                    knocks.append(conn.recv(1024))

    threading.Thread(target=listen, daemon=True).start()
    url = f"sqlite:///{data_dir / 'loa.sqlite3'}"
    config = write_daemon_config(tmp_path / "loa.toml", data_dir, url, "")
    config.write_text(config.read_text().replace('[broker]\nurl = ""\nport = 0', f'[broker]\nurl = ""\nport = {port}'))
    daemon = DaemonProcess(config, data_dir, tmp_path / "daemon.log").start()
    agent: SpeakerAgent | None = None
    try:
        out = tmp_path / "loa1.json"
        r = loa(data_dir, "device", "add", A, "--kind", "speaker", "--village", "thon-1", "--no-qr", "--out", str(out),
                port=port)  # fmt: skip
        assert r.returncode == 0, r.stderr
        cfg = AgentConfig.load(out)
        real = BrokerAddress.parse(json.loads((data_dir / "runtime.json").read_text())["broker_url"]).port
        assert real != port and cfg.broker_url == f"mqtt://127.0.0.1:{real}"
        cfg.state_dir = str(tmp_path / "agent")
        agent = SpeakerAgent(cfg, sink=NullSink())
        agent.start(timeout=10)  # the daemon lets it in within seconds (BrokerAccess)
        wait_for(lambda: _devices(data_dir)[0].online, 10, "the new device online at the daemon")
        assert knocks == []
    finally:
        if agent:
            agent.stop()
        daemon.stop()
        rogue.close()


def test_broker_config_covers_every_provisioned_device(
    data_dir: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    for device_id, kind in ((A, "speaker"), ("thon-1-led", "led")):
        add = ("device", "add", device_id, "--kind", kind, "--village", "thon-1", "--no-qr")
        rc, _, err = loa_here(data_dir, monkeypatch, capsys, *add)
        assert rc == 0, err
    rc, _, err = loa_here(
        data_dir, monkeypatch, capsys, "broker", "config", "--tls-port", "8883", "--tls-host", "loa.local"
    )
    assert rc == 0, err
    out = (data_dir / "mosquitto").resolve()
    users = [line.split(":", 1)[0] for line in (out / "passwd").read_text().splitlines()]
    assert sorted(users) == sorted([DAEMON, A, "thon-1-led"])
    acl = (out / "acl").read_text()
    assert "pattern read pa/v2/dev/%u/cmd" in acl and "topic read pa/v2/zone/thon-1/cmd" in acl
    conf = (out / "mosquitto.conf").read_text()
    assert f"password_file {out / 'passwd'}" in conf and "allow_anonymous false" in conf
    assert conf.count("use_username_as_clientid true") == 2  # one per listener
    assert "listener 8883" in conf and f"certfile {out / 'tls' / 'server.crt'}" in conf
    assert "allow_anonymous true" not in conf


def test_broker_config_refuses_an_unknown_owner(
    data_dir: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    rc, _, err = loa_here(data_dir, monkeypatch, capsys, "broker", "config", "--owner", "no-such-user-here")
    assert rc == 2 and "(unknown_user)" in err
    assert not (data_dir / "mosquitto" / "passwd").exists()


@pytest.mark.skipif(os.geteuid() != 0, reason="only root can hand files to the mosquitto user")
def test_a_system_mosquitto_reads_its_files_in_the_closed_data_folder(
    tmp_path: Path, mosquitto_from: Callable[[Path, int], None]
) -> None:
    """`loa broker config --owner mosquitto` into the data folder, which the daemon keeps closed to other
    users: a system Mosquitto, started by root, drops to `mosquitto` and must still read its files."""
    import shutil
    import tempfile

    outside = Path(tempfile.mkdtemp(dir="/tmp"))  # a folder others may pass through, as /var/lib is
    umask = os.umask(0o022)
    try:
        outside.chmod(0o711)
        data = outside / "data"
        db = Database(f"sqlite:///{data / 'loa.sqlite3'}")
        db.upgrade()
        with db.session() as s:
            ensure_commune(s, "Xã")
            add_village(s, "thon-1", "Thôn 1")
            password = issue_credentials(add_device(s, A, DeviceKind.SPEAKER, "thon-1"))
        db.dispose()
        keep_private(data)
        port = pick_port("127.0.0.1", 0)
        r = loa(data, "broker", "config", "--owner", "mosquitto", port=port)
        assert r.returncode == 0, r.stderr
        keep_private(data)  # the daemon's next start does not shut it out again
        mode = data.stat()
        assert stat.S_IMODE(mode.st_mode) == 0o750 and mode.st_gid == pwd.getpwnam("mosquitto").pw_gid
        assert "user mosquitto" in (data / "mosquitto" / "mosquitto.conf").read_text()
        mosquitto_from(data / "mosquitto" / "mosquitto.conf", port)
        for secret, admitted in ((password, True), ("wrong", False)):
            device = Probe(port, A, secret).start()
            device.stop()
            assert device.ok is admitted
    finally:
        os.umask(umask)  # keep_private set the daemon's; this is the test runner
        shutil.rmtree(outside, ignore_errors=True)
