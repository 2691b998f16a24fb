"""Building the shared parts from a validated Config; used by the daemon and the CLI alike."""

from __future__ import annotations

from pathlib import Path

from audio import AudioPipeline, AudioStore, RenderSettings, build_engine
from broadcaster.config import Config, SpeechConfig
from broadcaster.db import Database
from broadcaster.service import Services, ensure_commune
from schedules.clock import Clock


def render_settings(speech: SpeechConfig) -> RenderSettings:
    return RenderSettings(
        loudness_lufs=speech.loudness_lufs,
        true_peak_dbtp=speech.true_peak_dbtp,
        bitrate=speech.bitrate,
        chimes=speech.chimes,
        speaking_rate=speech.speaking_rate,
    )


def audio_store(config: Config) -> AudioStore:
    return AudioStore(config.general.data_dir / "audio", max_bytes=config.speech.cache_max_mb * 1024 * 1024)


def audio_pipeline(config: Config, store: AudioStore | None = None) -> AudioPipeline:
    speech = config.speech
    per_engine: dict[str, dict[str, object]] = {
        "espeak": {"voice": speech.voice},
        "gtts": {"lang": "vi", "tld": speech.gtts_tld, "read_timeout": speech.gtts_timeout_s},
    }
    if "+" in speech.engine:
        engine = build_engine(speech.engine, **per_engine)
    else:
        engine = build_engine(speech.engine, **per_engine[speech.engine])
    return AudioPipeline(store or audio_store(config), engine, render_settings(speech), lexicon=speech.lexicon)


def build_services(config: Config, clock: Clock, *, migrate: bool = True) -> Services:
    Path(config.general.data_dir).mkdir(parents=True, exist_ok=True)
    db = Database(config.database_url)
    if migrate:
        db.upgrade()
    with db.session() as session:
        ensure_commune(session, config.general.commune)
    return Services(db=db, audio=audio_pipeline(config), clock=clock, config=config)
