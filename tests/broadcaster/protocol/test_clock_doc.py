"""docs/protocol.md, *Clock offset*, is a contract: its signed example answer verifies with the documented
example key, its arithmetic is the code's, and what the code sends matches its schemas."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from broadcaster import protocol
from broadcaster.device.core import DeviceCore
from tests.broadcaster.protocol.test_doc import EXAMPLE_KEY, EXAMPLE_SIGNER, _blocks, _validate


def _example(name: str) -> dict[str, Any]:
    (example,) = [e for n, e in _blocks("example") if n == name]
    return example


def test_the_documented_answer_verifies_with_the_example_key_and_says_what_the_text_says() -> None:
    key = protocol.load_public_key(EXAMPLE_KEY)
    keys = {protocol.key_id(key): key}
    answer = _example("time.reply")
    t1, t2, t3 = protocol.check_time_reply(answer, keys, "thon-1-loa")
    assert t1 == _example("time.request")["t1"]  # the answer to the request above it
    assert EXAMPLE_SIGNER.sign(answer) == answer  # Ed25519 is deterministic: the seed gives the same signature
    sample = protocol.ClockSample.of(t1, t2, t3, 1795600800040150)  # t4, as the text gives it
    assert (sample.offset_s * 1000, sample.delay_s * 1000) == (2000.0, 40.0)
    with pytest.raises(protocol.Refusal, match="bad_signature"):
        protocol.check_time_reply({**answer, "t2": t2 + 1_000_000}, keys, "thon-1-loa")
    with pytest.raises(protocol.Refusal, match="wrong_recipient"):
        protocol.check_time_reply(answer, keys, "thon-2-loa")


def test_what_the_code_sends_matches_the_clock_schemas(tmp_path: Path) -> None:
    signer = protocol.load_or_create_signer(tmp_path / "k.pem")
    core = DeviceCore("thon-1-loa", "speaker", {signer.kid: signer.private.public_key()})
    now = 1795600800.0
    request = core.time_request(now)
    _validate("time.request", request)
    answer = protocol.make_time_reply(
        signer, "thon-1-loa", request["t1"], protocol.to_us(now + 2.02), protocol.to_us(now + 2.0202)
    )
    _validate("time.reply", answer)
    core.time_reply(protocol.encode(answer), now + 0.04)
    status = core.status(True, now + 1)
    assert status["clock_offset_ms"] == pytest.approx(2000.1, abs=0.01)
    _validate("status", status)
