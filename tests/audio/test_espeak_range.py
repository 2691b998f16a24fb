"""EspeakEngine's pitch range: what espeak-ng is sent, the cache key, and that it still speaks.

Why it exists: Vietnamese tones are pitch contours inside the voice's range, and at espeak-ng's own
range the level tone ("hai") and the falling one ("hài") are about a semitone apart, so a recognizer
(and a listener behind a horn speaker) hears "hài". The range is only reachable through SSML.
"""

from __future__ import annotations

import shutil
import stat
import wave
from pathlib import Path

import pytest

from audio.engines import EspeakEngine
from tests.audio.conftest import needs_tools

pytestmark = needs_tools


def recording_espeak(tmp_path: Path) -> tuple[str, Path]:
    """A wrapper around the real espeak-ng that keeps its arguments and stdin."""
    log = tmp_path / "espeak-call"
    real = shutil.which("espeak-ng")
    assert real
    script = tmp_path / "espeak-ng"
    script.write_text(
        "#!/bin/sh\n"
        f'printf "%s\\n" "$*" > "{log}.args"\n'
        f'tee "{log}.stdin" | "{real}" "$@"\n'
    )
    script.chmod(script.stat().st_mode | stat.S_IXUSR)
    return str(script), log


def frames(path: Path) -> int:
    with wave.open(str(path)) as w:
        return w.getnframes()


def test_pitch_range_is_sent_as_ssml_and_still_speaks(tmp_path: Path) -> None:
    binary, log = recording_espeak(tmp_path)
    engine = EspeakEngine(binary=binary, pitch_range=200)
    out = tmp_path / "hai.wav"
    assert engine.synthesize("hai & ba", out) == "espeak"
    assert log.with_suffix(".stdin").read_text(encoding="utf-8") == (
        '<speak><prosody range="200%">hai &amp; ba</prosody></speak>'
    )
    assert " -m " in log.with_suffix(".args").read_text()
    assert frames(out) > 22050 // 4

    engine.synthesize_batch(["hai.", "ba."], tmp_path / "batch.wav")
    assert log.with_suffix(".stdin").read_text(encoding="utf-8") == (
        '<speak><prosody range="200%">hai.<break time="1500ms"/>ba.</prosody></speak>'
    )


def test_range_100_sends_plain_text_and_keeps_the_old_cache_key(tmp_path: Path) -> None:
    binary, log = recording_espeak(tmp_path)
    engine = EspeakEngine(binary=binary, pitch=50, pitch_range=100)
    engine.synthesize("hai", tmp_path / "hai.wav")
    assert log.with_suffix(".stdin").read_text(encoding="utf-8") == "hai"
    assert " -m " not in log.with_suffix(".args").read_text()
    assert engine.signature == "wpm=165;pitch=50"  # the old voice keeps its old cache key
    # The default voice is the wider range, and its renders are cached apart from the old voice's.
    assert EspeakEngine().signature == "wpm=165;pitch=70;range=200"


@pytest.mark.parametrize("pitch_range", [100, 200])
def test_range_widens_the_gap_between_level_and_falling_tone(tmp_path: Path, pitch_range: int) -> None:
    """The acoustic point of the option: "hai" (level) and "hài" (falling) end further apart."""
    np = pytest.importorskip("numpy")

    def final_f0(text: str) -> float:
        out = tmp_path / f"{pitch_range}-{len(text)}.wav"
        EspeakEngine(pitch=50, pitch_range=pitch_range).synthesize(text, out)
        with wave.open(str(out)) as w:
            rate = w.getframerate()
            x = np.frombuffer(w.readframes(w.getnframes()), np.int16).astype(float)
        loud = np.flatnonzero(np.abs(x) > 1500)
        frame = x[loud[-1] - 2048 : loud[-1] - 1024]  # the last voiced stretch: the tone's end
        frame = frame - frame.mean()
        ac = np.correlate(frame, frame, "full")[1023:]
        lo, hi = rate // 400, rate // 60
        return float(rate / (lo + int(np.argmax(ac[lo:hi]))))

    gap = final_f0("hai") / final_f0("hài")
    if pitch_range == 100:
        assert gap < 1.25
    else:
        assert gap > 1.4
