"""The public pages, feeds and feedback form (see the package), and how they are answered: HTML with
no script, cacheable by ETag and Last-Modified, refusals as pages in the visitor's language."""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from datetime import datetime
from email.utils import format_datetime, parsedate_to_datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote

from fastapi import APIRouter, FastAPI, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, RedirectResponse
from fastapi.routing import APIRoute
from fastapi.staticfiles import StaticFiles
from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape
from starlette.concurrency import run_in_threadpool

from broadcaster.api.limits import BodyLimit
from broadcaster.errors import LoaError
from broadcaster.messages import pick_language
from broadcaster.services import Services
from broadcaster.services.feedback import (
    CATEGORIES,
    MAX_TEXT_CHARS,
    FeedbackLimiter,
    QrTarget,
    address_hash,
    resolve_qr,
    submit_feedback,
)
from broadcaster.services.listen import AiredItem, aired_item, aired_items, village, villages
from broadcaster.web.i18n import translate
from broadcaster.web.page import TEMPLATES, fingerprint
from broadcaster.web.public.feed import podcast

HERE = Path(__file__).parent
STATIC_DIR = HERE / "static"
STATIC_PREFIX = "/s"
GET = ["GET", "HEAD"]
MAX_BODY_KB = 16  # the form: 1,000 characters of Vietnamese percent-encoded, a phone number, a choice
HONEYPOT = "website"  # the field people never see (public.css hides it); a robot fills it
EXCERPT_CHARS = 400  # a list shows this much of a text; its own page shows all of it

# Nothing runs in these pages and nothing comes from elsewhere: no script at all, the stylesheet and
# the audio from this listener.
CSP = (
    "default-src 'none'; style-src 'self'; img-src 'self' data:; media-src 'self'; form-action 'self'; "
    "base-uri 'none'; frame-ancestors 'none'"
)
HEADERS = {"Content-Security-Policy": CSP, "X-Content-Type-Options": "nosniff", "Referrer-Policy": "same-origin"}
CACHE = "public, max-age=60"  # a minute: a bulletin that just aired shows soon, a crowd costs one render a minute


@dataclass
class PublicParts:
    svc: Services
    limiter: FeedbackLimiter


def parts_of(request: Request) -> PublicParts:
    found: PublicParts = request.app.state.public
    return found


def mount_public(app: FastAPI, svc: Services) -> None:
    """The villagers' pages on `app` (the audio listener's): its routes, its stylesheet, the form's
    body limit and its flood counter."""
    v = svc.config.villagers
    app.state.public = PublicParts(svc, FeedbackLimiter(svc.clock, v.feedback_per_address, v.feedback_per_qr))
    app.mount(STATIC_PREFIX, StaticFiles(directory=STATIC_DIR), name="public-static")
    app.include_router(router)
    small = svc.config.http.model_copy(update={"max_body_kb": MAX_BODY_KB})
    app.add_middleware(BodyLimit, http=small)  # a larger body is refused on its Content-Length, unread


# ---------------------------------------------------------------- rendering


def static_url(name: str) -> str:
    return f"{STATIC_PREFIX}/{name}?v={fingerprint(STATIC_DIR / name)}"


def _environment() -> Environment:
    env = Environment(
        loader=FileSystemLoader(HERE / "templates"),
        autoescape=select_autoescape(["html"]),
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["local"] = TEMPLATES.env.filters["local"]  # the desk's: an instant in commune time
    env.globals.update(static_url=static_url)
    return env


ENV = _environment()


def _lang(request: Request) -> str:
    return pick_language(request.headers.get("accept-language"))


def render(request: Request, template: str, **values: Any) -> str:
    lang = _lang(request)
    svc = parts_of(request).svc

    def t(key: str, **params: object) -> str:
        return translate(lang, key, **params)

    return ENV.get_template(template).render(lang=lang, t=t, commune=svc.config.general.commune, **values)


def _http_date(when: datetime) -> str:
    return format_datetime(when.replace(microsecond=0), usegmt=True)


def cached(request: Request, body: str, media_type: str, last_modified: datetime | None) -> Response:
    """A page or feed a cache may keep for a minute and then revalidate: its ETag is its bytes' hash
    (so the pages show no "minutes ago", which would change them every minute), a conditional GET of
    an unchanged one is a 304 without a body."""
    data = body.encode("utf-8")
    etag = '"' + hashlib.sha256(data).hexdigest()[:32] + '"'
    headers = {"ETag": etag, "Cache-Control": CACHE, "Vary": "Accept-Language"}
    if last_modified is not None:
        headers["Last-Modified"] = _http_date(last_modified)
    if _not_modified(request, etag, last_modified):
        return Response(status_code=304, headers=headers)
    return Response(data, media_type=media_type, headers=headers)  # for a HEAD the server sends no body


def _not_modified(request: Request, etag: str, last_modified: datetime | None) -> bool:
    tags = request.headers.get("if-none-match")
    if tags is not None:
        return etag in [t.strip().removeprefix("W/") for t in tags.split(",")] or tags.strip() == "*"
    since = request.headers.get("if-modified-since")
    if since and last_modified is not None:
        try:
            return last_modified.replace(microsecond=0) <= parsedate_to_datetime(since)
        except (TypeError, ValueError):
            return False
    return False


def _newest(items: list[AiredItem]) -> datetime | None:
    return max((i.last_aired for i in items), default=None)


class PublicRoute(APIRoute):
    """Refusals are pages in the visitor's language; every answer carries the headers above."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def answer(request: Request) -> Response:
            try:
                response = await handler(request)
            except (LoaError, RequestValidationError) as exc:
                refusal = exc if isinstance(exc, LoaError) else LoaError("not_found", {}, status=404)
                html = render(request, "error.html", error=refusal.message(_lang(request)))
                response = HTMLResponse(html, status_code=refusal.status, headers={"Cache-Control": "no-store"})
            response.headers.update(HEADERS)
            return response

        return answer


router = APIRouter(route_class=PublicRoute, include_in_schema=False)


# ---------------------------------------------------------------- listen again


def _shown(item: AiredItem, lang: str) -> dict[str, Any]:
    long = len(item.text) > EXCERPT_CHARS
    return {
        "item": item,
        "excerpt": (item.text[:EXCERPT_CHARS].rsplit(" ", 1)[0] + "…") if long else item.text,
        "long": long,
    }


@router.api_route("/", methods=GET)
def root() -> Response:
    return RedirectResponse("/nghe-lai", status_code=303)


@router.api_route("/nghe-lai", methods=GET)
def commune_page(request: Request) -> Response:
    svc = parts_of(request).svc
    items = aired_items(svc)
    lang = _lang(request)
    html = render(
        request, "listen.html", village=None, villages=villages(svc), items=[_shown(i, lang) for i in items],
        feed="/nghe-lai/podcast.xml", days=svc.config.villagers.listen_days,
    )  # fmt: skip
    return cached(request, html, "text/html; charset=utf-8", _newest(items))


@router.api_route("/nghe-lai/podcast.xml", methods=GET)
def commune_feed(request: Request) -> Response:
    svc = parts_of(request).svc
    items = aired_items(svc)
    xml = podcast(svc, _base(request), None, items, "/nghe-lai/podcast.xml", "/nghe-lai")
    return cached(request, xml, "application/rss+xml; charset=utf-8", _newest(items))


@router.api_route("/nghe-lai/{village_id}", methods=GET)
def village_page(request: Request, village_id: str) -> Response:
    svc = parts_of(request).svc
    found = village(svc, village_id)
    if found is None:
        raise LoaError("not_found.village", {"zone": village_id[:64]}, status=404)
    items = aired_items(svc, village_id)
    lang = _lang(request)
    html = render(
        request, "listen.html", village=found, villages=villages(svc), items=[_shown(i, lang) for i in items],
        feed=f"/nghe-lai/{quote(village_id)}/podcast.xml", days=svc.config.villagers.listen_days,
    )  # fmt: skip
    return cached(request, html, "text/html; charset=utf-8", _newest(items))


@router.api_route("/nghe-lai/{village_id}/podcast.xml", methods=GET)
def village_feed(request: Request, village_id: str) -> Response:
    svc = parts_of(request).svc
    found = village(svc, village_id)
    if found is None:
        raise LoaError("not_found.village", {"zone": village_id[:64]}, status=404)
    items = aired_items(svc, village_id)
    path = f"/nghe-lai/{quote(village_id)}"
    xml = podcast(svc, _base(request), found, items, f"{path}/podcast.xml", path)
    return cached(request, xml, "application/rss+xml; charset=utf-8", _newest(items))


@router.api_route("/tin/{item_id}", methods=GET)
def item_page(request: Request, item_id: int) -> Response:
    svc = parts_of(request).svc
    item = aired_item(svc, item_id) if 0 < item_id < 2**63 else None
    if item is None:
        raise LoaError("not_found.listen", {}, status=404)
    html = render(request, "item.html", item=item)
    return cached(request, html, "text/html; charset=utf-8", item.last_aired)


def _base(request: Request) -> str:
    """The absolute address feeds link to: the configured public one, else the one the request used."""
    config = parts_of(request).svc.config
    return (config.villagers.public_url or config.http.audio_url or str(request.base_url)).rstrip("/")


# ---------------------------------------------------------------- say what you heard


def _form(
    request: Request, target: QrTarget, *, status: int = 200, error: str = "", sent: bool = False,
    values: dict[str, str] | None = None, headers: dict[str, str] | None = None,
) -> Response:  # fmt: skip
    html = render(
        request, "feedback.html", target=target, categories=CATEGORIES, error=error, sent=sent,
        values=values or {}, max_text=MAX_TEXT_CHARS, honeypot=HONEYPOT, action=request.url.path,
        retention=parts_of(request).svc.config.villagers.feedback_retention_days,
    )  # fmt: skip
    return HTMLResponse(html, status_code=status, headers={"Cache-Control": "no-store", **(headers or {})})


@router.get("/y-kien/{kind}/{target}/{token}")
def feedback_form(request: Request, kind: str, target: str, token: str) -> Response:
    found = resolve_qr(parts_of(request).svc, kind, target, token)
    return _form(request, found, sent=request.query_params.get("da-gui") == "1")


@router.post("/y-kien/{kind}/{target}/{token}")
async def feedback_send(request: Request, kind: str, target: str, token: str) -> Response:
    """The one write of this face. The token is checked before anything else, the address and the
    code are counted against the flood limits, and only then is the form read and stored."""
    parts = parts_of(request)
    svc = parts.svc
    sender = address_hash(svc.config, request.client.host if request.client else "")
    try:
        found = await run_in_threadpool(resolve_qr, svc, kind, target, token)
    except LoaError:
        parts.limiter.take(sender, None)  # guessing tokens costs the guesser their hour too
        raise
    form = await request.form()
    values = {k: str(form.get(k) or "") for k in ("category", "text", "phone", HONEYPOT)}
    try:
        parts.limiter.take(sender, f"{found.kind}:{found.id}")
        await run_in_threadpool(
            submit_feedback, svc, found, values["category"], values["text"], values["phone"],
            client_hash=sender, honeypot=values[HONEYPOT],
        )  # fmt: skip
    except LoaError as exc:
        minutes = exc.params.get("minutes")
        headers = {"Retry-After": str(int(minutes) * 60)} if exc.status == 429 and minutes else None
        values[HONEYPOT] = ""
        return _form(request, found, status=exc.status, error=exc.message(_lang(request)), values=values,
                     headers=headers)  # fmt: skip
    return RedirectResponse(f"{request.url.path}?da-gui=1", status_code=303)
