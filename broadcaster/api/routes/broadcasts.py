"""What was sent: broadcasts (one per village and airing) and their per-device deliveries."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from broadcaster.api.deps import Lang, Svc
from broadcaster.api.schemas import BroadcastListed, DeliveryOut, refusals
from broadcaster.services.views import list_broadcasts, recent_deliveries

router = APIRouter(tags=["broadcasts"])


@router.get("/broadcasts", response_model=list[BroadcastListed], responses=refusals(422))
def read_broadcasts(svc: Svc, lang: Lang, limit: int = 50) -> list[dict[str, Any]]:
    """The latest broadcasts, newest first."""
    return list_broadcasts(svc, max(1, min(limit, 500)), lang)


@router.get("/deliveries", response_model=list[DeliveryOut], responses=refusals(422))
def read_deliveries(svc: Svc, lang: Lang, limit: int = 50) -> list[dict[str, Any]]:
    """The latest per-device outcomes."""
    return recent_deliveries(svc, max(1, min(limit, 500)), lang)
