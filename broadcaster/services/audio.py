"""The audio the services render and store: how the pipeline is built from the config, and which files
the store must keep."""

from __future__ import annotations

import os
import stat
from collections.abc import Mapping
from datetime import timedelta
from pathlib import Path

from sqlalchemy import select

from audio import AudioPipeline, AudioStore, RenderSettings, build_engine
from audio.pipeline import LexiconSource
from broadcaster.config import FPT_KEY_ENV, Config, ConfigError, SpeechConfig
from broadcaster.db import (
    Announcement,
    AnnouncementState,
    Broadcast,
    BroadcastStatus,
    Clip,
    Programme,
)
from broadcaster.services import Services
from broadcaster.services.voices import list_voices, model_path, voice_installed


def pinned_audio(svc: Services) -> set[str]:
    """Audio the store must keep: anything still to air, what programmes replay, what waits for an
    approver (what they hear is what airs once they approve), and what aired in the days villagers may
    listen to it again (`[villagers] listen_days`)."""
    with svc.db.session() as session:
        live = select(Broadcast.announcement_id).where(
            Broadcast.status.in_([BroadcastStatus.PLANNED, BroadcastStatus.DISPATCHED])
        )
        programmes = select(Programme.announcement_id).where(Programme.active.is_(True))
        waiting = Announcement.state == AnnouncementState.AWAITING_APPROVAL
        # what villagers may still listen to again (services/listen.py: the last `listen_days`)
        listened = select(Broadcast.announcement_id).where(
            Broadcast.start_at >= svc.clock.now() - timedelta(days=svc.config.villagers.listen_days)
        )
        frames = select(Broadcast.clip_id).where(  # a bulletin's chimes and heading still to air
            Broadcast.status.in_([BroadcastStatus.PLANNED, BroadcastStatus.DISPATCHED])
        )
        pinned: set[str] = set(session.scalars(select(Clip.audio_sha256).where(Clip.id.in_(frames))))
        pinned.update(
            sha
            for sha in session.scalars(
                select(Announcement.audio_sha256).where(
                    Announcement.audio_sha256.is_not(None),
                    Announcement.id.in_(live) | Announcement.id.in_(programmes) | waiting
                    | Announcement.id.in_(listened),
                )
            )
            if sha is not None
        )
        return pinned


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
    # Owner-only (0700), whoever makes it: it holds recordings and notices that have not aired yet, and
    # `loa` renders into it under its user's umask. Devices get audio over HTTP, never from this folder.
    root = config.audio_dir  # a cluster's daemons share one folder ([general] audio_dir, docs/deployment.md)
    root.mkdir(mode=0o700, parents=True, exist_ok=True)
    root.chmod(0o700)
    return AudioStore(root, max_bytes=config.speech.cache_max_mb * 1024 * 1024, shared=config.cluster.enabled)


def fpt_api_key(speech: SpeechConfig, environ: Mapping[str, str] | None = None) -> str:
    """FPT.AI's key: LOA_FPT_API_KEY, else the file `speech.fpt_api_key_file` names. Never the config
    file itself (it is copied, mailed, committed), and a key file others can read is refused, as ssh
    refuses such a private key, rather than used. No message here carries the key."""
    environ = os.environ if environ is None else environ
    key = environ.get(FPT_KEY_ENV, "").strip()
    if key or not speech.fpt_api_key_file:
        if not key:
            raise ConfigError("fpt_key_missing", {})
        return key
    path = Path(speech.fpt_api_key_file).expanduser()
    try:
        mode = path.stat().st_mode
        if stat.S_IMODE(mode) & 0o077:
            raise ConfigError("fpt_key_file_open", {"path": str(path), "mode": oct(stat.S_IMODE(mode))})
        key = path.read_text(encoding="utf-8").strip()
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else type(exc).__name__
        raise ConfigError("fpt_key_file_unreadable", {"path": str(path), "error": reason}) from exc
    if not key:
        raise ConfigError("fpt_key_missing", {})
    return key


def effective_engine(config: Config) -> str:
    """`[speech] engine` as it is used: "auto" is piper+espeak once the Piper voice `piper_voice` is
    installed (the neural voice is the offline default; espeak-ng the fallback that always works), and
    espeak until then. Whether the model also loads is found at its first sentence: one that does not
    is logged and espeak-ng speaks (audio.engines.FallbackEngine)."""
    engine = config.speech.engine
    if engine != "auto":
        return engine
    return "piper+espeak" if voice_installed(config, config.speech.piper_voice) else "espeak"


def audio_pipeline(
    config: Config, store: AudioStore | None = None, lexicon: LexiconSource | None = None
) -> AudioPipeline:
    """The pipeline the config describes; `lexicon` (default: the configured table) may be a callable
    read for every render (services/lexicon.py `lexicon_source`)."""
    speech = config.speech
    chosen = effective_engine(config)
    per_engine: dict[str, dict[str, object]] = {
        "espeak": {"voice": speech.voice},
        "gtts": {"lang": "vi", "tld": speech.gtts_tld, "read_timeout": speech.gtts_timeout_s},
        "piper": {"model": model_path(config, speech.piper_voice), "voice": speech.piper_voice,
                  "deadline_s": speech.piper_deadline_s},
    }  # fmt: skip
    if "fpt" in chosen.split("+"):  # the key is asked for only when the voice is used
        per_engine["fpt"] = {"api_key": fpt_api_key(speech), "voice": speech.fpt_voice, "speed": speech.fpt_speed,
                             "deadline_s": speech.fpt_deadline_s}  # fmt: skip
    if "+" in chosen:  # a chain takes its engines' settings by name, and nothing else
        engine = build_engine(chosen, **{name: per_engine[name] for name in chosen.split("+")})
    else:
        engine = build_engine(chosen, **per_engine[chosen])
    return AudioPipeline(
        store or audio_store(config), engine, render_settings(speech),
        lexicon=speech.lexicon if lexicon is None else lexicon,
    )  # fmt: skip


def engine_available(config: Config, engine: str) -> bool:
    """Whether `engine` can speak here at all, so the desk offers only voices that may: espeak-ng always;
    the online voices when they are configured (Google needs nothing; FPT.AI its key); a neural voice
    when its model is installed."""
    if engine == "fpt":
        try:
            fpt_api_key(config.speech)
        except ConfigError:
            return False
        return True
    if engine == "piper":
        return any(v["installed"] for v in list_voices(config))
    return engine in ("espeak", "gtts")
