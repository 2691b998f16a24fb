"""The audit log: every action by every person, newest first, a page at a time, one person's if asked."""

from __future__ import annotations

from typing import Annotated

from fastapi import Query, Response

from broadcaster.services.auditlog import audit_log
from broadcaster.web.page import Reader
from broadcaster.web.routes import page_router

router = page_router()
PER_PAGE = 50


@router.get("/audit")
def audit_page(
    page: Reader,
    number: Annotated[int, Query(alias="page", ge=1, le=1_000_000)] = 1,
    actor: Annotated[str, Query(max_length=100)] = "",
) -> Response:
    log = audit_log(page.svc, page=number, per_page=PER_PAGE, actor=actor or None)
    return page.render("audit.html", log=log, actor=actor)
