"""Mounting the desk into the API's app: its static files and its page routers, behind the same gate."""

from __future__ import annotations

from fastapi import APIRouter, FastAPI
from fastapi.staticfiles import StaticFiles

from broadcaster.web.nav import page_paths
from broadcaster.web.page import STATIC_DIR, STATIC_PREFIX
from broadcaster.web.routes import (
    approvals,
    audit,
    broadcasts,
    compose,
    devices,
    feedback,
    feeds,
    home,
    lexicon,
    report,
    session,
    slogans,
    timeline,
    voices,
)
from broadcaster.web.routes import live as live_page

# One router per page or group of pages; a new page's router is added here.
ROUTERS: tuple[APIRouter, ...] = (
    session.router,
    home.router,
    timeline.router,
    devices.router,
    broadcasts.router,
    report.router,
    audit.router,
    live_page.router,
    compose.router,
    approvals.router,
    lexicon.router,
    slogans.router,
    feeds.router,
    feedback.router,
    voices.router,
)


def mount_desk(app: FastAPI) -> None:
    """The pages at /, /login, /timeline, ... and the files at /static/, on the app `create_app`
    made (so behind its gate: Host, Origin and who is asking are checked before any page runs)."""
    app.mount(STATIC_PREFIX, StaticFiles(directory=STATIC_DIR), name="static")
    app.state.desk_paths = page_paths(ROUTERS)  # what the menu may link to
    for router in ROUTERS:
        app.include_router(router)
