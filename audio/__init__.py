"""Text and sound for the loudspeakers: normalization, speech engines, rendering, storage.

Knows nothing about MQTT, databases or schedules; callers pin what they still need.
"""

from importlib import import_module
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from audio.engines import EngineError, EspeakEngine, FallbackEngine, GttsEngine, SpeechEngine, build_engine
    from audio.pipeline import AudioPipeline, RenderSettings, SentenceAudio
    from audio.render import AudioError
    from audio.store import AudioStore, StoredAudio

# Each name is imported from its module on first use, so `import audio.normalize` (`loa normalize`,
# the CLI's commands) does not load numpy and ffmpeg's wrappers it never touches.
_WHERE = {
    "EngineError": "audio.engines", "EspeakEngine": "audio.engines", "FallbackEngine": "audio.engines",
    "GttsEngine": "audio.engines", "SpeechEngine": "audio.engines", "build_engine": "audio.engines",
    "AudioPipeline": "audio.pipeline", "RenderSettings": "audio.pipeline", "SentenceAudio": "audio.pipeline",
    "AudioError": "audio.render", "AudioStore": "audio.store", "StoredAudio": "audio.store",
}  # fmt: skip


def __getattr__(name: str) -> Any:
    if name in _WHERE:
        return getattr(import_module(_WHERE[name]), name)
    raise AttributeError(f"module 'audio' has no attribute {name!r}")


__all__ = [
    "AudioError",
    "AudioPipeline",
    "AudioStore",
    "EngineError",
    "EspeakEngine",
    "FallbackEngine",
    "GttsEngine",
    "RenderSettings",
    "SentenceAudio",
    "SpeechEngine",
    "StoredAudio",
    "build_engine",
]
