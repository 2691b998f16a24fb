from __future__ import annotations

import threading
import time
from collections.abc import Sequence
from pathlib import Path

import pytest

from audio.engines import EspeakEngine
from audio.pipeline import AudioPipeline, RenderSettings
from audio.render import AudioError
from audio.store import AudioStore
from tests.audio.conftest import ebur128, ffmpeg, ffprobe, needs_tools

pytestmark = needs_tools

# One sentence per line, paragraphs separated by a blank line: the same split whatever
# the sentence splitter's finer rules are.
NEWS = (
    "Ủy ban nhân dân xã thông báo lịch tiêm phòng cho đàn gia súc.\n"
    "Các hộ chăn nuôi đưa vật nuôi đến điểm tiêm đúng giờ.\n"
    "\n"
    "Buổi họp thôn sẽ diễn ra vào tối thứ bảy tại nhà văn hóa.\n"
    "Đề nghị bà con đến dự đầy đủ.\n"
)


class CountingEngine:
    """The real espeak engine, counting how often it is asked to speak."""

    def __init__(self) -> None:
        self.inner = EspeakEngine()
        self.name, self.voice, self.sample_rate = self.inner.name, self.inner.voice, self.inner.sample_rate
        self.calls = 0
        self._lock = threading.Lock()

    def synthesize(self, text: str, out: Path) -> str:
        with self._lock:
            self.calls += 1
        return self.inner.synthesize(text, out)


@pytest.fixture
def counting() -> CountingEngine:
    return CountingEngine()


@pytest.mark.parametrize("target,codec", [(-16.0, "mp3"), (-20.0, "mp3"), (-16.0, "opus")])
def test_loudness_hits_the_target(store: AudioStore, espeak: EspeakEngine, target: float, codec: str) -> None:
    stored = AudioPipeline(store, espeak, RenderSettings(loudness_lufs=target, codec=codec)).render(NEWS)
    lufs, true_peak = ebur128(stored.path)
    assert abs(lufs - target) <= 1.0
    assert true_peak <= -1.5  # the default ceiling, as decoded from the delivered file


def test_default_output_is_mono_24k_mp3_with_exact_duration(store: AudioStore, espeak: EspeakEngine) -> None:
    stored = AudioPipeline(store, espeak).render(NEWS)
    info = ffprobe(stored.path)
    assert (info["codec_name"], int(info["sample_rate"]), info["channels"]) == ("mp3", 24000, 1)
    assert abs(stored.duration_ms - float(info["duration"]) * 1000) <= 100
    assert stored.path.suffix == ".mp3" and stored.codec == "mp3" and stored.engine == "espeak"
    assert stored.size == stored.path.stat().st_size


def test_opus_and_stereo_are_available(store: AudioStore, espeak: EspeakEngine) -> None:
    stored = AudioPipeline(store, espeak, RenderSettings(codec="opus", channels=2)).render(NEWS)
    info = ffprobe(stored.path)
    assert (info["codec_name"], info["channels"], stored.path.suffix) == ("opus", 2, ".ogg")


def test_same_text_twice_is_synthesized_once(store: AudioStore, counting: CountingEngine) -> None:
    pipeline = AudioPipeline(store, counting)
    first = pipeline.render(NEWS)
    calls = counting.calls
    assert calls == 4
    seen: list[tuple[int, int]] = []
    started = time.monotonic()
    again = AudioPipeline(store, counting).render(NEWS, progress=lambda d, n: seen.append((d, n)))
    assert time.monotonic() - started < 0.5
    assert again == first and counting.calls == calls and seen == [(4, 4)]


def test_different_settings_make_a_different_key(store: AudioStore, counting: CountingEngine) -> None:
    base = AudioPipeline(store, counting)
    quieter = AudioPipeline(store, counting, RenderSettings(loudness_lufs=-20.0))
    no_chimes = AudioPipeline(store, counting, RenderSettings(chimes=False))
    keys = {p.cache_key(NEWS) for p in (base, quieter, no_chimes)}
    assert len(keys) == 3
    assert base.cache_key(NEWS) == AudioPipeline(store, counting).cache_key(NEWS)
    assert base.cache_key(NEWS) != base.cache_key(NEWS.replace("thứ bảy", "chủ nhật"))
    assert base.render(NEWS).sha256 != quieter.render(NEWS).sha256
    assert counting.calls == 8


def test_progress_reaches_n_of_n_in_order(store: AudioStore, espeak: EspeakEngine) -> None:
    seen: list[tuple[int, int]] = []
    AudioPipeline(store, espeak).render(NEWS, progress=lambda d, n: seen.append((d, n)))
    assert seen[0] == (0, 4) and seen[-1] == (4, 4)
    assert [d for d, _ in seen] == sorted(d for d, _ in seen)


def test_first_sentence_is_ready_quickly(store: AudioStore, espeak: EspeakEngine) -> None:
    article = "\n".join(f"Đây là câu số {i} của một bài viết dài về nông thôn mới." for i in range(40))
    started = time.monotonic()
    sentences = AudioPipeline(store, espeak).render_sentences(article)
    first = next(sentences)
    assert time.monotonic() - started < 1.0
    assert first.index == 0 and first.total == 40 and first.pcm and first.engine == "espeak"
    assert [s.index for s in sentences] == list(range(1, 40))
    assert list(store.tmp_dir.iterdir()) == []


def test_chimes_and_speaking_rate_change_the_length(store: AudioStore, espeak: EspeakEngine) -> None:
    plain = AudioPipeline(store, espeak, RenderSettings(chimes=False)).render(NEWS)
    chimed = AudioPipeline(store, espeak).render(NEWS)
    faster = AudioPipeline(store, espeak, RenderSettings(chimes=False, speaking_rate=1.3)).render(NEWS)
    assert chimed.duration_ms - plain.duration_ms > 2000
    assert faster.duration_ms < 0.9 * plain.duration_ms


def test_nothing_to_say_is_a_clear_error(store: AudioStore, espeak: EspeakEngine) -> None:
    for text in ("", "   \n\n ", "... — !"):
        with pytest.raises(AudioError) as err:
            AudioPipeline(store, espeak).render(text)
        assert err.value.code == "empty_text" and "đọc" in err.value.message_vi


def test_concurrent_renders_share_one_store(store: AudioStore, espeak: EspeakEngine) -> None:
    pipeline = AudioPipeline(store, espeak)
    results: list[str] = []
    texts = [NEWS, NEWS.replace("bảy", "sáu"), NEWS]
    threads = [threading.Thread(target=lambda t=t: results.append(pipeline.render(t).sha256)) for t in texts]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(results) == 3 and len(set(results)) == 2


# -- officer uploads ------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def speech_wav(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("rec") / "speech.wav"
    EspeakEngine().synthesize("Alô alô, xin mời bà con đến nhà văn hóa thôn họp lúc bảy giờ tối nay.", out)
    return out


@pytest.mark.parametrize("ext,args", [
    ("wav", ["-ar", "44100", "-ac", "2"]),
    ("ogg", ["-c:a", "libvorbis"]),
    ("m4a", ["-c:a", "aac", "-b:a", "64k"]),
    ("mp3", ["-b:a", "64k"]),
    ("mp3", ["-q:a", "6", "-write_xing", "0"]),  # VBR without a header: duration is only estimated
])
def test_import_accepts_common_formats(tmp_path: Path, store: AudioStore, espeak: EspeakEngine,
                                       speech_wav: Path, ext: str, args: list[str]) -> None:
    upload = tmp_path / f"upload.{ext}"
    ffmpeg("-i", str(speech_wav), *args, str(upload))
    stored = AudioPipeline(store, espeak).import_recording(upload)
    info = ffprobe(stored.path)
    assert stored.engine == "recording"
    assert (info["codec_name"], int(info["sample_rate"]), info["channels"]) == ("mp3", 24000, 1)
    assert abs(ebur128(stored.path)[0] + 16.0) <= 1.0
    assert AudioPipeline(store, espeak).import_recording(upload) == stored  # cached


def test_import_rejects_a_text_file(tmp_path: Path, store: AudioStore, espeak: EspeakEngine) -> None:
    note = tmp_path / "thong-bao.mp3"
    note.write_text("Đây không phải là âm thanh", encoding="utf-8")
    with pytest.raises(AudioError) as err:
        AudioPipeline(store, espeak).import_recording(note)
    assert err.value.code == "not_audio" and "âm thanh" in err.value.message_vi


@pytest.mark.parametrize("ext", ["mp3", "m4a"])
def test_import_rejects_a_truncated_file(tmp_path: Path, store: AudioStore, espeak: EspeakEngine,
                                         speech_wav: Path, ext: str) -> None:
    whole = tmp_path / f"whole.{ext}"
    ffmpeg("-i", str(speech_wav), "-b:a", "64k", str(whole))
    cut = tmp_path / f"cut.{ext}"
    cut.write_bytes(whole.read_bytes()[: whole.stat().st_size // 3])
    with pytest.raises(AudioError) as err:
        AudioPipeline(store, espeak).import_recording(cut)
    assert err.value.code == "corrupt" and "hỏng" in err.value.message_vi


def test_import_rejects_empty_and_silent(tmp_path: Path, store: AudioStore, espeak: EspeakEngine) -> None:
    empty = tmp_path / "empty.wav"
    empty.touch()
    silent = tmp_path / "silent.wav"
    ffmpeg("-f", "lavfi", "-i", "anullsrc=r=16000:cl=mono", "-t", "3", str(silent))
    codes = []
    for path in (empty, silent, tmp_path / "missing.wav"):
        with pytest.raises(AudioError) as err:
            AudioPipeline(store, espeak).import_recording(path)
        codes.append(err.value.code)
    assert codes == ["empty", "silent", "not_found"]
    assert list(store.tmp_dir.iterdir()) == []



# -- batched synthesis and parted encoding ----------------------------------------------------------

class RunCountingEspeak(EspeakEngine):
    """The real espeak engine, counting its process runs (one per sentence or per batch)."""

    def __init__(self, batch_gap_ms: int = EspeakEngine.batch_gap_ms, batching: bool = True) -> None:
        super().__init__()
        self.batch_gap_ms = batch_gap_ms
        self.batching = batching
        self.runs: list[int] = []
        self._lock = threading.Lock()

    def fits_batch(self, texts: Sequence[str]) -> bool:
        return self.batching and super().fits_batch(texts)

    def synthesize(self, text: str, out: Path) -> str:
        with self._lock:
            self.runs.append(1)
        return super().synthesize(text, out)

    def synthesize_batch(self, texts: Sequence[str], out: Path) -> str:
        with self._lock:
            self.runs.append(len(texts))
        return super().synthesize_batch(texts, out)


ARTICLE = "\n".join(
    f"Thôn {i} đã hoàn thành {i * 3} km đường bê tông & kênh mương nội đồng, vượt kế hoạch năm." for i in range(1, 21)
)


def test_an_article_is_spoken_in_a_few_batched_runs(store: AudioStore) -> None:
    batched = RunCountingEspeak()
    pipeline = AudioPipeline(store, batched)
    sentences = list(pipeline.render_sentences(ARTICLE))
    assert [s.index for s in sentences] == list(range(20)) and all(s.pcm for s in sentences)
    # The first alone (ready at once), then doubling, but never past the ~1 KiB of input
    # at which espeak-ng would pause in mid-sentence (these sentences are ~170 bytes).
    spans = [end - start for start, end in pipeline._batches(pipeline._plan(ARTICLE))]
    assert spans[:3] == [1, 2, 4] and min(spans[3:-1]) >= 4 and sum(spans) == 20 and len(spans) <= 7
    # one engine run a span (the two workers take them in whatever order the machine lets them)
    assert sorted(batched.runs) == sorted(spans)
    one_by_one = RunCountingEspeak(batching=False)
    singles = list(AudioPipeline(store, one_by_one).render_sentences(ARTICLE))
    assert one_by_one.runs == [1] * 20
    # The same sentence, cut from a batch or spoken alone, is the same length: within the
    # few tens of milliseconds espeak's prosody varies after a break.
    for a, b in zip(sentences, singles, strict=True):
        assert a.spoken == b.spoken
        assert abs(len(a.pcm) - len(b.pcm)) / a.sample_rate / 2 <= 0.12


class GaplessEspeak(RunCountingEspeak):
    """espeak asked for a batch but leaving no gaps (as if it ignored the breaks)."""

    def synthesize_batch(self, texts: Sequence[str], out: Path) -> str:
        with self._lock:
            self.runs.append(len(texts))
        return self._run(" ".join(texts), out)


def test_a_batch_that_cannot_be_cut_safely_is_spoken_again_one_by_one(store: AudioStore) -> None:
    engine = GaplessEspeak()
    sentences = list(AudioPipeline(store, engine).render_sentences(ARTICLE))
    assert [s.index for s in sentences] == list(range(20)) and all(s.pcm for s in sentences)
    batches = [n for n in engine.runs if n > 1]
    assert batches[:2] == [2, 4] and engine.runs.count(1) == 1 + sum(batches)


def test_a_long_item_encoded_in_parts_is_on_target_and_exact(store: AudioStore) -> None:
    long_text = "\n\n".join([ARTICLE] * 2)
    pipeline = AudioPipeline(store, EspeakEngine())
    assert 0 < pipeline._split_index(pipeline._plan(long_text)) < 40  # two encoder parts
    stored = pipeline.render(long_text)
    lufs, true_peak = ebur128(stored.path)
    assert abs(lufs + 16.0) <= 1.0 and true_peak <= -1.5
    assert abs(stored.duration_ms - float(ffprobe(stored.path)["duration"]) * 1000) <= 100
    assert pipeline.render(long_text) == stored and list(store.tmp_dir.iterdir()) == []
