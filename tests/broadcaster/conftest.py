"""Fixtures for the broadcaster: the shared parts built from a real config, on a real database."""

from __future__ import annotations

from pathlib import Path

from broadcaster.config import load_config
from broadcaster.services import Services
from broadcaster.services.build import build_services
from schedules.clock import Clock


def make_services(tmp_path: Path, database_url: str, clock: Clock, **env: str) -> Services:
    """Services as the daemon builds them; chimes off to keep renders short, `env` as LOA_* overrides."""
    environ = {
        "LOA_GENERAL_DATA_DIR": str(tmp_path / "data"),
        "LOA_DATABASE_URL": database_url,
        "LOA_SPEECH_CHIMES": "false",
        **env,
    }
    return build_services(load_config(None, environ=environ), clock)
