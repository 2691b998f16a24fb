"""A play that reached its end is `done`, whatever starts next; and every play's final ack says how long
it was heard (`played_s`). The device core alone, on a made-up clock (docs/protocol.md, *Timing and
priorities*; the whole story through the daemon: tests/broadcaster/test_records_end_to_end.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

from broadcaster import protocol
from broadcaster.device.core import END_GRACE_S, Ack, DeviceCore, Play, Silence, Wake
from tests.broadcaster.device.test_core import AUDIO, T0, acks, cid_of, cmd, speaker


@pytest.fixture
def signer(tmp_path: Path) -> protocol.Signer:
    return protocol.load_or_create_signer(tmp_path / "k.pem")


def _on_air(core: DeviceCore, signer: protocol.Signer, start: float, priority: str = "normal") -> str:
    """A play taken and downloaded, waiting for `start`."""
    payload = cmd(signer, start=start, priority=priority)
    cid = cid_of(payload)
    core.receive(payload, T0 + 1)
    core.fetched(cid, None, T0 + 2)
    return cid


@pytest.mark.parametrize("late_ms", [0.0, 3.0, 40.0, 600.0])
def test_a_priority_item_placed_right_after_an_item_lets_it_end(signer: protocol.Signer, late_ms: float) -> None:
    """The planner puts a priority item at the end of what is already on air. The first started a little
    late (a few ms; 0.6 s on a busy device), so the second's start comes while its last moments still
    play: it waits for that end, and both are heard whole and `done`. It used to cut the first one:
    `failed / preempted` on every speaker, for an item that everyone heard."""
    core = speaker(signer)
    first = _on_air(core, signer, 30)  # 4 s of audio: 30 to 34
    core.wake(first, T0 + 30 + late_ms / 1000)
    second = _on_air(core, signer, 34, "priority")
    out = core.wake(second, T0 + 34)
    assert acks(out) == [] and not any(isinstance(a, Silence) for a in out)
    assert Wake(second, T0 + 34 + late_ms / 1000 + END_GRACE_S, False) in out  # ... but not for ever
    out = core.ended(first, T0 + 34 + late_ms / 1000 + 0.002)
    assert acks(out) == [(first[:8], "done", ""), (second[:8], "playing", "")]
    done = next(a for a in out if isinstance(a, Ack) and a.command_id == first)
    assert done.extra["played_s"] == pytest.approx(4.0, abs=0.003)
    assert isinstance(out[-1], Play) and out[-1].command_id == second
    assert core.wake(second, T0 + 34 + late_ms / 1000 + END_GRACE_S) == []  # the grace's end: nothing left to do


def test_an_item_that_overruns_its_length_is_cut_at_the_grace_and_is_done(signer: protocol.Signer) -> None:
    """A player that lags (or never says it finished) holds the next item back by END_GRACE_S at most;
    what it cut then had been on air for its whole length, and is recorded so."""
    core = speaker(signer)
    first = _on_air(core, signer, 30)
    core.wake(first, T0 + 30)
    alert = _on_air(core, signer, 33.5, "emergency")
    assert acks(core.wake(alert, T0 + 33.5)) == []
    out = core.wake(alert, T0 + 34 + END_GRACE_S)
    assert acks(out) == [(first[:8], "done", ""), (alert[:8], "playing", "")]
    assert isinstance(out[0], Silence) and out[0].command_id == first
    assert core.ended(first, T0 + 35.2) == []  # its player stopping later changes nothing


def test_an_item_cut_well_before_its_end_is_still_preempted_and_says_how_much_was_heard(
    signer: protocol.Signer,
) -> None:
    core = speaker(signer)
    first = _on_air(core, signer, 30)
    core.wake(first, T0 + 30)
    cut_at = 34 - END_GRACE_S - 0.1
    alert = _on_air(core, signer, cut_at, "emergency")
    out = core.wake(alert, T0 + cut_at)
    assert acks(out) == [(first[:8], "failed", "preempted"), (alert[:8], "playing", "")]
    cut = next(a for a in out if isinstance(a, Ack) and a.command_id == first)
    assert cut.extra["played_s"] == pytest.approx(cut_at - 30)


def test_an_equal_priority_back_to_back_waits_and_both_are_done(signer: protocol.Signer) -> None:
    core = speaker(signer)
    first = _on_air(core, signer, 30)
    core.wake(first, T0 + 30.005)
    second = _on_air(core, signer, 34)
    assert acks(core.wake(second, T0 + 34)) == []  # waits for the first's end, a few ms away
    out = core.ended(first, T0 + 34.006)
    assert acks(out) == [(first[:8], "done", ""), (second[:8], "playing", "")]


def test_the_final_ack_carries_what_the_player_counted(signer: protocol.Signer) -> None:
    """A relay's sink counts the seconds that came through (not the gaps while it reconnected), and a
    stream that never opened is failed with 0 s: the daemon counts neither window as heard."""
    core = speaker(signer)
    relay = cmd(signer, body={"title": "VOV1", "stream": {"url": "http://h/vov1", "duration_s": 60}}, start=30)
    rid = cid_of(relay)
    core.receive(relay, T0 + 1)
    core.wake(rid, T0 + 30)
    out = core.ended(rid, T0 + 90, None, 51.25)
    assert out[0] == Ack(rid, "done", T0 + 90, {"played_s": 51.25})
    never = cmd(signer, body={"title": "VOV1", "stream": {"url": "http://h/vov1", "duration_s": 60}}, start=100)
    nid = cid_of(never)
    core.receive(never, T0 + 1)
    core.wake(nid, T0 + 100)
    out = core.ended(nid, T0 + 110, "stream_unreachable: Connection refused", 0.0)
    assert out[0] == Ack(nid, "failed", T0 + 110, {"reason": "stream_unreachable: Connection refused", "played_s": 0.0})
    assert out[0].message()["played_s"] == 0.0


def test_an_led_board_says_nothing_of_seconds_played(signer: protocol.Signer) -> None:
    from tests.broadcaster.device.test_core import led

    core = led(signer)
    show = cmd(signer, "led.show", {"text": "Họp thôn", "duration_s": 5}, to="thon-1-led")
    sid = cid_of(show)
    core.receive(show, T0 + 1)
    core.wake(sid, T0 + 30)
    out = core.ended(sid, T0 + 35)
    assert [a.extra for a in out if isinstance(a, Ack)] == [{}]
    assert AUDIO["duration_ms"] == 4000  # the item every test above plays
