"""Keeping the garbage collector out of a bulletin's way."""

from __future__ import annotations

import gc
import importlib

# Imported lazily by audio/ so that `loa` commands stay quick; a running daemon will render, so it
# loads them now, before the first officer waits for a render, and freezes them with the rest.
PRELOAD = ("scipy.signal", "scipy.ndimage")


def settle_memory() -> None:
    """Put what start-up built (modules, SQLAlchemy's metadata and compiled statements, about 170,000
    objects) out of the garbage collector's reach: it lives as long as the process, and every full
    collection scanned it again, holding the GIL for 70-110 ms in the middle of a bulletin's acks
    (bench/fanout.py). Collect first, so no start-up garbage is kept for good."""
    for name in PRELOAD:
        importlib.import_module(name)
    gc.collect()
    gc.freeze()
