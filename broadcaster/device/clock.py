"""The device's estimate of the daemon's clock (docs/protocol.md, *Clock offset*), without I/O.

A speaker starts an item when the daemon's clock says `start_at`, not when its own does: a speaker whose
clock is 2 s fast would otherwise play 2 s before its neighbours. So the device asks the daemon's time
in rounds (at connect, again RETRY_S later, then every `every_s`): a few requests a second apart, each
answered with the daemon's receive and send times (broadcaster.protocol.clock). Each answer says the
offset to within half its round trip, so of the recent answers the one with the least round trip is the
estimate. The round at connect is often the worst (a broker restart brings every speaker back at once,
and their answers queue), hence the second round soon after. Answers are kept for two periods; one that
cannot agree with the estimate (their intervals do not overlap: the device's clock was stepped) starts
afresh, so a clock that is set is followed at once, and one that drifts within a period or two.

The core (`DeviceCore`) turns its own clock into the daemon's with `applied_s`: the estimate, but only
when it proves the clock is off, by more than half its round trip (so a right clock measured over a slow
or lopsided network is never made worse) and by at least `APPLY_FROM_S` (below what the exchange can
tell; in the fleet simulator, speakers that share a `start_at` then still share a start instant).
"""

from __future__ import annotations

from typing import Any

from broadcaster.protocol import ClockSample, make_time_request, to_us

SYNC_EVERY_S = 300.0  # a crystal off by 20 ppm drifts 6 ms in that time
# The next round, after the round at connect, or after one with no answer but perhaps the last (daemon away)
RETRY_S = 30.0
ROUND = 3  # requests per round
ROUND_GAP_S = 1.0  # between the requests of a round
MAX_DELAY_S = 1.0  # a round trip longer than this says the offset only to within half a second: dropped
ANSWER_WITHIN_S = 5.0  # a request not answered by then is forgotten (a late answer is refused)
APPLY_FROM_S = 0.001


class ClockSync:
    """Rounds of time requests and their answers; `offset_s` is the daemon's clock minus this one's."""

    def __init__(self, every_s: float = SYNC_EVERY_S) -> None:
        self.every_s = every_s
        self.best: ClockSample | None = None  # the estimate in force
        self.next_at: float | None = None  # this device's clock: when to send the next request
        self._samples: list[ClockSample] = []  # the recent answers, that agree with each other
        self._round: list[ClockSample] = []
        self._connected_round = False  # the round under way is the one at connect
        self._left = 0  # requests of the round under way not sent yet
        self._outstanding: dict[int, float] = {}  # t1 (µs) -> when it was sent

    @property
    def offset_s(self) -> float:
        return self.best.offset_s if self.best is not None else 0.0

    @property
    def applied_s(self) -> float:
        """What the core adds to this device's clock to read the daemon's: the estimate once it proves the
        clock is off (see the module), else nothing."""
        if self.best is None:
            return 0.0
        offset = self.best.offset_s
        return offset if abs(offset) > max(APPLY_FROM_S, self.best.delay_s / 2) else 0.0

    def start(self, now: float) -> None:
        """Connected (again): a round now, whatever the schedule said (the link may have been away long)."""
        self._left = 0
        self._connected_round = True
        self.next_at = now

    def request(self, now: float) -> dict[str, Any]:
        """The next request of the round (the first of a new one if the last is over), to publish on the
        device's `time` topic now; `next_at` moves to the one after."""
        if self._left <= 0:
            self._left = ROUND
            self._round = []
        self._left -= 1
        if self._left > 0:
            self.next_at = now + ROUND_GAP_S
        else:
            soon = self._connected_round or not self._round
            self.next_at = now + (RETRY_S if soon else self.every_s)
            self._connected_round = False
        for t1, sent in list(self._outstanding.items()):
            if now - sent > ANSWER_WITHIN_S:
                del self._outstanding[t1]
        t1 = to_us(now)
        self._outstanding[t1] = now
        return make_time_request(t1)

    def asked(self, t1: int) -> bool:
        """`t1` is one of this device's requests, not answered yet."""
        return t1 in self._outstanding

    def answer(self, t1: int, t2: int, t3: int, now: float) -> ClockSample | None:
        """A checked answer (its signature and recipient are the core's business) heard at `now`. None if
        it answers no request of ours still waiting, or its round trip is impossible or too long."""
        if self._outstanding.pop(t1, None) is None:
            return None  # (one asked more than ANSWER_WITHIN_S ago has a round trip over MAX_DELAY_S)
        sample = ClockSample.of(t1, t2, t3, to_us(now))
        if not 0 <= sample.delay_s <= MAX_DELAY_S:
            return None
        self._round.append(sample)
        best = self.best
        if best is not None and abs(sample.offset_s - best.offset_s) > (sample.delay_s + best.delay_s) / 2:
            self._samples = []  # they cannot both be right: the clock was stepped since
        keep = 2 * self.every_s + ROUND * ROUND_GAP_S
        self._samples = [s for s in self._samples if now - s.at <= keep] + [sample]
        self.best = min(self._samples, key=lambda s: s.delay_s)
        return sample

    @property
    def round_over(self) -> bool:
        """Every request of the round is sent: what the device knows now is what it will say."""
        return self._left <= 0

    def report(self) -> dict[str, float]:
        """The fields of the device's status: nothing until a first answer."""
        if self.best is None:
            return {}
        return {
            "clock_offset_ms": round(self.best.offset_s * 1000, 3),
            "clock_delay_ms": round(self.best.delay_s * 1000, 3),
        }
