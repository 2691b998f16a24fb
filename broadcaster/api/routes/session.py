"""Signing in and out: a session cookie for the officer's browser, and the CSRF token it must repeat."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request, Response
from starlette.concurrency import run_in_threadpool

from broadcaster.api.auth import SESSION_COOKIE, Newcomer, client_address, session_cookie
from broadcaster.api.deps import Parts, Svc
from broadcaster.api.schemas import NewPasswordIn, SessionOut, SignInIn, refusals
from broadcaster.services.accounts import account, change_own_password, sign_in, sign_out

router = APIRouter(tags=["session"])


@router.post("/session", response_model=SessionOut, responses=refusals(401, 403, 422, 429))
async def open_session(body: SignInIn, request: Request, response: Response, parts: Parts) -> dict[str, Any]:
    """Sign in with a user name and password: sets the session cookie and answers its CSRF token."""
    svc = parts.svc
    done = await run_in_threadpool(sign_in, svc, parts.throttle, body.username, body.password, client_address(request))
    max_age = int(svc.config.security.session_hours * 3600)
    response.set_cookie(**session_cookie(svc.config.http.secure_cookies, done.secret, max_age))
    return {
        "user": await run_in_threadpool(account, svc, done.principal),
        "via": "session",
        "csrf_token": done.principal.csrf_token,
        "expires_at": done.expires_at.isoformat(),
    }


@router.get("/session", response_model=SessionOut, responses=refusals(401, 403))
def read_session(who: Newcomer, svc: Svc) -> dict[str, Any]:
    """Who is signed in (or whose token this is), and the session's CSRF token."""
    return {"user": account(svc, who), "via": who.via, "csrf_token": who.csrf_token}


@router.delete("/session", status_code=204, responses=refusals(401, 403))
def close_session(who: Newcomer, svc: Svc) -> Response:
    """Sign out: the session ends on the server, and the cookie is cleared."""
    if who.via == "session":
        sign_out(svc, who)
    response = Response(status_code=204)
    response.delete_cookie(SESSION_COOKIE, path="/", httponly=True, samesite="strict")
    return response


@router.post("/session/password", status_code=204, responses=refusals(401, 403, 400, 422, 429))
def new_password(body: NewPasswordIn, who: Newcomer, parts: Parts, request: Request) -> Response:
    """Choose a new password (the first thing to do with a one-time one); other sessions end."""
    change_own_password(parts.svc, parts.throttle, who, body.old_password, body.new_password, client_address(request))
    return Response(status_code=204)
