"""Is the daemon's API up, and which version does it speak."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from broadcaster.api import API_VERSION
from broadcaster.api.schemas import HealthOut

router = APIRouter(tags=["health"])


@router.get("/health", response_model=HealthOut)
def health() -> dict[str, Any]:
    return {"ok": True, "version": API_VERSION}
