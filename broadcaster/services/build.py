"""The services built from a validated Config; the daemon and the CLI build them the same way."""

from __future__ import annotations

from pathlib import Path

from broadcaster.config import Config
from broadcaster.db import Database
from broadcaster.services import Services
from broadcaster.services.audio import audio_pipeline
from broadcaster.services.lexicon import lexicon_source
from broadcaster.services.speech import default_choice
from broadcaster.services.zones import ensure_commune
from schedules.clock import Clock


def build_services(config: Config, clock: Clock, *, migrate: bool = False) -> Services:
    """`migrate`: bring a database behind the code's schema up to date (the daemon's start, when
    `Config.upgrade_on_start`); otherwise such a database is refused with `loa db upgrade` to run. A
    database loa never wrote to is created either way (Database.prepare)."""
    Path(config.general.data_dir).mkdir(mode=0o700, parents=True, exist_ok=True)  # private: see docs/security.md
    db = Database(config.database_url)
    try:
        db.prepare(upgrade=migrate)
    except BaseException:
        db.dispose()
        raise
    with db.session() as session:
        ensure_commune(session, config.general.commune)
    # The commune's lexicon is read for every render, so a reading fixed at run time is heard at once.
    svc = Services(db=db, audio=audio_pipeline(config, lexicon=lexicon_source(db, config)), clock=clock, config=config)
    svc.voices[default_choice(config)] = svc.audio  # the commune's voice is the pipeline just built
    return svc
