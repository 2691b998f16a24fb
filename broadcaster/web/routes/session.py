"""Signing in and out, choosing a password, and the language: the same accounts service as the API's
/api/v1/session (the throttle, the audit, the cookie's attributes), in forms.

The sign-in form has no session yet to take a CSRF token from, so it carries one of its own: a random
value in a cookie that only /login receives (SameSite=Strict) and in the form's `csrf_token` field; a
post whose two values differ is refused (`form_expired`). Another site can neither read that cookie nor
set it, so it cannot sign a browser into an account of its choosing (login CSRF); the gate's Origin
check refuses such a post first in every browser that sends Origin.
"""

from __future__ import annotations

import secrets
from typing import Annotated
from urllib.parse import quote

from fastapi import Form, Response
from starlette.concurrency import run_in_threadpool

from broadcaster.api.auth import SESSION_COOKIE, client_address, session_cookie
from broadcaster.errors import LoaError
from broadcaster.messages import LANGUAGES
from broadcaster.services.accounts import MIN_PASSWORD, change_own_password, same_secret, sign_in, sign_out
from broadcaster.web.page import LANG_COOKIE, Newcomer, Page, Redirect, Visitor, local_path
from broadcaster.web.routes import page_router

router = page_router()

FORM_COOKIE = "loa_login_form"
FORM_COOKIE_AGE_S = 3600
LANG_COOKIE_AGE_S = 400 * 86400  # the longest browsers keep a cookie
Field = Annotated[str, Form()]


def _login_form(page: Page, *, status: int = 200, error: str = "", username: str = "", next_: str = "/") -> Response:
    token = secrets.token_urlsafe(32)
    response = page.render(
        "login.html", status=status, error=error, username=username, next=local_path(next_), form_token=token
    )
    response.set_cookie(
        FORM_COOKIE,
        token,
        max_age=FORM_COOKIE_AGE_S,
        path="/login",
        httponly=True,
        samesite="strict",
        secure=page.svc.config.http.secure_cookies,
    )
    return response


@router.get("/login")
def login_form(page: Visitor, next: str = "/") -> Response:
    if page.who is not None and not page.who.must_change_password:
        raise Redirect(local_path(next))
    return _login_form(page, next_=next)


@router.post("/login")
async def login(
    page: Visitor, username: Field = "", password: Field = "", csrf_token: Field = "", next: Field = "/"
) -> Response:
    """Right: the session cookie, and on to `next` (or to /password with a one-time password). Wrong:
    the form again, saying why, with the name kept and nothing else changed."""
    svc = page.svc
    try:
        if not same_secret(csrf_token, page.request.cookies.get(FORM_COOKIE, "")):
            raise LoaError("form_expired", {}, status=403)
        done = await run_in_threadpool(
            sign_in, svc, page.parts.throttle, username, password, client_address(page.request)
        )
    except LoaError as exc:
        return _login_form(page, status=exc.status, error=page.message(exc), username=username[:64], next_=next)
    target = local_path(next)
    if done.principal.must_change_password:
        target = f"/password?next={quote(target, safe='')}" if target != "/" else "/password"
    response = page.redirect(target)
    max_age = int(svc.config.security.session_hours * 3600)
    response.set_cookie(**session_cookie(svc.config.http.secure_cookies, done.secret, max_age))
    response.delete_cookie(FORM_COOKIE, path="/login")
    return response


@router.post("/logout")
def logout(page: Newcomer) -> Response:
    """The session ends on the server, and the cookie is cleared."""
    if page.person.via == "session":
        sign_out(page.svc, page.person)
    response = page.redirect("/login?notice=signed_out")
    response.delete_cookie(SESSION_COOKIE, path="/", httponly=True, samesite="strict")
    return response


def _password_form(page: Page, *, status: int = 200, error: str = "", next_: str = "/") -> Response:
    return page.render(
        "password.html",
        status=status,
        error=error,
        next=local_path(next_),
        one_time=page.person.must_change_password,
        min_length=MIN_PASSWORD,
    )


@router.get("/password")
def password_form(page: Newcomer, next: str = "/") -> Response:
    return _password_form(page, next_=next)


@router.post("/password")
def change_password(
    page: Newcomer,
    old_password: Field = "",
    new_password: Field = "",
    new_password_again: Field = "",
    next: Field = "/",
) -> Response:
    """The old password must match (as for the API); the new one twice, so a typo does not lock its
    owner out. Other sessions end; this one goes on."""
    try:
        if new_password != new_password_again:
            raise LoaError("password_mismatch", {})
        change_own_password(
            page.svc, page.parts.throttle, page.person, old_password, new_password, client_address(page.request)
        )
    except LoaError as exc:
        return _password_form(page, status=exc.status, error=page.message(exc), next_=next)
    target = local_path(next)
    return page.redirect(f"{target}{'&' if '?' in target else '?'}notice=password_changed")


@router.get("/lang/{lang}")
def choose_language(page: Visitor, lang: str, next: str = "/") -> Response:
    """A link, not a form: the choice is the browser's (a cookie), nothing on the server changes."""
    response = page.redirect(local_path(next))
    if lang in LANGUAGES:
        response.set_cookie(LANG_COOKIE, lang, max_age=LANG_COOKIE_AGE_S, path="/", httponly=True, samesite="lax")
    return response
