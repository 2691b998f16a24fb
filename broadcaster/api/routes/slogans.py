"""The LED boards' slogans (khẩu hiệu), shown in turn between broadcasts (broadcaster/services/slogans.py).

Everyone signed in reads; officers and admins change them, each change in the audit log.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from broadcaster.api.auth import Composer
from broadcaster.api.deps import Svc
from broadcaster.api.schemas import SloganEdit, SloganIn, SloganOut, refusals
from broadcaster.services.slogans import add_slogan, delete_slogan, edit_slogan, list_slogans

router = APIRouter(tags=["slogans"])


@router.get("/slogans", response_model=list[SloganOut])
def slogans(svc: Svc) -> list[dict[str, Any]]:
    """Every slogan, in the order the boards show them (inactive ones too, marked)."""
    return list_slogans(svc)


@router.post("/slogans", status_code=201, response_model=SloganOut, responses=refusals(400, 404, 422))
def add(body: SloganIn, svc: Svc, who: Composer) -> dict[str, Any]:
    return add_slogan(
        svc, body.text, zones=body.zones, active=body.active, order=body.order, actor=who.username, by=who
    )


@router.patch("/slogans/{slogan_id}", response_model=SloganOut, responses=refusals(400, 404, 422))
def change(slogan_id: int, body: SloganEdit, svc: Svc, who: Composer) -> dict[str, Any]:
    """Only the fields sent change (`zones: []`: every board)."""
    changes = {k: v for k, v in body.model_dump(exclude_unset=True).items() if v is not None}
    return edit_slogan(svc, slogan_id, changes, actor=who.username, by=who)


@router.delete("/slogans/{slogan_id}", response_model=SloganOut, responses=refusals(404, 422))
def remove(slogan_id: int, svc: Svc, who: Composer) -> dict[str, Any]:
    return delete_slogan(svc, slogan_id, actor=who.username, by=who)
