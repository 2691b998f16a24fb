from __future__ import annotations

import os
import socket
import time
from pathlib import Path

import pytest

from audio.engines import EngineError, EspeakEngine, FallbackEngine, GttsEngine, SpeechEngine, build_engine
from audio.pipeline import AudioPipeline
from audio.render import probe
from audio.store import AudioStore
from tests.audio.conftest import needs_tools
from tests.audio.fake_gtts import FakeGoogleTTS

pytestmark = needs_tools


def google(fake: FakeGoogleTTS, **opts: float) -> GttsEngine:
    settings: dict[str, float] = {"backoff_s": 0.05, "min_interval_s": 0.0, "read_timeout": 0.5, **opts}
    return GttsEngine(base_url=fake.url, **settings)  # type: ignore[arg-type]


class TimedEngine:
    """A real engine, timing each attempt."""

    def __init__(self, inner: GttsEngine) -> None:
        self.inner, self.name, self.voice = inner, inner.name, inner.voice
        self.attempts_s: list[float] = []

    def synthesize(self, text: str, out: Path) -> str:
        started = time.monotonic()
        try:
            return self.inner.synthesize(text, out)
        finally:
            self.attempts_s.append(time.monotonic() - started)


def only_file(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.iterdir())


# -- espeak ----------------------------------------------------------------------------------

def test_espeak_writes_a_wav_readable_by_ffmpeg(tmp_path: Path, espeak: EspeakEngine) -> None:
    out = tmp_path / "s.wav"
    assert espeak.synthesize("Xin chào bà con", out) == "espeak"
    info = probe(out)
    assert info.codec == "pcm_s16le" and info.duration_ms > 300
    assert only_file(tmp_path) == ["s.wav"]


def test_espeak_failures_leave_no_file(tmp_path: Path) -> None:
    with pytest.raises(EngineError):
        EspeakEngine().synthesize("   ", tmp_path / "empty.wav")
    with pytest.raises(EngineError):
        EspeakEngine(binary="/nonexistent/espeak-ng").synthesize("Xin chào", tmp_path / "x.wav")
    with pytest.raises(EngineError, match="timed out"):
        EspeakEngine(timeout=0.000001).synthesize("Xin chào bà con " * 50, tmp_path / "slow.wav")
    assert only_file(tmp_path) == []


def test_engines_satisfy_the_protocol(fake_google: FakeGoogleTTS) -> None:
    for engine in (EspeakEngine(), google(fake_google), FallbackEngine([EspeakEngine()])):
        assert isinstance(engine, SpeechEngine)


def test_build_engine() -> None:
    assert isinstance(build_engine("espeak", wpm=150), EspeakEngine)
    assert isinstance(build_engine("gtts", tld="com.vn"), GttsEngine)
    chain = build_engine("gtts+espeak", gtts={"tld": "com.vn"}, espeak={"wpm": 150}, failure_threshold=2)
    assert isinstance(chain, FallbackEngine)
    assert chain.name == "gtts+espeak" and [e.name for e in chain.engines] == ["gtts", "espeak"]
    with pytest.raises(ValueError):
        build_engine("festival")


# -- gTTS against the fake server -------------------------------------------------------------

def test_gtts_success_writes_a_playable_mp3(tmp_path: Path, fake_google: FakeGoogleTTS) -> None:
    out = tmp_path / "s.mp3"
    assert google(fake_google).synthesize("Xin chào bà con", out) == "gtts"
    assert probe(out).codec == "mp3"
    assert [(r.text, r.lang) for r in fake_google.requests] == [("Xin chào bà con", "vi")]


def test_gtts_long_sentence_goes_out_in_chunks(tmp_path: Path, fake_google: FakeGoogleTTS) -> None:
    text = ("Ủy ban nhân dân xã thông báo lịch tiêm phòng cho đàn gia súc, gia cầm, đề nghị các hộ chăn nuôi "
            "đưa vật nuôi đến điểm tiêm đúng giờ để được hướng dẫn cụ thể")
    google(fake_google).synthesize(text, tmp_path / "s.mp3")
    assert len(fake_google.requests) >= 2
    assert all(len(r.text) <= 100 for r in fake_google.requests)


def test_gtts_retries_429_with_backoff(tmp_path: Path, fake_google: FakeGoogleTTS) -> None:
    fake_google.set("ok", ["429", "429"])
    started = time.monotonic()
    google(fake_google, backoff_s=0.1).synthesize("Xin chào", tmp_path / "s.mp3")
    elapsed = time.monotonic() - started
    assert [r.mode for r in fake_google.requests] == ["429", "429", "ok"]
    assert elapsed >= 0.8 * (0.1 + 0.2)  # exponential: 0.1 then 0.2 (±20 % jitter)
    assert (tmp_path / "s.mp3").stat().st_size > 0


def test_gtts_retries_5xx_then_succeeds(tmp_path: Path, fake_google: FakeGoogleTTS) -> None:
    fake_google.set("ok", ["503"])
    google(fake_google).synthesize("Xin chào", tmp_path / "s.mp3")
    assert [r.mode for r in fake_google.requests] == ["503", "ok"]


def test_gtts_gives_up_after_retries(tmp_path: Path, fake_google: FakeGoogleTTS) -> None:
    fake_google.set("429")
    with pytest.raises(EngineError) as err:
        google(fake_google, retries=2).synthesize("Xin chào", tmp_path / "s.mp3")
    assert err.value.retryable and len(fake_google.requests) == 3
    assert only_file(tmp_path) == []


def test_gtts_hang_hits_the_timeout_and_leaves_no_file(tmp_path: Path, fake_google: FakeGoogleTTS) -> None:
    fake_google.set("hang")
    started = time.monotonic()
    with pytest.raises(EngineError, match="timed out"):
        google(fake_google, read_timeout=0.4).synthesize("Xin chào", tmp_path / "s.mp3")
    assert time.monotonic() - started < 1.5
    assert len(fake_google.requests) == 1  # a hang is not retried: the budget belongs to the fallback
    assert only_file(tmp_path) == []


def test_gtts_without_network_fails_fast_without_retrying(tmp_path: Path) -> None:
    with socket.socket() as sock:  # a port that nobody listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    started = time.monotonic()
    with pytest.raises(EngineError) as err:
        GttsEngine(base_url=f"http://127.0.0.1:{port}", backoff_s=1.0).synthesize("Xin chào", tmp_path / "s.mp3")
    assert err.value.unreachable and time.monotonic() - started < 0.5
    assert only_file(tmp_path) == []


@pytest.mark.parametrize("mode", ["garbage", "no_audio"])
def test_gtts_garbage_is_an_error_and_no_empty_file(
        tmp_path: Path, fake_google: FakeGoogleTTS, mode: str) -> None:
    fake_google.set(mode)  # type: ignore[arg-type]
    with pytest.raises(EngineError):
        google(fake_google).synthesize("Xin chào", tmp_path / "s.mp3")
    assert only_file(tmp_path) == []


def test_gtts_throttle_spaces_requests(tmp_path: Path, fake_google: FakeGoogleTTS) -> None:
    engine = google(fake_google, min_interval_s=0.2)
    started = time.monotonic()
    for i in range(3):
        engine.synthesize("Xin chào", tmp_path / f"{i}.mp3")
    assert time.monotonic() - started >= 0.4


# -- fallback chain and circuit breaker ---------------------------------------------------------

def test_fallback_renders_offline_within_2s_when_google_hangs(
        tmp_path: Path, fake_google: FakeGoogleTTS, store: AudioStore) -> None:
    text = "Thông báo khẩn.\nMất điện từ tám giờ sáng mai."
    started = time.monotonic()  # what rendering itself costs on this machine right now
    AudioPipeline(AudioStore(tmp_path / "offline"), EspeakEngine()).render(text)
    offline_s = time.monotonic() - started

    fake_google.set("hang")
    gtts = TimedEngine(GttsEngine(base_url=fake_google.url))  # default timeouts
    chain = FallbackEngine([gtts, EspeakEngine()])
    started = time.monotonic()
    stored = AudioPipeline(store, chain).render(text)
    elapsed = time.monotonic() - started
    # Each wait on Google ends after its 1 s timeout (plus the 0.25 s request spacing), so
    # the render takes under 2 s; on a machine so busy that rendering alone is slow, the
    # hang still adds no more than those waits.
    assert max(gtts.attempts_s) < 1.4, gtts.attempts_s
    assert elapsed < 2.0 or elapsed - offline_s < 1.4 + 0.5, (elapsed, offline_s)
    assert stored.engine == "espeak" and chain.last_engine == "espeak"
    assert [r.mode for r in fake_google.requests] == ["hang", "hang"]  # one try per sentence, no retry
    assert probe(stored.path).duration_ms > 1000


def test_a_hang_opens_the_breaker_at_once(tmp_path: Path, fake_google: FakeGoogleTTS) -> None:
    fake_google.set("hang")
    chain = FallbackEngine([google(fake_google, read_timeout=0.3), EspeakEngine()], failure_threshold=5)
    assert chain.synthesize("Xin chào", tmp_path / "a.wav") == "espeak"
    started = time.monotonic()
    assert chain.synthesize("Xin chào", tmp_path / "b.wav") == "espeak"
    assert time.monotonic() - started < 0.25 and len(fake_google.requests) == 1


def test_degraded_render_is_not_cached(fake_google: FakeGoogleTTS, store: AudioStore) -> None:
    fake_google.set("503")
    chain = FallbackEngine([google(fake_google, retries=0), EspeakEngine()], failure_threshold=99)
    pipeline = AudioPipeline(store, chain)
    assert pipeline.render("Xin chào bà con.").engine == "espeak"
    fake_google.set("ok")
    assert pipeline.render("Xin chào bà con.").engine == "gtts"  # Google is back: the better voice wins
    before = len(fake_google.requests)
    assert pipeline.render("Xin chào bà con.").engine == "gtts"
    assert len(fake_google.requests) == before  # and now it is cached


def test_circuit_breaker_opens_after_k_failures_and_stops_calling(
        tmp_path: Path, fake_google: FakeGoogleTTS) -> None:
    now = [1000.0]
    fake_google.set("503")
    chain = FallbackEngine([google(fake_google, retries=0), EspeakEngine()], failure_threshold=3,
                           cooldown_s=60, clock=lambda: now[0])
    for i in range(3):
        assert chain.synthesize("Xin chào", tmp_path / f"{i}.wav") == "espeak"
    assert len(fake_google.requests) == 3 and chain.is_open(chain.engines[0])

    assert chain.synthesize("Xin chào", tmp_path / "open.wav") == "espeak"
    assert len(fake_google.requests) == 3  # the fake was not even contacted

    now[0] += 61  # cool-down over: one trial call goes through; it fails, so the breaker re-opens
    assert chain.synthesize("Xin chào", tmp_path / "trial.wav") == "espeak"
    assert len(fake_google.requests) == 4 and chain.is_open(chain.engines[0])

    now[0] += 61
    fake_google.set("ok")
    assert chain.synthesize("Xin chào", tmp_path / "healed.mp3") == "gtts"
    assert not chain.is_open(chain.engines[0])


def test_fallback_raises_when_every_engine_fails(tmp_path: Path) -> None:
    chain = FallbackEngine([EspeakEngine(binary="/nonexistent/a"), EspeakEngine(binary="/nonexistent/b")])
    with pytest.raises(EngineError):
        chain.synthesize("Xin chào", tmp_path / "x.wav")
    assert only_file(tmp_path) == []


@pytest.mark.live
def test_live_google_speaks_vietnamese(tmp_path: Path) -> None:
    assert os.environ.get("LOA_LIVE_TESTS") == "1"
    out = tmp_path / "live.mp3"
    GttsEngine(read_timeout=10).synthesize("Xin chào bà con", out)
    assert probe(out).duration_ms > 500
