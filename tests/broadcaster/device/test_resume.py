"""A speaker across a reboot, a late download and its state folder (#15).

- A speaker that reboots between downloading a bulletin and its start still plays it, on time, once:
  it keeps the plays it has taken (`held.json`) and takes them up again (docs/protocol.md, "Across a
  reboot"); the core's rules for that are the first tests, the agent over a real broker the last.
- A download refused at first is retried until the command expires, not until its start: the item then
  plays late, whole; never after its expiry.
- A relative `state_dir` is the config file's folder's, never the folder an agent is started from.
"""

from __future__ import annotations

import functools
import hashlib
import http.server
import json
import socket
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from broadcaster import protocol
from broadcaster.broker.managed import ManagedBroker
from broadcaster.device.config import AgentConfig
from broadcaster.device.core import Ack, DeviceCore, Fetch, Play, SeenCommands, Wake
from broadcaster.device.sinks import NullSink
from broadcaster.device.speaker import SpeakerAgent
from tests.broadcaster.device.test_agent import Daemonish, agent_config, audio_body
from tests.broadcaster.device.test_core import T0, cmd, speaker
from tests.broadcaster.harness import wait_for


@pytest.fixture
def signer(tmp_path: Path) -> protocol.Signer:
    return protocol.load_or_create_signer(tmp_path / "k.pem")


@pytest.fixture
def daemon(broker: ManagedBroker) -> Iterator[Daemonish]:
    d = Daemonish(broker)
    yield d
    d.close()


@pytest.fixture
def www(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    root = tmp_path / "www"
    root.mkdir()
    server = _serve(root, 0)
    yield f"http://127.0.0.1:{server.server_address[1]}", root
    server.shutdown()
    server.server_close()


def _serve(root: Path, port: int) -> http.server.ThreadingHTTPServer:
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(root))
    handler.log_message = lambda *_: None  # type: ignore[attr-defined]
    server = http.server.ThreadingHTTPServer(("127.0.0.1", port), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


# ---------------------------------------------------------------- the core's rules for a reboot


def _reboot(core: DeviceCore, signer: protocol.Signer) -> DeviceCore:
    """What survives a reboot: the ids with their last acks (seen.json) and the held payloads."""
    seen = SeenCommands()
    seen.restore(json.loads(json.dumps(core.seen.export())))
    return speaker(signer, seen=seen)


def test_a_play_held_across_a_reboot_starts_at_its_time_without_a_second_received(signer: protocol.Signer) -> None:
    core = speaker(signer)
    payload = cmd(signer, start=30)
    core.receive(payload, T0 + 1)
    [downloaded, _wake] = core.fetched(core.held().popitem()[0], None, T0 + 2)
    assert isinstance(downloaded, Ack) and downloaded.state == "downloaded"
    held = core.held()
    assert list(held.values()) == [payload]

    again = _reboot(core, signer)
    [fetch] = again.resume(payload, T0 + 10)  # no ack: `downloaded` was said before the reboot
    assert isinstance(fetch, Fetch)
    assert again.fetched(fetch.command_id, None, T0 + 11) == [Wake(fetch.command_id, T0 + 30, True)]
    playing, play = again.wake(fetch.command_id, T0 + 30)
    assert isinstance(playing, Ack) and playing.state == "playing" and isinstance(play, Play)
    # re-sent by the daemon, or the same file read twice: answered or ignored, never a second play
    assert again.resume(payload, T0 + 31) == []
    assert [type(a).__name__ for a in again.receive(payload, T0 + 31)] == ["Resend"]


def test_a_play_received_but_not_downloaded_is_fetched_again(signer: protocol.Signer) -> None:
    core = speaker(signer)
    payload = cmd(signer, start=30)
    core.receive(payload, T0 + 1)
    again = _reboot(core, signer)
    [fetch] = again.resume(payload, T0 + 40)  # after its start: fetched, then plays late, whole
    assert isinstance(fetch, Fetch)
    [downloaded, wake] = again.fetched(fetch.command_id, None, T0 + 41)
    assert isinstance(downloaded, Ack) and downloaded.state == "downloaded" and isinstance(wake, Wake)
    playing, _ = again.wake(fetch.command_id, T0 + 41)
    assert isinstance(playing, Ack) and playing.extra["start_error_ms"] == 11_000


def test_what_was_on_air_or_is_past_its_expiry_is_not_played_after_a_reboot(signer: protocol.Signer) -> None:
    core = speaker(signer)
    on_air, waiting = cmd(signer, start=30), cmd(signer, start=60, valid=60)
    for payload in (on_air, waiting):
        [_, fetch] = core.receive(payload, T0 + 1)
        assert isinstance(fetch, Fetch)
        core.fetched(fetch.command_id, None, T0 + 2)
    core.wake(json.loads(on_air)["id"], T0 + 30)
    assert set(core.held()) == {json.loads(on_air)["id"], json.loads(waiting)["id"]}

    again = _reboot(core, signer)
    [cut] = again.resume(on_air, T0 + 35)
    assert isinstance(cut, Ack) and (cut.state, cut.extra["reason"]) == (
        "failed",
        "playback_failed: interrupted by a restart",
    )
    [expired] = again.resume(waiting, T0 + 200)
    assert isinstance(expired, Ack) and (expired.state, expired.extra["reason"]) == ("expired", "expired_before_start")
    assert again.held() == {}
    assert again.resume(on_air, T0 + 36) == []  # final now: its last ack stands


def test_a_payload_the_device_never_took_is_not_taken_by_resume(signer: protocol.Signer) -> None:
    """A held file is the device's own, but not to be trusted blindly: an id it never took is ignored."""
    core = speaker(signer)
    assert core.resume(cmd(signer), T0 + 1) == []
    assert core.resume(b"not json", T0 + 1) == []


# ---------------------------------------------------------------- the agent, over a real broker


class Recorder(NullSink):
    """Plays nothing, for as long as the audio lasts, and notes each play."""

    def __init__(self) -> None:
        super().__init__()
        self.plays: list[tuple[str, float]] = []

    def play(self, path: Path, duration_ms: int, started_at: float) -> None:
        self.plays.append((path.name, started_at))
        super().play(path, duration_ms, started_at)


def _power_cut(agent: SpeakerAgent) -> None:
    """As a power cut: no offline status, no DISCONNECT, no wake-up thread that lives on."""
    agent._stop.set()
    agent.client.loop_stop()
    sock = agent.client.socket()
    if sock is not None:
        sock.close()


def test_a_speaker_rebooted_between_download_and_start_plays_on_time_once(
    tmp_path: Path, broker: ManagedBroker, daemon: Daemonish, www: tuple[str, Path], signer: protocol.Signer
) -> None:
    cfg = agent_config(tmp_path, broker, signer, sink="null", tele_s=0)
    before, after = Recorder(), Recorder()
    first = SpeakerAgent(cfg, sink=before)
    first.start()
    wait_for(lambda: daemon.status.get("thon-1-loa", {}).get("online"), 5, "the speaker online")
    now = datetime.now(UTC)
    start_at = now + timedelta(seconds=4)
    command = protocol.make_command(
        signer, "play", audio_body(www, "b.mp3", b"bulletin bytes", 400), to="thon-1-loa",
        issued_at=now, start_at=start_at, expires_at=now + timedelta(minutes=5),
    )  # fmt: skip
    cid = daemon.send("thon-1-loa", command)
    wait_for(lambda: "downloaded" in daemon.states(cid), 5, "the bulletin downloaded")
    _power_cut(first)
    (www[1] / "b.mp3").unlink()  # what was downloaded is on the device: the reboot needs no network
    second = SpeakerAgent(cfg, sink=after)
    try:
        second.start()
        assert time.time() < start_at.timestamp(), "the reboot took longer than the test allows"
        wait_for(lambda: "done" in daemon.states(cid), 10, "the bulletin played")
        assert daemon.states(cid) == ["received", "downloaded", "playing", "done"]
        assert abs(daemon.acks[cid][2]["start_error_ms"]) < 1000  # on time, not when someone re-sent it
        assert before.plays == [] and [name for name, _ in after.plays] == [f"{command['body']['audio']['sha256']}.mp3"]
        daemon.send("thon-1-loa", command)  # the same command again: answered, not played
        wait_for(lambda: daemon.states(cid).count("done") == 2, 5, "the repeat answered")
        assert len(after.plays) == 1
        assert json.loads((tmp_path / "agent" / "held.json").read_text()) == {}
    finally:
        second.stop()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_a_download_refused_at_first_is_retried_until_expiry_then_plays_late_never_after(
    tmp_path: Path, broker: ManagedBroker, daemon: Daemonish, signer: protocol.Signer
) -> None:
    """The audio listener is down when the command arrives (a daemon restarting): the speaker keeps
    trying after `start_at`, and plays the item late and whole once it can; one whose expiry passes
    first is reported failed and never heard."""
    sink = Recorder()
    agent = SpeakerAgent(agent_config(tmp_path, broker, signer, sink="null", tele_s=0), sink=sink)
    root = tmp_path / "www"
    root.mkdir()
    port = _free_port()  # nothing listens there yet: connection refused
    bodies: dict[str, dict[str, Any]] = {}
    for name in ("late.mp3", "doomed.mp3"):
        data = name.encode() * 50
        (root / name).write_bytes(data)
        bodies[name] = {"title": name, "audio": {
            "url": f"http://127.0.0.1:{port}/{name}", "sha256": hashlib.sha256(data).hexdigest(), "size": len(data),
            "duration_ms": 300, "format": "mp3"}}  # fmt: skip
    now = datetime.now(UTC)
    start_at = now + timedelta(seconds=0.5)

    def command(name: str, valid_s: float) -> dict[str, Any]:
        return protocol.make_command(signer, "play", bodies[name], to="thon-1-loa", issued_at=now,
                                     start_at=start_at, expires_at=now + timedelta(seconds=valid_s))  # fmt: skip

    agent.start()
    server = None
    try:
        wait_for(lambda: daemon.status.get("thon-1-loa", {}).get("online"), 5, "the speaker online")
        late = daemon.send("thon-1-loa", command("late.mp3", 30))
        doomed = daemon.send("thon-1-loa", command("doomed.mp3", 2))
        wait_for(lambda: daemon.states(doomed)[-1:] == ["failed"], 10, "the doomed download given up")
        assert daemon.acks[doomed][-1]["reason"].startswith("download_failed: ")
        assert time.time() >= now.timestamp() + 2 - 0.5  # tried until its expiry, not only to its start
        assert daemon.states(late) == ["received"]  # still trying, after its start
        server = _serve(root, port)
        wait_for(lambda: "done" in daemon.states(late), 10, "the late item played")
        assert daemon.states(late) == ["received", "downloaded", "playing", "done"]
        assert daemon.acks[late][2]["start_error_ms"] > 1500  # late, and said so
        assert [name for name, _ in sink.plays] == [f"{bodies['late.mp3']['audio']['sha256']}.mp3"]
    finally:
        agent.stop()
        if server is not None:
            server.shutdown()
            server.server_close()


# ---------------------------------------------------------------- where a device keeps its state


def _config(folder: Path, device_id: str, state_dir: str) -> Path:
    path = folder / f"{device_id}.json"
    path.write_text(json.dumps({"device_id": device_id, "kind": "speaker", "broker_url": "mqtt://h:1883",
                                "public_keys": {"k": "AAAA"}, "state_dir": state_dir}))  # fmt: skip
    return path


def test_a_relative_state_dir_is_the_config_files_folders_and_never_shared(tmp_path: Path, monkeypatch: Any) -> None:
    """Configs written before #15 said `agent-state`: two agents started from one folder shared it."""
    folder = tmp_path / "etc"
    folder.mkdir()
    (folder / "agent-state").mkdir()
    (folder / "agent-state" / "seen.json").write_text('{"c-1": {"expires_at": "2026-11-25T03:00:00.000Z"}}')
    monkeypatch.chdir(tmp_path)  # started from elsewhere
    one = AgentConfig.load(_config(folder, "thon-1-loa", "agent-state"))
    two = AgentConfig.load(_config(folder, "thon-1-led", "agent-state"))
    assert one.state_dir == str(folder / "agent-state" / "thon-1-loa")
    assert two.state_dir == str(folder / "agent-state" / "thon-1-led")
    # the ids the shared folder remembered are remembered by each: none is acted on twice
    assert "c-1" in json.loads((folder / "agent-state" / "thon-1-loa" / "seen.json").read_text())
    assert AgentConfig.load(_config(folder, "x", "state/x")).state_dir == str(folder / "state" / "x")
    assert AgentConfig.load(_config(folder, "y", "/var/lib/loa-agent/y")).state_dir == "/var/lib/loa-agent/y"


def test_loa_device_add_writes_an_absolute_state_dir_of_the_devices_own(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from broadcaster.cli.main import main
    from broadcaster.db import Database
    from broadcaster.services.zones import add_village, ensure_commune

    data = tmp_path / "data"
    db = Database(f"sqlite:///{data / 'loa.sqlite3'}")
    db.upgrade()
    with db.session() as s:
        ensure_commune(s, "Xã thử nghiệm")
        add_village(s, "thon-1", "Thôn 1")
    db.dispose()
    monkeypatch.setenv("LOA_GENERAL_DATA_DIR", str(data))
    monkeypatch.delenv("LOA_CONFIG", raising=False)
    monkeypatch.chdir(tmp_path)

    def add(device_id: str, *more: str) -> tuple[int, str]:
        out = tmp_path / f"{device_id}.json"
        args = ["device", "add", device_id, "--kind", "speaker", "--village", "thon-1", "--no-qr"]
        code = main([*args, "--broker-url", "mqtt://10.0.0.1:1883", "--out", str(out), *more])
        return code, capsys.readouterr().err

    assert add("thon-1-loa") == (0, "")
    assert add("thon-1-loa-2", "--state-dir", "/srv/loa/b") == (0, "")
    code, err = add("thon-1-loa-3", "--state-dir", "agent-state")
    assert code != 0 and "(bad_state_dir)" in err and not (tmp_path / "thon-1-loa-3.json").exists()
    written = [json.loads((tmp_path / f"{d}.json").read_text())["state_dir"] for d in ("thon-1-loa", "thon-1-loa-2")]
    assert written == ["/var/lib/loa-agent/thon-1-loa", "/srv/loa/b"]
