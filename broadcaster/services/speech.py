"""Which voice reads an item: the commune's choice in `[speech]`, and the officer's for one announcement.

A choice is three things that change the sound: the engine (a chain such as "fpt+espeak": the first one
speaks, the others are the fallback), the voice of that first engine, and the speaking rate. It is
recorded with the item's audio (announcements' `voice_engine`, `voice`, `speaking_rate`), so that a
preview, a render on submission and a render after an edit all make the same sound, byte for byte: the
store is content-addressed and the choice is part of the render's key (audio.pipeline `_key`), so the
officer's preview *is* the file that airs.

The choice is applied as an override of `[speech]` and built by `services.audio.audio_pipeline`, the one
place that knows how an engine is made from the config (keys, deadlines, fallbacks); the pipelines share
the commune's audio store and lexicon, and are kept per choice for the life of the Services.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, get_args

from audio import AudioError, AudioPipeline, StoredAudio
from broadcaster.config import Config, SpeechConfig
from broadcaster.errors import LoaError
from broadcaster.services import Services
from broadcaster.services.audio import audio_pipeline, effective_engine, engine_available
from broadcaster.services.voices import list_voices

# The setting of `[speech]` that names each engine's voice (gtts has one Vietnamese voice).
VOICE_SETTING: dict[str, str | None] = {"espeak": "voice", "gtts": None, "fpt": "fpt_voice", "piper": "piper_voice"}

# People's names for the voices the desk offers; a voice not listed here is shown by its name.
VOICE_NAMES: dict[str, dict[str, str]] = {
    "vi": {"vi": "Giọng máy, miền Bắc", "en": "Machine voice, northern"},
    "vi-vn-x-central": {"vi": "Giọng máy, miền Trung", "en": "Machine voice, central"},
    "vi-vn-x-south": {"vi": "Giọng máy, miền Nam", "en": "Machine voice, southern"},
    "banmai": {"vi": "Ban Mai (nữ, miền Bắc)", "en": "Ban Mai (female, northern)"},
    "thuminh": {"vi": "Thu Minh (nữ, miền Bắc)", "en": "Thu Minh (female, northern)"},
    "leminh": {"vi": "Lê Minh (nam, miền Bắc)", "en": "Le Minh (male, northern)"},
    "myan": {"vi": "Mỹ An (nữ, miền Trung)", "en": "My An (female, central)"},
    "giahuy": {"vi": "Gia Huy (nam, miền Trung)", "en": "Gia Huy (male, central)"},
    "lannhi": {"vi": "Lan Nhi (nữ, miền Nam)", "en": "Lan Nhi (female, southern)"},
    "linhsan": {"vi": "Linh San (nữ, miền Nam)", "en": "Linh San (female, southern)"},
    "vi_VN-vais1000-medium": {"vi": "VAIS-1000", "en": "VAIS-1000"},
}
ENGINE_NAMES: dict[str, dict[str, str]] = {
    "espeak": {"vi": "eSpeak NG (ngoại tuyến)", "en": "eSpeak NG (offline)"},
    "gtts": {"vi": "Google (cần Internet)", "en": "Google (needs the internet)"},
    "fpt": {"vi": "FPT.AI (cần Internet)", "en": "FPT.AI (needs the internet)"},
    "piper": {"vi": "Giọng tự nhiên Piper (ngoại tuyến)", "en": "Piper natural voice (offline)"},
}
ESPEAK_VOICES = ("vi", "vi-vn-x-central", "vi-vn-x-south")  # espeak-ng's three Vietnamese voices
RATES = (0.8, 0.9, 1.0, 1.1, 1.2)  # what the desk offers; the API takes any rate [speech] allows


@dataclass(frozen=True)
class VoiceChoice:
    """How an item is read. `engine` is a chain as in `[speech] engine`; `voice` is its first engine's."""

    engine: str
    voice: str
    rate: float

    @property
    def speaker(self) -> str:
        """The engine that speaks when nothing fails: the first of the chain."""
        return self.engine.split("+")[0]


@dataclass(frozen=True)
class VoiceOption:
    """A voice the desk offers: `value` is what its form sends ("engine|voice")."""

    engine: str
    voice: str
    label: str
    default: bool

    @property
    def value(self) -> str:
        return f"{self.engine}|{self.voice}"


def _voice_of(speech: SpeechConfig, engine: str) -> str:
    setting = VOICE_SETTING.get(engine.split("+")[0])
    return str(getattr(speech, setting)) if setting else "vi"


def engines(speech: SpeechConfig) -> tuple[str, ...]:
    """The engine settings `[speech] engine` accepts, as the config's own type lists them."""
    return tuple(get_args(SpeechConfig.model_fields["engine"].annotation))


def voices_of(config: Config, engine: str) -> tuple[str, ...]:
    """The voices the first engine of `engine` has here."""
    speech = config.speech
    speaker = engine.split("+")[0]
    setting = VOICE_SETTING.get(speaker)
    if setting is None:
        return ("vi",)
    if speaker == "espeak":
        return ESPEAK_VOICES
    if speaker == "piper":  # the neural voices installed here (loa voice install), the configured one first
        installed = [v["name"] for v in list_voices(config) if v["installed"]]
        return tuple(sorted(installed, key=lambda name: name != speech.piper_voice))
    allowed = get_args(SpeechConfig.model_fields[setting].annotation)
    return tuple(str(v) for v in allowed) if allowed else (str(getattr(speech, setting)),)


def default_choice(config: Config) -> VoiceChoice:
    """The commune's voice: `[speech]` as configured, "auto" as it is now (piper+espeak once the neural
    voice is installed, else espeak: services/audio.py `effective_engine`)."""
    speech = config.speech
    engine = effective_engine(config)
    return VoiceChoice(engine, _voice_of(speech, engine), speech.speaking_rate)


def choose(config: Config, engine: str | None = None, voice: str | None = None,
           rate: float | str | None = None) -> VoiceChoice:
    """A choice checked against what this commune has; what is not given is the commune's. A voice is
    given with its engine (a voice of one engine means nothing to another)."""
    speech = config.speech
    base = default_choice(config)
    engine = (engine or "").strip() or base.engine
    if engine == "auto":
        engine = base.engine
    if engine not in engines(speech):
        raise LoaError("voice_unknown_engine", {"engine": engine[:40], "known": ", ".join(engines(speech))})
    if voice is None or not str(voice).strip():
        voice = base.voice if engine == base.engine else _voice_of(speech, engine)
    voice = str(voice).strip()
    if voice not in voices_of(config, engine):
        raise LoaError("voice_unknown", {"voice": voice[:40], "engine": engine,
                                         "known": ", ".join(voices_of(config, engine))})  # fmt: skip
    if rate is None or rate == "":
        value = base.rate
    else:
        try:
            value = round(float(rate), 2)
        except (TypeError, ValueError):
            raise LoaError("voice_bad_rate", {"rate": str(rate)[:20]}) from None
    if not 0.5 <= value <= 2.0:
        raise LoaError("voice_bad_rate", {"rate": str(rate)[:20]})
    return VoiceChoice(engine, voice, value)


def recorded_choice(config: Config, engine: str, voice: str, rate: float | None) -> VoiceChoice:
    """The choice stored with an item; an item stored before choices were recorded has the commune's."""
    if not engine:
        return default_choice(config)
    base = default_choice(config)
    return VoiceChoice(engine, voice or _voice_of(config.speech, engine), base.rate if rate is None else rate)


def offered(config: Config, lang: str = "vi") -> list[VoiceOption]:
    """The voices the desk offers: the commune's own first, then each voice of each engine it may use.

    An online engine is offered in a chain that falls back to espeak, so the officer's choice never
    leaves an item without speech; FPT.AI only when its key is set (it would refuse at once)."""
    base = default_choice(config)
    options = [VoiceOption(base.engine, base.voice, _label(base.engine, base.voice, lang), True)]
    for engine in engines(config.speech):
        parts = engine.split("+")
        if engine == "auto":
            continue  # the commune's own, first
        if len(parts) == 1 and parts[0] != "espeak":
            continue  # an online or neural voice alone could leave an item silent: offered with its fallback
        if not engine_available(config, parts[0]):
            continue
        for voice in voices_of(config, engine):
            if (engine, voice) != (base.engine, base.voice):
                options.append(VoiceOption(engine, voice, _label(engine, voice, lang), False))
    return options


def voice_label(voice: Mapping[str, Any] | None, lang: str = "vi") -> str:
    """An item's recorded voice as people read it ("Giọng máy, miền Nam · eSpeak NG (ngoại tuyến), 0,9");
    "" for a recording, which no voice reads."""
    if not voice:
        return ""
    rate = f"{float(voice['rate'] or 1.0):g}"
    rate = rate.replace(".", ",") if lang == "vi" else rate  # 0,9 in Vietnamese
    return f"{_label(str(voice['engine']), str(voice['voice']), lang)}, ×{rate}"


def _label(engine: str, voice: str, lang: str) -> str:
    speaker = engine.split("+")[0]
    engine_name = ENGINE_NAMES.get(speaker, {}).get(lang, speaker)
    voice_name = VOICE_NAMES.get(voice, {}).get(lang, voice)
    return engine_name if speaker == "gtts" else f"{voice_name} · {engine_name}"


_PIPELINES_LOCK = threading.Lock()


def configured_for(config: Config, choice: VoiceChoice) -> Config:
    """The config with `[speech]` set to `choice`: what `audio_pipeline` builds that voice from."""
    update: dict[str, Any] = {"engine": choice.engine, "speaking_rate": choice.rate}
    setting = VOICE_SETTING.get(choice.speaker)
    if setting:
        update[setting] = choice.voice
    return config.model_copy(update={"speech": config.speech.model_copy(update=update)})


def parse_voice(config: Config, text: str | None, rate: str | float | None = None) -> VoiceChoice | None:
    """A choice as a person types it on the command line: "vi-vn-x-south" (a voice of the commune's
    engine), "espeak:vi-vn-x-south", "fpt+espeak:banmai" or "fpt+espeak" (its configured voice)."""
    if not (text or "").strip() and rate in (None, ""):
        return None
    engine, sep, voice = (text or "").strip().rpartition(":")
    if not sep:
        engine, voice = ("", voice) if voice not in engines(config.speech) else (voice, "")
    return choose(config, engine or None, voice or None, rate)


def pipeline_for(svc: Services, choice: VoiceChoice | None) -> AudioPipeline:
    """The pipeline that reads with `choice` (None: the one the services were built with), sharing the
    store and the lexicon. The commune's voice at start is `svc.audio` itself (services/build.py); once
    "auto" means another voice (a neural voice installed since), that voice gets its own pipeline."""
    if choice is None:
        return svc.audio
    with _PIPELINES_LOCK:
        pipeline = svc.voices.get(choice)
    if pipeline is not None:
        return pipeline
    pipeline = audio_pipeline(configured_for(svc.config, choice), svc.audio.store, svc.audio.lexicon)
    pipeline.on_render = svc.audio.on_render  # timed like the commune's voice (the daemon's metrics)
    with _PIPELINES_LOCK:
        return svc.voices.setdefault(choice, pipeline)


def render(svc: Services, text: str, choice: VoiceChoice | None,
           progress: Callable[[int, int], None] | None = None) -> StoredAudio:
    """`text` read with `choice`, as a LoaError when it cannot be."""
    try:
        return pipeline_for(svc, choice).render(text, progress)
    except AudioError as exc:
        raise LoaError.from_domain(exc) from exc


def choice_of(config: Config, asked: Mapping[str, Any] | None) -> VoiceChoice | None:
    """The choice a request carries (`{"engine", "voice", "rate"}`, each optional), checked; None if none."""
    if not asked:
        return None
    return choose(config, asked.get("engine"), asked.get("voice"), asked.get("rate"))
