"""The speaker agent: fetch the audio early, check its hash, start on the dot, report how close it was."""

from __future__ import annotations

import logging
from typing import Any

from broadcaster.device.agent import DeviceAgent
from broadcaster.device.config import AgentConfig
from broadcaster.device.core import Action, Fetch, Play, SetVolume, Silence
from broadcaster.device.fetch import cached_path, download_error, fetch_until
from broadcaster.device.sinks import PlaybackError, Sink, make_sink

log = logging.getLogger(__name__)


class SpeakerAgent(DeviceAgent):
    kind = "speaker"

    def __init__(self, config: AgentConfig, sink: Sink | None = None) -> None:
        super().__init__(config)
        self.cache_dir = self.state_dir / "audio"
        self.cache_dir.mkdir(parents=True, exist_ok=True)
        self.sink = sink or make_sink(config.sink, self.state_dir / "played")

    @property
    def volume(self) -> int:
        return self.core.volume

    def status_extra(self) -> dict[str, Any]:
        return {"sink": self.sink.name}

    def perform(self, action: Action) -> None:
        if isinstance(action, Fetch):
            self._spawn(f"fetch-{action.command_id[:8]}", self._fetch, action)
        elif isinstance(action, Play):
            self._spawn(f"play-{action.command_id[:8]}", self._play, action)
        elif isinstance(action, Silence):
            self.sink.stop()
        elif isinstance(action, SetVolume):
            pass  # the level is in the core (and in the status); a sound card's mixer is the installer's
        else:
            super().perform(action)

    def _fetch(self, action: Fetch) -> None:
        try:
            fetch_until(action.audio, self.cache_dir, action.until, self._stop)
            error = None
        except Exception as exc:
            error = download_error(exc)
        self.call(lambda now: self.core.fetched(action.command_id, error, now))

    def _play(self, action: Play) -> None:
        error: str | None = None
        played: float | None = None  # a relay's seconds really relayed; otherwise the core counts time on air
        try:
            if action.stream_url is not None:
                played = self.sink.play_stream(action.stream_url, action.duration_s, action.started_at)
            elif action.audio is not None:
                path = cached_path(action.audio, self.cache_dir)  # fetched and checked before the start
                self.sink.play(path, int(action.duration_s * 1000), action.started_at)
        except PlaybackError as exc:
            error, played = str(exc), exc.played_s
        except Exception as exc:
            log.exception("%s: playing %s failed", self.device_id, action.command_id)
            error = f"agent_error: {exc}"
        self.call(lambda now: self.core.ended(action.command_id, now, error, played))

