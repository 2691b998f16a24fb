"""Sound primitives: raw PCM handling, silence trimming, ffmpeg loudness and encoding.

Everything between synthesis and the stored file travels as mono signed 16-bit
little-endian PCM ("s16le") at one working sample rate, because that lets the
pipeline join sentences with plain byte concatenation and stream long articles to
disk instead of holding them in memory.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import queue
import re
import shutil
import subprocess
import tempfile
import threading
import wave
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any

import numpy as np
from pydub import AudioSegment
from pydub.silence import detect_leading_silence

SAMPLE_WIDTH = 2  # bytes per sample, s16le
FFMPEG = shutil.which("ffmpeg") or "ffmpeg"
FFPROBE = shutil.which("ffprobe") or "ffprobe"

# Headroom between the limiter ceiling and the true-peak target: the limiter works on
# sample peaks, and inter-sample peaks plus lossy-codec overshoot add up to ~1 dB.
LIMITER_MARGIN_DB = 1.0

# Container/extension and encoder arguments per codec. LAME's -q 7 ("fast") encodes
# ~1.7x quicker than its default -q 5 (0.67 s against 1.18 s for 7 minutes of speech);
# its finer psychoacoustic search buys little at 48 kbit/s mono speech.
CODECS: dict[str, tuple[str, list[str]]] = {
    "mp3": ("mp3", ["-c:a", "libmp3lame", "-compression_level", "7"]),
    "opus": ("ogg", ["-c:a", "libopus", "-application", "voip"]),
}
# Lossy coding drops masked energy, so the decoded file measures quieter than what went
# in; measured on espeak speech at 48 kbit/s (mp3: 0.4 LU, opus: 0.1 LU).
CODEC_LOUDNESS_LOSS_LU: dict[str, float] = {"mp3": 0.4, "opus": 0.1}
# Headroom the sentence leveller (audio.level) keeps under the true-peak target: it limits
# samples and half-sample points at the working rate, and resampling plus lossy coding
# overshoot that. Measured on a 480 s espeak article: mp3 +1.1 dB, opus +1.8 dB.
CODEC_PEAK_MARGIN_DB: dict[str, float] = {"mp3": 1.5, "opus": 2.3}


class AudioError(Exception):
    """A failure the officer may see: `code` is for programs, `message_vi` is this package's own
    sentence for it, `params` the values in that sentence (for an application that says it in other
    languages too), `detail` the technical cause for the log."""

    def __init__(
        self, code: str, message_vi: str, detail: str = "", *, params: Mapping[str, str | int | float] | None = None
    ) -> None:
        super().__init__(f"{code}: {detail or message_vi}")
        self.code = code
        self.message_vi = message_vi
        self.detail = detail
        self.params = dict(params or {})


@dataclass(frozen=True)
class Loudness:
    """EBU R128 measurement; `true_peak` is None when only sample peaks were asked for."""

    integrated: float
    lra: float
    threshold: float
    true_peak: float | None


@dataclass(frozen=True)
class ProbeInfo:
    codec: str
    sample_rate: int
    channels: int
    duration_ms: int
    format_name: str
    duration_estimated: bool = False  # guessed from the bitrate (MP3 without a Xing header)


def run_ffmpeg(args: Sequence[str], *, timeout: float = 600.0, stdin: bytes | None = None) -> str:
    """Run ffmpeg quietly and return its stderr (filters such as ebur128 report there)."""
    cmd = [FFMPEG, "-hide_banner", "-nostats", *(["-nostdin"] if stdin is None else []), *args]
    try:
        proc = subprocess.run(cmd, input=stdin, capture_output=True, timeout=timeout, check=False)
    except subprocess.TimeoutExpired as exc:
        raise AudioError("ffmpeg_timeout", "Xử lý âm thanh quá lâu, vui lòng thử lại.", str(exc)) from exc
    err = proc.stderr.decode("utf-8", "replace")
    if proc.returncode != 0:
        tail = err.strip().splitlines()[-3:]
        raise AudioError("ffmpeg_failed", "Không xử lý được âm thanh.", " | ".join(tail))
    return err


def silence(ms: int, rate: int) -> bytes:
    return b"\x00" * (SAMPLE_WIDTH * (rate * max(ms, 0) // 1000))


def duration_ms(pcm_bytes: int, rate: int) -> int:
    return pcm_bytes * 1000 // (SAMPLE_WIDTH * rate)


def _rms(chunk: bytes) -> float:
    samples = np.frombuffer(chunk, dtype="<i2", count=len(chunk) // SAMPLE_WIDTH).astype(np.float32)
    return math.sqrt(float(np.mean(np.square(samples)))) if samples.size else 0.0


def trim_silence(
    pcm: bytes, rate: int, threshold_db: float = -45.0, keep_ms: int = 40, chunk_ms: int = 10
) -> bytes:
    """Cut engine padding so that our own pauses, not the engine's, set the rhythm.

    A little of the quiet edge (`keep_ms`) is kept so that soft onsets and decays of
    consonants are not clipped. pydub does the scanning (its RMS is C code).
    """
    seg = AudioSegment(data=pcm[: len(pcm) - len(pcm) % SAMPLE_WIDTH], sample_width=SAMPLE_WIDTH,
                       frame_rate=rate, channels=1)
    lead = detect_leading_silence(seg, silence_threshold=threshold_db, chunk_size=chunk_ms)
    if lead >= len(seg):
        return b""
    tail = detect_leading_silence(seg.reverse(), silence_threshold=threshold_db, chunk_size=chunk_ms)
    kept: bytes = seg[max(0, lead - keep_ms) : len(seg) - tail + keep_ms].raw_data
    return kept


def split_on_gaps(pcm: bytes, rate: int, parts: int, min_gap_ms: int, threshold_db: float = -45.0,
                  chunk_ms: int = 10) -> list[bytes] | None:
    """Cut PCM in the middle of its `parts - 1` inner silences of at least `min_gap_ms`.

    None unless there are exactly that many: then the caller cannot tell which sound
    belongs to which text, and must not guess.
    """
    samples = np.frombuffer(pcm, dtype="<i2", count=len(pcm) // SAMPLE_WIDTH)
    step = max(1, rate * chunk_ms // 1000)
    n = len(samples) // step
    power = np.square(samples[: n * step].astype(np.float32)).reshape(n, step).mean(axis=1)
    quiet = np.concatenate(([0], power < (32768 * 10 ** (threshold_db / 20)) ** 2, [0])).astype(np.int8)
    edges = np.diff(quiet)
    starts, ends = np.flatnonzero(edges == 1), np.flatnonzero(edges == -1)
    inner = ((ends - starts) * chunk_ms >= min_gap_ms) & (starts > 0) & (ends < n)
    if int(inner.sum()) != parts - 1:
        return None
    cuts = [int(c) * step * SAMPLE_WIDTH for c in (starts[inner] + ends[inner]) // 2]
    return [pcm[a:b] for a, b in zip([0, *cuts], [*cuts, len(pcm)], strict=True)]


def read_pcm(path: Path, rate: int, *, timeout: float = 120.0) -> bytes:
    """Decode any engine output to mono s16le at `rate`.

    WAV files already in the right shape (espeak's) are read in-process: spawning
    ffmpeg per sentence would cost more than synthesizing it.
    """
    with path.open("rb") as fh:
        magic = fh.read(4)
    if magic == b"RIFF":
        try:
            with wave.open(str(path), "rb") as wav:
                shape = (wav.getsampwidth(), wav.getnchannels(), wav.getframerate())
                if shape == (SAMPLE_WIDTH, 1, rate):
                    return wav.readframes(wav.getnframes())
        except (wave.Error, EOFError):
            pass  # unusual WAV flavour: let ffmpeg deal with it
    args = ["-v", "error", "-i", str(path), "-f", "s16le", "-ac", "1", "-ar", str(rate), "-"]
    try:
        proc = subprocess.run([FFMPEG, "-nostdin", *args], capture_output=True, timeout=timeout, check=False)
    except subprocess.TimeoutExpired as exc:
        raise AudioError("ffmpeg_timeout", "Xử lý âm thanh quá lâu, vui lòng thử lại.", str(exc)) from exc
    if proc.returncode != 0:
        raise AudioError("corrupt", "Tệp âm thanh bị hỏng.", proc.stderr.decode("utf-8", "replace")[-300:])
    return proc.stdout


def change_tempo(pcm: bytes, rate: int, factor: float) -> bytes:
    """Pitch-preserving speed change; atempo accepts 0.5-2.0 per stage, so chain stages."""
    if math.isclose(factor, 1.0) or not pcm:
        return pcm
    stages: list[str] = []
    remaining = factor
    while remaining > 2.0:
        stages.append("atempo=2.0")
        remaining /= 2.0
    while remaining < 0.5:
        stages.append("atempo=0.5")
        remaining /= 0.5
    stages.append(f"atempo={remaining:.6f}")
    fmt = ["-f", "s16le", "-ac", "1", "-ar", str(rate)]
    args = ["-v", "error", *fmt, "-i", "pipe:0", "-af", ",".join(stages), *fmt, "-"]
    proc = subprocess.run([FFMPEG, *args], input=pcm, capture_output=True, timeout=120, check=False)
    if proc.returncode != 0:
        raise AudioError("ffmpeg_failed", "Không xử lý được âm thanh.", proc.stderr.decode()[-300:])
    return proc.stdout


_SUMMARY = re.compile(r"Summary:(.*)", re.S)
_FIELD = re.compile(r"^\s*(I|LRA|Threshold|Peak):\s*(-?[\d.]+|-?inf|nan)", re.M)


def _raw_input(raw: Path, rate: int) -> list[str]:
    return ["-f", "s16le", "-ac", "1", "-ar", str(rate), "-i", str(raw)]


def _parse_summary(err: str, true_peak: bool) -> Loudness:
    found = _SUMMARY.search(err)
    if not found:
        raise AudioError("ffmpeg_failed", "Không đo được độ lớn âm thanh.", err[-300:])
    fields: dict[str, float] = {}
    for key, value in _FIELD.findall(found.group(1)):
        fields.setdefault(key, float(value))  # the first "Threshold" is the integrated one
    return Loudness(
        integrated=fields.get("I", -70.0),
        lra=fields.get("LRA", 0.0),
        threshold=fields.get("Threshold", -70.0),
        true_peak=fields.get("Peak") if true_peak else None,
    )


def measure(raw: Path, rate: int, pre_filters: str = "", *, true_peak: bool = False) -> Loudness:
    """Integrated loudness per EBU R128 using ffmpeg's ebur128 meter.

    ebur128 is the same BS.1770 meter that loudnorm uses for its first pass, but
    loudnorm upsamples to 192 kHz to do it: on a 6-minute article that is 4.7 s
    against 0.3 s here.
    """
    meter = "ebur128=framelog=verbose" + (":peak=true" if true_peak else "")
    chain = f"{pre_filters},{meter}" if pre_filters else meter
    err = run_ffmpeg([*_raw_input(raw, rate), "-af", chain, "-f", "null", "-"])
    return _parse_summary(err, true_peak)


class StreamingMeter:
    """An ebur128 meter fed while sentences are still being synthesized, so the first
    loudness measurement of a long article costs no extra wall time."""

    def __init__(self, rate: int) -> None:
        cmd = [FFMPEG, "-hide_banner", "-nostats", "-f", "s16le", "-ac", "1", "-ar", str(rate), "-i", "pipe:0",
               "-af", "ebur128=framelog=verbose", "-f", "null", "-"]
        self._proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.DEVNULL,
                                      stderr=subprocess.PIPE)

    def feed(self, pcm: bytes) -> None:
        assert self._proc.stdin is not None
        try:
            self._proc.stdin.write(pcm)
        except BrokenPipeError as exc:
            raise AudioError("ffmpeg_failed", "Không đo được độ lớn âm thanh.", "meter died") from exc

    def result(self, timeout: float = 120.0) -> Loudness:
        try:
            _, err = self._proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired as exc:
            self.close()
            raise AudioError("ffmpeg_timeout", "Xử lý âm thanh quá lâu, vui lòng thử lại.", str(exc)) from exc
        return _parse_summary(err.decode("utf-8", "replace"), true_peak=False)

    def close(self) -> None:
        """Abandon the measurement (render failed); safe to call after result()."""
        if self._proc.poll() is None:
            self._proc.kill()
            self._proc.communicate()


def gain_chain(gain_db: float, ceiling_dbtp: float) -> str:
    """Gain followed by a brick-wall limiter: speech engines (espeak especially) have a
    peak-to-loudness ratio far above what -16 LUFS / -1.5 dBTP allows, so without a
    limiter the loudness target could only be met by clipping."""
    ceiling = max(0.0625, min(1.0, 10 ** ((ceiling_dbtp - LIMITER_MARGIN_DB) / 20)))
    return f"volume={gain_db:.3f}dB,alimiter=limit={ceiling:.5f}:attack=2:release=40:level=disabled"


def solve_gain(raw: Path, rate: int, target_lufs: float, ceiling_dbtp: float, *,
               raw_lufs: float | None = None, bias_lu: float = 0.0) -> float:
    """Find the gain that puts the limited signal on the loudness target.

    This is loudnorm's two-pass scheme (measure, then apply the measured values
    linearly) with the limiter inside the measurement: speech engines, espeak most of
    all, have a peak-to-loudness ratio far above the 14.5 dB that -16 LUFS / -1.5 dBTP
    allows, and the limiter eats loudness in proportion to how hard it works. Two gains
    are measured at once (two cores) and a secant step lands within a few tenths of a
    LU; `bias_lu` pre-compensates the loudness the codec removes.
    """
    if raw_lufs is None:
        raw_lufs = measure(raw, rate).integrated
    if raw_lufs <= -69.0:
        raise AudioError("silent", "Âm thanh không có tiếng (im lặng hoàn toàn).")
    aim = target_lufs + bias_lu

    def limited(gain: float) -> float:
        return measure(raw, rate, gain_chain(gain, ceiling_dbtp)).integrated

    g0 = aim - raw_lufs
    with ThreadPoolExecutor(2) as pool:
        points = list(zip((g0, g0 + 3.0), pool.map(limited, (g0, g0 + 3.0)), strict=True))
    gain = g0
    for _ in range(4):
        # Secant through the two measurements closest to the aim. The loudness-vs-gain
        # curve is smooth, so interpolating (or barely extrapolating) needs no re-check.
        (ga, la), (gb, lb) = sorted(points, key=lambda p: abs(aim - p[1]))[:2]
        slope = min(1.0, max(0.15, (lb - la) / (gb - ga))) if not math.isclose(ga, gb) else 1.0
        gain = ga + max(-12.0, min(12.0, (aim - la) / slope))
        if min(ga, gb) - 0.5 <= gain <= max(ga, gb) + 0.5:
            return gain
        points.append((gain, limited(gain)))
    return gain


def final_chain(gain_db: float, ceiling_dbtp: float, rate: int, out_rate: int) -> str:
    """gain_chain with the limiter run at 4x the sample rate, as a BS.1770 true-peak meter
    oversamples: a sample-peak limiter lets clicks overshoot the ceiling by 2 dB or more
    between samples. Only the final pass pays for it; loudness barely differs."""
    return f"aresample={4 * rate},{gain_chain(gain_db, ceiling_dbtp)},aresample={out_rate}"


def encode(raw: Path, rate: int, out: Path, *, filters: str, channels: int, codec: str, bitrate: str,
           cuts_ms: Sequence[int] = ()) -> None:
    """Final pass: filters (which must end at the delivery rate) and the codec.

    LAME is single-threaded and the slowest step of a long render, so an MP3 with
    `cuts_ms` (points in pauses) is encoded as segments on all cores and joined by
    stream copy; the encoder padding at each joint lands inside a pause and the
    concat muxer writes one header for the whole file.
    """
    _, codec_args = CODECS[codec]
    output = ["-af", filters, "-ac", str(channels), *codec_args, "-b:a", bitrate, "-map_metadata", "-1"]
    if codec != "mp3" or not cuts_ms:
        run_ffmpeg(["-v", "error", *_raw_input(raw, rate), *output, "-y", str(out)])
        return
    starts = [0, *sorted(cuts_ms)]
    parts = [out.with_name(f"{out.name}.part{i}.mp3") for i in range(len(starts))]
    listing = out.with_name(f"{out.name}.parts.txt")

    def encode_part(i: int) -> None:
        window = ["-ss", f"{starts[i] / 1000:.3f}"]
        if i + 1 < len(starts):
            window += ["-t", f"{(starts[i + 1] - starts[i]) / 1000:.3f}"]
        run_ffmpeg(["-v", "error", *window, *_raw_input(raw, rate), *output, "-write_xing", "0",
                    "-id3v2_version", "0", "-y", str(parts[i])])

    try:
        with ThreadPoolExecutor(len(parts)) as pool:
            list(pool.map(encode_part, range(len(parts))))
        listing.write_text("".join(f"file '{p.name}'\n" for p in parts))
        run_ffmpeg(["-v", "error", "-f", "concat", "-safe", "0", "-i", str(listing), "-c", "copy",
                    "-map_metadata", "-1", "-y", str(out)])
    finally:
        for leftover in (*parts, listing):
            remove_quietly(leftover)


# PCM an encoder may have waiting: about 25 minutes of speech at 22.05 kHz, far more than the
# encoder ever lags behind on an article, but a bound on what a very long text can hold in memory.
MAX_QUEUED_BYTES = 64 * 1024**2


class StreamEncoder:
    """One ffmpeg encoding PCM as it is written, so the codec works while speech is still
    being synthesized (on a long article, encoding costs more CPU than espeak-ng does).

    Input is mono s16le at `rate`; `filters` run before the codec. `write` never blocks:
    a feeder thread hands the queued PCM to ffmpeg, so the caller can move on to the next
    encoder of a PartedEncoder while this one catches up. Leaving the `with` block by an
    exception kills ffmpeg and leaves no output file behind.
    """

    def __init__(self, out: Path, rate: int, *, filters: str, channels: int, codec: str, bitrate: str,
                 joinable: bool = False, timeout: float = 600.0) -> None:
        _, codec_args = CODECS[codec]
        self.out, self.rate, self.timeout = out, rate, timeout
        self.frames = 0
        self._done = False
        self._broken = False
        # Joinable MP3 is bare frames (no Xing or ID3 header), so parts can be concatenated.
        bare = ["-write_xing", "0", "-id3v2_version", "0"] if joinable else []
        cmd = [FFMPEG, "-hide_banner", "-nostats", "-v", "error", "-f", "s16le", "-ac", "1", "-ar", str(rate),
               "-i", "pipe:0", *(["-af", filters] if filters else []), "-ac", str(channels), *codec_args,
               "-b:a", bitrate, "-map_metadata", "-1", *bare, "-y", str(out)]
        # A file, not a pipe: nothing to drain, so no deadlock; closed in _stop.
        self._errors = tempfile.TemporaryFile()  # noqa: SIM115
        self._proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=self._errors)
        self._queue: queue.SimpleQueue[bytes | None] = queue.SimpleQueue()
        self._queued = 0  # bytes written but not yet handed to ffmpeg
        self._room = threading.Condition()
        self._feeder = threading.Thread(target=self._feed, name="encode-feed", daemon=True)
        self._feeder.start()

    def __enter__(self) -> StreamEncoder:
        return self

    def _feed(self) -> None:
        stdin = self._proc.stdin
        assert stdin is not None
        while (chunk := self._queue.get()) is not None:
            if not self._broken:
                try:
                    stdin.write(chunk)
                except OSError:  # ffmpeg died; the error surfaces at the next write or at the end
                    self._broken = True
            with self._room:
                self._queued -= len(chunk)
                self._room.notify_all()
        with contextlib.suppress(OSError):
            stdin.close()

    def write(self, pcm: bytes) -> None:
        """Queue PCM for ffmpeg; blocks only when more than MAX_QUEUED_BYTES are still waiting,
        so a very long text cannot fill memory when the encoder falls behind."""
        with self._room:
            self._room.wait_for(lambda: self._queued <= MAX_QUEUED_BYTES or self._broken)
            self._queued += len(pcm)
        if self._broken:
            raise AudioError("ffmpeg_failed", "Không mã hóa được âm thanh.", self._stop(kill=True))
        self._queue.put(pcm)
        self.frames += len(pcm) // SAMPLE_WIDTH

    @property
    def duration_ms(self) -> int:
        return self.frames * 1000 // self.rate

    def _stop(self, *, kill: bool) -> str:
        """End the input and wait for ffmpeg (or kill it); returns its error tail. A failed or
        abandoned encode leaves no file."""
        if self._done:
            return ""
        self._done = True
        if kill:
            self._proc.kill()
        self._queue.put(None)
        self._feeder.join(self.timeout)
        try:
            self._proc.wait(self.timeout)
        except subprocess.TimeoutExpired:
            self._proc.kill()
            self._proc.wait()
            kill = True
        self._errors.seek(0)
        tail = " | ".join(self._errors.read().decode("utf-8", "replace").strip().splitlines()[-3:])
        self._errors.close()
        if kill or self._proc.returncode != 0:
            remove_quietly(self.out)
        return tail

    def close(self) -> None:
        """Finish the file; AudioError if ffmpeg failed."""
        detail = self._stop(kill=False)
        if self._proc.returncode != 0:
            raise AudioError("ffmpeg_failed", "Không mã hóa được âm thanh.", detail or "ffmpeg was stopped")

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        if exc_type is not None:
            self._stop(kill=True)
        else:
            self.close()


class PartedEncoder:
    """An MP3 encoded as consecutive parts on separate ffmpeg processes, joined byte for byte.

    LAME is single-threaded and, on a long article, the slowest step: with two parts the
    second half is encoded while the first is still catching up. Cut only in a pause: each
    part adds the encoder's ~60 ms of padding at the joint. Joined files are bare frames (no
    Xing header), so their duration is counted from the frames.
    """

    def __init__(self, out: Path, rate: int, *, filters: str, channels: int, codec: str, bitrate: str,
                 parts: int = 1) -> None:
        if parts > 1 and codec != "mp3":
            raise ValueError("only MP3 can be encoded in parts")
        self.out = out
        self.planned = parts
        self._args: dict[str, Any] = {"filters": filters, "channels": channels, "codec": codec, "bitrate": bitrate}
        self.rate = rate
        self.parts: list[StreamEncoder] = []
        self._duration_ms = 0
        self.next_part()

    def __enter__(self) -> PartedEncoder:
        return self

    @property
    def joined(self) -> bool:
        return self.planned > 1

    def next_part(self) -> None:
        """Start the next part; what is written from now on goes there. A one-part encoder is a
        plain file with its Xing header (exact duration and gapless playback)."""
        if len(self.parts) >= self.planned:
            raise ValueError(f"this encoder has {self.planned} part(s)")
        path = self.out
        if self.joined:
            path = self.out.with_name(f"{self.out.stem}.part{len(self.parts)}{self.out.suffix}")
        self.parts.append(StreamEncoder(path, self.rate, joinable=self.joined, **self._args))

    def write(self, pcm: bytes) -> None:
        self.parts[-1].write(pcm)

    @property
    def duration_ms(self) -> int:
        """What a player plays: for joined parts, counted from the MP3 frames themselves."""
        return self._duration_ms

    def _cleanup(self) -> None:
        for part in self.parts:
            if part.out != self.out:
                remove_quietly(part.out)

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        try:
            if exc_type is not None:
                for part in self.parts:
                    part.__exit__(exc_type, exc, tb)
                return
            for part in self.parts:
                part.close()
            if not self.joined:
                self._duration_ms = self.parts[0].duration_ms
                return
            with self.out.open("wb") as joined:
                for part in self.parts:
                    with part.out.open("rb") as fh:
                        shutil.copyfileobj(fh, joined)
            self._duration_ms = mp3_duration_ms(self.out)
        finally:
            self._cleanup()


_MP3_BITRATES = {  # Layer III, kbit/s by bitrate index: MPEG-1, then MPEG-2 and 2.5
    3: (0, 32, 40, 48, 56, 64, 80, 96, 112, 128, 160, 192, 224, 256, 320),
    2: (0, 8, 16, 24, 32, 40, 48, 56, 64, 80, 96, 112, 128, 144, 160),
}
_MP3_RATES = {3: (44100, 48000, 32000), 2: (22050, 24000, 16000), 0: (11025, 12000, 8000)}


def mp3_duration_ms(path: Path) -> int:
    """Playing time of a Layer III stream by walking its frame headers (exact for joined
    parts, which carry no Xing header for ffprobe to read). Skips a leading ID3v2 tag."""
    data = path.read_bytes()
    pos, samples, rate = 0, 0, 0
    if data[:3] == b"ID3" and len(data) >= 10:
        pos = 10 + ((data[6] & 0x7F) << 21 | (data[7] & 0x7F) << 14 | (data[8] & 0x7F) << 7 | (data[9] & 0x7F))
    while pos + 4 <= len(data):
        b1, b2 = data[pos + 1], data[pos + 2]
        version, layer = (b1 >> 3) & 3, (b1 >> 1) & 3
        if data[pos] != 0xFF or b1 & 0xE0 != 0xE0 or layer != 1 or version == 1:
            raise AudioError("corrupt", "Tệp âm thanh bị hỏng.", f"no MP3 frame at byte {pos}")
        kbps = _MP3_BITRATES[3 if version == 3 else 2][b2 >> 4] if b2 >> 4 < 15 else 0
        rate_index = (b2 >> 2) & 3
        if not kbps or rate_index == 3:
            raise AudioError("corrupt", "Tệp âm thanh bị hỏng.", f"bad MP3 header at byte {pos}")
        rate = _MP3_RATES[version][rate_index]
        per_frame = 1152 if version == 3 else 576
        pos += per_frame // 8 * kbps * 1000 // rate + ((b2 >> 1) & 1)
        samples += per_frame
    return samples * 1000 // rate if rate else 0


def probe(path: Path) -> ProbeInfo:
    """First audio stream of a file, or AudioError("not_audio") when there is none."""
    cmd = [FFPROBE, "-v", "warning", "-show_entries",
           "format=duration,format_name:stream=codec_type,codec_name,sample_rate,channels,duration",
           "-of", "json", str(path)]
    try:
        proc = subprocess.run(cmd, capture_output=True, timeout=60, check=False)
    except subprocess.TimeoutExpired as exc:
        raise AudioError("ffmpeg_timeout", "Xử lý âm thanh quá lâu, vui lòng thử lại.", str(exc)) from exc
    try:
        info = json.loads(proc.stdout or b"{}")
    except json.JSONDecodeError:
        info = {}
    streams = [s for s in info.get("streams", []) if s.get("codec_type") == "audio"]
    if proc.returncode != 0 or not streams:
        raise AudioError("not_audio", "Tệp tải lên không phải là âm thanh.", proc.stderr.decode()[-300:])
    stream, fmt = streams[0], info.get("format", {})
    seconds = stream.get("duration") or fmt.get("duration") or "0"
    return ProbeInfo(
        codec=str(stream.get("codec_name", "")),
        sample_rate=int(stream.get("sample_rate") or 0),
        channels=int(stream.get("channels") or 0),
        duration_ms=round(float(seconds) * 1000),
        format_name=str(fmt.get("format_name", "")),
        duration_estimated=b"Estimating duration from bitrate" in proc.stderr,
    )


def remove_quietly(path: Path) -> None:
    with contextlib.suppress(FileNotFoundError):
        os.unlink(path)


def loud_span_in_file(raw: Path, rate: int, threshold_db: float = -45.0, keep_ms: int = 40,
                      chunk_ms: int = 10) -> tuple[int, int]:
    """Like trim_silence, for a raw file too long to hold in memory: byte range to keep."""
    step = max(1, rate * chunk_ms // 1000) * SAMPLE_WIDTH
    limit = 32768 * 10 ** (threshold_db / 20)
    size = raw.stat().st_size
    size -= size % SAMPLE_WIDTH
    with raw.open("rb") as fh:
        start = 0
        while start < size and _rms(fh.read(step)) < limit:
            start += step
        end = size
        while end > start:
            fh.seek(max(start, end - step))
            if _rms(fh.read(min(step, end - start))) >= limit:
                break
            end -= step
    if end <= start:
        return 0, 0
    keep = rate * keep_ms // 1000 * SAMPLE_WIDTH
    return max(0, start - keep), min(size, end + keep)


def copy_range(src: Path, write: Callable[[bytes], object], start: int, end: int, chunk: int = 1 << 20) -> None:
    with src.open("rb") as fh:
        fh.seek(start)
        left = end - start
        while left > 0:
            block = fh.read(min(chunk, left))
            if not block:
                break
            write(block)
            left -= len(block)
