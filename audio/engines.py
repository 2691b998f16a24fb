"""Speech engines: offline espeak-ng, online Google (gTTS), and a fallback chain.

Contract shared by all engines: `synthesize(text, out)` either leaves a complete,
non-empty audio file at `out` or raises EngineError and leaves nothing there, so
a crash or a timeout can never be mistaken for a rendered sentence. It returns the
name of the engine that actually spoke (only a chain can differ from `name`).
"""

from __future__ import annotations

import contextlib
import logging
import os
import random
import shutil
import subprocess
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol, runtime_checkable
from xml.sax.saxutils import escape

import requests
from gtts import gTTS, gTTSError

from audio.render import AudioError

GOOGLE_TTS_PATH = "/_/TranslateWebserverUi/data/batchexecute"

log = logging.getLogger(__name__)


class EngineError(AudioError):
    """Synthesis failed. `retryable`: the fault looks transient (429, 5xx); `unreachable`:
    the engine did not answer at all (timeout, no network), which a chain should stop
    waiting for at once."""

    def __init__(self, engine: str, detail: str, *, retryable: bool = False, unreachable: bool = False) -> None:
        message_vi = "Không tạo được giọng đọc, vui lòng thử lại sau."
        super().__init__("engine_failed", message_vi, f"{engine}: {detail}")
        self.engine = engine
        self.retryable = retryable
        self.unreachable = unreachable


@runtime_checkable
class SpeechEngine(Protocol):
    """What the pipeline needs from a voice. Two optional attributes are used when present:
    `sample_rate` (the native output rate, so the pipeline works at it and skips a resample)
    and `signature` (engine options that change the sound, made part of the cache key)."""

    name: str
    voice: str

    def synthesize(self, text: str, out: Path) -> str | None: ...


@runtime_checkable
class BatchingEngine(SpeechEngine, Protocol):
    """An engine that can speak several sentences in one run and leave `batch_gap_ms` of
    silence between them, which the pipeline cuts at (espeak-ng: one process per batch)."""

    batch_gap_ms: int

    def fits_batch(self, texts: Sequence[str]) -> bool: ...

    def synthesize_batch(self, texts: Sequence[str], out: Path) -> str | None: ...


@contextlib.contextmanager
def atomic_output(out: Path, engine: str) -> Iterator[Path]:
    """Yield a temp path next to `out`; publish it with os.replace only if non-empty."""
    tmp = out.with_name(f".{out.name}.{uuid.uuid4().hex}.part")
    try:
        yield tmp
        if not tmp.exists() or tmp.stat().st_size == 0:
            raise EngineError(engine, "engine produced no audio")
        os.replace(tmp, out)
    finally:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()


class EspeakEngine:
    """espeak-ng: robotic but offline, instant and always there."""

    name = "espeak"
    sample_rate = 22050  # espeak-ng's native WAV rate; lets the pipeline skip resampling

    def __init__(self, voice: str = "vi", wpm: int = 165, pitch: int = 70, timeout: float = 20.0,
                 binary: str | None = None, word_gap: int = 0, pitch_range: int = 200) -> None:
        # 165 wpm, a little under espeak's 175: horn speakers echo across the fields.
        # Pitch 70 with range 200 %: the widest tone contours espeak-ng makes (it caps the range there),
        # lifted so the level tone stays mid-high. bench/intelligibility.py (2026-12-01): Whisper-base's
        # word error rate 0.776 -> 0.729 (ratio to raw espeak-ng 0.90 -> 0.845), better on both halves;
        # pitch 70 alone was worse (0.832), range 200 at pitch 80 less good (0.751).
        self.voice = voice
        self.wpm = wpm
        self.pitch = pitch
        self.word_gap = word_gap  # espeak-ng -g: extra pause between words, in units of 10 ms
        # espeak-ng's pitch range in percent of the voice's own (SSML <prosody range>; it has no command
        # line option for it). Vietnamese tones are pitch contours inside that range: at 100 % the level
        # tone ("hai", ~113 Hz) and the falling one ("hài", 105 -> 95 Hz) are barely a semitone apart.
        self.pitch_range = pitch_range
        self.timeout = timeout
        self.binary = binary or shutil.which("espeak-ng") or "espeak-ng"

    @property
    def signature(self) -> str:
        gap = f";gap={self.word_gap}" if self.word_gap else ""  # absent at 0: earlier renders stay cached
        span = f";range={self.pitch_range}" if self.pitch_range != 100 else ""  # likewise at 100 %
        return f"wpm={self.wpm};pitch={self.pitch}{gap}{span}"

    def _run(self, text: str, out: Path, *, ssml: bool = False) -> str:
        # Text goes through stdin so that a sentence starting with "-" is never an option.
        cmd = [self.binary, "-v", self.voice, "-s", str(self.wpm), "-p", str(self.pitch), "-b", "1",
               *(["-g", str(self.word_gap)] if self.word_gap else []), *(["-m"] if ssml else []), "-w"]
        with atomic_output(out, self.name) as tmp:
            try:
                proc = subprocess.run([*cmd, str(tmp)], input=text.encode("utf-8"), capture_output=True,
                                      timeout=self.timeout, check=False)
            except subprocess.TimeoutExpired as exc:
                raise EngineError(self.name, f"timed out after {self.timeout}s", unreachable=True) from exc
            except OSError as exc:
                raise EngineError(self.name, f"cannot run {self.binary}: {exc}") from exc
            if proc.returncode != 0:
                raise EngineError(self.name, proc.stderr.decode("utf-8", "replace")[-300:])
            if tmp.exists() and tmp.stat().st_size <= 44:  # a bare WAV header: nothing was spoken
                tmp.unlink()
        return self.name

    def synthesize(self, text: str, out: Path) -> str:
        if not text.strip():
            raise EngineError(self.name, "empty text")
        if self.pitch_range != 100:  # the range can only be given in SSML
            return self._run(self._ssml([text]), out, ssml=True)
        return self._run(text, out)

    # Silence espeak-ng is told to leave between the texts of one batch. Its own pauses
    # inside a sentence stay under half a second, so a gap this long marks a boundary.
    batch_gap_ms = 1500
    # espeak-ng inserts a pause where its input crosses about 1 KiB (measured: a 360 ms
    # pause in mid-sentence), so a batch stays under that.
    batch_max_bytes = 1000

    def _ssml(self, texts: Sequence[str]) -> str:
        gap = f'<break time="{self.batch_gap_ms}ms"/>'
        body = gap.join(escape(t) for t in texts)
        if self.pitch_range != 100:
            body = f'<prosody range="{self.pitch_range}%">{body}</prosody>'
        return "<speak>" + body + "</speak>"

    def fits_batch(self, texts: Sequence[str]) -> bool:
        return len(self._ssml(texts).encode("utf-8")) <= self.batch_max_bytes

    def synthesize_batch(self, texts: Sequence[str], out: Path) -> str:
        """Several texts in one run, separated by `batch_gap_ms` of silence (SSML breaks).

        Starting espeak-ng costs about 15 ms, as much as speaking a short sentence; an
        article spoken sentence by sentence spends more on starting than on speaking.
        """
        if not texts or not all(t.strip() for t in texts):
            raise EngineError(self.name, "empty text")
        return self._run(self._ssml(texts), out, ssml=True)


class _GttsClient(gTTS):
    """gTTS whose requests can go to another host (tests use a local fake).

    gTTS builds "https://translate.google.<tld>/..." inside _prepare_requests; we let it
    build the requests as usual and only swap the scheme and host, so the body framing
    stays exactly gTTS's own.
    """

    base_url: str | None = None

    def _prepare_requests(self) -> list[requests.PreparedRequest]:
        prepared: list[requests.PreparedRequest] = super()._prepare_requests()
        if self.base_url:
            for pr in prepared:
                pr.prepare_url(self.base_url.rstrip("/") + GOOGLE_TTS_PATH, None)
        return prepared


class _Throttle:
    """Keeps at least `interval` seconds between request starts, across threads."""

    def __init__(self, interval: float) -> None:
        self.interval = interval
        self._lock = threading.Lock()
        self._next = 0.0

    def wait(self, deadline: float) -> None:
        with self._lock:
            now = time.monotonic()
            start = max(now, self._next)
            if start > deadline:
                raise EngineError("gtts", "throttled past the deadline", retryable=True)
            self._next = start + self.interval
        time.sleep(max(0.0, start - now))


def _looks_like_mp3(data: bytes) -> bool:
    return data[:3] == b"ID3" or (len(data) > 1 and data[0] == 0xFF and data[1] & 0xE0 == 0xE0)


class GttsEngine:
    """Google Translate's voice through the gTTS library: natural, but online and rate-limited.

    Every HTTP request has a timeout (gTTS's default waits forever), 429 and 5xx are
    retried with exponential backoff, and `deadline_s` caps the whole sentence so that
    a chain can still fall back to espeak quickly.
    """

    name = "gtts"
    sample_rate = 24000

    def __init__(self, lang: str = "vi", tld: str = "com", *, base_url: str | None = None,
                 connect_timeout: float = 1.0, read_timeout: float = 1.0, deadline_s: float = 20.0,
                 retries: int = 3, backoff_s: float = 0.5, max_backoff_s: float = 8.0,
                 min_interval_s: float = 0.25, slow: bool = False) -> None:
        self.voice = lang
        self.tld = tld
        self.base_url = base_url
        self.connect_timeout = connect_timeout
        self.read_timeout = read_timeout
        self.deadline_s = deadline_s
        self.retries = retries
        self.backoff_s = backoff_s
        self.max_backoff_s = max_backoff_s
        self.slow = slow
        self._throttle = _Throttle(min_interval_s)

    @property
    def signature(self) -> str:
        return f"tld={self.tld};slow={self.slow}"

    def _chunks(self, text: str) -> list[str]:
        """gTTS's own <=100-character split, so each chunk is one request we can retry alone."""
        probe = _GttsClient(text, lang=self.voice, tld=self.tld, lang_check=False)
        parts: list[str] = probe._tokenize(text)
        return parts

    def _request(self, chunk: str, deadline: float) -> bytes:
        attempt = 0
        while True:
            self._throttle.wait(deadline)
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise EngineError(self.name, "deadline exceeded")
            timeout = (min(self.connect_timeout, remaining), min(self.read_timeout, remaining))
            client = _GttsClient(chunk, lang=self.voice, tld=self.tld, lang_check=False, slow=self.slow,
                                  timeout=timeout)
            client.base_url = self.base_url
            try:
                data = b"".join(client.stream())
            except gTTSError as exc:
                if exc.rsp is None:  # no HTTP answer: retrying would only spend the fallback's time
                    timed_out = isinstance(exc.__context__, requests.Timeout)
                    detail = "request timed out" if timed_out else f"cannot connect: {exc.__context__}"
                    raise EngineError(self.name, detail, unreachable=True) from exc
                status = exc.rsp.status_code
                transient = status == 429 or status >= 500
                if not transient or attempt >= self.retries:
                    raise EngineError(self.name, str(exc), retryable=transient) from exc
                delay = self._backoff(attempt, exc.rsp)
                if time.monotonic() + delay >= deadline:
                    raise EngineError(self.name, f"{exc} (no time left to retry)", retryable=True) from exc
                time.sleep(delay)
                attempt += 1
                continue
            except (requests.RequestException, ValueError) as exc:  # ValueError: bad base64 payload
                raise EngineError(self.name, f"bad response: {exc}") from exc
            if not _looks_like_mp3(data):
                raise EngineError(self.name, f"response carried no audio ({len(data)} bytes)")
            return data

    def _backoff(self, attempt: int, response: requests.Response | None) -> float:
        retry_after = response.headers.get("Retry-After", "") if response is not None else ""
        if retry_after.isdigit():
            return min(self.max_backoff_s, float(retry_after))
        base = min(self.max_backoff_s, self.backoff_s * 2**attempt)
        return base * random.uniform(0.8, 1.2)

    def synthesize(self, text: str, out: Path) -> str:
        chunks = self._chunks(text) if text.strip() else []
        if not chunks:
            raise EngineError(self.name, "empty text")
        deadline = time.monotonic() + self.deadline_s
        audio = [self._request(chunk, deadline) for chunk in chunks]
        with atomic_output(out, self.name) as tmp:
            tmp.write_bytes(b"".join(audio))
        return self.name


@dataclass
class _Breaker:
    failures: int = 0
    open_until: float = 0.0


class FallbackEngine:
    """Tries engines in order; a circuit breaker stops waiting on an engine that keeps failing.

    After `failure_threshold` consecutive failures an engine is skipped for `cooldown_s`;
    an unreachable engine (timeout, no network) opens it at once, because waiting on a
    dead service sentence after sentence is what would blow the time budget. After the cool-down one call is let
    through, and a single failure re-opens the breaker. If every
    engine is skipped, the last one is tried anyway: an outage of the preferred voice
    should degrade the sound, never stop the announcement.
    """

    def __init__(self, engines: Sequence[SpeechEngine], *, failure_threshold: int = 3,
                 cooldown_s: float = 60.0, clock: Callable[[], float] = time.monotonic) -> None:
        if not engines:
            raise ValueError("FallbackEngine needs at least one engine")
        self.engines = list(engines)
        self.name = "+".join(e.name for e in self.engines)
        self.voice = self.engines[0].voice
        self.sample_rate: int | None = getattr(self.engines[0], "sample_rate", None)
        self.failure_threshold = failure_threshold
        self.cooldown_s = cooldown_s
        self.clock = clock
        self.last_engine: str | None = None
        self._breakers = {id(e): _Breaker() for e in self.engines}
        self._lock = threading.Lock()

    @property
    def signature(self) -> str:
        return "|".join(str(getattr(e, "signature", "")) for e in self.engines)

    def is_open(self, engine: SpeechEngine) -> bool:
        with self._lock:
            return self.clock() < self._breakers[id(engine)].open_until

    def _record(self, engine: SpeechEngine, ok: bool, unreachable: bool = False) -> None:
        with self._lock:
            b = self._breakers[id(engine)]
            if ok:
                b.failures, b.open_until = 0, 0.0
                return
            b.failures += 1
            if unreachable or b.failures >= self.failure_threshold:
                b.open_until = self.clock() + self.cooldown_s
                b.failures = self.failure_threshold - 1  # half-open: the next failure re-opens

    def synthesize(self, text: str, out: Path) -> str:
        errors: list[str] = []
        candidates = [e for e in self.engines if not self.is_open(e)] or self.engines[-1:]
        for engine in candidates:
            try:
                spoke = engine.synthesize(text, out) or engine.name
            except EngineError as exc:
                self._record(engine, ok=False, unreachable=exc.unreachable)
                errors.append(exc.detail)
                # Said once per failure, so an officer's "why does it sound robotic today" has an answer.
                log.warning("speech engine %s failed, falling back: %s", engine.name, exc.detail)
                continue
            self._record(engine, ok=True)
            self.last_engine = spoke
            return spoke
        raise EngineError(self.name, "; ".join(errors) or "all engines unavailable")


def build_engine(name: str, **opts: Any) -> SpeechEngine:
    """Engine from a config string: "espeak", "gtts", "fpt", "piper" or a chain such as "piper+espeak".

    For a single engine, `opts` are its constructor arguments. For a chain, per-engine
    arguments go under the engine's name (``gtts={"tld": "com.vn"}``) and the rest
    (failure_threshold, cooldown_s) configure the chain.
    """
    from audio.fpt import FptEngine  # here: audio.fpt and audio.piper build on this module
    from audio.piper import PiperEngine

    factories: dict[str, Callable[..., SpeechEngine]] = {"espeak": EspeakEngine, "gtts": GttsEngine,
                                                          "fpt": FptEngine, "piper": PiperEngine}
    parts = [p.strip() for p in name.split("+") if p.strip()]
    unknown = [p for p in parts if p not in factories]
    if not parts or unknown:
        raise ValueError(f"unknown speech engine {name!r}; use espeak, gtts, fpt, piper or a chain such as "
                         "piper+espeak")
    if len(parts) == 1:
        return factories[parts[0]](**opts)
    engines = [factories[p](**opts.pop(p, {})) for p in parts]
    return FallbackEngine(engines, **opts)
