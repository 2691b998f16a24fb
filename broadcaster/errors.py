"""One error type for everything a person is refused: an English code for programs, parameters, an HTTP
status, and words from the catalogue (broadcaster/messages.py) in the person's language.

The raise site names the case and its values, never the sentence: `LoaError("unknown_zone", {"zone":
"thon-9", "known": "all, thon-1"}, status=404)`. The first argument is the catalogue key: the code
itself, or `<code>.<variant>` when one code is said in several ways (`not_found.audio`); programs only
ever see the code. `tests/broadcaster/test_errors.py` reads every raise site and fails when a key has no
sentence in a language or the parameters do not match its placeholders.

`audio/` and `schedules/` cannot know this type (they import nothing of broadcaster): their errors carry
`code`, `message_vi` (their own default sentence), `params` and sometimes `variant`, and
`LoaError.from_domain` is the one place that turns them into ours.

Standard library only: the CLI imports this on a speaker's small computer too.
"""

from __future__ import annotations

import sys
from collections.abc import Mapping, Sequence
from typing import Any

from broadcaster.messages import DEFAULT_LANGUAGE, render

Param = str | int | float | bool

# Domain errors by where they live, so they are recognised without importing audio/ or schedules/ (a
# domain error that exists has had its module imported): module, class, code prefix, HTTP status.
_DOMAINS: tuple[tuple[str, str, str, int], ...] = (
    ("audio.render", "AudioError", "audio_", 422),  # the text or the upload cannot become sound
    ("schedules.errors", "ScheduleError", "", 400),  # input that can never be planned
    ("schedules.when", "WhenError", "", 400),  # a start time that cannot be read
    ("schedules.planner", "Conflict", "", 409),  # the timeline has no room for it now
)


def _clean(params: Mapping[str, object] | None) -> dict[str, Param]:
    """JSON-safe values: what a program reads in `params` is what the sentence says."""
    return {k: v if isinstance(v, str | int | float | bool) else str(v) for k, v in (params or {}).items()}


class LoaError(Exception):
    """A request we refuse, or a problem a person must fix; nothing was stored."""

    def __init__(
        self,
        key: str,
        params: Mapping[str, object] | None = None,
        *,
        status: int = 400,
        fallback_vi: str | None = None,
        more: Sequence[LoaError] = (),
    ) -> None:
        super().__init__(key)
        self.key = key
        self.code = key.split(".", 1)[0]
        self.params = _clean(params)
        self.status = status
        self.fallback_vi = fallback_vi  # a domain error's own sentence, for a key the catalogue lacks
        self.more = tuple(more)  # further reasons for the same refusal (a plan's conflicts)

    def message(self, lang: str = DEFAULT_LANGUAGE) -> str:
        """What the person reads, in their language; several reasons for one refusal are all said."""
        return " ".join([self._sentence(lang), *(m._sentence(lang) for m in self.more)])

    def _sentence(self, lang: str) -> str:
        own = self._render(self.key, lang)
        if own is not None:
            return own
        # No sentence for the key: in Vietnamese the domain's own (it names the case exactly); in
        # other languages the code's general sentence, if this error's params fill it.
        if lang == DEFAULT_LANGUAGE and self.fallback_vi:
            return self.fallback_vi
        general = self._render(self.code, lang) if self.code != self.key else None
        return general or self.fallback_vi or self.key

    def _render(self, key: str, lang: str) -> str | None:
        try:
            return render(key, self.params, lang)
        except (KeyError, IndexError, ValueError):
            return None  # the template wants a value this error does not carry

    def as_json(self, lang: str = DEFAULT_LANGUAGE) -> dict[str, Any]:
        """The API's error body: `code` and `message` are the documented contract, `params` the values
        a program may use (the zone that does not exist, the time that has passed)."""
        return {"error": {"code": self.code, "message": self.message(lang), "params": dict(self.params)}}

    def __str__(self) -> str:
        return f"{self.message()} ({self.code})"

    @classmethod
    def restored(cls, key: str, params: Mapping[str, object], fallback_vi: str | None = None) -> LoaError:
        """An error stored earlier (a failed render job, read by another daemon), to be said again in the
        language of whoever asks now; its raise site was checked when it was first raised."""
        return cls(key, params, fallback_vi=fallback_vi)

    @classmethod
    def from_domain(cls, exc: object, *, status: int | None = None) -> LoaError:
        """Ours, from an error of audio/ (code prefixed `audio_`, status 422), schedules/ (a
        ScheduleError or WhenError, 400; a planner Conflict, 409) or already ours (unchanged)."""
        if isinstance(exc, LoaError):
            return exc
        for module, name, prefix, default_status in _DOMAINS:
            kind = getattr(sys.modules.get(module), name, None)
            if isinstance(kind, type) and isinstance(exc, kind):
                code = prefix + str(exc.code)  # type: ignore[attr-defined]
                variant = str(getattr(exc, "variant", "") or "")
                return cls(
                    f"{code}.{variant}" if variant else code,
                    getattr(exc, "params", None),
                    status=default_status if status is None else status,
                    fallback_vi=getattr(exc, "message_vi", None),
                )
        raise TypeError(f"not a domain error: {type(exc).__name__}")

    @classmethod
    def refusal(cls, reasons: Sequence[object], *, status: int | None = None) -> LoaError:
        """One refusal for several reasons (the conflicts of a plan): the first gives the code."""
        first, *rest = [cls.from_domain(r, status=status) for r in reasons]
        first.more = tuple(rest)
        return first
