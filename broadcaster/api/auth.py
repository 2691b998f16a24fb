"""Who is asking, and may they: the API's gate and its per-route checks.

`Gate` (ASGI middleware) sees every request before any route reads its body, so an anonymous upload is
refused on its headers, not after 200 MB were spooled to disk. It refuses
- a `Host` the server does not answer to (400 `bad_host`): DNS rebinding points a foreign name at this
  server's address so that a page of that name may read and write the API as "same origin";
- a state-changing request whose `Origin` (or, without it, `Referer`) is another site (403
  `bad_origin`): what a browser sends for a form or a script of another site's page;
- any /api/v1 request but the health check and the sign-in with no valid session cookie or
  `Authorization: Bearer` token (401 `not_signed_in`).
It hands the authenticated `Principal` on in the request's scope; `X-Loa-User` and any other claim a
caller makes about itself are never read.

`require(permission)` (a dependency on every route behind the gate) checks the role (403 `forbidden`)
and, for a state-changing request that came with the cookie, the session's CSRF token in the
`X-CSRF-Token` header or a `csrf_token` form field (403 `bad_csrf`): a browser adds cookies to another
site's requests by itself (SameSite=Strict aside, which older browsers ignore) but never a header or a
field whose value only this server's answer to the signed-in person contained. Token-authenticated
requests need no CSRF token: browsers never add an Authorization header on their own.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Annotated, Any
from urllib.parse import urlsplit

from fastapi import Depends, Request
from fastapi.responses import JSONResponse, RedirectResponse
from starlette.concurrency import run_in_threadpool
from starlette.types import ASGIApp, Receive, Scope, Send

from broadcaster.api import API_VERSION
from broadcaster.errors import LoaError
from broadcaster.messages import pick_language
from broadcaster.services import Services
from broadcaster.services.accounts import Permission, Principal, same_secret, session_principal, token_principal

API_PREFIX = f"/api/{API_VERSION}"
SESSION_COOKIE = "loa_session"
CSRF_HEADER = "X-CSRF-Token"
CSRF_FIELD = "csrf_token"
UNSAFE = frozenset({"POST", "PUT", "PATCH", "DELETE"})
# Reachable without signing in: whether the daemon is up, and the sign-in itself.
OPEN = frozenset({("GET", f"{API_PREFIX}/health"), ("POST", f"{API_PREFIX}/session")})
# The desk's forms anyone may post: signing in.
OPEN_FORMS = frozenset({"/login"})
_PRINCIPAL = "loa.principal"


def _netloc(url: str) -> str:
    try:
        return urlsplit(url).netloc.lower()
    except ValueError:
        return ""


def _host_name(host: str) -> str | None:
    """The name in a Host header ("loa.local:8080", "[::1]:8080"), lower case; None if it has none."""
    try:
        return urlsplit(f"//{host}").hostname if host else None
    except ValueError:  # "[::1" and the like
        return None


class Gate:
    """Host, Origin and who is asking, for every request, before any route runs (see the module)."""

    def __init__(self, app: ASGIApp, svc: Services) -> None:
        self.app = app
        self.svc = svc
        http = svc.config.http
        self.hosts = http.api_hosts()
        self.public_origin = _netloc(http.public_url)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request = Request(scope)
        try:
            self._check_host_and_origin(request)
            principal = await self._identify(request)
            path = request.url.path
            if principal is None and path.startswith(API_PREFIX + "/") and (request.method, path) not in OPEN:
                raise LoaError("not_signed_in", {}, status=401)
            if principal is None and request.method in UNSAFE and _a_desk_form(path):
                # A desk form (the compose page takes a 50 MB recording) from nobody: sent to sign in on its
                # headers, before Starlette spools the body to disk for a route that would refuse it.
                await RedirectResponse("/login", status_code=303)(scope, receive, send)
                return
        except LoaError as exc:
            lang = pick_language(request.headers.get("accept-language"))
            headers = {"WWW-Authenticate": "Bearer"} if exc.status == 401 else None
            await JSONResponse(exc.as_json(lang), status_code=exc.status, headers=headers)(scope, receive, send)
            return
        scope[_PRINCIPAL] = principal
        await self.app(scope, receive, send)

    def _check_host_and_origin(self, request: Request) -> None:
        host = request.headers.get("host", "")
        name = _host_name(host)
        if not name or name not in self.hosts:
            raise LoaError("bad_host", {"host": host[:100]}, status=400)
        if request.method not in UNSAFE:
            return
        origin = request.headers.get("origin")
        source = origin if origin is not None else request.headers.get("referer")
        if source is None:
            return  # not a browser (curl, a script): nothing a site could have made it send
        if _netloc(source) not in {host.lower(), self.public_origin} - {""}:
            raise LoaError("bad_origin", {"origin": source[:100]}, status=403)

    async def _identify(self, request: Request) -> Principal | None:
        authorization = request.headers.get("authorization")
        if authorization is not None:  # a token, or nobody: a bad token never falls back to the cookie
            scheme, _, secret = authorization.partition(" ")
            if scheme.lower() != "bearer":
                return None
            return await run_in_threadpool(token_principal, self.svc, secret.strip())
        cookie = request.cookies.get(SESSION_COOKIE)
        return await run_in_threadpool(session_principal, self.svc, cookie) if cookie else None


def _a_desk_form(path: str) -> bool:
    return not path.startswith(API_PREFIX + "/") and path not in OPEN_FORMS


def principal_of(request: Request) -> Principal | None:
    found: Principal | None = request.scope.get(_PRINCIPAL)
    return found


async def _check_csrf(request: Request, principal: Principal) -> None:
    given = request.headers.get(CSRF_HEADER)
    if given is None and request.headers.get("content-type", "").startswith(
        ("multipart/form-data", "application/x-www-form-urlencoded")
    ):
        field = (await request.form()).get(CSRF_FIELD)  # parsed already for the route; this reads the copy
        given = field if isinstance(field, str) else None
    if given is None or not same_secret(given, principal.csrf_token):
        raise LoaError("bad_csrf", {}, status=403)


def require(
    permission: Permission | None, *, before_new_password: bool = False
) -> Callable[[Request], Awaitable[Principal]]:
    """A dependency: the signed-in person, if they may do `permission` (None: anyone signed in). A
    session opened with a one-time password may only choose a new one (`before_new_password`)."""

    async def signed_in(request: Request) -> Principal:
        principal = principal_of(request)
        if principal is None:
            raise LoaError("not_signed_in", {}, status=401)
        if request.method in UNSAFE and principal.via == "session":
            await _check_csrf(request, principal)
        if principal.must_change_password and principal.via == "session" and not before_new_password:
            raise LoaError("password_change_required", {}, status=403)
        if permission is not None and not principal.may(permission):
            raise LoaError("forbidden", {"role": principal.role.value}, status=403)
        return principal

    signed_in.loa_permission = permission or "signed_in"  # type: ignore[attr-defined]  # read by the tests
    return signed_in


SignedIn = Annotated[Principal, Depends(require(None))]
Reader = Annotated[Principal, Depends(require("read"))]
Composer = Annotated[Principal, Depends(require("compose"))]
Admin = Annotated[Principal, Depends(require("admin"))]
Newcomer = Annotated[Principal, Depends(require(None, before_new_password=True))]


def client_address(request: Request) -> str:
    """The peer's address, for the sign-in throttle and the audit log (a proxy in front makes it the
    proxy's: then the per-name limit still holds)."""
    return request.client.host if request.client else "?"


def session_cookie(secure: bool, secret: str, max_age: int) -> dict[str, Any]:
    """The cookie's attributes: unreadable by scripts (HttpOnly), never sent with another site's
    requests (SameSite=Strict), `Secure` when people reach the API over TLS."""
    return {
        "key": SESSION_COOKIE,
        "value": secret,
        "max_age": max_age,
        "path": "/",
        "httponly": True,
        "samesite": "strict",
        "secure": secure,
    }
