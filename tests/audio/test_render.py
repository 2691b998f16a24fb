from __future__ import annotations

import math
import sys
from array import array
from pathlib import Path

import pytest

from audio import render
from audio.chimes import chime
from audio.render import AudioError
from tests.audio.conftest import ebur128, ffmpeg, needs_tools

RATE = 24000


def tone(ms: int, freq: float = 440.0, amp: float = 0.3, rate: int = RATE) -> bytes:
    n = rate * ms // 1000
    samples = array("h", (int(32767 * amp * math.sin(2 * math.pi * freq * i / rate)) for i in range(n)))
    if sys.byteorder == "big":
        samples.byteswap()
    return samples.tobytes()


def test_trim_silence_cuts_the_edges_but_keeps_a_little() -> None:
    pcm = render.silence(500, RATE) + tone(300) + render.silence(700, RATE)
    trimmed = render.trim_silence(pcm, RATE, keep_ms=40)
    assert 300 <= render.duration_ms(len(trimmed), RATE) <= 300 + 2 * 40 + 20
    assert render.trim_silence(render.silence(500, RATE), RATE) == b""


def test_loud_span_in_file_matches_in_memory_trim(tmp_path: Path) -> None:
    pcm = render.silence(250, RATE) + tone(400) + render.silence(330, RATE)
    raw = tmp_path / "a.raw"
    raw.write_bytes(pcm)
    start, end = render.loud_span_in_file(raw, RATE)
    assert pcm[start:end] == render.trim_silence(pcm, RATE)


def test_chimes_are_short_clean_and_distinct() -> None:
    intro, outro = chime(RATE, "intro"), chime(RATE, "outro")
    assert intro != outro
    for pcm in (intro, outro):
        ms = render.duration_ms(len(pcm), RATE)
        assert 1000 <= ms <= 2000
        samples = array("h", pcm)
        assert max(abs(s) for s in samples) < 32767  # no clipping
        assert samples[-1] == 0  # ends on silence: no click into speech


@needs_tools
def test_change_tempo_shortens_without_dropping_audio() -> None:
    pcm = tone(2000)
    faster = render.change_tempo(pcm, RATE, 1.25)
    assert abs(render.duration_ms(len(faster), RATE) - 1600) < 60
    assert render.change_tempo(pcm, RATE, 1.0) is pcm


@needs_tools
def test_solve_gain_reaches_the_target_on_a_peaky_signal(tmp_path: Path) -> None:
    # Quiet speech-like tone with sparse loud clicks: like espeak, its peaks leave no room for gain.
    pcm = bytearray(tone(6000, amp=0.05))
    for pos in range(0, len(pcm) - 8, RATE // 5 * 2):
        pcm[pos:pos + 8] = array("h", [30000, -30000, 30000, -30000]).tobytes()
    raw = tmp_path / "a.raw"
    raw.write_bytes(bytes(pcm))
    gain = render.solve_gain(raw, RATE, -16.0, -1.5)
    out = tmp_path / "a.wav"
    ffmpeg("-f", "s16le", "-ar", str(RATE), "-ac", "1", "-i", str(raw), "-af",
           render.final_chain(gain, -1.5, RATE, RATE), str(out))
    lufs, peak = ebur128(out)
    assert abs(lufs + 16.0) <= 0.5 and peak <= -1.5


@needs_tools
def test_solve_gain_refuses_silence(tmp_path: Path) -> None:
    raw = tmp_path / "quiet.raw"
    raw.write_bytes(render.silence(3000, RATE))
    with pytest.raises(AudioError) as err:
        render.solve_gain(raw, RATE, -16.0, -1.5)
    assert err.value.code == "silent"


@needs_tools
def test_probe_rejects_non_audio(tmp_path: Path) -> None:
    text = tmp_path / "note.txt"
    text.write_text("Thông báo họp thôn")
    with pytest.raises(AudioError) as err:
        render.probe(text)
    assert err.value.code == "not_audio" and err.value.message_vi


@needs_tools
def test_segmented_mp3_encoding_matches_a_single_pass(tmp_path: Path) -> None:
    second = tone(1000, amp=0.2)
    raw = tmp_path / "long.raw"
    raw.write_bytes(second * 70 + render.silence(1000, RATE) + second * 70)
    chain = render.final_chain(0.0, -1.5, RATE, RATE)
    whole, split = tmp_path / "whole.mp3", tmp_path / "split.mp3"
    opts = {"filters": chain, "channels": 1, "codec": "mp3", "bitrate": "48k"}
    render.encode(raw, RATE, whole, **opts)  # type: ignore[arg-type]
    render.encode(raw, RATE, split, cuts_ms=[70_500], **opts)  # type: ignore[arg-type]
    assert abs(render.probe(whole).duration_ms - render.probe(split).duration_ms) <= 100
    assert abs(ebur128(whole)[0] - ebur128(split)[0]) <= 0.2
    assert sorted(p.name for p in tmp_path.iterdir()) == ["long.raw", "split.mp3", "whole.mp3"]


def test_split_on_gaps_cuts_at_long_silences_only() -> None:
    words = tone(400) + render.silence(200, RATE) + tone(300)  # a short pause inside a "sentence"
    gap = render.silence(1200, RATE)
    pcm = render.silence(100, RATE) + words + gap + tone(500) + gap + words + render.silence(100, RATE)
    parts = render.split_on_gaps(pcm, RATE, 3, min_gap_ms=1000)
    assert parts is not None and b"".join(parts) == pcm
    lengths = [render.duration_ms(len(render.trim_silence(p, RATE, keep_ms=0)), RATE) for p in parts]
    assert [round(ms, -2) for ms in lengths] == [900, 500, 900]
    # A count that does not match is refused, not guessed.
    assert render.split_on_gaps(pcm, RATE, 2, min_gap_ms=1000) is None
    assert render.split_on_gaps(pcm, RATE, 3, min_gap_ms=150) is None


def _mp3_parts(tmp_path: Path, cut: bool) -> tuple[Path, int]:
    out = tmp_path / ("parted.mp3" if cut else "whole.mp3")
    second = tone(1000, amp=0.2)
    with render.PartedEncoder(out, RATE, filters="", channels=1, codec="mp3", bitrate="48k",
                              parts=2 if cut else 1) as enc:
        for i in range(20):
            enc.write(second)
            if cut and i == 9:
                enc.write(render.silence(500, RATE))
                enc.next_part()
    return out, enc.duration_ms


@needs_tools
def test_parted_encoding_joins_into_one_playable_mp3(tmp_path: Path) -> None:
    parted, parted_ms = _mp3_parts(tmp_path, cut=True)
    whole, whole_ms = _mp3_parts(tmp_path, cut=False)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["parted.mp3", "whole.mp3"]  # parts cleaned up
    # The counted duration is what a decoder plays: each part adds the encoder's padding.
    decoded = tmp_path / "decoded.raw"
    ffmpeg("-i", str(parted), "-f", "s16le", "-ac", "1", "-ar", str(RATE), str(decoded))
    assert abs(render.duration_ms(decoded.stat().st_size, RATE) - parted_ms) <= 30
    assert abs(render.probe(parted).duration_ms - parted_ms) <= 30
    assert 20_500 <= parted_ms <= 20_500 + 200 and 20_000 <= whole_ms <= 20_000 + 100
    assert abs(ebur128(parted)[0] - ebur128(whole)[0]) <= 0.2
    assert whole.read_bytes()[:3] == b"ID3" and parted.read_bytes()[:2] == b"\xff\xf3"  # bare joined frames


@needs_tools
def test_a_failed_or_abandoned_encode_leaves_nothing(tmp_path: Path) -> None:
    out = tmp_path / "bad.mp3"
    with pytest.raises(AudioError) as err, render.PartedEncoder(out, RATE, filters="nosuchfilter", channels=1,
                                                                codec="mp3", bitrate="48k") as enc:
        enc.write(tone(500))
    assert err.value.code == "ffmpeg_failed" and "filter" in err.value.detail
    with pytest.raises(RuntimeError), render.PartedEncoder(out, RATE, filters="", channels=1, codec="mp3",
                                                           bitrate="48k", parts=2) as enc:
        enc.write(tone(500))
        enc.next_part()
        enc.write(tone(500))
        raise RuntimeError("render stopped")
    assert list(tmp_path.iterdir()) == []


def test_mp3_duration_refuses_what_is_not_mp3(tmp_path: Path) -> None:
    junk = tmp_path / "x.mp3"
    junk.write_bytes(b"\xff\xfb" + b"\x00" * 50)
    with pytest.raises(AudioError) as err:
        render.mp3_duration_ms(junk)
    assert err.value.code == "corrupt"


@needs_tools
def test_a_full_encoder_queue_makes_the_writer_wait_not_fail(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    free, _ = _mp3_parts(tmp_path, cut=True)
    expected = free.read_bytes()
    free.unlink()
    monkeypatch.setattr(render, "MAX_QUEUED_BYTES", 4096)  # every write now waits for the feeder
    bounded, _ = _mp3_parts(tmp_path, cut=True)
    assert bounded.read_bytes() == expected
