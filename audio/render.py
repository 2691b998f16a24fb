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
import re
import shutil
import subprocess
import sys
import wave
from array import array
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

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


class AudioError(Exception):
    """A failure the officer may see: `message_vi` is shown in the UI, `code` is for programs."""

    def __init__(self, code: str, message_vi: str, detail: str = "") -> None:
        super().__init__(f"{code}: {detail or message_vi}")
        self.code = code
        self.message_vi = message_vi
        self.detail = detail


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
    """RMS of s16le samples; plain Python because audioop is gone in Python 3.13."""
    samples = array("h", chunk[: len(chunk) - len(chunk) % SAMPLE_WIDTH])
    if sys.byteorder == "big":
        samples.byteswap()
    return math.sqrt(sum(x * x for x in samples) / len(samples)) if samples else 0.0


def _loud_bounds(pcm: bytes, rate: int, threshold_db: float, chunk_ms: int) -> tuple[int, int]:
    """Byte offsets of the first and last chunk louder than the threshold, scanning only the ends."""
    step = max(1, rate * chunk_ms // 1000) * SAMPLE_WIDTH
    limit = 32768 * 10 ** (threshold_db / 20)
    n = len(pcm) - len(pcm) % SAMPLE_WIDTH
    start = 0
    while start < n and _rms(pcm[start : start + step]) < limit:
        start += step
    end = n
    while end > start and _rms(pcm[max(start, end - step) : end]) < limit:
        end -= step
    return start, end


def trim_silence(
    pcm: bytes, rate: int, threshold_db: float = -45.0, keep_ms: int = 40, chunk_ms: int = 10
) -> bytes:
    """Cut engine padding so that our own pauses, not the engine's, set the rhythm.

    A little of the quiet edge (`keep_ms`) is kept so that soft onsets and decays of
    consonants are not clipped.
    """
    start, end = _loud_bounds(pcm, rate, threshold_db, chunk_ms)
    if end <= start:
        return b""
    keep = rate * keep_ms // 1000 * SAMPLE_WIDTH
    return pcm[max(0, start - keep) : min(len(pcm) - len(pcm) % SAMPLE_WIDTH, end + keep)]


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
    return f"aresample={4 * rate},{gain_chain(gain_db, ceiling_dbtp)},aresample={out_rate}:resampler=soxr"


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
