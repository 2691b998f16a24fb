"""FPT.AI's voice against a local server that behaves like its documented API (tests/audio/fake_fpt.py)."""

from __future__ import annotations

import logging
import os
import secrets
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from audio.engines import EngineError, EspeakEngine, FallbackEngine, SpeechEngine, build_engine
from audio.fpt import FptEngine
from audio.pipeline import AudioPipeline
from audio.render import probe
from audio.store import AudioStore
from tests.audio.conftest import needs_tools
from tests.audio.fake_fpt import FakeFptTTS

pytestmark = needs_tools

KEY = "fpt-" + secrets.token_urlsafe(24)  # unguessable: finding it in a log can only mean a leak


@pytest.fixture
def fake_fpt(tts_mp3: bytes) -> Iterator[FakeFptTTS]:
    with FakeFptTTS(audio=tts_mp3, api_key=KEY, hang_s=10.0) as fake:
        yield fake


def fpt(fake: FakeFptTTS, **opts: float) -> FptEngine:
    settings: dict[str, float] = {"backoff_s": 0.05, "poll_interval_s": 0.05, "read_timeout": 0.5,
                                  "deadline_s": 2.0, **opts}
    return FptEngine(KEY, "leminh", 1, base_url=fake.url, **settings)  # type: ignore[arg-type]


def files(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.iterdir())


def test_success_waits_for_the_audio_link_and_writes_a_playable_mp3(
        tmp_path: Path, fake_fpt: FakeFptTTS) -> None:
    out = tmp_path / "s.mp3"
    assert fpt(fake_fpt).synthesize("Kính thưa bà con", out) == "fpt"
    assert probe(out).codec == "mp3" and files(tmp_path) == ["s.mp3"]
    [post] = fake_fpt.posts()
    assert post.text == "Kính thưa bà con"  # the body is the text itself, UTF-8
    assert (post.headers["api-key"], post.headers["voice"], post.headers["speed"]) == (KEY, "leminh", "1")
    polls = fake_fpt.polls()
    assert len(polls) == 3  # 404, 404, then the audio
    assert all("api-key" not in p.headers for p in polls)  # the key goes to the API alone


@pytest.mark.parametrize(("mode", "words"), [
    ("api_error", "error 1: Text is too short"),
    ("401", r"key was refused \(HTTP 401\)"),
    ("garbage", "not JSON"),
])
def test_refusals_are_errors_not_retried_and_leave_no_file(
        tmp_path: Path, fake_fpt: FakeFptTTS, mode: str, words: str) -> None:
    fake_fpt.set(mode)  # type: ignore[arg-type]
    with pytest.raises(EngineError, match=words) as err:
        fpt(fake_fpt).synthesize("Kính thưa bà con", tmp_path / "s.mp3")
    assert not err.value.retryable and len(fake_fpt.posts()) == 1
    assert files(tmp_path) == []


def test_a_wrong_key_is_refused(tmp_path: Path, fake_fpt: FakeFptTTS) -> None:
    engine = FptEngine("not-the-key", base_url=fake_fpt.url, deadline_s=2.0)
    with pytest.raises(EngineError, match="refused"):
        engine.synthesize("Kính thưa bà con", tmp_path / "s.mp3")


@pytest.mark.parametrize("status", ["429", "500"])
def test_busy_answers_are_retried_then_succeed(tmp_path: Path, fake_fpt: FakeFptTTS, status: str) -> None:
    fake_fpt.set("ok", [status, status])  # type: ignore[list-item]
    assert fpt(fake_fpt).synthesize("Kính thưa bà con", tmp_path / "s.mp3") == "fpt"
    assert [r.mode for r in fake_fpt.posts()] == [status, status, "ok"]


@pytest.mark.parametrize("status", ["429", "500"])
def test_busy_answers_give_up_after_the_retries(tmp_path: Path, fake_fpt: FakeFptTTS, status: str) -> None:
    fake_fpt.set(status)  # type: ignore[arg-type]
    with pytest.raises(EngineError, match=f"HTTP {status}") as err:
        fpt(fake_fpt, retries=2).synthesize("Kính thưa bà con", tmp_path / "s.mp3")
    assert err.value.retryable and len(fake_fpt.posts()) == 3
    assert files(tmp_path) == []


def test_an_audio_link_that_never_appears_ends_at_the_deadline(tmp_path: Path, fake_fpt: FakeFptTTS) -> None:
    fake_fpt.set("never")
    with pytest.raises(EngineError, match=r"did not appear within the 0\.6 s deadline") as err:
        fpt(fake_fpt, deadline_s=0.6).synthesize("Kính thưa bà con", tmp_path / "s.mp3")
    assert err.value.unreachable and len(fake_fpt.polls()) >= 2
    assert files(tmp_path) == []


def test_a_hang_falls_back_to_espeak_and_says_so_in_the_log(
        tmp_path: Path, fake_fpt: FakeFptTTS, caplog: pytest.LogCaptureFixture) -> None:
    fake_fpt.set("hang")
    chain = FallbackEngine([fpt(fake_fpt, read_timeout=0.3), EspeakEngine()])
    with caplog.at_level(logging.WARNING, logger="audio.engines"):
        assert chain.synthesize("Kính thưa bà con", tmp_path / "s.wav") == "espeak"
    assert "speech engine fpt failed, falling back: fpt: request timed out" in caplog.text
    assert chain.is_open(chain.engines[0])  # a hang opens the breaker at once: the next sentence does not wait
    assert chain.synthesize("Kính thưa bà con", tmp_path / "t.wav") == "espeak"
    assert len(fake_fpt.posts()) == 1


def test_without_network_it_fails_fast(tmp_path: Path) -> None:
    with socket.socket() as sock:  # a port that nobody listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    with pytest.raises(EngineError, match="cannot connect") as err:
        FptEngine(KEY, base_url=f"http://127.0.0.1:{port}").synthesize("Kính thưa bà con", tmp_path / "s.mp3")
    assert err.value.unreachable and files(tmp_path) == []


def test_the_breaker_opens_after_repeated_failures_and_closes_when_fpt_is_back(
        tmp_path: Path, fake_fpt: FakeFptTTS) -> None:
    now = [1000.0]
    fake_fpt.set("500")
    chain = FallbackEngine([fpt(fake_fpt, retries=0), EspeakEngine()], failure_threshold=3, cooldown_s=60,
                           clock=lambda: now[0])
    for i in range(3):
        assert chain.synthesize("Kính thưa bà con", tmp_path / f"{i}.wav") == "espeak"
    assert len(fake_fpt.posts()) == 3 and chain.is_open(chain.engines[0])
    assert chain.synthesize("Kính thưa bà con", tmp_path / "open.wav") == "espeak"
    assert len(fake_fpt.posts()) == 3  # not even asked while open
    now[0] += 61
    fake_fpt.set("ok")
    assert chain.synthesize("Kính thưa bà con", tmp_path / "healed.mp3") == "fpt"
    assert not chain.is_open(chain.engines[0])


def test_the_pipeline_records_which_voice_spoke(fake_fpt: FakeFptTTS, store: AudioStore) -> None:
    chain = build_engine("fpt+espeak", fpt={"api_key": KEY, "base_url": fake_fpt.url, "poll_interval_s": 0.05})
    assert isinstance(chain, SpeechEngine) and chain.name == "fpt+espeak"
    assert AudioPipeline(store, chain).render("Xin chào bà con.").engine == "fpt"
    fake_fpt.set("api_error")
    assert AudioPipeline(store, chain).render("Mất điện từ tám giờ sáng mai.").engine == "espeak"


def test_the_key_appears_in_no_log_line_and_no_error(
        tmp_path: Path, fake_fpt: FakeFptTTS, caplog: pytest.LogCaptureFixture) -> None:
    errors: list[str] = []
    caplog.set_level(logging.DEBUG)  # urllib3 and requests too
    for mode in ("ok", "api_error", "401", "429", "500", "garbage", "never", "echo_key"):
        fake_fpt.set(mode)  # type: ignore[arg-type]
        chain = FallbackEngine([fpt(fake_fpt, retries=0, deadline_s=0.3), EspeakEngine()])
        chain.synthesize("Kính thưa bà con", tmp_path / f"{mode}.wav")
        try:
            fpt(fake_fpt, retries=0, deadline_s=0.3).synthesize("Kính thưa bà con", tmp_path / f"{mode}.mp3")
        except EngineError as exc:
            errors += [str(exc), exc.detail, repr(exc), exc.message_vi]
    assert len(errors) == 7 * 4 and any("***" in e for e in errors)  # the server's echo was masked
    assert "speech engine fpt failed" in caplog.text
    assert KEY not in caplog.text and not any(KEY in e for e in errors)
    assert KEY not in repr(fpt(fake_fpt))


def test_bad_settings_are_refused_before_any_request() -> None:
    for bad in ({"api_key": " "}, {"api_key": KEY, "voice": "alloy"}, {"api_key": KEY, "speed": 4}):
        with pytest.raises(ValueError):
            FptEngine(**bad)  # type: ignore[arg-type]


def test_texts_the_api_does_not_take_never_reach_it(tmp_path: Path, fake_fpt: FakeFptTTS) -> None:
    for text in ("Ồ", "a" * 5001):
        with pytest.raises(EngineError, match="characters"):
            fpt(fake_fpt).synthesize(text, tmp_path / "s.mp3")
    assert fake_fpt.requests == []


@pytest.mark.skipif(not (os.environ.get("LOA_LIVE_TESTS") == "1" and os.environ.get("LOA_FPT_API_KEY")),
                    reason="live test against FPT.AI: set LOA_LIVE_TESTS=1 and LOA_FPT_API_KEY to run")
def test_live_fpt_speaks_vietnamese(tmp_path: Path) -> None:
    out = tmp_path / "live.mp3"
    started = time.monotonic()
    FptEngine(os.environ["LOA_FPT_API_KEY"], "banmai", deadline_s=120, read_timeout=15).synthesize(
        "Kính thưa bà con, đây là bản tin thử nghiệm.", out)
    assert probe(out).duration_ms > 500, time.monotonic() - started
