"""Text and sound for the loudspeakers: normalization, speech engines, rendering, storage.

Knows nothing about MQTT, databases or schedules; callers pin what they still need.
"""

from audio.engines import EngineError, EspeakEngine, FallbackEngine, GttsEngine, SpeechEngine, build_engine
from audio.pipeline import AudioPipeline, RenderSettings, SentenceAudio
from audio.render import AudioError
from audio.store import AudioStore, StoredAudio

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
