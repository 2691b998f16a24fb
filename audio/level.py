"""Loudness levelling of synthesized speech, in-process, sentence by sentence.

Why here and not in ffmpeg: a whole-program loudness pass (measure, solve the limiter
gain, then encode) cannot start encoding before the last sentence is spoken, and on a
two-core commune server the MP3 encoder alone costs twice what espeak-ng does. Levelling
each sentence as it arrives lets the encoder run while the engine is still speaking.
It also sounds better on horn speakers: a sentence the engine happened to speak softly
is brought up with the rest. Officer recordings are still levelled as one piece in
ffmpeg (`render.solve_gain`), because a person's own dynamics are part of the message.

The meter is ITU-R BS.1770 (K-weighting, 400 ms blocks, absolute and relative gates), the
same as ffmpeg's ebur128. The limiter is a look-ahead brick wall computed on 2 ms blocks:
a minimum filter (2 ms ahead, 40 ms behind, like a limiter's attack and release) then a
short moving average, which is provably never above the gain a block needs, so no sample
and no half-sample point goes past the ceiling.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
from numpy.typing import NDArray

Floats = NDArray[np.float32]

ENVELOPE_MS = 2  # limiter resolution
ATTACK_BLOCKS = 3  # look-ahead of the minimum filter, in envelope blocks
RELEASE_BLOCKS = 20  # hold after a peak, in envelope blocks (40 ms)
SMOOTH_BLOCKS = ATTACK_BLOCKS - 1  # must stay below ATTACK_BLOCKS for the brick-wall guarantee
GATE_ABSOLUTE_LUFS = -70.0
GATE_RELATIVE_LU = -10.0
SILENT = -70.0


@lru_cache(maxsize=8)
def k_weighting(rate: int) -> NDArray[np.float64]:
    """BS.1770 pre-filter (high shelf) and RLB high-pass as second-order sections, designed
    for `rate` by the bilinear transform exactly as libebur128 (ffmpeg's meter) does."""
    k = math.tan(math.pi * 1681.974450955533 / rate)
    q = 0.7071752369554196
    vh = 10 ** (3.999843853973347 / 20)
    vb = vh**0.4996667741545416
    a0 = 1 + k / q + k * k
    shelf = [(vh + vb * k / q + k * k) / a0, 2 * (k * k - vh) / a0, (vh - vb * k / q + k * k) / a0,
             1.0, 2 * (k * k - 1) / a0, (1 - k / q + k * k) / a0]
    k = math.tan(math.pi * 38.13547087602444 / rate)
    q = 0.5003270373238773
    a0 = 1 + k / q + k * k
    highpass = [1.0, -2.0, 1.0, 1.0, 2 * (k * k - 1) / a0, (1 - k / q + k * k) / a0]
    return np.array([shelf, highpass])


def _to_float(pcm: bytes) -> Floats:
    return np.frombuffer(pcm, dtype="<i2").astype(np.float32) * np.float32(1 / 32768)


def _to_pcm(x: Floats) -> bytes:
    x *= np.float32(32768)
    np.rint(x, out=x)
    np.clip(x, -32768, 32767, out=x)
    return x.astype("<i2").tobytes()


def _gated(block_power: NDArray[np.float64]) -> float:
    """Integrated loudness from the mean-square power of each 400 ms block."""
    with np.errstate(divide="ignore"):
        levels = -0.691 + 10 * np.log10(block_power)
    kept = block_power[levels > GATE_ABSOLUTE_LUFS]
    if not kept.size:
        return SILENT
    relative = -0.691 + 10 * math.log10(float(kept.mean())) + GATE_RELATIVE_LU
    kept = block_power[levels > max(relative, GATE_ABSOLUTE_LUFS)]
    return -0.691 + 10 * math.log10(float(kept.mean())) if kept.size else SILENT


@dataclass(frozen=True)
class _Analysis:
    """What levelling needs of one sentence, computed once."""

    x: Floats
    peaks: NDArray[np.float32]  # per envelope block: largest |sample| or half-sample point
    energy: NDArray[np.float64]  # per envelope block: sum of squared K-weighted samples
    block: int  # samples per envelope block
    window: int  # envelope blocks per 400 ms loudness block
    hop: int  # envelope blocks per 100 ms step


class Leveller:
    """Brings mono s16le PCM to `target_lufs` with its peaks under `ceiling_dbtp`.

    Stateless apart from its settings, so the pipeline's worker threads share one (numpy
    and scipy release the GIL in the heavy parts).
    """

    def __init__(self, rate: int, target_lufs: float, ceiling_dbtp: float) -> None:
        self.rate = rate
        self.target_lufs = target_lufs
        self.ceiling = 10 ** (ceiling_dbtp / 20)
        self.block = max(1, rate * ENVELOPE_MS // 1000)

    def _analyse(self, x: Floats) -> _Analysis:
        block = self.block
        n_blocks = -(-len(x) // block)
        padded = np.pad(x, (0, n_blocks * block - len(x))) if len(x) % block else x
        # Peak envelope: samples and the points half-way between them (a 4-tap cubic
        # interpolation), which is where inter-sample overs hide. In place: this runs on
        # every sentence of every article.
        mag = np.abs(padded)
        if len(padded) >= 4:
            mid = padded[1:-2] + padded[2:-1]
            mid *= np.float32(9 / 16)
            outer = padded[:-3] + padded[3:]
            outer *= np.float32(1 / 16)
            mid -= outer
            np.abs(mid, out=mid)
            np.maximum(mag[1:-2], mid, out=mag[1:-2])
        peaks = mag.reshape(n_blocks, block).max(axis=1)
        from scipy import signal  # 1.3 s to import: paid at the first render, not by every `loa` command

        weighted = signal.sosfilt(k_weighting(self.rate).astype(np.float32), padded)
        np.square(weighted, out=weighted)
        energy = weighted.reshape(n_blocks, block).sum(axis=1, dtype=np.float64)
        window = max(1, round(0.4 * self.rate / block))
        return _Analysis(x, peaks, energy, block, window, max(1, window // 4))

    def _loudness(self, a: _Analysis, gains: NDArray[np.float64]) -> float:
        """Integrated loudness of the sentence with per-block gains applied.

        A gain that moves slowly against the K-filter's response scales the filtered
        signal by the same factor, so the limited signal need not be filtered again."""
        energy = a.energy * np.square(gains)
        if len(energy) < a.window:  # shorter than one 400 ms block: measure it whole
            return _gated(np.array([energy.sum() / (len(energy) * a.block)]))
        sums = np.concatenate(([0.0], np.cumsum(energy)))
        starts = np.arange(0, len(energy) - a.window + 1, a.hop)
        return _gated((sums[starts + a.window] - sums[starts]) / (a.window * a.block))

    def _limiter_gains(self, a: _Analysis, gain: float) -> NDArray[np.float64]:
        need = np.minimum(1.0, self.ceiling / (gain * np.maximum(a.peaks.astype(np.float64), 1e-9)))
        # The origin places the window so a peak pulls the gain down ATTACK_BLOCKS before it
        # and holds it for RELEASE_BLOCKS after it.
        size = ATTACK_BLOCKS + RELEASE_BLOCKS + 1
        from scipy import ndimage

        held = ndimage.minimum_filter1d(need, size, origin=RELEASE_BLOCKS - size // 2, mode="nearest")
        return np.asarray(ndimage.uniform_filter1d(held, 2 * SMOOTH_BLOCKS + 1, mode="nearest"), dtype=np.float64)

    def solve(self, a: _Analysis) -> tuple[float, NDArray[np.float64]]:
        """The make-up gain (linear) and limiter gains that land the sentence on the target."""
        raw = self._loudness(a, np.ones(len(a.energy)))
        if raw <= SILENT:
            return 1.0, np.ones(len(a.energy))
        gain_db = self.target_lufs - raw
        points: list[tuple[float, float]] = []
        for _ in range(8):
            gain = 10 ** (gain_db / 20)
            limits = self._limiter_gains(a, gain)
            reached = self._loudness(a, gain * limits)
            points.append((gain_db, reached))
            if abs(reached - self.target_lufs) < 0.05:
                break
            if len(points) >= 2:  # secant through the last two; the curve is smooth and monotonic
                (g1, l1), (g2, l2) = points[-2:]
                slope = (l2 - l1) / (g2 - g1) if not math.isclose(g1, g2) else 1.0
                slope = min(1.0, max(0.1, slope))
            else:
                slope = 1.0
            gain_db += max(-12.0, min(12.0, (self.target_lufs - reached) / slope))
        return gain, limits

    def level(self, pcm: bytes) -> bytes:
        if len(pcm) < 2:
            return pcm
        a = self._analyse(_to_float(pcm))
        gain, limits = self.solve(a)
        out = a.x * np.float32(gain)
        if limits.min() < 1.0:
            # Per-sample gain: a straight line across each block between its edges, and each
            # edge takes the lower of the two blocks it joins, so no sample gets more gain
            # than its own block allows and the gain never jumps (no zipper noise).
            edges = np.minimum(np.concatenate(([limits[0]], limits)), np.concatenate((limits, [limits[-1]])))
            edges = edges.astype(np.float32)
            ramp = np.arange(a.block, dtype=np.float32) / np.float32(a.block)
            curve = edges[:-1, None] + (edges[1:] - edges[:-1])[:, None] * ramp[None, :]
            out *= curve.reshape(-1)[: len(out)]
        return _to_pcm(out)

    def loudness(self, pcm: bytes) -> float:
        """Integrated loudness (LUFS) of PCM as it is."""
        a = self._analyse(_to_float(pcm))
        return self._loudness(a, np.ones(len(a.energy)))
