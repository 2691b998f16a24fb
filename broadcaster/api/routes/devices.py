"""The devices: who is online, which coming airings an offline speaker will miss, and dropped messages."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from broadcaster.api.deps import Parts, Svc
from broadcaster.api.schemas import ClockWarningOut, DeviceOut, WarningOut
from broadcaster.services.devices import clock_warnings, list_devices, offline_warnings

router = APIRouter(tags=["devices"])


@router.get("/devices", response_model=list[DeviceOut])
def read_devices(svc: Svc) -> list[dict[str, Any]]:
    return list_devices(svc)


@router.get("/warnings", response_model=list[WarningOut])
def read_warnings(svc: Svc) -> list[dict[str, Any]]:
    """Airings in the next 30 minutes in villages where a speaker is offline."""
    return offline_warnings(svc)


@router.get("/warnings/clocks", response_model=list[ClockWarningOut])
def read_clock_warnings(svc: Svc) -> list[dict[str, Any]]:
    """Airings in the next 30 minutes in villages where an online speaker's clock is off by more than
    `[dispatch] clock_warn_ms` (what the desk's home page and `loa status` warn about)."""
    return clock_warnings(svc)


@router.get("/metrics", response_model=dict[str, int])
def read_metrics(parts: Parts) -> dict[str, int]:
    """Counters of device messages that were dropped, by kind."""
    return parts.metrics()
