"""The JSON HTTP API (v1, documented in docs/api.md) and the audio files devices download.

One router per resource (broadcaster/api/routes/), the parts they need handed over with `Depends`
(deps.py), request and response models (schemas.py) from which the OpenAPI document at
/api/v1/openapi.json is built. Every refusal is a LoaError, answered here in one shape,
`{"error": {"code", "message", "params"}}` with a 4xx status, in the language of the request's
Accept-Language (Vietnamese unless it asks for English); nothing is stored when a request is refused.
"""

from __future__ import annotations

from collections.abc import Callable

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from audio import AudioStore
from broadcaster.api import API_VERSION
from broadcaster.api.deps import ApiParts
from broadcaster.api.renders import Renders
from broadcaster.api.routes import (
    announcements,
    audio,
    broadcasts,
    devices,
    health,
    programmes,
    renders,
    reports,
    timeline,
    zones,
)
from broadcaster.errors import LoaError
from broadcaster.messages import pick_language
from broadcaster.services import Services

API_PREFIX = f"/api/{API_VERSION}"

# Fields whose wrong value had its own code before the schema made them enums: the documented code
# stays (a wrong `priority` is `bad_priority`, 400), other wrong values are `invalid_request`.
_FIELD_REFUSALS: dict[str, Callable[[], LoaError]] = {"priority": lambda: LoaError("bad_priority", {})}


def create_app(
    svc: Services,
    store: AudioStore,
    *,
    on_change: Callable[[], None] | None = None,
    metrics: Callable[[], dict[str, int]] | None = None,
) -> FastAPI:
    # No /docs or /redoc: their pages load scripts from a CDN, and a commune office may be offline.
    app = FastAPI(
        title="loa",
        version="1.0.0",
        description="A commune's loudspeakers: announcements, programmes, and what was heard where.",
        openapi_url=f"{API_PREFIX}/openapi.json",
        docs_url=None,
        redoc_url=None,
    )
    app.state.loa = ApiParts(
        svc=svc,
        store=store,
        on_change=on_change or (lambda: None),
        metrics=metrics or (lambda: {}),
        renders=Renders(svc),
    )
    _answer_refusals(app)
    for resource in (health, announcements, programmes, renders, broadcasts, devices, zones, timeline, reports):
        app.include_router(resource.router, prefix=API_PREFIX)
    app.include_router(audio.router)
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
        return JSONResponse(exc.as_json(_language(request)), status_code=exc.status)

    @app.exception_handler(RequestValidationError)
    async def _malformed(request: Request, exc: RequestValidationError) -> JSONResponse:
        return await _refused(request, _invalid(exc))

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        if exc.status_code == 404:
            return await _refused(request, LoaError("not_found", {}, status=404))
        return await _refused(request, LoaError("http_error", {"status": exc.status_code}, status=exc.status_code))
