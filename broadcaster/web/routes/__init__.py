"""The desk's pages, one module per page or group of pages, each with a `router` made by
`page_router()` (desk.py mounts them)."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import HTMLResponse

from broadcaster.web.page import PageRoute


def page_router() -> APIRouter:
    """A router whose routes answer pages (refusals too) and stay out of the API's OpenAPI document."""
    return APIRouter(route_class=PageRoute, include_in_schema=False, default_response_class=HTMLResponse)
