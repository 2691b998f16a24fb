from __future__ import annotations

import copy
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from broadcaster import protocol


@pytest.fixture
def signer(tmp_path: Path) -> protocol.Signer:
    return protocol.load_or_create_signer(tmp_path / "key.pem")


def _command(signer: protocol.Signer, now: datetime) -> dict:
    return protocol.make_command(
        signer,
        "play",
        {
            "audio": {
                "url": "http://x/a.mp3",
                "sha256": "0" * 64,
                "size": 1,
                "duration_ms": 1000,
                "format": "mp3",
            }
        },
        to="thon-1-loa",
        issued_at=now,
        start_at=now + timedelta(seconds=30),
        expires_at=now + timedelta(minutes=15),
    )


def test_a_signed_command_passes_every_device_check(signer: protocol.Signer) -> None:
    now = datetime.now(UTC)
    cmd = _command(signer, now)
    protocol.check_command(cmd, {signer.kid: signer.private.public_key()}, now, seen=set())


@pytest.mark.parametrize("title", ["Họp thôn", 'Trích "Luật" \\ 100%', "Thông báo\nkhẩn"])
def test_a_stamped_command_is_the_command_make_command_signs(signer: protocol.Signer, title: str) -> None:
    """The dispatcher's fast path (one serialization per bulletin) gives byte-for-byte the same
    signature as signing each command whole, and devices accept it the same way."""
    now = datetime.now(UTC)
    body = {"title": title, "audio": {"url": "http://x/a.mp3", "sha256": "0" * 64, "size": 1,
                                      "duration_ms": 1000, "format": "mp3"}}
    times = {"issued_at": now, "start_at": now + timedelta(seconds=30), "expires_at": now + timedelta(minutes=15)}
    stamp = protocol.CommandStamp(signer, "play", body, priority="emergency", **times)
    seen: set[str] = set()
    ids = set()
    for device in ("thon-1-loa", "thon-2-loa", "zone/thon-3"):
        cid, payload = stamp(device)
        wire = json.loads(payload)
        assert wire == protocol.make_command(
            signer, "play", body, to=device, priority="emergency", command_id=cid, **times
        )
        protocol.check_command(wire, {signer.kid: signer.private.public_key()}, now, seen=seen, recipients={device})
        ids.add(cid)
    assert len(ids) == 3
    with pytest.raises(ValueError):
        stamp("thon-1-loa", 'bad"id')
    with pytest.raises(ValueError):
        stamp('bad"device')


def test_a_command_for_another_device_is_refused(signer: protocol.Signer) -> None:
    """A genuine command captured on one device's topic and replayed to another names the first."""
    now = datetime.now(UTC)
    cmd = _command(signer, now)  # for thon-1-loa
    keys = {signer.kid: signer.private.public_key()}
    with pytest.raises(protocol.Refusal, match="wrong_recipient"):
        protocol.check_command(cmd, keys, now, recipients={"thon-2-loa", "zone/thon-2"})
    with pytest.raises(protocol.Refusal, match="bad_signature"):  # and it cannot be re-addressed
        protocol.check_command({**cmd, "to": "thon-2-loa"}, keys, now, recipients={"thon-2-loa"})
    protocol.check_command(cmd, keys, now, recipients={"thon-1-loa", "zone/thon-1"})


@pytest.mark.parametrize(
    ("tamper", "code"),
    [
        (lambda c: c["body"]["audio"].__setitem__("url", "http://evil/a.mp3"), "bad_signature"),
        (lambda c: c.__setitem__("priority", "emergency"), "bad_signature"),
        (lambda c: c.__setitem__("sig", "AAAA"), "bad_signature"),
        (lambda c: c.__setitem__("kid", "unknown"), "bad_signature"),
        (lambda c: c.pop("sig"), "bad_signature"),
        (lambda c: c.__setitem__("v", 1), "bad_version"),  # a v1 command, signed or not
    ],
)
def test_tampered_commands_are_refused(signer: protocol.Signer, tamper, code: str) -> None:
    now = datetime.now(UTC)
    cmd = copy.deepcopy(_command(signer, now))
    tamper(cmd)
    with pytest.raises(protocol.Refusal) as r:
        protocol.check_command(cmd, {signer.kid: signer.private.public_key()}, now)
    assert r.value.code == code


def test_another_key_cannot_command_a_device(tmp_path: Path, signer: protocol.Signer) -> None:
    intruder = protocol.load_or_create_signer(tmp_path / "intruder.pem")
    now = datetime.now(UTC)
    forged = _command(intruder, now)
    forged["kid"] = signer.kid  # claiming the daemon's key id does not help
    with pytest.raises(protocol.Refusal, match="bad_signature"):
        protocol.check_command(forged, {signer.kid: signer.private.public_key()}, now)


def test_expired_and_replayed_commands_are_refused(signer: protocol.Signer) -> None:
    now = datetime.now(UTC)
    cmd = _command(signer, now)
    keys = {signer.kid: signer.private.public_key()}
    with pytest.raises(protocol.Refusal, match="expired"):
        protocol.check_command(cmd, keys, now + timedelta(minutes=16))
    with pytest.raises(protocol.Refusal, match="replay"):
        protocol.check_command(cmd, keys, now, seen={cmd["id"]})


def test_wire_times_are_utc_with_milliseconds() -> None:
    t = datetime(2026, 11, 24, 10, 30, 0, 123456, tzinfo=UTC)
    assert protocol.format_time(t) == "2026-11-24T10:30:00.123Z"
    assert protocol.parse_time("2026-11-24T17:30:00.123+07:00") == datetime(2026, 11, 24, 10, 30, 0, 123000, tzinfo=UTC)
    with pytest.raises(ValueError):
        protocol.format_time(datetime(2026, 1, 1))


def test_topics_round_trip() -> None:
    t = protocol.Topics("pa/v2")
    assert t.cmd("thon-1-loa") == "pa/v2/dev/thon-1-loa/cmd"
    assert t.device_of("pa/v2/dev/thon-1-loa/ack") == ("thon-1-loa", "ack")
    assert t.device_of("pa/v2/dev/a/b/ack") is None
    assert t.device_of("other/dev/a/ack") is None


def test_led_text_without_diacritics() -> None:
    assert protocol.strip_diacritics("Đại hội Đảng bộ xã Âu Lâu") == "Dai hoi Dang bo xa Au Lau"
