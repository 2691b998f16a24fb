from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from audio.engines import EspeakEngine
from audio.store import AudioStore
from tests.audio.fake_gtts import FakeGoogleTTS

needs_tools = pytest.mark.skipif(
    not (shutil.which("ffmpeg") and shutil.which("ffprobe") and shutil.which("espeak-ng")),
    reason="ffmpeg, ffprobe and espeak-ng are required for audio tests",
)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if os.environ.get("LOA_LIVE_TESTS") == "1":
        return
    skip = pytest.mark.skip(reason="live test against Google TTS: set LOA_LIVE_TESTS=1 to run")
    for item in items:
        if "live" in item.keywords:
            item.add_marker(skip)


def ffmpeg(*args: str) -> None:
    subprocess.run(["ffmpeg", "-v", "error", "-nostdin", "-y", *args], check=True)


def ffprobe(path: Path) -> dict[str, str]:
    out = subprocess.run(
        ["ffprobe", "-v", "error", "-show_entries", "stream=codec_name,sample_rate,channels:format=duration",
         "-of", "json", str(path)], capture_output=True, check=True).stdout
    info = json.loads(out)
    return {**info["streams"][0], "duration": info["format"]["duration"]}


def ebur128(path: Path) -> tuple[float, float]:
    """(integrated LUFS, true peak dBTP) as ffmpeg's ebur128 meter reads the file."""
    err = subprocess.run(["ffmpeg", "-hide_banner", "-nostats", "-nostdin", "-i", str(path), "-af",
                          "ebur128=framelog=verbose:peak=true", "-f", "null", "-"],
                         capture_output=True, text=True, check=True).stderr
    summary = err[err.index("Summary:"):]
    i = float(re.search(r"I:\s+(-?[\d.]+) LUFS", summary).group(1))  # type: ignore[union-attr]
    tp = float(re.search(r"Peak:\s+(-?[\d.]+|-inf) dBFS", summary).group(1))  # type: ignore[union-attr]
    return i, tp


@pytest.fixture(scope="session")
def tts_mp3(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    """A real, short MP3 like Google's (24 kHz mono): a vowel-ish tone with a pitch glide."""
    out = tmp_path_factory.mktemp("fake") / "voice.mp3"
    ffmpeg("-f", "lavfi", "-i", "aevalsrc=0.4*sin(2*PI*(180+40*t)*t)*(0.6+0.4*sin(2*PI*3*t)):s=24000:d=0.9",
           "-ac", "1", "-ar", "24000", "-b:a", "32k", str(out))
    return out.read_bytes()


@pytest.fixture
def fake_google(tts_mp3: bytes) -> Iterator[FakeGoogleTTS]:
    with FakeGoogleTTS(audio=tts_mp3, hang_s=10.0) as fake:
        yield fake


@pytest.fixture
def store(tmp_path: Path) -> Iterator[AudioStore]:
    s = AudioStore(tmp_path / "store")
    yield s
    s.close()


@pytest.fixture
def espeak() -> EspeakEngine:
    return EspeakEngine()
