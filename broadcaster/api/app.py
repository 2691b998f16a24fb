"""The JSON HTTP API (v1, documented in docs/api.md) and, on a listener of its own, the audio files
devices download.

One router per resource (broadcaster/api/routes/), the parts they need handed over with `Depends`
(deps.py), request and response models (schemas.py) from which the OpenAPI document at
/api/v1/openapi.json is built. Every refusal is a LoaError, answered here in one shape,
`{"error": {"code", "message", "params"}}` with a 4xx status, in the language of the request's
Accept-Language (Vietnamese unless it asks for English); nothing is stored when a request is refused.

Every request passes the gate (auth.py: Host, Origin, who is asking) before any route reads it, and
every route but the health check and the sign-in requires a signed-in person with a role that may.
The audio files are a second app (`create_audio_app`) with nothing else in it, so the API can stay off
the speakers' network while devices still fetch what their signed commands name.
"""

from __future__ import annotations

from collections.abc import Callable

from fastapi import Depends, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException as StarletteHTTPException

from audio import AudioStore
from broadcaster.api.auth import API_PREFIX, Gate, require
from broadcaster.api.deps import ApiParts
from broadcaster.api.limits import BodyLimit
from broadcaster.api.renders import Renders
from broadcaster.api.routes import (
    alerts,
    announcements,
    audio,
    broadcasts,
    devices,
    health,
    lexicon,
    live,
    ops,
    programmes,
    renders,
    reports,
    session,
    slogans,
    timeline,
    tokens,
    users,
    zones,
)
from broadcaster.api.schemas import refusals
from broadcaster.errors import LoaError
from broadcaster.messages import pick_language
from broadcaster.runtime.metrics import OpsMetrics
from broadcaster.services import Services
from broadcaster.services.accounts import LoginThrottle
from broadcaster.services.emergencies import Confirmations
from broadcaster.services.live import LiveDesk
from broadcaster.web import mount_desk
from broadcaster.web.public import mount_public

# Fields whose wrong value had its own code before the schema made them enums: the documented code
# stays (a wrong `priority` is `bad_priority`, 400), other wrong values are `invalid_request`.
_FIELD_REFUSALS: dict[str, Callable[[], LoaError]] = {"priority": lambda: LoaError("bad_priority", {})}


def create_app(
    svc: Services,
    store: AudioStore,
    *,
    on_change: Callable[[], None] | None = None,
    metrics: Callable[[], dict[str, int]] | None = None,
    health_probe: Callable[[], list[str]] | None = None,
    live_desk: LiveDesk | None = None,
    ready_probe: Callable[[], list[str]] | None = None,
    ops_metrics: OpsMetrics | None = None,
) -> FastAPI:
    # No /docs or /redoc: their pages load scripts from a CDN, and a commune office may be offline.
    app = FastAPI(
        title="loa",
        version="1.0.0",
        description="A commune's loudspeakers: announcements, programmes, and what was heard where.",
        openapi_url=None,  # served below, to people signed in like every other route
        docs_url=None,
        redoc_url=None,
    )
    app.state.loa = ApiParts(
        svc=svc,
        store=store,
        on_change=on_change or (lambda: None),
        metrics=metrics or (lambda: {}),
        renders=Renders(svc),
        throttle=LoginThrottle(svc.clock, svc.config.security.login_failures, svc.config.security.login_window_s),
        confirmations=Confirmations(svc.clock, svc.config.security.emergency_confirm_s),
        health=health_probe or (lambda: []),
        ready=ready_probe or (lambda: []),
        # Without the daemon's (tests, a bare app): the database's gauges alone.
        exposition=(ops_metrics or OpsMetrics(svc.db, svc.clock)).exposition,
    )
    app.state.live_desk = live_desk  # going live (routes/live.py); None: its routes answer 503
    _answer_refusals(app)
    app.add_middleware(Gate, svc=svc)
    app.add_middleware(BodyLimit, http=svc.config.http)  # outermost: sizes are refused before anything
    # Open to all: is it up (health), and signing in (session; its other routes say who may).
    for resource in (health, session):
        app.include_router(resource.router, prefix=API_PREFIX)
    app.include_router(ops.router)  # /healthz, /readyz (open) and /metrics (a reader), outside the versioned API
    # Behind the sign-in: at least a reader, with the CSRF token on a state-changing cookie request;
    # each route asks for more where it does more (compose, admin, the emergency roles).
    signed_in = [Depends(require("read"))]
    for resource in (
        announcements, programmes, renders, broadcasts, devices, zones, timeline, reports, tokens, users, live,
        lexicon, slogans, alerts,
    ):  # fmt: skip
        app.include_router(resource.router, prefix=API_PREFIX, dependencies=signed_in, responses=refusals(401, 403))

    @app.get(f"{API_PREFIX}/openapi.json", include_in_schema=False, dependencies=signed_in)
    async def openapi_document() -> JSONResponse:
        return JSONResponse(await run_in_threadpool(app.openapi))

    mount_desk(app)  # the officer's pages (broadcaster/web/), behind the same gate
    return app


def create_audio_app(store: AudioStore, live_desk: LiveDesk | None = None, svc: Services | None = None) -> FastAPI:
    """The audio files as devices download them: GET only, content-addressed names (a file's name is
    its SHA-256, which the signed command carries), no API behind it; and the live sessions' streams,
    each at an unguessable name that only its signed commands carry. With `svc`, the villagers' public
    pages beside them (broadcaster/web/public/: listen again, podcasts, and the feedback form, whose
    POST is the one write this listener takes)."""
    app = FastAPI(title="loa audio", openapi_url=None, docs_url=None, redoc_url=None)
    app.state.audio_store = store
    app.state.live_desk = live_desk
    _answer_refusals(app)
    app.include_router(audio.router)
    app.include_router(live.stream_router)
    if svc is not None:
        mount_public(app, svc)
    return app


def _language(request: Request) -> str:
    return pick_language(request.headers.get("accept-language"))


def _invalid(exc: RequestValidationError) -> LoaError:
    problems = exc.errors()
    fields_named = {str(e["loc"][-1]) if e["type"] == "enum" else "" for e in problems}
    if len(fields_named) == 1 and (field := fields_named.pop()) in _FIELD_REFUSALS:
        return _FIELD_REFUSALS[field]()
    fields = ", ".join(".".join(str(p) for p in e["loc"] if p != "body") for e in problems)
    return LoaError("invalid_request", {"fields": fields}, status=422)


def _answer_refusals(app: FastAPI) -> None:
    @app.exception_handler(LoaError)
    async def _refused(request: Request, exc: LoaError) -> JSONResponse:
        wait = exc.params.get("retry_after_s")  # too_many_attempts: when to try again, for programs too
        headers = {"Retry-After": str(wait)} if exc.status == 429 and wait else None
        return JSONResponse(exc.as_json(_language(request)), status_code=exc.status, headers=headers)

    @app.exception_handler(RequestValidationError)
    async def _malformed(request: Request, exc: RequestValidationError) -> JSONResponse:
        return await _refused(request, _invalid(exc))

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        if exc.status_code == 404:
            return await _refused(request, LoaError("not_found", {}, status=404))
        return await _refused(request, LoaError("http_error", {"status": exc.status_code}, status=exc.status_code))
