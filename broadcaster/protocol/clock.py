"""How far a device's clock is from the daemon's: an NTP-style exchange over MQTT (docs/protocol.md, *Clock
offset*), shared by the daemon (which answers) and the devices (which ask and correct their starts).

A synchronized start is only as good as each speaker's clock, and a speaker's clock is only as good as
its NTP, which a 4G modem behind a carrier's NAT may not have. So the device asks the one clock that
matters, the daemon's, which stamps every `start_at`:

    device                      daemon
    t1 = now  --- time {t1} -->
                                t2 = when it heard the request
                                t3 = when it sends the answer
              <-- clock {t1, t2, t3} (signed) ---
    t4 = now

offset = ((t2 - t1) + (t3 - t4)) / 2 is what to add to the device's clock to read the daemon's (NTP's
θ: positive when the device is behind), delay = (t4 - t1) - (t3 - t2) the round trip on the network.
Whatever the delays, the true offset lies within offset ± delay / 2, so the sample with the least delay
is the best one. Times on the wire are integer microseconds since the Unix epoch: exact in every
language's JSON (below 2**53) and in the signed canonical bytes.

The answer is signed like a command, because a forged one would shift the device's clock, and so make
it play early or late; it is not a command (its `type` is `time`, it has no `start_at`), so it can never
make a speaker talk (docs/security.md, *Clock offsets*).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, TypeGuard

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from broadcaster.protocol.commands import Refusal
from broadcaster.protocol.signing import Signer, verify
from broadcaster.protocol.version import PROTOCOL_VERSION

TIME_TYPE = "time"
MAX_US = 2**53 - 1  # beyond this a JSON number is not exact everywhere
MAX_TURNAROUND_US = 1_000_000  # the daemon answers at once; more than a second between t2 and t3 is a lie


def to_us(epoch_s: float) -> int:
    """Seconds since the epoch (time.time(), datetime.timestamp()) as integer microseconds for the wire."""
    return round(epoch_s * 1_000_000)


def make_time_request(t1_us: int) -> dict[str, Any]:
    """What a device publishes on its `time` topic: only its own clock's reading."""
    return {"v": PROTOCOL_VERSION, "t1": t1_us}


def read_time_request(message: dict[str, Any]) -> int:
    """The `t1` of a request, or ValueError: the daemon echoes nothing it has not checked."""
    t1 = message.get("t1")
    if message.get("v") != PROTOCOL_VERSION or not _is_us(t1):
        raise ValueError("not a time request")
    return t1


def make_time_reply(signer: Signer, device_id: str, t1_us: int, t2_us: int, t3_us: int) -> dict[str, Any]:
    """The daemon's signed answer, for `device_id` only (a reply captured on another device's topic names
    the other device, and is refused)."""
    body = {"v": PROTOCOL_VERSION, "type": TIME_TYPE, "to": device_id, "t1": t1_us, "t2": t2_us, "t3": t3_us}
    return signer.sign(body)


def check_time_reply(reply: dict[str, Any], keys: dict[str, Ed25519PublicKey], device_id: str) -> tuple[int, int, int]:
    """(t1, t2, t3) of a genuine answer to this device, or Refusal with the code a command would get:
    `bad_version`, `bad_signature`, `wrong_recipient`, `bad_time` (the caller then checks that `t1` is
    one of its own outstanding requests: that is what makes an old answer useless)."""
    if reply.get("v") != PROTOCOL_VERSION:
        raise Refusal("bad_version")
    if not verify(reply, keys):
        raise Refusal("bad_signature")
    if reply.get("type") != TIME_TYPE:
        raise Refusal("bad_time")  # a signed command is not a clock reading
    if reply.get("to") != device_id:
        raise Refusal("wrong_recipient")
    t1, t2, t3 = reply.get("t1"), reply.get("t2"), reply.get("t3")
    if not (_is_us(t1) and _is_us(t2) and _is_us(t3)) or not 0 <= t3 - t2 <= MAX_TURNAROUND_US:
        raise Refusal("bad_time")
    return t1, t2, t3


@dataclass(frozen=True, slots=True)
class ClockSample:
    """One exchange: `offset_s` to add to the device's clock to read the daemon's, `delay_s` the round
    trip (the offset is right to within half of it), `at` the device's clock when the answer came."""

    offset_s: float
    delay_s: float
    at: float

    @classmethod
    def of(cls, t1_us: int, t2_us: int, t3_us: int, t4_us: int) -> ClockSample:
        offset_us = ((t2_us - t1_us) + (t3_us - t4_us)) / 2
        delay_us = (t4_us - t1_us) - (t3_us - t2_us)
        return cls(offset_us / 1e6, delay_us / 1e6, t4_us / 1e6)


def _is_us(value: object) -> TypeGuard[int]:
    return isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= MAX_US
