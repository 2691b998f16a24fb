"""The desk's menu: every page the officer may open, in the order they use them.

An entry is shown to a person whose role grants its permission, and only once a GET route with its
exact path is mounted by the desk (a router in desk.ROUTERS), so the menu already names the pages
other work adds (compose, approvals, live, lexicon, slogans) without ever linking to a page that is
not there.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from fastapi import APIRouter, FastAPI
from fastapi.routing import APIRoute

from broadcaster.services.accounts import Permission, Principal


@dataclass(frozen=True)
class NavEntry:
    key: str  # its words are i18n's `nav.<key>`
    path: str
    permission: Permission


NAV: tuple[NavEntry, ...] = (
    NavEntry("home", "/", "read"),
    NavEntry("compose", "/compose", "compose"),
    NavEntry("approvals", "/approvals", "read"),
    NavEntry("live", "/live", "compose"),
    NavEntry("timeline", "/timeline", "read"),
    NavEntry("devices", "/devices", "read"),
    NavEntry("feedback", "/feedback", "read"),  # what villagers said through the QR codes
    NavEntry("broadcasts", "/broadcasts", "read"),
    NavEntry("report", "/report", "read"),
    NavEntry("lexicon", "/lexicon", "compose"),
    NavEntry("slogans", "/slogans", "compose"),
    NavEntry("feeds", "/feeds", "compose"),
    NavEntry("audit", "/audit", "read"),
    NavEntry("voices", "/voices", "admin"),
)


@dataclass(frozen=True)
class NavLink:
    key: str
    path: str
    current: bool


def page_paths(routers: Iterable[APIRouter]) -> frozenset[str]:
    """The paths these routers answer a GET on (desk.mount_desk keeps them in `app.state.desk_paths`)."""
    return frozenset(
        r.path for router in routers for r in router.routes if isinstance(r, APIRoute) and "GET" in (r.methods or ())
    )


def nav_links(app: FastAPI, who: Principal | None, here: str) -> list[NavLink]:
    """The menu for this person on the page at `here`: the entry whose path is the longest prefix of it
    is the current one (a broadcast's deliveries, /broadcasts/7, are under "Đã phát")."""
    if who is None or who.must_change_password:
        return []
    mounted: frozenset[str] = getattr(app.state, "desk_paths", frozenset())
    shown = [e for e in NAV if e.path in mounted and who.may(e.permission)]
    current = max(
        (e.path for e in shown if here == e.path or (e.path != "/" and here.startswith(e.path + "/"))),
        key=len,
        default=None,
    )
    return [NavLink(e.key, e.path, e.path == current) for e in shown]
