"""What malloc keeps free after a bulletin goes back to the system (broadcaster/runtime/memory.py; the
load bench's memory goal, #15)."""

from __future__ import annotations

import json
import subprocess
import sys
import threading

import pytest

from broadcaster.runtime import memory
from tests.broadcaster.harness import ROOT, wait_for

# A bulletin's shape in small: threads each allocate thousands of mid-sized buffers (malloc's, not
# Python's small-object allocator), keep every tenth and free the rest, leaving the arenas full of holes.
# Then how many arenas malloc made (malloc_info's <heap> entries), and the RSS before and after the trim.
_CHILD = """
import ctypes, json, os, re, sys, tempfile, threading
sys.path.insert(0, {root!r})
from broadcaster.runtime import memory
limited = memory.limit_malloc_arenas() if {limit} else None
kept = []
together = threading.Barrier(8)
def burst():
    together.wait()  # eight threads alive at once: glibc gives each its own arena, up to its limit
    junk = [bytearray(600 + i % 2400) for i in range(12000)]
    kept.extend(junk[::10])
for _ in range(2):
    threads = [threading.Thread(target=burst) for _ in range(8)]
    for t in threads: t.start()
    for t in threads: t.join()
def rss():
    return int(next(l for l in open("/proc/self/status") if l.startswith("VmRSS")).split()[1]) / 1024
libc = ctypes.CDLL("libc.so.6")
libc.fopen.restype = ctypes.c_void_p
libc.fopen.argtypes = [ctypes.c_char_p, ctypes.c_char_p]
libc.malloc_info.argtypes = [ctypes.c_int, ctypes.c_void_p]
libc.fclose.argtypes = [ctypes.c_void_p]
path = tempfile.mktemp()
fp = libc.fopen(path.encode(), b"w")
libc.malloc_info(0, fp)
libc.fclose(fp)
arenas = len(re.findall(r'<heap nr=', open(path).read()))
os.unlink(path)
before = rss()
released = memory.release_free_memory() if {trim} else None
print(json.dumps({{"limited": limited, "arenas": arenas, "released": released, "before": before, "after": rss()}}))
"""


def _child(limit: bool, trim: bool) -> dict[str, float]:
    code = _CHILD.format(root=str(ROOT), limit=limit, trim=trim)
    env = {"PATH": "/usr/bin:/bin"}  # no MALLOC_ARENA_MAX from the caller's environment
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, env=env)
    assert out.returncode == 0, out.stderr
    result: dict[str, float] = json.loads(out.stdout)
    return result


@pytest.mark.skipif(memory._glibc() is None, reason="glibc only (mallopt, malloc_trim)")
def test_threads_share_two_arenas_and_freed_memory_goes_back_to_the_system() -> None:
    many = _child(limit=False, trim=False)
    few = _child(limit=True, trim=True)
    print(many, few)  # the figures, in the test's log
    assert many["arenas"] >= 8 and few["limited"] is True and few["arenas"] <= memory.MALLOC_ARENAS
    assert few["released"] is True and few["after"] < few["before"] - 5


def test_an_operators_arena_setting_is_left_alone(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MALLOC_ARENA_MAX", "4")
    assert memory.limit_malloc_arenas() is False


def test_the_trimmer_trims_until_stopped(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[int] = []

    def release() -> bool:
        calls.append(1)
        return True

    monkeypatch.setattr(memory, "release_free_memory", release)
    monkeypatch.setattr(memory, "_glibc", lambda: object())
    trimmer = memory.MemoryTrimmer(every_s=0.01)
    trimmer.start()
    wait_for(lambda: len(calls) >= 3, 10, "three trims")
    trimmer.stop()
    assert trimmer._thread is not None and not trimmer._thread.is_alive()
    assert not any(t.name == "malloc-trim" for t in threading.enumerate())
