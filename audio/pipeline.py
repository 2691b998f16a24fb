"""Text or an officer's recording in, one loudness-normalized, stored audio file out.

The pipeline speaks sentence by sentence (each normalized first), because that is
what lets long articles report progress, start playing early, mix engines when Google
drops out mid-article, and pause exactly where we want. espeak-ng speaks a few
sentences per process run (starting it costs as much as a short sentence) and the run
is cut at the gaps it was told to leave. Each sentence is trimmed, levelled to the
loudness target (audio.level) and written straight into an encoder that runs
meanwhile; a long item is encoded in two parts at once and joined in a pause.
"""

from __future__ import annotations

import hashlib
import json
import tempfile
import time
from collections import deque
from collections.abc import Callable, Generator, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path

from audio import render
from audio.chimes import ChimeKind, chime
from audio.engines import BatchingEngine, SpeechEngine
from audio.level import Leveller
from audio.normalize import normalize, split_paragraphs
from audio.render import CODECS, AudioError
from audio.store import AudioStore, StoredAudio, file_sha256

__all__ = ["AudioError", "AudioPipeline", "RenderSettings", "SentenceAudio", "StoredAudio"]

# Bump when the rendering algorithm changes audibly, so old cache entries stop matching.
PIPELINE_VERSION = 2
BATCH_MAX = 8  # sentences per engine run (see _speak_batch)
SPLIT_MIN_CHARS = 2000  # ~2 minutes of speech: below that, one encoder is quicker than two
SPLIT_AT = 0.65  # measured on a 1,600-word article, 2 cores: 0.6-0.75 best (0.85 s), 0.5: 0.98 s
LEAD_MS = 200  # quiet head/tail: speaker amplifiers un-mute with a click on the first samples
CHIME_GAP_MS = 450
MAX_UPLOAD_BYTES = 200 * 1024**2
MAX_RECORDING_MS = 60 * 60 * 1000
_AUDIO_MAGIC = (b"ID3", b"\xff\xfb", b"\xff\xf3", b"\xff\xf2", b"\xff\xfa", b"RIFF", b"OggS", b"fLaC",
                b"\x1aE\xdf\xa3")

Progress = Callable[[int, int], None]
# The commune's readings: a fixed table, or a callable read afresh for every render (a lexicon edited
# while the daemon runs is heard in the next render; audio/ does not know where it is kept).
LexiconSource = Mapping[str, str] | Callable[[], Mapping[str, str]] | None


@dataclass(frozen=True)
class RenderSettings:
    """Every knob that changes the output bytes; all of it is part of the cache key."""

    loudness_lufs: float = -16.0
    true_peak_dbtp: float = -1.5
    sample_rate: int = 24000
    channels: int = 1
    codec: str = "mp3"
    bitrate: str = "48k"
    chimes: bool = True
    sentence_pause_ms: int = 350
    paragraph_pause_ms: int = 800
    speaking_rate: float = 1.0
    trim_silence: bool = True

    def __post_init__(self) -> None:
        if self.codec not in CODECS:
            raise ValueError(f"codec must be one of {sorted(CODECS)}, not {self.codec!r}")
        if not -40.0 <= self.loudness_lufs <= -5.0 or not -9.0 <= self.true_peak_dbtp <= 0.0:
            raise ValueError("loudness target out of range")
        if self.channels not in (1, 2) or not 0.5 <= self.speaking_rate <= 2.0:
            raise ValueError("channels must be 1 or 2 and speaking_rate within 0.5-2.0")
        if self.codec == "opus" and self.sample_rate not in (8000, 12000, 16000, 24000, 48000):
            raise ValueError("opus needs a sample rate of 8, 12, 16, 24 or 48 kHz")

    @property
    def extension(self) -> str:
        return CODECS[self.codec][0]


@dataclass(frozen=True)
class SentenceAudio:
    """One spoken sentence, trimmed and at the pipeline's working rate (mono s16le)."""

    index: int
    total: int
    paragraph: int
    text: str
    spoken: str
    pcm: bytes
    sample_rate: int
    engine: str


@dataclass(frozen=True)
class _Line:
    paragraph: int
    text: str
    spoken: str


def _preferred_engine(engine: SpeechEngine) -> str:
    chain = getattr(engine, "engines", None)
    return str(chain[0].name) if chain else engine.name


class _Assembly:
    """The program being built: raw PCM appended to a file and, on the way, to a loudness meter.

    It also remembers where the pauses are, because those are the only places where
    the program may be cut for parallel encoding without an audible seam.
    """

    def __init__(self, path: Path, rate: int, chimes: bool) -> None:
        self.path, self.rate, self.chimes = path, rate, chimes
        self._meter = render.StreamingMeter(rate)
        self._fh = path.open("wb")
        self._bytes = 0
        self._pauses_ms: list[int] = []

    def __enter__(self) -> _Assembly:
        self.write(render.silence(LEAD_MS, self.rate))
        if self.chimes:
            self.write(chime(self.rate, "intro"))
            self.pause(CHIME_GAP_MS)
        return self

    def write(self, pcm: bytes) -> None:
        self._fh.write(pcm)
        self._meter.feed(pcm)
        self._bytes += len(pcm)

    def pause(self, ms: int) -> None:
        self._pauses_ms.append(render.duration_ms(self._bytes, self.rate) + ms // 2)
        self.write(render.silence(ms, self.rate))

    def close(self) -> float:
        """Finish the program; returns its integrated loudness (LUFS) before any gain."""
        if self.chimes:
            self.pause(CHIME_GAP_MS)
            self.write(chime(self.rate, "outro"))
        self.write(render.silence(LEAD_MS, self.rate))
        self._fh.close()
        return self._meter.result().integrated

    def cuts(self, parts: int, min_part_ms: int = 60_000) -> list[int]:
        """Pause midpoints that split the program into `parts` similar lengths."""
        total = render.duration_ms(self._bytes, self.rate)
        parts = min(parts, total // min_part_ms)
        if parts < 2 or not self._pauses_ms:
            return []
        chosen = {min(self._pauses_ms, key=lambda p: abs(p - total * k / parts)) for k in range(1, parts)}
        return sorted(chosen)

    def __exit__(self, *exc: object) -> None:
        self._fh.close()
        self._meter.close()
        render.remove_quietly(self.path)


class AudioPipeline:
    """Renders text with one engine into one store. Thread-safe; one render uses `workers` threads."""

    def __init__(self, store: AudioStore, engine: SpeechEngine, settings: RenderSettings = RenderSettings(),
                 lexicon: LexiconSource = None, *, workers: int = 2) -> None:
        self.store = store
        self.engine = engine
        self.settings = settings
        self.lexicon = lexicon
        self.workers = max(1, workers)
        # Work at the engine's native rate (espeak: 22.05 kHz) so sentences need no resampling;
        # ffmpeg's soxr resamples once, at the very end.
        self.work_rate = int(getattr(engine, "sample_rate", None) or settings.sample_rate)
        # Told the seconds each fresh render took (not a cache hit): the daemon's metrics, if it has them.
        self.on_render: Callable[[float], None] | None = None

    # -- text -----------------------------------------------------------------------------

    def current_lexicon(self) -> Mapping[str, str] | None:
        """The readings a render made now uses (a callable source is asked each time)."""
        return self.lexicon() if callable(self.lexicon) else self.lexicon

    def _plan(self, text: str) -> list[_Line]:
        lines: list[_Line] = []
        lexicon = self.current_lexicon()
        for p, sentences in enumerate(split_paragraphs(text)):
            for sentence in sentences:
                spoken = normalize(sentence, lexicon).strip()
                if any(ch.isalnum() for ch in spoken):
                    lines.append(_Line(p, sentence, spoken))
        return lines

    def _key(self, kind: str, content: object) -> str:
        blob = json.dumps({
            "v": PIPELINE_VERSION, "kind": kind, "engine": self.engine.name, "voice": self.engine.voice,
            "engine_signature": str(getattr(self.engine, "signature", "")),
            "settings": asdict(self.settings), "content": content,
        }, ensure_ascii=False, sort_keys=True)
        return hashlib.sha256(blob.encode("utf-8")).hexdigest()

    def cache_key(self, text: str) -> str:
        """Identity of a render: normalized text (with its paragraph breaks), engine, voice, settings."""
        return self._key("tts", [[line.paragraph, line.spoken] for line in self._plan(text)])

    # -- synthesis ------------------------------------------------------------------------

    def _leveller(self) -> Leveller:
        s = self.settings
        return Leveller(self.work_rate, s.loudness_lufs + render.CODEC_LOUDNESS_LOSS_LU[s.codec],
                        s.true_peak_dbtp - render.CODEC_PEAK_MARGIN_DB[s.codec])

    def _finish_sentence(self, index: int, total: int, line: _Line, pcm: bytes, spoke: str,
                         leveller: Leveller) -> SentenceAudio:
        if self.settings.trim_silence:
            pcm = render.trim_silence(pcm, self.work_rate)
        pcm = render.change_tempo(pcm, self.work_rate, self.settings.speaking_rate)
        pcm = leveller.level(pcm)
        return SentenceAudio(index, total, line.paragraph, line.text, line.spoken, pcm, self.work_rate, spoke)

    def _speak_one(self, index: int, total: int, line: _Line, tmp: Path, leveller: Leveller) -> SentenceAudio:
        out = tmp / f"s{index:05d}"
        spoke = self.engine.synthesize(line.spoken, out) or self.engine.name
        try:
            pcm = render.read_pcm(out, self.work_rate)
        finally:
            render.remove_quietly(out)
        return self._finish_sentence(index, total, line, pcm, spoke, leveller)

    def _speak_batch(self, first: int, total: int, batch: list[_Line], tmp: Path,
                     leveller: Leveller) -> list[SentenceAudio]:
        """Speak consecutive sentences in one engine run (see _batches), one by one otherwise.

        The batch's audio is cut at the long silences the engine left between the texts;
        if their count does not match (an engine surprise), the batch is spoken again
        sentence by sentence rather than risk pairing a sentence with the wrong sound.
        """
        engine = self.engine
        if len(batch) > 1 and isinstance(engine, BatchingEngine):
            out = tmp / f"b{first:05d}"
            spoke = engine.synthesize_batch([line.spoken for line in batch], out) or engine.name
            try:
                pcm = render.read_pcm(out, self.work_rate)
            finally:
                render.remove_quietly(out)
            parts = render.split_on_gaps(pcm, self.work_rate, len(batch), min_gap_ms=engine.batch_gap_ms * 2 // 3)
            if parts is not None:
                return [self._finish_sentence(first + i, total, line, part, spoke, leveller)
                        for i, (line, part) in enumerate(zip(batch, parts, strict=True))]
        return [self._speak_one(first + i, total, line, tmp, leveller) for i, line in enumerate(batch)]

    def _batches(self, lines: list[_Line]) -> list[tuple[int, int]]:
        """(start, end) of each engine run: the first sentence alone so it is ready at once,
        then doubling up to BATCH_MAX (and what the engine accepts in one run) so that
        engine start-up stops mattering. Engines that cannot batch get one run per sentence."""
        engine, total = self.engine, len(lines)
        if not isinstance(engine, BatchingEngine):
            return [(i, i + 1) for i in range(total)]
        spans: list[tuple[int, int]] = []
        start, size = 0, 1
        while start < total:
            end = start + 1
            while (end < total and end - start < size
                   and engine.fits_batch([line.spoken for line in lines[start:end + 1]])):
                end += 1
            spans.append((start, end))
            start, size = end, min(BATCH_MAX, size * 2)
        return spans

    def _speak_lines(self, lines: list[_Line]) -> Generator[SentenceAudio, None, None]:
        """Synthesize concurrently but yield in order, with bounded lookahead so memory stays flat
        and the first sentence is ready as soon as it alone is done."""
        total = len(lines)
        leveller = self._leveller()
        with tempfile.TemporaryDirectory(dir=self.store.tmp_dir) as tmp_name, \
                ThreadPoolExecutor(self.workers, thread_name_prefix="tts") as pool:
            tmp = Path(tmp_name)
            pending: deque[Future[list[SentenceAudio]]] = deque()
            todo = iter(self._batches(lines))

            def submit_next() -> None:
                span = next(todo, None)
                if span is not None:
                    pending.append(pool.submit(self._speak_batch, span[0], total, lines[span[0]:span[1]],
                                               tmp, leveller))
            try:
                for _ in range(2 * self.workers):
                    submit_next()
                while pending:
                    done = pending.popleft().result()
                    submit_next()
                    yield from done
            finally:
                for fut in pending:
                    fut.cancel()
                pool.shutdown(wait=True, cancel_futures=True)

    def render_sentences(self, text: str) -> Generator[SentenceAudio, None, None]:
        """Sentences as soon as each is spoken and levelled (for previews and early playback).

        Not cached. close() the generator when stopping early, so that its worker threads
        and temp files go away at once."""
        return self._speak_lines(self._plan(text))

    # -- assembly -------------------------------------------------------------------------

    def _finish(self, program: _Assembly, key: str | None, engine: str) -> StoredAudio:
        """Loudness-normalize, encode and store the assembled program."""
        s = self.settings
        raw_lufs = program.close()
        gain = render.solve_gain(program.path, program.rate, s.loudness_lufs, s.true_peak_dbtp,
                                 raw_lufs=raw_lufs, bias_lu=render.CODEC_LOUDNESS_LOSS_LU[s.codec])
        encoded = self.store.new_tmp("." + s.extension)
        try:
            chain = render.final_chain(gain, s.true_peak_dbtp, program.rate, s.sample_rate)
            render.encode(program.path, program.rate, encoded, filters=chain, channels=s.channels,
                          codec=s.codec, bitrate=s.bitrate, cuts_ms=program.cuts(self.workers))
            info = render.probe(encoded)
            return self.store.put(encoded, ext=s.extension, duration_ms=info.duration_ms, engine=engine,
                                  codec=s.codec, key=key)
        finally:
            render.remove_quietly(encoded)

    def _assembly(self, rate: int) -> _Assembly:
        return _Assembly(self.store.new_tmp(".raw"), rate, self.settings.chimes)

    def render(self, text: str, progress: Progress | None = None) -> StoredAudio:
        """Speak `text` and store the result; a repeat of the same item is a cache hit.

        Sentences arrive levelled (see audio.level), so they go straight to an encoder that
        runs while the engine is still speaking. A render in which the preferred engine did
        not speak every sentence (Google was down, espeak stood in) is stored but not
        indexed, so the next render of the item tries for the better voice again.
        """
        lines = self._plan(text)
        total = len(lines)
        if not total:
            raise AudioError("empty_text", "Văn bản không có nội dung để đọc.")
        key = self._key("tts", [[line.paragraph, line.spoken] for line in lines])
        hit = self.store.lookup(key)
        if hit is not None:
            if progress:
                progress(total, total)
            return hit
        if progress:
            progress(0, total)
        started = time.monotonic()
        s, rate = self.settings, self.work_rate
        speakers: list[str] = []
        previous: SentenceAudio | None = None
        encoded = self.store.new_tmp("." + s.extension)
        # swr, not soxr: soxr's output differs from run to run (measured on 22.05 -> 24 kHz),
        # and the same item must always produce the same bytes (content addressing).
        resample = f"aresample={s.sample_rate}" if rate != s.sample_rate else ""
        split = self._split_index(lines)
        try:
            with render.PartedEncoder(encoded, rate, filters=resample, channels=s.channels, codec=s.codec,
                                      bitrate=s.bitrate, parts=2 if split < total else 1) as program:
                program.write(render.silence(LEAD_MS, rate))
                if s.chimes:
                    program.write(self._chime("intro") + render.silence(CHIME_GAP_MS, rate))
                for sent in self._speak_lines(lines):
                    if sent.engine not in speakers:
                        speakers.append(sent.engine)
                    if sent.pcm:
                        if previous is not None:
                            pause = render.silence(s.sentence_pause_ms if previous.paragraph == sent.paragraph
                                                   else s.paragraph_pause_ms, rate)
                            if sent.index >= split:  # cut in the middle of the pause
                                half = len(pause) // 2 // render.SAMPLE_WIDTH * render.SAMPLE_WIDTH
                                program.write(pause[:half])
                                program.next_part()
                                pause, split = pause[half:], total
                            program.write(pause)
                        program.write(sent.pcm)
                        previous = sent
                    if progress:
                        progress(sent.index + 1, total)
                if previous is None:
                    raise AudioError("silent", "Bộ đọc không tạo ra âm thanh cho văn bản này.")
                if s.chimes:
                    program.write(render.silence(CHIME_GAP_MS, rate) + self._chime("outro"))
                program.write(render.silence(LEAD_MS, rate))
            full_quality = speakers == [_preferred_engine(self.engine)]
            stored = self.store.put(encoded, ext=s.extension, duration_ms=program.duration_ms,
                                    engine="+".join(speakers), codec=s.codec, key=key if full_quality else None)
            if self.on_render is not None:
                self.on_render(time.monotonic() - started)
            return stored
        finally:
            render.remove_quietly(encoded)

    def _split_index(self, lines: list[_Line]) -> int:
        """The sentence before which a long item's encoding moves to a second encoder: where
        SPLIT_AT of the words have been spoken, so both encoders finish about together (the
        first starts earlier but falls behind while the engine is busiest)."""
        total_chars = sum(len(line.spoken) for line in lines)
        if self.workers < 2 or total_chars < SPLIT_MIN_CHARS or self.settings.codec != "mp3":
            return len(lines)
        seen = 0
        for i, line in enumerate(lines):
            if seen >= total_chars * SPLIT_AT:
                return i
            seen += len(line.spoken)
        return len(lines)

    def _chime(self, kind: ChimeKind) -> bytes:
        """Our chime at the speech's loudness, so the item has one level from start to end."""
        return self._leveller().level(chime(self.work_rate, kind))

    # -- uploads --------------------------------------------------------------------------

    def import_recording(self, path: Path) -> StoredAudio:
        """Accept an officer's recording (mp3, m4a, wav, ogg...) and give it the same loudness,
        chimes and format as synthesized items; refuse anything that would not play well."""
        path = Path(path)
        if not path.is_file():
            raise AudioError("not_found", "Không tìm thấy tệp tải lên.")
        size = path.stat().st_size
        if size == 0:
            raise AudioError("empty", "Tệp tải lên bị rỗng.")
        if size > MAX_UPLOAD_BYTES:
            limit_mb = MAX_UPLOAD_BYTES // 1024**2
            raise AudioError("too_large", f"Tệp quá lớn (tối đa {limit_mb} MB).", params={"max_mb": limit_mb})
        with path.open("rb") as fh:
            head = fh.read(12)
        looks_audio = head.startswith(_AUDIO_MAGIC) or head[4:8] == b"ftyp"
        try:
            info = render.probe(path)
        except AudioError as exc:
            if looks_audio:
                raise AudioError("corrupt", "Tệp âm thanh bị hỏng hoặc không đầy đủ.", exc.detail) from exc
            raise
        if info.duration_ms > MAX_RECORDING_MS:
            minutes = MAX_RECORDING_MS // 60000
            raise AudioError("too_long", f"Bản ghi quá dài (tối đa {minutes} phút).", params={"max_minutes": minutes})
        key = self._key("recording", file_sha256(path))
        hit = self.store.lookup(key)
        if hit is not None:
            return hit
        decoded = self.store.new_tmp(".raw")
        rate = self.settings.sample_rate
        try:
            render.run_ffmpeg(["-v", "error", "-i", str(path), "-vn", "-f", "s16le", "-ac", "1",
                               "-ar", str(rate), "-y", str(decoded)])
            got_ms = render.duration_ms(decoded.stat().st_size, rate)
            declared_ms = 0 if info.duration_estimated else info.duration_ms
            if got_ms < 200 or (declared_ms > 2000 and got_ms < 0.9 * declared_ms):
                raise AudioError("corrupt", "Tệp âm thanh bị hỏng hoặc không đầy đủ.",
                                 f"decoded {got_ms} ms of {info.duration_ms} ms")
            start, end = (render.loud_span_in_file(decoded, rate) if self.settings.trim_silence
                          else (0, decoded.stat().st_size))
            if end <= start:
                raise AudioError("silent", "Bản ghi không có tiếng (im lặng hoàn toàn).")
            with self._assembly(rate) as program:
                render.copy_range(decoded, program.write, start, end)
                render.remove_quietly(decoded)
                return self._finish(program, key, "recording")
        finally:
            render.remove_quietly(decoded)

