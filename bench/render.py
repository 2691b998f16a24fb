"""Offline rendering benchmark: our whole pipeline against the bare espeak-ng binary.

Run from the repository root: `.venv/bin/python bench/render.py`. The last stdout
line is one JSON object (ratio_to_engine goal <= 3, normalize_sentences_per_s goal
>= 2000); the lines before it are for humans.
"""

from __future__ import annotations

import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from audio.engines import EspeakEngine  # noqa: E402
from audio.normalize import normalize, split_sentences  # noqa: E402
from audio.pipeline import AudioPipeline  # noqa: E402
from audio.store import AudioStore, StoredAudio  # noqa: E402

SAMPLE = ROOT.parent / "shared" / "samples" / "news-au-lau-chinh-quyen-than-thien.txt"
SHIPPED = Path(__file__).resolve().parent / "data" / "article.txt"
TARGET_WORDS = 1500


def article() -> tuple[str, str]:
    """~1,500 words of real Vietnamese news: the shared sample, padded by repeating its body."""
    source = SAMPLE if SAMPLE.is_file() else SHIPPED
    paragraphs = [p.strip() for p in source.read_text(encoding="utf-8").split("\n\n") if p.strip()]
    body = paragraphs[2:] or paragraphs
    out, i = list(paragraphs), 0
    while sum(len(p.split()) for p in out) < TARGET_WORDS:
        out.append(body[i % len(body)])
        i += 1
    return "\n\n".join(out) + "\n", source.name


def cpu_s() -> float:
    """CPU seconds of this process and its finished children (espeak, ffmpeg): unlike wall
    time, this does not depend on what else the machine is doing."""
    own, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime


def best_of(n: int, fn: Callable[[], object]) -> tuple[float, float]:
    """Best wall time and best CPU time of n runs."""
    walls, cpus = [], []
    for _ in range(n):
        wall, cpu = time.perf_counter(), cpu_s()
        fn()
        walls.append(time.perf_counter() - wall)
        cpus.append(cpu_s() - cpu)
    return min(walls), min(cpus)


def main() -> None:
    text, source = article()
    engine = EspeakEngine()
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        wav = tmp / "raw.wav"
        raw_cmd = ["espeak-ng", "-v", engine.voice, "-s", str(engine.wpm), "-b", "1", "-w", str(wav)]
        engine_s, engine_cpu = best_of(3, lambda: subprocess.run(raw_cmd, input=text.encode(), check=True))

        renders: list[tuple[AudioPipeline, StoredAudio]] = []

        def cold_render() -> None:  # a fresh store each time: no cache hits
            pipeline = AudioPipeline(AudioStore(tmp / f"store{len(renders)}"), engine)
            renders.append((pipeline, pipeline.render(text)))

        pipeline_s, pipeline_cpu = best_of(3, cold_render)
        pipeline, stored = renders[-1]

        started = time.perf_counter()
        hit = pipeline.render(text)
        cache_hit_ms = (time.perf_counter() - started) * 1000
        assert hit == stored

        fresh = AudioPipeline(AudioStore(tmp / "first"), engine)
        started = time.perf_counter()
        sentences = fresh.render_sentences(text)
        next(sentences)
        first_sentence_ms = (time.perf_counter() - started) * 1000
        sentences.close()

    lines = split_sentences(text)
    count, started = 0, time.perf_counter()
    while time.perf_counter() - started < 1.0:
        for line in lines:
            normalize(line)
        count += len(lines)
    sentences_per_s = count / (time.perf_counter() - started)

    peak_self = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    peak_child = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    print(f"article: {len(text.split())} words, {len(lines)} sentences (from {source})")
    print(f"audio: {stored.duration_ms / 1000:.1f} s, {stored.size / 1024:.0f} KiB")
    result = {
        "ratio_to_engine": round(pipeline_s / engine_s, 2),
        "cache_hit_ms": round(cache_hit_ms, 2),
        "normalize_sentences_per_s": round(sentences_per_s),
        "peak_rss_mb": round(peak_self, 1),
        "peak_child_rss_mb": round(peak_child, 1),
        "engine_s": round(engine_s, 3),
        "pipeline_s": round(pipeline_s, 3),
        "cpu_ratio_to_engine": round(pipeline_cpu / engine_cpu, 2),
        "engine_cpu_s": round(engine_cpu, 3),
        "pipeline_cpu_s": round(pipeline_cpu, 3),
        "load_avg_1m": round(os.getloadavg()[0], 2),
        "first_sentence_ms": round(first_sentence_ms, 1),
        "words": len(text.split()),
        "audio_s": round(stored.duration_ms / 1000, 1),
    }
    print(json.dumps(result))


if __name__ == "__main__":
    main()
