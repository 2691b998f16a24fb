"""Piper's neural voices (VITS exported to ONNX): a natural Vietnamese voice, offline, on a small CPU.

A Piper voice is two files: ``<name>.onnx``, the model, and ``<name>.onnx.json``, its config. The model
is run here with onnxruntime (MIT) and nothing of the piper-tts package (GPL-3.0-or-later since 1.3):

- the ONNX graph Piper exports takes ``input`` (int64 [1, n], phoneme ids), ``input_lengths`` (int64
  [1]), ``scales`` (float32 [3]: noise_scale, length_scale, noise_w) and, for a voice with several
  speakers, ``sid`` (int64 [1]); it answers ``output``, float32 [1, 1, 1, samples] (piper/voice.py,
  ``phoneme_ids_to_audio``);
- the config gives ``audio.sample_rate``, ``espeak.voice``, ``phoneme_type``, ``phoneme_id_map``,
  ``inference.{noise_scale, length_scale, noise_w}`` and ``num_speakers``;
- a sentence's ids are ``^`` (BOS), ``_`` (PAD), then each phoneme followed by PAD, then ``$`` (EOS)
  (piper/phoneme_ids.py); a phoneme the map lacks is dropped, as Piper drops it.

Phonemes come from the espeak-ng program loa already runs for its own voice (`espeak-ng -q --ipa`), as
a separate process, so no GPL code is linked into loa. Piper's voices were trained on the phonemes of
its own espeak-ng (1.52-dev); Debian 12's 1.51 writes the level tone as a digit ("1", "7") that the
newer one leaves out except in "ə1w", so those digits are removed for Vietnamese (`_TONE_FIXES`).
Measured against piper-tts 1.8.0's own phonemizer on the 365 sentences of
tests/audio/normalize_corpus.tsv: 364 identical, one phoneme in 37,784 different.

Each sentence the pipeline hands over is spoken by one or more model runs: Piper speaks a sentence
(clauses up to ``.``, ``!`` or ``?``) per run, and a sentence longer than `max_ids` ids is cut at clause
and then word boundaries, so a run's cost stays bounded. Every run has the sentence's deadline: past
it onnxruntime is told to stop (RunOptions.terminate) and the engine raises `unreachable`, so that a
chain (piper+espeak) speaks the sentence with espeak-ng at once and stops waiting for this voice.
"""

from __future__ import annotations

import contextlib
import json
import logging
import re
import shutil
import subprocess
import threading
import time
import unicodedata
import wave
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from audio.engines import EngineError, atomic_output

log = logging.getLogger(__name__)

CONFIG_MAX_BYTES = 1024 * 1024  # a Piper config is a few KiB; anything this large is not one
BOS, EOS, PAD = "^", "$", "_"
REQUIRED_INPUTS = ("input", "input_lengths", "scales")
PHONEME_TYPES = ("espeak", "text")
MAX_IDS = 800  # ids per model run (about 20 s of speech); VITS's attention grows with the square of it
_CLAUSE = re.compile(r"([,.!?:;])(?=\s|$)")  # where espeak-ng ends a clause
_SENTENCE_END = frozenset(".!?")
_LANG_SWITCH = re.compile(r"\([^)]*\)")  # espeak-ng's "(en)...(vi)" around foreign words
# espeak-ng 1.51 (Debian 12) -> the phonemes Piper's voices were trained on (espeak-ng 1.52-dev)
_TONE_FIXES: tuple[tuple[re.Pattern[str], str], ...] = (
    (re.compile("7"), ""),
    (re.compile("(?<!ə)1|1(?!w)"), ""),
)


class VoiceConfigError(ValueError):
    """A Piper config that cannot be used, with what is wrong in it."""


@dataclass(frozen=True)
class PiperConfig:
    """What loa reads of a voice's ``.onnx.json``; `read` refuses a file that is not a usable config."""

    sample_rate: int
    espeak_voice: str
    phoneme_type: str
    phoneme_id_map: Mapping[str, tuple[int, ...]]
    noise_scale: float
    length_scale: float
    noise_w: float
    num_speakers: int

    @classmethod
    def from_json(cls, data: object) -> PiperConfig:
        if not isinstance(data, dict):
            raise VoiceConfigError("the config is not a JSON object")
        try:
            rate = data["audio"]["sample_rate"]
            espeak_voice = data["espeak"]["voice"] if data.get("phoneme_type", "espeak") == "espeak" else ""
            id_map = data["phoneme_id_map"]
        except (KeyError, TypeError) as exc:
            raise VoiceConfigError(f"the config lacks {exc}") from None
        phoneme_type = data.get("phoneme_type", "espeak")
        if phoneme_type not in PHONEME_TYPES:
            raise VoiceConfigError(f"phoneme_type {phoneme_type!r} is not one loa reads ({', '.join(PHONEME_TYPES)})")
        if not isinstance(rate, int) or not 8000 <= rate <= 48000:
            raise VoiceConfigError(f"audio.sample_rate {rate!r} is not a sample rate")
        if phoneme_type == "espeak" and (not isinstance(espeak_voice, str) or not espeak_voice.strip()):
            raise VoiceConfigError("espeak.voice is empty")
        if not isinstance(id_map, dict) or not all(
            isinstance(k, str) and isinstance(v, list) and v and all(isinstance(i, int) and i >= 0 for i in v)
            for k, v in id_map.items()
        ):
            raise VoiceConfigError("phoneme_id_map is not a map of phonemes to lists of ids")
        missing = [s for s in (BOS, EOS, PAD) if s not in id_map]
        if missing:
            raise VoiceConfigError(f"phoneme_id_map lacks {' '.join(missing)}")
        inference = data.get("inference") or {}
        speakers = data.get("num_speakers", 1)
        try:
            scales = [float(inference.get(k, d)) for k, d in
                      (("noise_scale", 0.667), ("length_scale", 1.0), ("noise_w", 0.8))]  # fmt: skip
        except (TypeError, ValueError, AttributeError):
            raise VoiceConfigError("inference scales are not numbers") from None
        if not isinstance(speakers, int) or speakers < 1:
            raise VoiceConfigError(f"num_speakers {speakers!r} is not a count")
        return cls(rate, str(espeak_voice), phoneme_type, {k: tuple(v) for k, v in id_map.items()},
                   scales[0], scales[1], scales[2], speakers)  # fmt: skip

    @classmethod
    def read(cls, path: Path) -> PiperConfig:
        try:
            size = path.stat().st_size
            if size > CONFIG_MAX_BYTES:
                raise VoiceConfigError(f"{path.name} is {size} bytes, larger than any Piper config")
            data = json.loads(path.read_text(encoding="utf-8"))
        except OSError as exc:
            raise VoiceConfigError(f"cannot read {path.name}: {exc.strerror or exc}") from exc
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise VoiceConfigError(f"{path.name} is not JSON: {exc}") from exc
        return cls.from_json(data)


def _clauses(text: str) -> list[tuple[str, str]]:
    """(clause, its punctuation) pairs, split where espeak-ng ends a clause."""
    parts = _CLAUSE.split(text)
    clauses: list[tuple[str, str]] = []
    for i in range(0, len(parts), 2):
        words = " ".join(parts[i].split())
        mark = parts[i + 1] if i + 1 < len(parts) else ""
        if words:
            clauses.append((words, mark))
        elif clauses and mark and not clauses[-1][1]:
            clauses[-1] = (clauses[-1][0], mark)
    return clauses


class EspeakPhonemizer:
    """IPA phonemes from the espeak-ng program, clause by clause, with their punctuation kept as Piper
    keeps it (a comma, colon or semicolon followed by a space)."""

    def __init__(self, binary: str | None = None) -> None:
        self.binary = binary or shutil.which("espeak-ng") or "espeak-ng"

    def phonemize(self, text: str, voice: str, timeout: float) -> list[tuple[str, str]]:
        """(phonemes, punctuation) per clause of `text`."""
        clauses = _clauses(text)
        if not clauses:
            return []
        lines_in = "\n".join(words + mark for words, mark in clauses)
        try:
            proc = subprocess.run([self.binary, "-q", "--ipa", "-v", voice], input=lines_in.encode("utf-8"),
                                  capture_output=True, timeout=max(0.05, timeout), check=False)  # fmt: skip
        except subprocess.TimeoutExpired as exc:
            raise EngineError("piper", f"phonemizing took longer than {timeout:.1f} s", unreachable=True) from exc
        except OSError as exc:
            raise EngineError("piper", f"cannot run {self.binary}: {exc}", unreachable=True) from exc
        if proc.returncode != 0:
            raise EngineError("piper", "espeak-ng: " + proc.stderr.decode("utf-8", "replace")[-200:])
        lines = [" ".join(line.split()) for line in proc.stdout.decode("utf-8", "replace").splitlines()]
        lines = [line for line in lines if line]
        if len(lines) != len(clauses):  # espeak-ng cut a clause of its own: one clause, the last mark
            return [(" ".join(lines), clauses[-1][1])] if lines else []
        return [(line, mark) for line, (_, mark) in zip(lines, clauses, strict=True)]


def _fix_phonemes(phonemes: str, espeak_voice: str) -> str:
    phonemes = _LANG_SWITCH.sub("", phonemes)
    if espeak_voice.split("-")[0] == "vi":
        for pattern, replacement in _TONE_FIXES:
            phonemes = pattern.sub(replacement, phonemes)
    return phonemes


class PiperEngine:
    """A Piper voice as a SpeechEngine: `sample_rate` from its config, the model loaded once, lazily and
    under a lock, by the first sentence that needs it (so building the daemon's services costs nothing)."""

    name = "piper"

    def __init__(self, model: Path | str, config: Path | str | None = None, *, voice: str | None = None,
                 deadline_s: float = 30.0, threads: int = 1, max_ids: int = MAX_IDS,
                 espeak_binary: str | None = None) -> None:  # fmt: skip
        self.model_path = Path(model)
        self.config_path = Path(config) if config else Path(f"{self.model_path}.json")
        self.voice = voice or self.model_path.name.removesuffix(".onnx")
        self.deadline_s = deadline_s
        # One thread per run: the pipeline already runs two sentences at once on a 2-core machine, and
        # onnxruntime's threads spin while they wait, which two runs of two threads each would fight over.
        self.threads = max(1, threads)
        self.max_ids = max(16, max_ids)
        self.phonemizer = EspeakPhonemizer(espeak_binary)
        self._lock = threading.Lock()
        self._session: Any = None
        self._has_sid = False
        self._load_error: tuple[tuple[float, int], str] | None = None
        try:
            self.config: PiperConfig | None = PiperConfig.read(self.config_path)
            self._config_error = ""
        except VoiceConfigError as exc:  # said when a sentence is asked for, so a chain falls back
            self.config, self._config_error = None, str(exc)
        self.sample_rate = self.config.sample_rate if self.config else 22050

    def __repr__(self) -> str:
        return f"PiperEngine(voice={self.voice!r}, model={str(self.model_path)!r})"

    @property
    def signature(self) -> str:
        c = self.config
        scales = f"{c.noise_scale:g},{c.length_scale:g},{c.noise_w:g}" if c else "-"
        return f"voice={self.voice};scales={scales}"

    # -- loading ------------------------------------------------------------------------

    def _model_stamp(self) -> tuple[float, int]:
        try:
            st = self.model_path.stat()
        except OSError:
            return (0.0, -1)
        return (st.st_mtime, st.st_size)

    def load(self) -> None:
        """Load the model now (the first sentence does it otherwise). Raises EngineError, `unreachable`:
        a voice that does not load will not load for the next sentence either. A failure is remembered
        until the model file changes, so a broken voice costs one attempt, not one per sentence."""
        if self._session is not None:
            return
        if self.config is None:
            raise EngineError(self.name, f"voice {self.voice}: {self._config_error}", unreachable=True)
        with self._lock:
            if self._session is not None:
                return
            stamp = self._model_stamp()
            if self._load_error is not None and self._load_error[0] == stamp:
                raise EngineError(self.name, self._load_error[1], unreachable=True)
            try:
                self._session, self._has_sid = self._open()
            except EngineError as exc:
                self._load_error = (stamp, exc.detail.removeprefix(f"{self.name}: "))
                raise
            self._load_error = None

    def _open(self) -> tuple[Any, bool]:
        try:
            import onnxruntime as ort
        except ImportError as exc:
            raise EngineError(self.name, "onnxruntime is not installed", unreachable=True) from exc
        if not self.model_path.is_file():
            raise EngineError(self.name, f"voice {self.voice}: no model at {self.model_path}", unreachable=True)
        options = ort.SessionOptions()
        options.intra_op_num_threads = self.threads
        options.inter_op_num_threads = 1
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        options.log_severity_level = 3
        started = time.monotonic()
        try:
            session = ort.InferenceSession(str(self.model_path), sess_options=options,
                                           providers=["CPUExecutionProvider"])  # fmt: skip
        except Exception as exc:  # onnxruntime raises its own types (Fail, InvalidProtobuf, ...)
            raise EngineError(self.name, f"voice {self.voice} does not load: {str(exc)[:200]}",
                              unreachable=True) from exc  # fmt: skip
        inputs = {i.name for i in session.get_inputs()}
        missing = [n for n in REQUIRED_INPUTS if n not in inputs]
        if missing or not session.get_outputs():
            lacks = ", ".join(missing) or "an output"
            raise EngineError(
                self.name, f"voice {self.voice} is not a Piper model (it lacks {lacks})", unreachable=True
            )
        log.info("piper voice %s loaded in %.2f s", self.voice, time.monotonic() - started)
        return session, "sid" in inputs

    # -- text to ids --------------------------------------------------------------------

    def phoneme_chunks(self, text: str, timeout: float | None = None) -> list[list[int]]:
        """The id sequences of the model runs that speak `text`: one per sentence, cut at clauses and
        then words when longer than `max_ids`."""
        if self.config is None:
            raise EngineError(self.name, f"voice {self.voice}: {self._config_error}", unreachable=True)
        c = self.config
        if c.phoneme_type == "text":
            clauses = [(unicodedata.normalize("NFD", words), mark) for words, mark in _clauses(text)]
        else:
            found = self.phonemizer.phonemize(text, c.espeak_voice, self.deadline_s if timeout is None else timeout)
            clauses = [(unicodedata.normalize("NFD", _fix_phonemes(p, c.espeak_voice)), mark) for p, mark in found]
        runs: list[list[str]] = []  # phonemes of each run
        current: list[str] = []
        for phonemes, mark in clauses:
            piece = list(phonemes.strip() + mark + (" " if mark in (",", ":", ";") else ""))
            if current and 2 * (len(current) + len(piece)) + 3 > self.max_ids:
                runs.append(current)
                current = []
            current.extend(piece)
            if mark in _SENTENCE_END:
                runs.append(current)
                current = []
        if current:
            runs.append(current)
        chunks: list[list[int]] = []
        for run in runs:
            for part in self._fit(run):
                ids = self._ids(part)
                if len(ids) > 3:  # more than BOS, PAD, EOS: something to say
                    chunks.append(ids)
        return chunks

    def _fit(self, phonemes: list[str]) -> list[list[str]]:
        """A run too long for one model call, cut at spaces (else anywhere) into parts that fit."""
        limit = (self.max_ids - 3) // 2
        parts: list[list[str]] = []
        while len(phonemes) > limit:
            cut = max((i for i in range(1, limit + 1) if phonemes[i - 1] == " "), default=limit)
            parts.append(phonemes[:cut])
            phonemes = phonemes[cut:]
        if phonemes:
            parts.append(phonemes)
        return parts

    def _ids(self, phonemes: Sequence[str]) -> list[int]:
        id_map = self.config.phoneme_id_map if self.config else {}
        ids = [*id_map[BOS], *id_map[PAD]]
        for ph in phonemes:
            known = id_map.get(ph)
            if known is None:
                continue  # as Piper does: a phoneme the voice was not trained on is left out
            ids.extend(known)
            ids.extend(id_map[PAD])
        ids.extend(id_map[EOS])
        return ids

    # -- synthesis ----------------------------------------------------------------------

    def _run(self, ids: list[int], deadline: float) -> np.ndarray:
        import onnxruntime as ort

        assert self.config is not None and self._session is not None
        c = self.config
        feed: dict[str, np.ndarray] = {
            "input": np.asarray([ids], dtype=np.int64),
            "input_lengths": np.asarray([len(ids)], dtype=np.int64),
            "scales": np.asarray([c.noise_scale, c.length_scale, c.noise_w], dtype=np.float32),
        }
        if self._has_sid:
            feed["sid"] = np.asarray([0], dtype=np.int64)
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise EngineError(self.name, f"no audio within the {self.deadline_s:g} s deadline", unreachable=True)
        options = ort.RunOptions()
        timer = threading.Timer(remaining, lambda: setattr(options, "terminate", True))
        timer.daemon = True
        timer.start()
        try:
            result = self._session.run(None, feed, options)
        except Exception as exc:
            if time.monotonic() >= deadline or options.terminate:
                raise EngineError(self.name, f"no audio within the {self.deadline_s:g} s deadline",
                                  unreachable=True) from exc  # fmt: skip
            raise EngineError(self.name, f"the model failed: {str(exc)[:200]}", unreachable=True) from exc
        finally:
            timer.cancel()
        if time.monotonic() > deadline:
            raise EngineError(self.name, f"no audio within the {self.deadline_s:g} s deadline", unreachable=True)
        audio = np.asarray(result[0], dtype=np.float32).reshape(-1)
        if not np.all(np.isfinite(audio)):
            raise EngineError(self.name, "the model produced non-numbers")
        return audio

    def synthesize(self, text: str, out: Path) -> str:
        if not text.strip():
            raise EngineError(self.name, "empty text")
        self.load()
        deadline = time.monotonic() + self.deadline_s
        chunks = self.phoneme_chunks(text, timeout=self.deadline_s)
        if not chunks:
            raise EngineError(self.name, "nothing to say in this voice's phonemes")
        audio = np.concatenate([self._run(ids, deadline) for ids in chunks])
        peak = float(np.max(np.abs(audio))) if audio.size else 0.0
        if peak < 1e-6:
            raise EngineError(self.name, "the model produced silence")
        # Piper scales each sentence to full range; the pipeline levels it to the loudness target after.
        pcm = np.clip(audio / peak * 32767.0, -32767, 32767).astype("<i2")
        with atomic_output(out, self.name) as tmp, contextlib.closing(wave.open(str(tmp), "wb")) as wav:
            wav.setnchannels(1)
            wav.setsampwidth(2)
            wav.setframerate(self.sample_rate)
            wav.writeframes(pcm.tobytes())
        return self.name
