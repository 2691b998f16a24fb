"""FPT.AI's Vietnamese voices (text-to-speech API v5): natural, used by public services, online and paid.

The API's shape, from FPT.AI's documentation (docs.fpt.ai/docs/en/speech/api/text-to-speech, "FPT.AI
Speech - Text to Speech", API version 5):

- ``POST https://api.fpt.ai/hmi/tts/v5``; the body is the text itself, UTF-8, 3 to 5,000 characters.
- Headers: the key, ``voice`` (banmai, lannhi, leminh, myan, thuminh, giahuy, linhsan), ``speed``
  (an integer from -3, slowest, to +3, fastest; 0 is normal) and ``format`` (mp3 or wav).
  The documentation's table spells the key's header ``api_key``; FPT.AI's console samples and the
  clients in use send ``api-key``, which proxies pass on (nginx drops headers with underscores by
  default), so that is the one sent here.
- The answer is JSON: ``{"async": "<link to the audio>", "error": 0, "message": ..., "request_id": ...}``;
  ``error`` other than 0 is a failure and ``message`` says why.
- The audio "may not exist right at the time of response": it appears at the ``async`` link after 5 s
  to 2 minutes, depending on the length of the text. Until then the link answers 404 (403 from a
  storage bucket that hides missing objects), so the engine polls it, within its deadline.

Same discipline as GttsEngine: every request has a timeout, 429 and 5xx are retried with backoff,
`deadline_s` caps the whole sentence (request and wait for the audio), and a service that does not
answer in time is reported `unreachable` so that a chain stops waiting for it at once. The key is sent
to the API alone, never to the audio link (another host), and never appears in an error or a log line.
"""

from __future__ import annotations

import json
import random
import time
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit

import requests

from audio.engines import EngineError, _looks_like_mp3, atomic_output

FPT_API_URL = "https://api.fpt.ai"
TTS_PATH = "/hmi/tts/v5"
VOICES = ("banmai", "lannhi", "leminh", "myan", "thuminh", "giahuy", "linhsan")
MAX_CHARS = 5000  # the documented limit per request
MIN_CHARS = 3  # "Body must have at least 3 characters"
_WAITING = (403, 404)  # the async link before the audio is there


class FptEngine:
    """FPT.AI's voice for communes with internet; falls back to espeak-ng in a chain."""

    name = "fpt"

    def __init__(self, api_key: str, voice: str = "banmai", speed: int = 0, *,
                 audio_format: Literal["mp3", "wav"] = "mp3", base_url: str = FPT_API_URL,
                 connect_timeout: float = 2.0, read_timeout: float = 5.0,
                 deadline_s: float = 20.0, retries: int = 2, backoff_s: float = 0.5, max_backoff_s: float = 8.0,
                 poll_interval_s: float = 0.5) -> None:
        if not api_key.strip():
            raise ValueError("FPT.AI needs an API key")
        if voice not in VOICES:
            raise ValueError(f"unknown FPT.AI voice {voice!r}; use one of {', '.join(VOICES)}")
        if not -3 <= speed <= 3:
            raise ValueError("FPT.AI speed runs from -3 (slowest) to 3 (fastest)")
        self._api_key = api_key.strip()
        self.voice = voice
        self.speed = speed
        self.audio_format = audio_format
        self.base_url = base_url.rstrip("/")
        self.connect_timeout = connect_timeout
        self.read_timeout = read_timeout
        self.deadline_s = deadline_s
        self.retries = retries
        self.backoff_s = backoff_s
        self.max_backoff_s = max_backoff_s
        self.poll_interval_s = poll_interval_s

    def __repr__(self) -> str:  # the default would not show the key, but a future dataclass might
        return f"FptEngine(voice={self.voice!r}, speed={self.speed}, base_url={self.base_url!r})"

    @property
    def signature(self) -> str:
        return f"voice={self.voice};speed={self.speed};format={self.audio_format}"

    def _error(self, detail: str, **flags: bool) -> EngineError:
        """Every message this engine raises passes here: a server that echoes the key back (in a
        `message`, a body) must not put it into a log line or an API answer."""
        return EngineError(self.name, detail.replace(self._api_key, "***"), **flags)

    def _timeout(self, deadline: float) -> tuple[float, float]:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise self._error(f"no audio within the {self.deadline_s:g} s deadline", unreachable=True)
        return min(self.connect_timeout, remaining), min(self.read_timeout, remaining)

    def _backoff(self, attempt: int, response: requests.Response) -> float:
        retry_after = response.headers.get("Retry-After", "")
        if retry_after.isdigit():
            return min(self.max_backoff_s, float(retry_after))
        return min(self.max_backoff_s, self.backoff_s * 2**attempt) * random.uniform(0.8, 1.2)

    def _ask(self, text: str, deadline: float) -> str:
        """POST the text; the link the audio will appear at."""
        headers = {"api-key": self._api_key, "voice": self.voice, "speed": str(self.speed),
                   "format": self.audio_format, "Cache-Control": "no-cache",
                   "Content-Type": "text/plain; charset=utf-8"}
        attempt = 0
        while True:
            try:
                rsp = requests.post(self.base_url + TTS_PATH, data=text.encode("utf-8"), headers=headers,
                                    timeout=self._timeout(deadline))
            except requests.Timeout as exc:
                raise self._error("request timed out", unreachable=True) from exc
            except requests.ConnectionError as exc:
                raise self._error(f"cannot connect to {self.base_url}", unreachable=True) from exc
            except requests.RequestException as exc:
                raise self._error(f"request failed: {type(exc).__name__}") from exc
            status = rsp.status_code
            if status in (401, 403):
                raise self._error(f"the API key was refused (HTTP {status})")
            transient = status == 429 or status >= 500
            if transient and attempt < self.retries:
                delay = self._backoff(attempt, rsp)
                if time.monotonic() + delay >= deadline:
                    raise self._error(f"HTTP {status} (no time left to retry)", retryable=True)
                time.sleep(delay)
                attempt += 1
                continue
            if status != 200:
                raise self._error(f"HTTP {status}", retryable=transient)
            return self._link(rsp)

    def _link(self, rsp: requests.Response) -> str:
        try:
            answer: Any = rsp.json()
        except (ValueError, json.JSONDecodeError) as exc:
            raise self._error(f"the answer is not JSON ({len(rsp.content)} bytes)") from exc
        if not isinstance(answer, dict):
            raise self._error("the answer is not a JSON object")
        if answer.get("error") != 0:
            message = str(answer.get("message", ""))[:200]
            raise self._error(f"error {answer.get('error')!r}: {message}")
        link = answer.get("async")
        if not isinstance(link, str) or urlsplit(link).scheme not in ("http", "https") or not urlsplit(link).hostname:
            raise self._error("the answer carries no audio link")
        return link

    def _fetch(self, link: str, deadline: float) -> bytes:
        """Wait for the audio at its link. No key here: the link is on another host."""
        while True:
            try:
                rsp = requests.get(link, timeout=self._timeout(deadline))
            except requests.Timeout as exc:
                raise self._error("the audio link timed out", unreachable=True) from exc
            except requests.RequestException as exc:
                raise self._error(f"cannot fetch the audio: {type(exc).__name__}", unreachable=True) from exc
            if rsp.status_code == 200 and self._is_audio(rsp.content):
                return rsp.content
            if rsp.status_code == 200:
                raise self._error(f"the audio link served no audio ({len(rsp.content)} bytes)")
            if rsp.status_code not in _WAITING and rsp.status_code < 500:
                raise self._error(f"the audio link answered HTTP {rsp.status_code}")
            remaining = deadline - time.monotonic()
            if remaining <= self.poll_interval_s:
                raise self._error(f"the audio did not appear within the {self.deadline_s:g} s deadline",
                                  unreachable=True)
            time.sleep(self.poll_interval_s)

    def _is_audio(self, data: bytes) -> bool:
        if self.audio_format == "wav":
            return data[:4] == b"RIFF" and len(data) > 44
        return _looks_like_mp3(data)

    def synthesize(self, text: str, out: Path) -> str:
        text = text.strip()
        if len(text) < MIN_CHARS:
            raise self._error("text shorter than the 3 characters the API takes")
        if len(text) > MAX_CHARS:
            raise self._error(f"text longer than the {MAX_CHARS} characters the API takes")
        deadline = time.monotonic() + self.deadline_s
        audio = self._fetch(self._ask(text, deadline), deadline)
        with atomic_output(out, self.name) as tmp:
            tmp.write_bytes(audio)
        return self.name
