"""A device whose clock is off still starts on the daemon's time: the offset exchange of docs/protocol.md
(*Clock offset*) on the sans-IO core, with fake clocks skewed against a true one. No network, no sleep.

`TRUE` is the daemon's clock; the device's reads TRUE + skew. A message takes `LEG_S` each way."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from broadcaster import protocol
from broadcaster.device.clock import RETRY_S, ROUND, ROUND_GAP_S, SYNC_EVERY_S
from broadcaster.device.core import Ack, DeviceCore, Fetch, Play, Refused, Restatus, Show, Wake
from tests.broadcaster.device.test_core import T0, cmd, speaker

LEG_S = 0.02  # each way on the network
TURN_S = 0.0002  # the daemon's time between hearing a request and answering it


@pytest.fixture
def signer(tmp_path: Path) -> protocol.Signer:
    return protocol.load_or_create_signer(tmp_path / "k.pem")


def reply(signer: protocol.Signer, request: dict[str, Any], heard: float, to: str = "thon-1-loa") -> bytes:
    """The daemon's answer to `request`, heard at `heard` on the true clock."""
    t2 = protocol.to_us(heard)
    return protocol.encode(protocol.make_time_reply(signer, to, request["t1"], t2, t2 + protocol.to_us(TURN_S)))


def exchange(
    core: DeviceCore, signer: protocol.Signer, true_now: float, skew: float, out: float = LEG_S, back: float = LEG_S
) -> list[Any]:
    """One request at `true_now`, its answer back after `out` + TURN_S + `back`: the core's actions."""
    request = core.time_request(true_now + skew)
    answer = reply(signer, request, true_now + out)
    return core.time_reply(answer, true_now + out + TURN_S + back + skew)


def relay(signer: protocol.Signer, start: float = 30, valid: float = 600) -> bytes:
    """A play of a stream: no download, its start asked for at once."""
    return cmd(signer, "play", {"stream": {"url": "http://h/live", "duration_s": 60}}, start=start, valid=valid)


def synced(signer: protocol.Signer, skew: float) -> DeviceCore:
    core = speaker(signer)
    core.clock.start(T0 + skew)
    exchange(core, signer, T0, skew)
    return core


def test_the_offset_is_the_daemons_clock_minus_the_devices_within_half_the_round_trip() -> None:
    t1, t2, t3, t4 = 1795600800000000, 1795600802020000, 1795600802020150, 1795600800040150  # the doc's example
    sample = protocol.ClockSample.of(t1, t2, t3, t4)
    assert (sample.offset_s, sample.delay_s) == (2.0, 0.04)  # behind by 2 s: add 2 s to read the daemon's
    ahead = protocol.ClockSample.of(1_002_000_000, 1_000_020_000, 1_000_020_150, 1_002_040_150)
    assert (ahead.offset_s, ahead.delay_s) == (-2.0, 0.04)
    # 30 ms out, 10 ms back: the estimate is off by half the difference, within half the round trip
    lopsided = protocol.ClockSample.of(1_000_000_000, 1_002_030_000, 1_002_030_000, 1_000_040_000)
    assert lopsided.offset_s == pytest.approx(2.01, abs=1e-6)
    assert abs(lopsided.offset_s - 2.0) <= lopsided.delay_s / 2


@pytest.mark.parametrize("skew", [2.0, -2.0])
def test_a_skewed_speaker_starts_on_the_daemons_time(signer: protocol.Signer, skew: float) -> None:
    core = synced(signer, skew)
    assert core.clock.offset_s == pytest.approx(-skew, abs=1e-6)
    received = core.receive(relay(signer), T0 + 1 + skew)
    (wake,) = [a for a in received if isinstance(a, Wake)]
    assert wake.at - skew == pytest.approx(T0 + 30, abs=1e-6)  # on the true clock: start_at, not 2 s off
    (ack,) = [a for a in received if isinstance(a, Ack)]
    assert ack.at == pytest.approx(T0 + 1, abs=1e-6)  # ack times are the daemon's too

    started = core.wake(wake.command_id, wake.at)
    (play,) = [a for a in started if isinstance(a, Play)]
    assert play.start_error_ms == pytest.approx(0, abs=0.01)
    assert play.started_at == pytest.approx(wake.at, abs=1e-6)  # the driver's clock, to time the end by


def test_without_an_answer_the_device_keeps_its_own_clock(signer: protocol.Signer) -> None:
    core = speaker(signer)
    core.time_request(T0 + 2)  # asked, never answered
    (wake,) = [a for a in core.receive(relay(signer), T0 + 2) if isinstance(a, Wake)]
    assert wake.at == T0 + 30
    assert "clock_offset_ms" not in core.status(True, T0)


def test_an_audio_play_fetches_until_expiry_on_the_devices_clock(signer: protocol.Signer) -> None:
    core = synced(signer, -2.0)
    (fetch,) = [a for a in core.receive(cmd(signer, start=30, valid=600), T0 - 1) if isinstance(a, Fetch)]
    assert fetch.until == pytest.approx(T0 + 630 - 2.0, abs=1e-6)
    (wake,) = [a for a in core.fetched(fetch.command_id, None, T0 + 3 - 2.0) if isinstance(a, Wake)]
    assert wake.at == pytest.approx(T0 + 30 - 2.0, abs=1e-6)


def test_a_command_expired_by_the_daemons_clock_is_expired_whatever_the_devices_says(signer: protocol.Signer) -> None:
    core = synced(signer, -2.0)  # the device's clock is 2 s behind: by its own clock, still valid
    late = core.receive(relay(signer, start=-30, valid=30.5), T0 + 1.0 - 2.0)
    assert [a.state for a in late if isinstance(a, Ack)] == ["expired"]


def test_a_start_already_scheduled_moves_with_the_offset(signer: protocol.Signer) -> None:
    core = speaker(signer)
    (first,) = [a for a in core.receive(relay(signer), T0 + 2.0) if isinstance(a, Wake)]  # not measured: its own clock
    assert first.at == T0 + 30
    core.clock.start(T0 + 2.0)
    moved = exchange(core, signer, T0, 2.0)  # now it knows it is 2 s ahead
    (again,) = [a for a in moved if isinstance(a, Wake)]
    assert again.at == pytest.approx(T0 + 32, abs=1e-6)
    assert any(isinstance(a, Restatus) for a in moved)  # the first measurement is said at once
    # The first wake still fires at T0 + 30 by the device's clock, 2 s early by the daemon's: asked again
    (rearmed,) = core.wake(first.command_id, first.at)
    assert isinstance(rearmed, Wake) and rearmed.start and rearmed.at == pytest.approx(T0 + 32, abs=1e-6)
    started = core.wake(again.command_id, again.at)
    assert [a.start_error_ms for a in started if isinstance(a, Play)] == [pytest.approx(0, abs=0.01)]


def test_the_least_delayed_answer_wins_until_the_clock_is_stepped(signer: protocol.Signer) -> None:
    core = speaker(signer)
    skew, now = 1.5, T0
    core.clock.start(now + skew)
    said: list[bool] = []
    for out, back in [(0.050, 0.010), (0.002, 0.002), (0.100, 0.100)]:  # the second is the best
        assert core.clock.next_at == pytest.approx(now + skew, abs=1e-6)
        said.append(any(isinstance(a, Restatus) for a in exchange(core, signer, now, skew, out, back)))
        now += ROUND_GAP_S
    assert said == [True, False, True]  # the first answer, and the end of the round
    assert core.clock.offset_s == pytest.approx(-skew, abs=0.0001)
    assert core.clock.best is not None and core.clock.best.delay_s == pytest.approx(0.004, abs=1e-6)
    status = core.status(True, T0 + skew)
    assert status["clock_offset_ms"] == pytest.approx(-1500, abs=0.1) and status["clock_delay_ms"] == pytest.approx(4)
    # The round at connect is followed by another soon (a connect is often a storm), then every period
    last = now - ROUND_GAP_S
    assert core.clock.next_at == pytest.approx(last + RETRY_S + skew, abs=1e-6)
    for k in range(ROUND):
        exchange(core, signer, last + RETRY_S + k * ROUND_GAP_S, skew, 0.030, 0.010)  # slower, lopsided
    assert core.clock.best.delay_s == pytest.approx(0.004, abs=1e-6)  # they agree with the better one: kept
    last += RETRY_S + (ROUND - 1) * ROUND_GAP_S
    assert core.clock.next_at == pytest.approx(last + SYNC_EVERY_S + skew, abs=1e-6)
    # The clock was stepped meanwhile (now 1.8 s ahead): followed at once, even with a worse delay
    exchange(core, signer, last + SYNC_EVERY_S, 1.8, 0.03, 0.03)
    assert core.clock.offset_s == pytest.approx(-1.8, abs=0.0001)


def test_a_right_clock_measured_over_a_slow_lopsided_network_is_left_alone(signer: protocol.Signer) -> None:
    core = speaker(signer)
    core.clock.start(T0)
    exchange(core, signer, T0, 0.0, out=0.120, back=0.010)  # queued on the way out: looks 55 ms behind
    assert core.clock.offset_s == pytest.approx(0.055, abs=1e-6)
    assert core.clock.applied_s == 0.0  # within half the 130 ms round trip of zero: nothing proven
    (wake,) = [a for a in core.receive(relay(signer), T0) if isinstance(a, Wake)]
    assert wake.at == T0 + 30


def test_answers_that_are_not_genuine_fresh_and_ours_are_refused_and_never_play(
    signer: protocol.Signer, tmp_path: Path
) -> None:
    stranger = protocol.load_or_create_signer(tmp_path / "stranger.pem")
    core = speaker(signer)
    request = core.time_request(T0)
    heard = T0 + 2 * LEG_S

    def refused(payload: bytes) -> list[str]:
        actions = core.time_reply(payload, heard)
        assert not [a for a in actions if isinstance(a, Play | Show | Wake)]
        return [a.code for a in actions if isinstance(a, Refused)]

    assert refused(reply(stranger, request, T0 + LEG_S)) == ["bad_signature"]
    assert refused(reply(signer, request, T0 + LEG_S, to="thon-2-loa")) == ["wrong_recipient"]
    assert refused(b"[1]") == ["malformed"]
    forged = json.loads(reply(signer, request, T0 + LEG_S))
    assert refused(protocol.encode({**forged, "t2": forged["t2"] + 5_000_000})) == ["bad_signature"]
    assert refused(cmd(signer, "ping", {})) == ["bad_time"]  # a signed command is not a clock reading
    disguised = signer.sign({**json.loads(reply(signer, request, T0 + LEG_S)), "type": "play"})
    assert refused(protocol.encode(disguised)) == ["bad_time"]
    slow = protocol.make_time_reply(signer, "thon-1-loa", request["t1"], protocol.to_us(T0), protocol.to_us(T0 + 2))
    assert refused(protocol.encode(slow)) == ["bad_time"]  # "answered" 2 s after hearing: a lie
    other = dict(request, t1=request["t1"] + 1)
    assert refused(reply(signer, other, T0 + LEG_S)) == ["unasked_time"]  # not a request of ours
    assert core.clock.best is None
    genuine = reply(signer, request, T0 + LEG_S)
    assert not refused(genuine)
    assert core.clock.best is not None
    assert refused(genuine) == ["unasked_time"]  # the same answer again: its request is answered
    kept = core.clock.best
    late = core.time_request(T0 + 10)
    slow_answer = reply(signer, late, T0 + 16)  # held 6 s on the way: says the daemon is 5 s ahead
    assert core.time_reply(slow_answer, T0 + 12) == []  # a 2 s round trip proves nothing: dropped quietly
    assert core.clock.best is kept
    assert refused(slow_answer) == ["unasked_time"]  # and its request counts as answered


def test_an_offset_under_a_millisecond_is_measured_but_not_applied(signer: protocol.Signer) -> None:
    core = synced(signer, 0.0004)
    assert core.clock.offset_s == pytest.approx(-0.0004, abs=1e-6)
    assert core.status(True, T0)["clock_offset_ms"] == pytest.approx(-0.4, abs=0.001)
    (wake,) = [a for a in core.receive(relay(signer), T0) if isinstance(a, Wake)]
    assert wake.at == T0 + 30  # speakers that share a start_at keep sharing the instant


def test_a_round_nobody_answered_is_tried_again_soon_not_in_five_minutes(signer: protocol.Signer) -> None:
    core = speaker(signer)
    core.clock.start(T0)
    for k in range(ROUND):  # the daemon is away: nothing comes back
        core.time_request(T0 + k * ROUND_GAP_S)
    last = T0 + (ROUND - 1) * ROUND_GAP_S
    assert core.clock.next_at == pytest.approx(last + RETRY_S, abs=1e-6)
    assert RETRY_S < SYNC_EVERY_S


def test_an_answer_fed_to_the_device_as_a_command_is_dropped_without_an_ack(signer: protocol.Signer) -> None:
    core = speaker(signer)
    answer = reply(signer, core.time_request(T0), T0 + LEG_S)
    assert core.receive(answer, T0 + 2 * LEG_S) == [Refused("bad_time")]


def test_an_answer_older_than_two_periods_no_longer_counts(signer: protocol.Signer) -> None:
    core = speaker(signer)
    core.clock.start(T0 + 1.5)
    exchange(core, signer, T0, 1.5, 0.002, 0.002)
    later = T0 + 2 * SYNC_EVERY_S + ROUND * ROUND_GAP_S + 1
    exchange(core, signer, later, 1.5, 0.020, 0.020)  # worse, but the good one is stale by now
    assert core.clock.best is not None and core.clock.best.delay_s == pytest.approx(0.04, abs=1e-6)
