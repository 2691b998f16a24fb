"""Keeping the garbage collector out of a bulletin's way."""

from __future__ import annotations

import ctypes
import gc
import importlib
import os
import sys
import threading
import time

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


# ---------------------------------------------------------------- what malloc keeps after a bulletin

# glibc gives every thread that allocates an arena of its own, up to 8 per core, and keeps what is freed
# in it for the next allocation rather than giving it back. The daemon runs each dispatch on whichever of
# its timer's workers is free, so each bulletin's burst (thousands of rows, signed payloads, ack batches)
# grew another arena, and every arena kept its high-water mark: in bench/load.py (2,000 speakers, 40 items
# in 8 minutes) the free memory malloc held went from 3 to 120 MB while the live heap grew 10 MB, and the
# RSS by 12 MB a minute. With two arenas, the free pages given back every 15 s (and no re-sends of what paho
# still queues, broadcaster/dispatch/resend.py): 6 MB a minute while items aired, flat after, a third of it
# the ack writer's row cache filling up (broadcaster/dispatch/events.py _RowCache, at most 16 MB).
MALLOC_ARENAS = 2
# malloc_trim walks every free chunk, holding each arena's lock (a thread that allocates meanwhile waits):
# 1.7 ms median, 62 ms at most, over 38 calls in that run.
TRIM_EVERY_S = 15.0
_M_ARENA_MAX = -8  # <malloc.h>


def _glibc() -> ctypes.CDLL | None:
    """The C library, if it is glibc (mallopt, malloc_trim); None elsewhere (musl, macOS), where the
    daemon runs as before."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        libc = ctypes.CDLL("libc.so.6")
        libc.mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
        libc.malloc_trim.argtypes = [ctypes.c_size_t]
    except (OSError, AttributeError):
        return None
    return libc


def limit_malloc_arenas(arenas: int = MALLOC_ARENAS) -> bool:
    """At most `arenas` malloc arenas for threads started from now on: call it before they start. A
    MALLOC_ARENA_MAX set in the environment (an operator's choice) is left as it is."""
    libc = _glibc()
    if libc is None or "MALLOC_ARENA_MAX" in os.environ:
        return False
    return bool(libc.mallopt(_M_ARENA_MAX, arenas))


def release_free_memory() -> bool:
    """Give the pages malloc holds free back to the system (malloc_trim). True if some were."""
    libc = _glibc()
    return bool(libc.malloc_trim(0)) if libc is not None else False


class MemoryTrimmer:
    """Calls `release_free_memory` every TRIM_EVERY_S on a thread of its own (the call leaves the GIL to
    the others: ctypes releases it)."""

    def __init__(self, every_s: float = TRIM_EVERY_S) -> None:
        self.every_s = every_s
        self.longest_s = 0.0  # the longest call so far (malloc_trim walks every free chunk)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        if _glibc() is None:
            return
        self._thread = threading.Thread(target=self._run, name="malloc-trim", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def _run(self) -> None:
        while not self._stop.wait(self.every_s):
            began = time.perf_counter()
            release_free_memory()
            self.longest_s = max(self.longest_s, time.perf_counter() - began)
