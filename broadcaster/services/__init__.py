"""What a person can do, whichever door they come through (CLI, HTTP API, web desk).

Each operation validates everything before it writes anything, writes in one transaction, and leaves an
audit entry naming the person. One module per subject: zones and devices, announcements, programmes and
bulletins, planning (rows to and from the pure planner), views, reports, audio housekeeping.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from audio import AudioPipeline
from broadcaster.config import Config
from broadcaster.db import Database
from schedules.clock import Clock


@dataclass
class Services:
    """The parts an operation needs, handed over by whoever built them (daemon or CLI)."""

    db: Database
    audio: AudioPipeline
    clock: Clock
    config: Config
    # Pipelines for voices other than the commune's, by choice (services/speech.py `pipeline_for`).
    voices: dict[Any, AudioPipeline] = field(default_factory=dict, repr=False, compare=False)
