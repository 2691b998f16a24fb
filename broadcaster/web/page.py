"""What every page route is handed (`Page`), and how its answer is made: the template, the person's
language, the CSRF token, the redirects to the sign-in, and the error page.

A route asks for the person it needs with one of the annotated dependencies below (`Reader`,
`Composer`, `Approver`, `Admin`, `Newcomer`, `Visitor`). The dependency
- sends whoever is not signed in to /login (with `next` to come back), and whoever signed in with a
  one-time password to /password, since the gate (api/auth.py) answers 401 only under /api/v1;
- checks the role and, on a POST, the `csrf_token` field through the API's own `require()`, so the
  desk and the API refuse the same requests the same way;
- gives the route the services, the language (the `loa_lang` cookie, else Accept-Language) and
  `page.render(...)`.
Routes are `PageRoute`s: a `LoaError` (or a malformed query) becomes the error page in the person's
language with its 4xx status, and every page answer carries the security headers below.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from functools import cache
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import quote

from fastapi import Depends, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, RedirectResponse
from fastapi.routing import APIRoute
from fastapi.templating import Jinja2Templates
from jinja2 import Environment, FileSystemLoader, StrictUndefined, pass_context, select_autoescape
from jinja2.runtime import Context

from broadcaster.api.auth import principal_of, require
from broadcaster.api.deps import ApiParts
from broadcaster.errors import LoaError
from broadcaster.messages import LANGUAGES, pick_language
from broadcaster.services import Services
from broadcaster.services.accounts import Permission, Principal
from broadcaster.web.i18n import has, translate
from broadcaster.web.nav import nav_links
from schedules.clock import LOCAL_TZ, to_local

HERE = Path(__file__).parent
TEMPLATES_DIR = HERE / "templates"
STATIC_DIR = HERE / "static"
STATIC_PREFIX = "/static"
LANG_COOKIE = "loa_lang"

# Everything from this server and nothing inline: a script injected into a page (a title an officer
# typed, say) cannot run, and no page can be framed by another site. `blob:` media is for audio the
# page made itself (a preview, a recording). Page scripts go in static/, never in a template.
CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; media-src 'self' blob:; "
    "connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
)
PAGE_HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",  # a page holds the person's CSRF token and the commune's business
}


class Redirect(Exception):
    """Raised by a dependency or a route: the answer is a 303 to `url`."""

    def __init__(self, url: str) -> None:
        super().__init__(url)
        self.url = url


def local_path(target: str | None, default: str = "/") -> str:
    """`target` if it is a path on this site, else `default`: a `next` parameter must never send a
    person who just signed in to another site (an open redirect)."""
    if not target or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return default  # "//site" is another site to a browser, and so is "/\\site"
    return target


def language_of(request: Request) -> str:
    chosen = request.cookies.get(LANG_COOKIE, "")
    return chosen if chosen in LANGUAGES else pick_language(request.headers.get("accept-language"))


def here(request: Request) -> str:
    """The page's own path and query, for `next` and the language link."""
    return request.url.path + (f"?{request.url.query}" if request.url.query else "")


# ---------------------------------------------------------------- formatting, in the commune's time


def _aware(value: datetime | str) -> datetime:
    when = datetime.fromisoformat(value) if isinstance(value, str) else value
    return when if when.tzinfo else when.replace(tzinfo=LOCAL_TZ)


_FORMATS = {
    "datetime": "%H:%M %d/%m/%Y",
    "seconds": "%H:%M:%S %d/%m/%Y",
    "time": "%H:%M",
    "date": "%d/%m/%Y",
    "short": "%H:%M %d/%m",
}


@pass_context
def _local(context: Context, value: datetime | str | None, form: str = "datetime") -> str:
    """A stored instant (aware, or ISO 8601 as the services give it) in Asia/Ho_Chi_Minh; `day` is the
    weekday and date ("Thứ Tư 25/11/2026")."""
    if value is None or value == "":
        return ""
    when = to_local(_aware(value))
    if form == "day":
        return f"{translate(context['lang'], f'weekday.{when.weekday()}')} {when:%d/%m/%Y}"
    return when.strftime(_FORMATS[form])


@pass_context
def _ago(context: Context, value: datetime | str | None) -> str:
    """How long ago, by the services' clock (the page's `now`)."""
    if value is None or value == "":
        return ""
    seconds = max(0, int((context["now"] - _aware(value)).total_seconds()))
    lang = context["lang"]
    if seconds < 60:
        return translate(lang, "ago.now")
    if seconds < 3600:
        return translate(lang, "ago.minutes", n=seconds // 60)
    if seconds < 86400:
        return translate(lang, "ago.hours", n=seconds // 3600)
    return translate(lang, "ago.days", n=seconds // 86400)


_ISO_INSTANT = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d+)?)?([+-]\d{2}:\d{2}|Z)")


@pass_context
def _plain(context: Context, value: object) -> str:
    """A value of the audit log's detail as a person reads it: an instant in commune time, a list
    joined."""
    if isinstance(value, list | tuple):
        return ", ".join(str(_plain(context, v)) for v in value)
    if isinstance(value, str) and _ISO_INSTANT.fullmatch(value):
        return str(_local(context, value, "seconds"))
    return str(value)


def _ms(value: float | None) -> str:
    return "" if value is None else f"{value:+.1f}"


@cache
def fingerprint(path: Path) -> str:
    """A static file's version in its URL (`?v=`): the start of its sha256, read once."""
    return hashlib.sha256(path.read_bytes()).hexdigest()[:12]


def static_url(name: str) -> str:
    """/static/<name>?v=<its hash>: browsers may keep a file as long as it is the same file."""
    return f"{STATIC_PREFIX}/{name}?v={fingerprint(STATIC_DIR / name)}"


def _environment() -> Environment:
    env = Environment(
        loader=FileSystemLoader(TEMPLATES_DIR),
        autoescape=select_autoescape(["html"]),
        undefined=StrictUndefined,  # a misspelt variable fails the page (and its test), not silently
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters.update(local=_local, ago=_ago, ms=_ms, plain=_plain)
    env.globals.update(static_url=static_url)
    return env


TEMPLATES = Jinja2Templates(env=_environment())


def local_day(text: str | None, default: date) -> date:
    """A date from a query (`<input type="date">` sends 2026-11-25); `default` when it is empty."""
    if not text:
        return default
    if not re.fullmatch(r"\d{4}-\d{2}-\d{2}", text):
        raise LoaError("bad_date", {"text": text[:40]})
    try:
        return date.fromisoformat(text)
    except ValueError as exc:
        raise LoaError("bad_date", {"text": text[:40]}) from exc


def day_start(day: date) -> datetime:
    """Midnight of a commune day, as an aware instant."""
    return datetime.combine(day, time(0), LOCAL_TZ)


def week_of(day: date) -> date:
    """The Monday of `day`'s week, as Vietnamese calendars start it."""
    return day - timedelta(days=day.weekday())


# ---------------------------------------------------------------- the page


@dataclass
class Page:
    """What a page route works with. `who` is None only on the pages open to all (`Visitor`)."""

    request: Request
    parts: ApiParts
    who: Principal | None
    lang: str

    @property
    def svc(self) -> Services:
        return self.parts.svc

    @property
    def person(self) -> Principal:
        """The signed-in person (on every page but the `Visitor` ones)."""
        assert self.who is not None, "a page for visitors has nobody signed in"
        return self.who

    @property
    def csrf_token(self) -> str:
        """The value of every form's hidden `csrf_token` field (and of htmx's X-CSRF-Token header)."""
        return self.who.csrf_token if self.who is not None and self.who.via == "session" else ""

    @property
    def today(self) -> date:
        return to_local(self.svc.clock.now()).date()

    def t(self, key: str, **params: object) -> str:
        return translate(self.lang, key, **params)

    def message(self, exc: LoaError) -> str:
        return exc.message(self.lang)

    def context(self) -> dict[str, Any]:
        """What every template can use (base.html needs all of it)."""
        request = self.request
        notice = request.query_params.get("notice", "")
        return {
            "page": self,
            "who": self.who,
            "lang": self.lang,
            "other_lang": next(lang for lang in LANGUAGES if lang != self.lang),
            "t": self.t,
            "csrf_token": self.csrf_token,
            "nav": nav_links(request.app, self.who, request.url.path),
            "here": here(request),
            "commune": self.svc.config.general.commune,
            "now": self.svc.clock.now(),
            "notice": self.t(f"notice.{notice}") if notice and has(self.lang, f"notice.{notice}") else "",
        }

    def render(self, template: str, *, status: int = 200, **values: Any) -> HTMLResponse:
        response: HTMLResponse = TEMPLATES.TemplateResponse(
            self.request, template, {**self.context(), **values}, status_code=status
        )
        return response

    def redirect(self, url: str) -> RedirectResponse:
        """After a form is done (303: the browser GETs `url`, so a reload does not post it again)."""
        return RedirectResponse(url, status_code=303)

    def error(self, exc: LoaError) -> HTMLResponse:
        return self.render("error.html", status=exc.status, error=self.message(exc))


def sign_in_url(request: Request) -> str:
    return f"/login?next={quote(here(request), safe='')}"


def page_for(
    permission: Permission | None, *, signed_in: bool = True, before_new_password: bool = False
) -> Callable[[Request], Awaitable[Page]]:
    """A dependency handing the route its `Page` (see the module): `permission` is what the role must
    grant (None: anyone signed in); `signed_in=False` for the pages open to all."""
    check = require(permission, before_new_password=before_new_password)

    async def for_page(request: Request) -> Page:
        who = principal_of(request)
        page = Page(request, request.app.state.loa, who, language_of(request))
        if not signed_in:
            return page
        if who is None:
            raise Redirect(sign_in_url(request))
        if who.must_change_password and who.via == "session" and not before_new_password:
            raise Redirect(f"/password?next={quote(here(request), safe='')}")
        await check(request)  # the role, and on a POST the form's csrf_token
        return page

    return for_page


Visitor = Annotated[Page, Depends(page_for(None, signed_in=False))]
Newcomer = Annotated[Page, Depends(page_for(None, before_new_password=True))]  # the one-time password too
Reader = Annotated[Page, Depends(page_for("read"))]
Composer = Annotated[Page, Depends(page_for("compose"))]
Approver = Annotated[Page, Depends(page_for("approve"))]
Admin = Annotated[Page, Depends(page_for("admin"))]


def _malformed(exc: RequestValidationError) -> LoaError:
    fields = ", ".join(str(e["loc"][-1]) for e in exc.errors())
    return LoaError("invalid_request", {"fields": fields}, status=422)


class PageRoute(APIRoute):
    """A page's route: its refusals are pages, not JSON (see the module)."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def answer(request: Request) -> Response:
            try:
                response = await handler(request)
            except Redirect as go:
                response = RedirectResponse(go.url, status_code=303)
            except (LoaError, RequestValidationError) as exc:
                refusal = _malformed(exc) if isinstance(exc, RequestValidationError) else exc
                page = Page(request, request.app.state.loa, principal_of(request), language_of(request))
                response = page.error(refusal)
            response.headers.update(PAGE_HEADERS)
            return response

        return answer
