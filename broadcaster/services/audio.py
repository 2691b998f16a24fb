"""The audio the services render and store: how the pipeline is built from the config, and which files
the store must keep."""

from __future__ import annotations

from sqlalchemy import select

from audio import AudioPipeline, AudioStore, RenderSettings, build_engine
from broadcaster.config import Config, SpeechConfig
from broadcaster.db import (
    Announcement,
    Broadcast,
    BroadcastStatus,
    Programme,
)
from broadcaster.services import Services


def pinned_audio(svc: Services) -> set[str]:
    """Audio the store must keep: anything still to air, and what programmes replay."""
    with svc.db.session() as session:
        live = select(Broadcast.announcement_id).where(
            Broadcast.status.in_([BroadcastStatus.PLANNED, BroadcastStatus.DISPATCHED])
        )
        programmes = select(Programme.announcement_id).where(Programme.active.is_(True))
        return set(
            session.scalars(
                select(Announcement.audio_sha256).where(
                    Announcement.audio_sha256.is_not(None),
                    Announcement.id.in_(live) | Announcement.id.in_(programmes),
                )
            )
        )


def evict_audio(svc: Services) -> list[str]:
    """Keep the audio store under its size limit, never touching audio still scheduled."""
    evicted = svc.audio.store.evict(pinned_audio(svc))
    return list(evicted)


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
