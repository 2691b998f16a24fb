"""The news feeds page (/feeds, officers and admins): the feeds followed, each ok or failing with its
reason in the reader's language, what its last reading brought (drafts, articles skipped and why); add a
feed, stop following one, "read now". Every change is the feed service's (checked, audited under the
person); "read now" only queues it, and the daemon's poller (runtime/feeds.py) reads it within seconds,
so the page never waits on a provincial site. The drafts go to /approvals like any other."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Form, Path, Response
from starlette.concurrency import run_in_threadpool

from broadcaster.errors import LoaError
from broadcaster.services.feeds import DEFAULT_EVERY_MIN, add_feed, list_feeds, remove_feed, request_poll
from broadcaster.services.zones import list_zones
from broadcaster.web.page import Composer, Page
from broadcaster.web.routes import page_router

router = page_router()

FeedId = Annotated[int, Path(ge=1, le=2**31 - 1)]
Field = Annotated[str, Form()]
Zones = Annotated[list[str] | None, Form()]  # none ticked: the whole commune


def _page(page: Page, *, error: str = "", status: int = 200, typed: dict[str, Any] | None = None) -> Response:
    zones = sorted(list_zones(page.svc), key=lambda z: ({"commune": 0, "village": 1}.get(z["kind"], 2), z["name"]))
    names = {z["id"]: z["name"] for z in zones}
    feeds = [
        {**f, "zone_label": ", ".join(names.get(z, z) for z in f["zones"])}
        for f in list_feeds(page.svc, lang=page.lang)
    ]
    return page.render(
        "feeds.html",
        status=status,
        error=error,
        feeds=feeds,
        zones=[z for z in zones if z["kind"] != "commune"],
        typed=typed or {"url": "", "zones": [], "every": str(DEFAULT_EVERY_MIN)},
    )


@router.get("/feeds")
def feeds_page(page: Composer) -> Response:
    return _page(page)


@router.post("/feeds")
async def add(page: Composer, url: Field = "", zones: Zones = None, every: Field = "") -> Response:
    typed = {"url": url, "zones": zones or [], "every": every}
    try:
        minutes = int(every) if every.strip() else None
    except ValueError:
        minutes = -1  # refused by the service, with the allowed range
    try:
        made = await run_in_threadpool(
            lambda: add_feed(
                page.svc,
                url,
                zones=zones or None,
                every_min=minutes,
                actor=page.person.username,
                by=page.person,
                lang=page.lang,
            )
        )
    except LoaError as exc:
        return _page(page, error=page.message(exc), status=exc.status, typed=typed)
    return page.redirect(f"/feeds?notice=feed_added#feed-{made['id']}")


@router.post("/feeds/{feed_id}/poll")
async def poll(page: Composer, feed_id: FeedId) -> Response:
    try:
        await run_in_threadpool(lambda: request_poll(page.svc, feed_id, actor=page.person.username, by=page.person))
    except LoaError as exc:
        return _page(page, error=page.message(exc), status=exc.status)
    return page.redirect(f"/feeds?notice=feed_polling#feed-{feed_id}")


@router.post("/feeds/{feed_id}/delete")
async def delete(page: Composer, feed_id: FeedId) -> Response:
    try:
        await run_in_threadpool(lambda: remove_feed(page.svc, feed_id, actor=page.person.username, by=page.person))
    except LoaError as exc:
        return _page(page, error=page.message(exc), status=exc.status)
    return page.redirect("/feeds?notice=feed_removed")
