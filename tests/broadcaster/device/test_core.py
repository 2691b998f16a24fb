"""The device core, without a network or a clock: each behaviour of docs/protocol.md as a short story.

The reference agent and the fleet simulator both drive this core, so what is proven here holds for both.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from broadcaster import protocol
from broadcaster.device.core import (
    SEEN_KEEP_S,
    Ack,
    Action,
    Blank,
    DeviceCore,
    Fetch,
    Play,
    Refused,
    Resend,
    SeenCommands,
    SetVolume,
    Show,
    Silence,
    Wake,
)

T0 = datetime(2026, 11, 25, 3, 0, tzinfo=UTC).timestamp()  # 10:00 in the commune
SHA = "ab" * 32
AUDIO = {"url": "http://h/a.mp3", "sha256": SHA, "size": 10, "duration_ms": 4000, "format": "mp3"}


@pytest.fixture
def signer(tmp_path: Path) -> protocol.Signer:
    return protocol.load_or_create_signer(tmp_path / "k.pem")


def at(seconds: float) -> datetime:
    return datetime.fromtimestamp(T0 + seconds, UTC)


def cmd(
    signer: protocol.Signer,
    type: protocol.CommandType = "play",
    body: dict[str, Any] | None = None,
    *,
    start: float = 30,
    valid: float = 600,
    priority: str = "normal",
    command_id: str | None = None,
    to: str = "thon-1-loa",
) -> bytes:
    command = protocol.make_command(
        signer,
        type,
        {"title": "Họp thôn", "audio": AUDIO} if body is None else body,
        to=to,
        issued_at=at(0),
        start_at=at(start),
        expires_at=at(start + valid),
        priority=priority,
        command_id=command_id,
    )
    return protocol.canonical(command)[:-1] + b',"sig":"' + command["sig"].encode() + b'"}'


def speaker(signer: protocol.Signer, **kw: Any) -> DeviceCore:
    return DeviceCore("thon-1-loa", "speaker", {signer.kid: signer.private.public_key()}, **kw)


BOARD = "thon-1-led"


def led(signer: protocol.Signer, **kw: Any) -> DeviceCore:
    return DeviceCore(BOARD, "led", {signer.kid: signer.private.public_key()}, **kw)


def acks(actions: list[Action]) -> list[tuple[str, str, str]]:
    """(command id prefix, state, reason) of every Ack, in order."""
    return [(a.command_id[:8], a.state, a.extra.get("reason", "")) for a in actions if isinstance(a, Ack)]


def cid_of(payload: bytes) -> str:
    return str(json.loads(payload)["id"])


def ready(core: DeviceCore, payload: bytes, now: float = T0 + 1) -> str:
    """Received and downloaded: the command waits for its start."""
    cid = cid_of(payload)
    out = core.receive(payload, now)
    assert [type(a) for a in out] == [Ack, Fetch]
    out = core.fetched(cid, None, now + 1)
    assert acks(out) == [(cid[:8], "downloaded", "")]
    assert out[-1] == Wake(cid, T0 + json_start(payload), True)
    return cid


def json_start(payload: bytes) -> float:
    return protocol.parse_time(json.loads(payload)["start_at"]).timestamp() - T0


# ---------------------------------------------------------------- the happy path


def test_a_play_goes_received_downloaded_playing_done(signer: protocol.Signer) -> None:
    core = speaker(signer)
    payload = cmd(signer)
    cid = cid_of(payload)
    out = core.receive(payload, T0 + 1)
    assert acks(out) == [(cid[:8], "received", "")]
    assert out[1] == Fetch(cid, AUDIO, T0 + 630)  # retried while the command is valid, not only until start
    out = core.fetched(cid, None, T0 + 2)
    assert acks(out) == [(cid[:8], "downloaded", "")] and out[1] == Wake(cid, T0 + 30, True)
    out = core.wake(cid, T0 + 30.0012)
    playing, play = out
    assert isinstance(playing, Ack) and playing.state == "playing"
    assert playing.extra == {"start_error_ms": 1.2}
    assert play == Play(cid, AUDIO, None, 4.0, T0 + 30.0012, 1.2)
    out = core.ended(cid, T0 + 34)
    assert acks(out) == [(cid[:8], "done", "")]
    assert core.current is None
    message = out[0].message()  # type: ignore[union-attr]
    done = {"v": protocol.PROTOCOL_VERSION, "cmd": cid, "state": "done", "at": protocol.format_time(at(34))}
    assert message == {**done, "played_s": 3.999}  # the seconds it was on air: 30.0012 to 34


def test_a_late_start_plays_the_whole_item_and_says_how_late(signer: protocol.Signer) -> None:
    core = speaker(signer)
    cid = ready(core, cmd(signer, start=30, valid=60))
    out = core.wake(cid, T0 + 45)  # the file came late, but the command is still valid
    assert out[0] == Ack(cid, "playing", T0 + 45, {"start_error_ms": 15000.0})
    assert isinstance(out[1], Play) and out[1].duration_s == 4.0
    core.ended(cid, T0 + 49)
    late = cmd(signer, start=30, valid=10)
    cid = ready(core, late)
    assert acks(core.wake(cid, T0 + 41)) == [(cid[:8], "expired", "expired_before_start")]


def test_a_failed_download_or_player_is_acked_failed_with_the_reason(signer: protocol.Signer) -> None:
    core = speaker(signer)
    payload = cmd(signer)
    cid = cid_of(payload)
    core.receive(payload, T0)
    assert acks(core.fetched(cid, "hash_mismatch: expected abab, got 0000", T0 + 1)) == [
        (cid[:8], "failed", "hash_mismatch: expected abab, got 0000")
    ]
    assert core.wake(cid, T0 + 30) == []  # nothing left to start
    cid = ready(core, cmd(signer))
    core.wake(cid, T0 + 30)
    assert acks(core.ended(cid, T0 + 31, "playback_failed: Connection refused")) == [
        (cid[:8], "failed", "playback_failed: Connection refused")
    ]


# ---------------------------------------------------------------- refusals, in the documented order


def test_refusals_make_no_sound_and_are_counted(signer: protocol.Signer) -> None:
    core = speaker(signer)
    stranger = protocol.Signer(Ed25519PrivateKey.generate())
    forged = json.loads(cmd(stranger))
    forged["kid"] = signer.kid
    tampered = json.loads(cmd(signer))
    tampered["priority"] = "emergency"
    old_version = protocol.make_command(
        signer, "ping", {}, to="thon-1-loa", issued_at=at(0), start_at=at(0), expires_at=at(60)
    ) | {
        "v": protocol.PROTOCOL_VERSION - 1
    }
    cases = {
        b"x" * (protocol.MAX_PAYLOAD_BYTES + 1): "oversized",
        b"{not json": "malformed",
        b"[1, 2]": "malformed",
        b"[" * 5000 + b"]" * 5000: "malformed",  # deep nesting must not take the device down
        json.dumps(old_version).encode(): "bad_version",
        cmd(stranger): "bad_signature",
        json.dumps(forged).encode(): "bad_signature",
        json.dumps(tampered).encode(): "bad_signature",
        cmd(signer, command_id="x" * 65): "bad_id",
    }
    for payload, code in cases.items():
        assert core.receive(payload, T0 + 1) == [Refused(code)], code
    assert core.refused["bad_signature"] == 3
    assert core.commands == 0 and not core.seen.items


def test_a_command_for_another_device_or_a_zone_it_does_not_read_is_refused(signer: protocol.Signer) -> None:
    """A genuine command captured on one device's topic and replayed to another names the first."""
    core = speaker(signer, zones=["all", "thon-1"])
    for to in ("thon-2-loa", "zone/thon-2", "thon-1", "zone/thon-1-loa"):
        assert core.receive(cmd(signer, to=to), T0 + 1) == [Refused("wrong_recipient")], to
    for to in ("thon-1-loa", "zone/all", "zone/thon-1"):
        assert acks(core.receive(cmd(signer, to=to), T0 + 1))[0][1] == "received", to
    unaddressed = json.loads(cmd(signer))
    del unaddressed["to"]  # and the signature no longer holds without it
    assert core.receive(json.dumps(unaddressed).encode(), T0 + 1) == [Refused("bad_signature")]


def test_an_expired_command_is_acked_expired_and_not_remembered(signer: protocol.Signer) -> None:
    core = speaker(signer)
    payload = cmd(signer, start=0, valid=60)
    out = core.receive(payload, T0 + 60)
    assert out[0] == Refused("expired")
    assert acks(out) == [(cid_of(payload)[:8], "expired", "expired")]
    assert cid_of(payload) not in core.seen


def test_a_command_id_seen_again_is_answered_with_its_last_ack_and_never_acted_on(signer: protocol.Signer) -> None:
    core = speaker(signer)
    payload = cmd(signer)
    cid = ready(core, payload)  # its last ack: downloaded, at T0 + 2
    again = core.receive(payload, T0 + 5)
    assert again == [Resend(Ack(cid, "downloaded", T0 + 2).message())]  # nothing fetched or played again
    assert core.replays == 1 and core.commands == 1
    core.wake(cid, T0 + 30)
    core.ended(cid, T0 + 34)
    assert core.receive(payload, T0 + 40) == [Resend(Ack(cid, "done", T0 + 34, {"played_s": 4.0}).message())]


def test_the_memory_of_ids_survives_a_reboot_and_forgets_a_day_after_expiry(signer: protocol.Signer) -> None:
    core = speaker(signer)
    payload = cmd(signer, valid=60)
    cid = ready(core, payload)
    saved = json.loads(json.dumps(core.seen.export()))  # what the agent writes to seen.json
    rebooted_memory = SeenCommands()
    rebooted_memory.restore(saved)
    rebooted = speaker(signer, seen=rebooted_memory)
    assert rebooted.receive(payload, T0 + 5) == [Resend(core.seen.last_message(cid) or {})]
    assert rebooted.seen.last_message(cid) == {**Ack(cid, "downloaded", T0 + 2).message()}
    rebooted_memory.prune(T0 + 90 + SEEN_KEEP_S - 1)
    assert cid in rebooted_memory
    rebooted_memory.prune(T0 + 90 + SEEN_KEEP_S + 1)
    assert cid not in rebooted_memory


def test_a_damaged_memory_file_is_read_as_far_as_it_goes() -> None:
    memory = SeenCommands()
    memory.restore({"a": {"expires_at": "2026-11-25T03:00:00.000Z", "ack": None}, "b": {"nope": 1}, "c": 3})
    assert "a" in memory and "b" not in memory and "c" not in memory


# ---------------------------------------------------------------- priorities


def test_a_higher_priority_cuts_what_is_on_air(signer: protocol.Signer) -> None:
    core = speaker(signer)
    bulletin = ready(core, cmd(signer, start=30))
    alert = ready(core, cmd(signer, start=31, priority="emergency"))
    core.wake(bulletin, T0 + 30)
    out = core.wake(alert, T0 + 31)
    assert out[0] == Silence(bulletin)
    assert acks(out) == [(bulletin[:8], "failed", "preempted"), (alert[:8], "playing", "")]
    assert core.ended(bulletin, T0 + 31.1) == []  # its player stopping later changes nothing
    assert acks(core.ended(alert, T0 + 35)) == [(alert[:8], "done", "")]


def test_an_equal_priority_waits_for_the_end_and_a_lower_one_may_expire(signer: protocol.Signer) -> None:
    """Back-to-back items (the second starts as the first ends) both play whole."""
    core = speaker(signer)
    first = ready(core, cmd(signer, start=30, priority="priority"))
    second = ready(core, cmd(signer, start=34, priority="priority"))
    low = ready(core, cmd(signer, start=34, valid=5, priority="normal"))
    core.wake(first, T0 + 30)
    assert core.wake(second, T0 + 34) == [Wake(second, T0 + 634, False)]
    assert core.wake(low, T0 + 34) == [Wake(low, T0 + 39, False)]
    out = core.ended(first, T0 + 34.05)  # the player of the first finished a little after 34 s
    assert acks(out) == [(first[:8], "done", ""), (second[:8], "playing", "")]
    assert out[-1] == Play(second, AUDIO, None, 4.0, T0 + 34.05, 50.0)
    assert acks(core.wake(low, T0 + 39)) == [(low[:8], "expired", "expired_before_start")]
    assert acks(core.ended(second, T0 + 38.05)) == [(second[:8], "done", "")]


def test_the_highest_waiting_priority_goes_next(signer: protocol.Signer) -> None:
    core = speaker(signer)
    on_air = ready(core, cmd(signer, start=30, priority="emergency"))
    normal = ready(core, cmd(signer, start=31, priority="normal"))
    urgent = ready(core, cmd(signer, start=32, priority="priority"))
    core.wake(on_air, T0 + 30)
    core.wake(normal, T0 + 31)
    core.wake(urgent, T0 + 32)
    out = core.ended(on_air, T0 + 34)
    assert acks(out) == [(on_air[:8], "done", ""), (urgent[:8], "playing", "")]
    out = core.ended(urgent, T0 + 38)
    assert acks(out)[-1] == (normal[:8], "playing", "")


# ---------------------------------------------------------------- stop, volume, ping, config


def test_stop_cuts_what_is_on_air_and_lets_the_next_one_start(signer: protocol.Signer) -> None:
    core = speaker(signer)
    first = ready(core, cmd(signer, start=30))
    second = ready(core, cmd(signer, start=31))
    core.wake(first, T0 + 30)
    core.wake(second, T0 + 31)
    stop = cmd(signer, "stop", {}, start=0)
    out = core.receive(stop, T0 + 32)
    assert out[0] == Silence(first)
    assert acks(out) == [(first[:8], "failed", "stopped"), (second[:8], "playing", ""), (cid_of(stop)[:8], "done", "")]


def test_stop_naming_a_command_cancels_it_before_it_starts(signer: protocol.Signer) -> None:
    """A recalled item must not start later, whatever stage it is at."""
    core = speaker(signer)
    on_air = ready(core, cmd(signer, start=30))
    queued = ready(core, cmd(signer, start=31))
    future = ready(core, cmd(signer, start=300))
    core.wake(on_air, T0 + 30)
    core.wake(queued, T0 + 31)
    for target in (queued, future):
        out = core.receive(cmd(signer, "stop", {"cmd": target}, start=0), T0 + 32)
        assert acks(out)[0] == (target[:8], "failed", "stopped")
    assert core.current is not None and core.current.command_id == on_air  # the others untouched
    assert core.wake(future, T0 + 300) == []
    assert acks(core.ended(on_air, T0 + 34)) == [(on_air[:8], "done", "")]
    late_play = cmd(signer, start=60)  # recalled before it even arrived (the device was offline)
    out = core.receive(cmd(signer, "stop", {"cmd": cid_of(late_play)}, start=0), T0 + 35)
    assert acks(out)[0] == (cid_of(late_play)[:8], "failed", "stopped")
    assert core.receive(late_play, T0 + 36) == [
        Resend(Ack(cid_of(late_play), "failed", T0 + 35, {"reason": "stopped"}).message())
    ]
    out = core.receive(cmd(signer, "stop", {"cmd": 7}, start=0), T0 + 35)
    assert acks(out)[0][1:] == ("rejected", "bad_body")


def test_volume_ping_config_and_what_a_kind_does_not_support(signer: protocol.Signer) -> None:
    core = speaker(signer)
    out = core.receive(cmd(signer, "volume", {"level": 35}, start=0), T0 + 1)
    assert out[0] == SetVolume(35) and out[1].extra == {"volume": 35}  # type: ignore[union-attr]
    assert core.volume == 35 and core.status(True, T0)["volume"] == 35
    for level in (101, -1, True, "50", 50.5):
        out = core.receive(cmd(signer, "volume", {"level": level}, start=0), T0 + 1)
        assert acks(out) == [(acks(out)[0][0], "rejected", "bad_volume")], level
    out = core.receive(cmd(signer, "ping", {}, start=0), T0 + 2)
    assert out[0].extra == {"pong": protocol.format_time(at(2))}  # type: ignore[union-attr]
    assert acks(core.receive(cmd(signer, "config", {}, start=0), T0 + 2))[0][1] == "done"
    show = cmd(signer, "led.show", {"text": "x", "duration_s": 5})
    assert acks(core.receive(show, T0 + 2)) == [(cid_of(show)[:8], "rejected", "unsupported: led.show")]
    assert acks(led(signer).receive(cmd(signer, to=BOARD), T0 + 2))[0][1:] == ("rejected", "unsupported: play")


def test_a_relay_needs_no_download_and_refuses_a_bad_stream(signer: protocol.Signer) -> None:
    core = speaker(signer)
    relay = cmd(signer, body={"title": "VOV1", "stream": {"url": "http://radio/vov1", "duration_s": 1800}})
    rid = cid_of(relay)
    out = core.receive(relay, T0 + 1)
    assert acks(out) == [(rid[:8], "received", "")] and out[1] == Wake(rid, T0 + 30, True)
    assert core.wake(rid, T0 + 30)[1] == Play(rid, None, "http://radio/vov1", 1800.0, T0 + 30, 0.0)
    for stream, reason in (
        ({"url": "file:///etc/passwd", "duration_s": 10}, "bad_stream_url"),
        ({"url": "http://radio/x", "duration_s": 0}, "bad_duration"),
        ({"url": "http://radio/x", "duration_s": True}, "bad_duration"),
    ):
        out = core.receive(cmd(signer, body={"stream": stream}), T0 + 2)
        assert [a[1:] for a in acks(out)] == [("rejected", reason)]  # not even `received`
    for body in ({"audio": {"url": "u", "sha256": "../x"}}, "nope"):
        out = core.receive(cmd(signer, body=body), T0 + 3)  # type: ignore[arg-type]
        assert [a[1:] for a in acks(out)] == [("rejected", "bad_body")]


# ---------------------------------------------------------------- LED boards


def test_a_board_shows_the_newest_text_and_clears_itself(signer: protocol.Signer) -> None:
    board = led(signer, diacritics=False)
    first = cmd(signer, "led.show", {"text": "Họp thôn", "duration_s": 10}, start=30, priority="emergency", to=BOARD)
    second = cmd(signer, "led.show", {"text": "Tiêm chủng"}, start=32, to=BOARD)
    a, b = cid_of(first), cid_of(second)
    assert acks(board.receive(first, T0)) == [(a[:8], "received", "")]
    board.receive(second, T0)
    out = board.wake(a, T0 + 30)
    assert out[1] == Show(a, "Hop thon", 10.0, T0 + 30, 0.0)  # a board without marks gets none
    out = board.wake(b, T0 + 32)  # newest first, whatever its priority
    assert out[0] == Blank() and acks(out) == [(a[:8], "done", ""), (b[:8], "playing", "")]
    assert out[-1] == Show(b, "Tiem chung", 10.0, T0 + 32, 0.0)  # 10 s when no duration is given
    out = board.ended(b, T0 + 42)
    assert out[0] == Blank() and acks(out) == [(b[:8], "done", "")]
    assert board.status(True, T0)["diacritics"] is False


def test_led_clear_ends_what_is_shown(signer: protocol.Signer) -> None:
    board = led(signer)
    show = cmd(signer, "led.show", {"text": "Họp thôn", "duration_s": 60}, to=BOARD)
    board.receive(show, T0)
    board.wake(cid_of(show), T0 + 30)
    clear = cmd(signer, "led.clear", {}, start=0, to=BOARD)
    out = board.receive(clear, T0 + 31)
    assert Blank() in out
    assert acks(out) == [(cid_of(show)[:8], "done", ""), (cid_of(clear)[:8], "done", "")]
    assert board.ended(cid_of(show), T0 + 90) == []


def test_status_and_telemetry_messages(signer: protocol.Signer) -> None:
    core = speaker(signer)
    assert core.status(False) == {"v": protocol.PROTOCOL_VERSION, "online": False}
    up = core.status(True, T0, sink="null")
    assert up["online"] is True and up["kind"] == "speaker" and up["sink"] == "null" and up["at"].endswith("Z")
    tele = core.telemetry(T0, signal=-71, uptime_s=5)
    assert tele == {"v": protocol.PROTOCOL_VERSION, "at": protocol.format_time(at(0)), "volume": 80,
                    "signal": -71, "uptime_s": 5}  # fmt: skip
