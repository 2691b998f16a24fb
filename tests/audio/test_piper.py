"""The Piper engine against a tiny VITS-shaped voice made here (tests/audio/tiny_piper.py): loading,
phonemization through espeak-ng, the sample rate from the config, chunking, the pipeline's streaming,
levelling and encoding, and the fallback to espeak-ng when the voice does not load or is too slow."""

from __future__ import annotations

import logging
import threading
import time
import wave
from pathlib import Path

import pytest

from audio.engines import EngineError, EspeakEngine, FallbackEngine, build_engine
from audio.pipeline import AudioPipeline, RenderSettings
from audio.piper import PiperConfig, PiperEngine, VoiceConfigError, _fix_phonemes
from audio.render import probe
from audio.store import AudioStore
from tests.audio.conftest import ebur128, needs_tools
from tests.audio.tiny_piper import HOP, SYMBOLS, make_voice

pytestmark = needs_tools

SHORT = "Xin chào bà con."
LONG = "Xin chào bà con. Ủy ban nhân dân xã thông báo: sáng mai họp thôn tại nhà văn hóa, mời bà con đến đúng giờ."
SYMBOL_ID = {s: i for i, s in enumerate(SYMBOLS)}


@pytest.fixture(scope="module")
def voices(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("voices")


@pytest.fixture(scope="module")
def tiny(voices: Path) -> Path:
    return make_voice(voices)


def frames(path: Path) -> tuple[int, int]:
    with wave.open(str(path), "rb") as wav:
        return wav.getframerate(), wav.getnframes()


def test_the_voice_loads_and_speaks_at_its_configs_sample_rate(tiny: Path, tmp_path: Path) -> None:
    engine = PiperEngine(tiny)
    assert (engine.name, engine.voice, engine.sample_rate) == ("piper", "vi_VN-tiny-x_low", 16000)
    out = tmp_path / "s.wav"
    assert engine.synthesize(SHORT, out) == "piper"
    rate, n = frames(out)
    ids = sum(len(chunk) for chunk in engine.phoneme_chunks(SHORT))
    assert rate == 16000 and n == ids * HOP  # the model's samples, written at the config's rate
    assert [p.name for p in tmp_path.iterdir()] == ["s.wav"]  # nothing else left behind

    other = make_voice(tmp_path / "v", "vi_VN-other-x_low", sample_rate=22050, length_scale=2.0)
    slow_speaker = PiperEngine(other)
    slow_speaker.synthesize(SHORT, tmp_path / "t.wav")
    assert frames(tmp_path / "t.wav") == (22050, 2 * n)  # rate and length_scale both come from the config
    assert slow_speaker.signature != engine.signature  # the scales are part of the cache key


def test_phonemes_are_espeak_ngs_as_piper_trained_on_them(tiny: Path) -> None:
    engine = PiperEngine(tiny)
    [ids] = engine.phoneme_chunks("Xin chào, bà con.")
    # ^ _ then each phoneme followed by _ (pad), then $
    assert ids[:2] == [SYMBOL_ID["^"], SYMBOL_ID["_"]] and ids[-1] == SYMBOL_ID["$"]
    assert ids[1:-1:2] == [SYMBOL_ID["_"]] * len(ids[1:-1:2])
    said = "".join(SYMBOLS[i] for i in ids[2:-1:2])
    assert said == "sˈin tʃˈaː2w, bˈaː2 kˌɔn."  # espeak-ng's IPA; its 1.51 level-tone digits removed
    assert _fix_phonemes("sˈi1n lˈə1w mˈaː7j", "vi") == "sˈin lˈə1w mˈaːj"  # "ə1w" keeps it, as 1.52 does
    assert _fix_phonemes("ha1(en)lo", "en-us") == "ha1lo"


def test_longer_text_makes_longer_audio_and_each_sentence_is_one_run(tiny: Path, tmp_path: Path) -> None:
    engine = PiperEngine(tiny)
    engine.synthesize(SHORT, tmp_path / "a.wav")
    engine.synthesize(LONG, tmp_path / "b.wav")
    assert frames(tmp_path / "b.wav")[1] > 3 * frames(tmp_path / "a.wav")[1]
    assert len(engine.phoneme_chunks(LONG)) == 2  # Piper speaks a sentence per model run


def test_a_long_sentence_is_cut_into_runs_that_fit(tiny: Path, tmp_path: Path) -> None:
    whole = PiperEngine(tiny)
    cut = PiperEngine(tiny, max_ids=60)
    chunks = cut.phoneme_chunks(LONG)
    assert len(chunks) > 4 and all(len(c) <= 60 for c in chunks)
    # nothing lost: the same phonemes, only more BOS/EOS around them
    inner = [i for c in chunks for i in c[2:-1:2]]
    assert inner == [i for c in whole.phoneme_chunks(LONG) for i in c[2:-1:2]]
    cut.synthesize(LONG, tmp_path / "c.wav")
    assert frames(tmp_path / "c.wav")[1] == sum(len(c) for c in chunks) * HOP


def test_a_voice_with_several_speakers_gets_a_speaker_id(tmp_path: Path) -> None:
    engine = PiperEngine(make_voice(tmp_path, "multi", speakers=3))
    assert engine.synthesize(SHORT, tmp_path / "m.wav") == "piper"


def test_the_model_is_loaded_once_however_many_threads_ask(tiny: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    engine = PiperEngine(tiny)
    opened: list[int] = []
    real_open = engine._open

    def counting_open() -> tuple[object, bool]:
        opened.append(1)
        time.sleep(0.05)  # a slow load, so that the threads really overlap
        return real_open()

    monkeypatch.setattr(engine, "_open", counting_open)
    threads = [threading.Thread(target=engine.load) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert opened == [1]


def test_the_pipeline_streams_levels_and_encodes_piper_speech(tiny: Path, tmp_path: Path) -> None:
    store = AudioStore(tmp_path / "store")
    pipeline = AudioPipeline(store, PiperEngine(tiny), RenderSettings(chimes=False))
    assert pipeline.work_rate == 16000  # the engine's rate: no resample per sentence
    sentences = list(pipeline.render_sentences(LONG))
    assert [s.engine for s in sentences] == ["piper", "piper"] and all(s.sample_rate == 16000 for s in sentences)
    stored = pipeline.render(LONG)
    assert stored.engine == "piper"
    info = probe(stored.path)
    assert info.codec == "mp3" and info.sample_rate == 24000
    lufs, peak = ebur128(stored.path)
    assert abs(lufs - -16.0) < 1.5 and peak <= -1.0  # the same levelling as every other voice
    assert pipeline.render(LONG).sha256 == stored.sha256  # indexed: a repeat is a cache hit
    store.close()


def test_a_voice_that_does_not_load_falls_back_to_espeak_and_is_logged(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    broken = make_voice(tmp_path, "broken")
    broken.write_bytes(b"\x08\x07 not an onnx model" * 100)
    piper = PiperEngine(broken)
    with pytest.raises(EngineError, match="does not load") as err:
        piper.synthesize(SHORT, tmp_path / "x.wav")
    assert err.value.unreachable
    chain = FallbackEngine([PiperEngine(broken), EspeakEngine()])
    store = AudioStore(tmp_path / "store")
    with caplog.at_level(logging.WARNING, logger="audio.engines"):
        stored = AudioPipeline(store, chain, RenderSettings(chimes=False)).render(SHORT)
    assert stored.engine == "espeak"
    assert "speech engine piper failed, falling back: piper: voice broken does not load" in caplog.text
    assert not list(tmp_path.glob("*.wav"))
    store.close()


@pytest.mark.parametrize(
    "damage",
    [
        lambda m: m.with_name(m.name + ".json").write_text("{not json", encoding="utf-8"),
        lambda m: m.with_name(m.name + ".json").write_text('{"audio": {"sample_rate": 16000}}', encoding="utf-8"),
        lambda m: m.unlink(),
    ],
    ids=["config-not-json", "config-without-keys", "no-model"],
)
def test_a_missing_or_broken_voice_is_an_engine_error_not_a_crash(tmp_path: Path, damage: object) -> None:
    model = make_voice(tmp_path, "hurt")
    damage(model)  # type: ignore[operator]
    engine = build_engine("piper+espeak", piper={"model": model})  # building never fails: speaking says why
    assert engine.synthesize(SHORT, tmp_path / "y.wav") == "espeak"


def test_a_config_is_checked_before_it_is_used(tmp_path: Path) -> None:
    path = tmp_path / "c.json"
    path.write_text('{"audio": {"sample_rate": 3}, "espeak": {"voice": "vi"}, "phoneme_id_map": {}}', "utf-8")
    with pytest.raises(VoiceConfigError, match="sample_rate"):
        PiperConfig.read(path)
    path.write_bytes(b" " * (2 * 1024 * 1024))
    with pytest.raises(VoiceConfigError, match="larger than any Piper config"):
        PiperConfig.read(path)


def test_a_voice_slower_than_its_deadline_is_stopped_and_espeak_speaks(tmp_path: Path) -> None:
    slow = make_voice(tmp_path, "slow", slow=150)  # seconds of matrix products per sentence
    piper = PiperEngine(slow, deadline_s=0.3)
    piper.load()  # loading is not the sentence's time
    started = time.monotonic()
    with pytest.raises(EngineError, match="deadline") as err:
        piper.synthesize(SHORT, tmp_path / "z.wav")
    assert err.value.unreachable
    assert time.monotonic() - started < 2.5  # stopped (RunOptions.terminate), not waited for
    chain = FallbackEngine([piper, EspeakEngine()])
    assert chain.synthesize(SHORT, tmp_path / "z.wav") == "espeak"
    assert chain.is_open(piper)  # the next sentences do not wait for it again
