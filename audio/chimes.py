"""Intro and outro chimes, synthesized here so that no third-party recording
(and no licence question) ships with the loudspeakers.

Each note is a soft bell: a sine fundamental with two quieter partials and an
exponential decay, which reads as "announcement" on horn speakers without the
harshness of square or saw tones. Pure math, no numpy: a chime is ~1.5 s of audio
and is cached per sample rate.
"""

from __future__ import annotations

import math
import sys
from array import array
from functools import lru_cache
from typing import Literal

ChimeKind = Literal["intro", "outro"]

# (start seconds, frequency Hz): a rising major triad to open, a falling third to close.
_NOTES: dict[str, tuple[tuple[float, float], ...]] = {
    "intro": ((0.00, 523.25), (0.22, 659.25), (0.44, 783.99)),  # C5 E5 G5
    "outro": ((0.00, 783.99), (0.28, 523.25)),  # G5 C5
}
_PARTIALS = ((1.0, 1.0), (2.0, 0.28), (3.0, 0.08))  # (multiple of f0, relative amplitude)
_DECAY_S = 0.32
_ATTACK_S = 0.006
_NOTE_S = 1.1
_PEAK = 0.5  # of full scale; loudness normalization sets the final level anyway


@lru_cache(maxsize=8)
def chime(rate: int, kind: ChimeKind = "intro") -> bytes:
    """Mono s16le PCM of the chime at `rate`."""
    notes = _NOTES[kind]
    total = int((notes[-1][0] + _NOTE_S) * rate)
    mix = [0.0] * total
    norm = sum(a for _, a in _PARTIALS)
    for start_s, freq in notes:
        offset = int(start_s * rate)
        for i in range(min(int(_NOTE_S * rate), total - offset)):
            t = i / rate
            env = min(1.0, t / _ATTACK_S) * math.exp(-t / _DECAY_S)
            tone = sum(a * math.sin(2 * math.pi * freq * k * t) for k, a in _PARTIALS)
            mix[offset + i] += env * tone / norm
    peak = max(1e-9, max(abs(x) for x in mix))
    fade = int(0.05 * rate)  # end exactly at zero so the join to speech cannot click
    samples = array("h", (
        int(32767 * _PEAK * x / peak * (min(1.0, (total - i) / fade))) for i, x in enumerate(mix)
    ))
    if sys.byteorder == "big":
        samples.byteswap()
    return samples.tobytes()
