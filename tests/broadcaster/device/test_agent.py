"""The reference agent as a technician installs it: alone on its small computer, over a real broker.

The core's decisions are proven in test_core.py; here the driver: threads, a real MQTT session,
real downloads, a real ffmpeg for relays, and an install that carries only the device side.
"""

from __future__ import annotations

import functools
import hashlib
import http.server
import json
import os
import re
import subprocess
import sys
import threading
import time
import tomllib
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from packaging.requirements import Requirement

from bench.common import device_site
from broadcaster import protocol
from broadcaster.broker.managed import ManagedBroker
from broadcaster.device.config import AgentConfig, AgentConfigError
from broadcaster.device.fetch import HashMismatch, fetch_until
from broadcaster.device.sinks import NullSink
from broadcaster.device.speaker import SpeakerAgent
from broadcaster.protocol.mqtt import BrokerAddress, connect, new_client
from tests.broadcaster.harness import ROOT, wait_for


class Daemonish:
    """A bare client in the daemon's place: publishes commands, collects acks per command id."""

    def __init__(self, broker: ManagedBroker) -> None:
        self.acks: dict[str, list[dict[str, Any]]] = {}
        self.status: dict[str, dict[str, Any]] = {}
        self.client = new_client("test-daemon", persistent=False)
        ready = threading.Event()
        topics = protocol.Topics()

        def on_connect(c: Any, *_: Any) -> None:
            c.subscribe(topics.all_acks(), qos=1)
            c.subscribe(topics.all_status(), qos=1)

        def on_message(_c: Any, _u: Any, m: Any) -> None:
            data = json.loads(m.payload) if m.payload else {}
            if m.topic.endswith("/ack"):
                self.acks.setdefault(data["cmd"], []).append(data)
            else:
                self.status[m.topic.split("/")[-2]] = data

        self.client.on_connect = on_connect
        self.client.on_subscribe = lambda *_: ready.set()
        self.client.on_message = on_message
        connect(self.client, BrokerAddress.parse(broker.url), persistent=False)
        self.client.loop_start()
        assert ready.wait(5)

    def send(self, device_id: str, command: dict[str, Any]) -> str:
        self.client.publish(protocol.Topics().cmd(device_id), protocol.encode(command), qos=1).wait_for_publish(5)
        return str(command["id"])

    def states(self, cid: str) -> list[str]:
        return [a["state"] for a in self.acks.get(cid, [])]

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


@pytest.fixture
def daemon(broker: ManagedBroker) -> Iterator[Daemonish]:
    d = Daemonish(broker)
    yield d
    d.close()


@pytest.fixture
def www(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    root = tmp_path / "www"
    root.mkdir()
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(root))
    handler.log_message = lambda *_: None  # type: ignore[method-assign]
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}", root
    server.shutdown()


def play(
    signer: protocol.Signer, body: dict[str, Any], start_in: float, to: str = "thon-1-loa", **kw: Any
) -> dict[str, Any]:
    now = datetime.now(UTC)
    return protocol.make_command(
        signer, "play", body, to=to, issued_at=now, start_at=now + timedelta(seconds=start_in),
        expires_at=now + timedelta(minutes=5), **kw,
    )  # fmt: skip


def audio_body(www: tuple[str, Path], name: str, data: bytes, duration_ms: int) -> dict[str, Any]:
    (www[1] / name).write_bytes(data)
    sha = hashlib.sha256(data).hexdigest()
    return {"title": name, "audio": {"url": f"{www[0]}/{name}", "sha256": sha, "size": len(data),
                                     "duration_ms": duration_ms, "format": "mp3"}}  # fmt: skip


def agent_config(tmp_path: Path, broker: ManagedBroker, signer: protocol.Signer, **kw: Any) -> AgentConfig:
    return AgentConfig(
        device_id="thon-1-loa",
        kind="speaker",
        broker_url=broker.url,
        public_keys={signer.kid: signer.public_b64},
        state_dir=str(tmp_path / "agent"),
        **kw,
    )


def test_an_emergency_cuts_a_bulletin_on_a_real_speaker(
    tmp_path: Path, broker: ManagedBroker, daemon: Daemonish, www: tuple[str, Path]
) -> None:
    signer = protocol.load_or_create_signer(tmp_path / "k.pem")
    sink = NullSink()
    agent = SpeakerAgent(agent_config(tmp_path, broker, signer, sink="null"), sink=sink)
    agent.start()
    try:
        wait_for(lambda: daemon.status.get("thon-1-loa", {}).get("online"), 5, "the speaker online")
        bulletin = daemon.send("thon-1-loa", play(signer, audio_body(www, "b.mp3", b"bulletin", 30_000), 1))
        alert = daemon.send(
            "thon-1-loa", play(signer, audio_body(www, "e.mp3", b"alert", 500), 2.5, priority="emergency")
        )
        wait_for(lambda: "done" in daemon.states(alert), 10, "the alert played")
        assert daemon.states(bulletin) == ["received", "downloaded", "playing", "failed"]
        assert daemon.acks[bulletin][-1]["reason"] == "preempted"
        assert daemon.states(alert) == ["received", "downloaded", "playing", "done"]
        assert abs(daemon.acks[alert][2]["start_error_ms"]) < 200
    finally:
        agent.stop()


def test_a_relay_whose_stream_cannot_be_opened_is_reported_failed(
    tmp_path: Path, broker: ManagedBroker, daemon: Daemonish
) -> None:
    """Not `done`: nobody heard it (the README's placeholder URL did exactly this)."""
    signer = protocol.load_or_create_signer(tmp_path / "k.pem")
    agent = SpeakerAgent(agent_config(tmp_path, broker, signer, sink="file"))
    agent.start()
    try:
        wait_for(lambda: daemon.status.get("thon-1-loa", {}).get("online"), 5, "the speaker online")
        closed = f"http://127.0.0.1:{_closed_port()}/vov1"
        body = {"title": "VOV1", "stream": {"url": closed, "duration_s": 5}}
        relay = daemon.send("thon-1-loa", play(signer, body, 1))
        wait_for(lambda: daemon.states(relay)[-1:] == ["failed"], 15, "the relay reported")
        assert daemon.states(relay) == ["received", "playing", "failed"]
        assert daemon.acks[relay][-1]["reason"].startswith("stream_unreachable: ")
        assert daemon.acks[relay][-1]["played_s"] == 0
    finally:
        agent.stop()


def _closed_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_a_config_file_with_a_mistake_names_the_field(tmp_path: Path) -> None:
    good = {"device_id": "d", "kind": "speaker", "broker_url": "mqtt://h:1883", "public_keys": {"k": "AAAA"}}
    for field, value in (("kind", "siren"), ("broker_url", "http://h"), ("public_keys", {}), ("sink", "hdmi"),
                         ("tele_s", -1), ("groups", "all")):  # fmt: skip
        path = tmp_path / f"{field}.json"
        path.write_text(json.dumps({**good, field: value}))
        with pytest.raises(AgentConfigError, match=field):
            AgentConfig.load(path)
    (tmp_path / "ok.json").write_text(json.dumps({**good, "from_a_newer_daemon": 1}))
    assert AgentConfig.load(tmp_path / "ok.json").device_id == "d"


# ---------------------------------------------------------------- a device install: the base dependencies only


def test_the_base_install_is_only_the_device_side() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    names = {re.sub(r"[-_.]+", "-", Requirement(r).name).lower() for r in project["dependencies"]}
    assert names == {"paho-mqtt", "cryptography", "rfc8785"}
    server = {Requirement(r).name.lower() for r in project["optional-dependencies"]["server"]}
    assert {"sqlalchemy", "fastapi", "numpy", "scipy", "pydub", "gtts", "apscheduler"} <= server


def test_loa_agent_runs_and_plays_with_only_the_device_install(
    tmp_path: Path, broker: ManagedBroker, daemon: Daemonish, www: tuple[str, Path]
) -> None:
    site = device_site(tmp_path / "site")
    env = {**os.environ, "PYTHONPATH": f"{site}{os.pathsep}{ROOT}"}
    python = [sys.executable, "-S"]  # no site-packages: the copied device install and the source only
    probe = subprocess.run([*python, "-c", "import sqlalchemy"], env=env, capture_output=True, text=True)
    assert probe.returncode != 0 and "No module named 'sqlalchemy'" in probe.stderr  # truly isolated
    server_side = subprocess.run([*python, "-m", "broadcaster.cli", "zone", "list"], env=env, capture_output=True,
                                 text=True, cwd=tmp_path)  # fmt: skip
    assert server_side.returncode == 2 and "(server_not_installed)" in server_side.stderr
    assert "pip install 'loa[server]'" in server_side.stderr and "Traceback" not in server_side.stderr
    signer = protocol.load_or_create_signer(tmp_path / "k.pem")
    cfg = agent_config(tmp_path, broker, signer, sink="null")
    cfg.save(tmp_path / "thon-1-loa.json")
    log = (tmp_path / "agent.log").open("wb")
    proc = subprocess.Popen(
        [*python, "-m", "broadcaster.cli", "agent", "speaker", "--config", str(tmp_path / "thon-1-loa.json")],
        env=env, stdout=log, stderr=subprocess.STDOUT, cwd=tmp_path,
    )  # fmt: skip
    try:
        wait_for(lambda: daemon.status.get("thon-1-loa", {}).get("online"), 15, "the agent online")
        cid = daemon.send("thon-1-loa", play(signer, audio_body(www, "a.mp3", b"audio bytes", 300), 1.5))
        wait_for(lambda: "done" in daemon.states(cid), 15, "the command played")
        assert daemon.states(cid) == ["received", "downloaded", "playing", "done"]
    finally:
        proc.terminate()
        proc.wait(10)
        log.close()
    assert (tmp_path / "agent" / "seen.json").exists()
    assert "Traceback" not in (tmp_path / "agent.log").read_text()


def test_a_broken_download_is_retried_and_a_wrong_file_is_not(tmp_path: Path) -> None:
    """A server killed mid-answer hands out a short (even empty) file: that is the network, retried
    until the command expires. A whole file with another hash will not change: refused at once."""
    data = b"the bulletin's bytes" * 100
    sha = hashlib.sha256(data).hexdigest()
    answers = [b"", data[:10], data]  # an empty answer, a short one, then the real file
    served: list[int] = []

    class Flaky(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            body = answers[min(len(served), len(answers) - 1)] if self.path == "/a.mp3" else b"x" * len(data)
            served.append(len(body))
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *_: Any) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Flaky)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    base = f"http://127.0.0.1:{server.server_address[1]}"
    try:
        audio = {"url": f"{base}/a.mp3", "sha256": sha, "size": len(data), "format": "mp3"}
        path = fetch_until(audio, tmp_path / "cache", time.time() + 30, threading.Event())
        assert path.read_bytes() == data and served == [0, 10, len(data)]
        wrong = {**audio, "url": f"{base}/other.mp3", "sha256": "0" * 64}
        started = time.monotonic()
        with pytest.raises(HashMismatch, match="hash_mismatch"):
            fetch_until(wrong, tmp_path / "cache", time.time() + 30, threading.Event())
        assert time.monotonic() - started < 2  # not retried
        assert not list((tmp_path / "cache").glob("*.part"))  # nothing half-written left behind
    finally:
        server.shutdown()


def test_a_command_captured_for_one_speaker_and_replayed_to_another_is_refused(
    tmp_path: Path, broker: ManagedBroker, daemon: Daemonish, www: tuple[str, Path]
) -> None:
    """An attacker who recorded thon-1's genuine command publishes it on thon-2's topic: it names
    thon-1 and its signature covers that, so thon-2 neither plays nor answers it."""
    signer = protocol.load_or_create_signer(tmp_path / "k.pem")
    cfg = agent_config(tmp_path, broker, signer, sink="null")
    cfg.device_id, cfg.state_dir = "thon-2-loa", str(tmp_path / "agent-2")
    agent = SpeakerAgent(cfg, sink=NullSink())
    agent.start()
    try:
        wait_for(lambda: daemon.status.get("thon-2-loa", {}).get("online"), 5, "thon-2's speaker online")
        captured = play(signer, audio_body(www, "a.mp3", b"for thon-1", 200), 1, to="thon-1-loa")
        daemon.send("thon-2-loa", captured)
        own = daemon.send("thon-2-loa", play(signer, audio_body(www, "b.mp3", b"for thon-2", 200), 1, to="thon-2-loa"))
        wait_for(lambda: "done" in daemon.states(own), 10, "thon-2's own command played")
        assert daemon.states(captured["id"]) == []
        assert agent.refused == {"wrong_recipient": 1}
    finally:
        agent.stop()
