"""What a route is handed, through FastAPI's `Depends`: the services, the audio store, the hook that
wakes the daemon after a change and the language the person reads (who they are is auth.py's).

`create_app` puts the parts in `app.state.loa`; routes never reach for globals, so tests build as
many apps as they like, each on its own database.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated

from fastapi import Depends, Header, Request

from audio import AudioStore
from broadcaster.api.renders import Renders
from broadcaster.errors import LoaError
from broadcaster.messages import pick_language
from broadcaster.services import Services
from broadcaster.services.accounts import LoginThrottle
from broadcaster.services.emergencies import Confirmations
from schedules.clock import LOCAL_TZ


@dataclass(frozen=True)
class ApiParts:
    svc: Services
    store: AudioStore
    on_change: Callable[[], None]  # after a change the daemon should plan or dispatch now, not in a while
    metrics: Callable[[], dict[str, int]]
    renders: Renders
    throttle: LoginThrottle  # failed sign-ins per name and address
    confirmations: Confirmations  # the codes that confirm an emergency
    health: Callable[[], list[str]] = lambda: []  # the daemon's parts that stopped (runtime.path.DevicePath.failing)
    ready: Callable[[], list[str]] = lambda: []  # the parts not ready besides the database (runtime.metrics.readiness)
    exposition: Callable[[], tuple[bytes, str]] = lambda: (b"", "text/plain")  # GET /metrics (runtime.metrics)


def parts(request: Request) -> ApiParts:
    found: ApiParts = request.app.state.loa
    return found


Parts = Annotated[ApiParts, Depends(parts)]


def services(p: Parts) -> Services:
    return p.svc


def renders(p: Parts) -> Renders:
    return p.renders


def on_change(p: Parts) -> Callable[[], None]:
    return p.on_change


def language(
    accept_language: Annotated[
        str | None, Header(alias="Accept-Language", description="en for English; Vietnamese otherwise.")
    ] = None,
) -> str:
    return pick_language(accept_language)


Svc = Annotated[Services, Depends(services)]
Jobs = Annotated[Renders, Depends(renders)]
OnChange = Annotated[Callable[[], None], Depends(on_change)]
Lang = Annotated[str, Depends(language)]


def instant(text: str | None) -> datetime | None:
    """A query-string instant: ISO 8601 (an offset-less one is Asia/Ho_Chi_Minh)."""
    if not text:
        return None
    try:
        when = datetime.fromisoformat(text)
    except ValueError as exc:
        raise LoaError("bad_time.iso", {"text": text}) from exc
    return when if when.tzinfo else when.replace(tzinfo=LOCAL_TZ)
