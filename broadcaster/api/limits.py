"""How much a request may carry, decided from its headers before a byte of its body is read.

A 100 MB JSON body used to cost 226 MiB of memory, and a 250 MB upload was written to disk twice before
it was refused. Starlette reads a body whole (JSON) or spools it to disk (multipart) before a route can
look at it, so the limit sits in front: a body larger than allowed is refused with 413 on its
Content-Length, and a body without one (chunked) with 411 — every browser and HTTP client sends the
length of a form or a JSON body. The server (h11) holds a client to the length it declared.
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Receive, Scope, Send

from broadcaster.config import HttpConfig
from broadcaster.errors import LoaError
from broadcaster.messages import pick_language

UPLOAD_PATHS = frozenset({"/api/v1/recordings", "/compose", "/compose/plan"})  # the desk's compose form carries one too
BODY_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})


class BodyLimit:
    def __init__(self, app: ASGIApp, http: HttpConfig) -> None:
        self.app = app
        self.max_body = http.max_body_kb * 1024
        self.max_upload = http.max_upload_mb * 1024 * 1024

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] not in BODY_METHODS:
            await self.app(scope, receive, send)
            return
        request = Request(scope)
        limit = self.max_upload if scope["path"] in UPLOAD_PATHS else self.max_body
        refusal = _refusal(request.headers.get("content-length"), request.headers.get("transfer-encoding"), limit)
        if refusal is None:
            await self.app(scope, receive, send)
            return
        lang = pick_language(request.headers.get("accept-language"))
        await JSONResponse(refusal.as_json(lang), status_code=refusal.status)(scope, receive, send)


def _refusal(length: str | None, transfer_encoding: str | None, limit: int) -> LoaError | None:
    if length is None:
        if transfer_encoding is None:
            return None  # no body at all
        return LoaError("length_required", {}, status=411)
    if not length.isdigit():
        return LoaError("invalid_request", {"fields": "Content-Length"}, status=400)
    if int(length) > limit:
        return LoaError("body_too_large", {"max_kb": limit // 1024}, status=413)
    return None
