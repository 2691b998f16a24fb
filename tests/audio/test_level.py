"""The sentence leveller: its meter agrees with ffmpeg's, it lands on the target, and its
limiter is a brick wall whatever the signal."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from audio import render
from audio.engines import EspeakEngine
from audio.level import Leveller
from tests.audio.conftest import ebur128, ffmpeg, needs_tools

RATE = 22050


def peaky_speechlike(seconds: float, seed: int = 1) -> bytes:
    """Pulses at a voice's pitch through a resonance: the crest factor of real TTS output."""
    rng = np.random.default_rng(seed)
    n = int(seconds * RATE)
    t = np.arange(n) / RATE
    pulses = (np.sin(2 * np.pi * 140 * t) > 0.995).astype(np.float64)
    voiced = np.convolve(pulses, np.exp(-np.arange(200) / 30) * np.sin(np.arange(200) * 0.35), mode="same")
    syllables = 0.5 + 0.5 * np.sin(2 * np.pi * 3 * t) ** 2
    x = voiced * syllables + 0.01 * rng.standard_normal(n)
    x *= 0.9 / np.abs(x).max()
    return (x * 32767).astype("<i2").tobytes()


def peak(pcm: bytes) -> float:
    return float(np.abs(np.frombuffer(pcm, "<i2")).max()) / 32768


@needs_tools
def test_meter_agrees_with_ffmpeg_ebur128(tmp_path: Path) -> None:
    pcm = peaky_speechlike(12.0)
    raw, wav = tmp_path / "a.raw", tmp_path / "a.wav"
    raw.write_bytes(pcm)
    ffmpeg("-f", "s16le", "-ar", str(RATE), "-ac", "1", "-i", str(raw), str(wav))
    ours = Leveller(RATE, -16.0, -1.5).loudness(pcm)
    assert abs(ours - ebur128(wav)[0]) <= 0.15


@needs_tools
@pytest.mark.parametrize("target", [-16.0, -23.0])
def test_levelled_speech_is_on_target_and_under_the_ceiling(tmp_path: Path, target: float) -> None:
    raw = tmp_path / "s.wav"
    EspeakEngine().synthesize("Ủy ban nhân dân xã thông báo lịch tiêm phòng cho đàn gia súc, gia cầm.", raw)
    pcm = render.read_pcm(raw, RATE)
    leveller = Leveller(RATE, target, -3.0)
    out = leveller.level(pcm)
    assert len(out) == len(pcm)
    assert abs(leveller.loudness(out) - target) <= 0.3
    assert peak(out) <= 10 ** (-3.0 / 20) + 1 / 32768
    wav = tmp_path / "out.wav"
    (tmp_path / "out.raw").write_bytes(out)
    ffmpeg("-f", "s16le", "-ar", str(RATE), "-ac", "1", "-i", str(tmp_path / "out.raw"), str(wav))
    assert abs(ebur128(wav)[0] - target) <= 0.4


def test_a_quiet_sentence_is_raised_and_a_loud_one_lowered() -> None:
    leveller = Leveller(RATE, -18.0, -2.0)
    loud = peaky_speechlike(6.0)
    quiet = (np.frombuffer(loud, "<i2") // 20).astype("<i2").tobytes()
    for pcm in (loud, quiet):
        assert abs(leveller.loudness(leveller.level(pcm)) - (-18.0)) <= 0.3
    assert leveller.loudness(quiet) < -35.0


def test_silence_and_tiny_input_pass_through() -> None:
    leveller = Leveller(RATE, -16.0, -1.5)
    assert leveller.level(b"") == b""
    assert leveller.level(render.silence(300, RATE)) == render.silence(300, RATE)
    short = peaky_speechlike(0.2)  # shorter than one 400 ms loudness block: measured whole
    assert abs(leveller.loudness(leveller.level(short)) - (-16.0)) <= 0.5


@settings(max_examples=60, deadline=None)
@given(st.lists(st.integers(-32768, 32767), min_size=1, max_size=3000),
       st.floats(-30.0, -8.0), st.floats(-6.0, -0.5))
def test_the_limiter_never_lets_a_sample_past_the_ceiling(samples: list[int], target: float, ceiling: float) -> None:
    pcm = np.array(samples, dtype="<i2").tobytes()
    out = Leveller(RATE, target, ceiling).level(pcm)
    assert len(out) == len(pcm)
    assert peak(out) <= 10 ** (ceiling / 20) + 1 / 32768
