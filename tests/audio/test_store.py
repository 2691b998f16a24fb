from __future__ import annotations

import hashlib
import os
from pathlib import Path

import pytest

from audio.store import AudioStore


def put_bytes(store: AudioStore, data: bytes, key: str | None = None) -> str:
    src = store.new_tmp(".mp3")
    src.write_bytes(data)
    return store.put(src, ext="mp3", duration_ms=1000, engine="espeak", codec="mp3", key=key).sha256


def test_files_are_content_addressed_and_atomic(store: AudioStore) -> None:
    data = b"ID3" + os.urandom(1000)
    sha = put_bytes(store, data)
    assert sha == hashlib.sha256(data).hexdigest()
    path = store.path_for(sha)
    assert path.name == f"{sha}.mp3" and path.read_bytes() == data
    assert list(store.tmp_dir.iterdir()) == []  # the temp file was moved, not copied
    stored = store.open(sha)
    assert stored is not None and (stored.size, stored.duration_ms, stored.engine) == (1003, 1000, "espeak")
    assert put_bytes(store, data) == sha  # same bytes twice: one file


def test_unknown_and_malformed_shas(store: AudioStore) -> None:
    assert store.open("0" * 64) is None
    with pytest.raises(KeyError):
        store.path_for("0" * 64)
    for bad in ("../../etc/passwd", "A" * 64, "abc"):
        with pytest.raises(ValueError):
            store.open(bad)


def test_render_keys_survive_reopening(tmp_path: Path) -> None:
    first = AudioStore(tmp_path / "s")
    sha = put_bytes(first, b"ID3 audio", key="k1")
    first.close()
    again = AudioStore(tmp_path / "s")
    hit = again.lookup("k1")
    assert hit is not None and hit.sha256 == sha
    assert again.lookup("k2") is None
    hit.path.unlink()  # removed behind the store's back: treated as a miss, not a broken path
    assert again.lookup("k1") is None and again.open(sha) is None
    again.close()


def test_eviction_is_lru_and_never_touches_pinned(tmp_path: Path) -> None:
    store = AudioStore(tmp_path / "s", max_bytes=2500, grace_s=0)
    a, b, c, d = (put_bytes(store, bytes([i]) * 1000, key=f"k{i}") for i in range(4))
    store.open(a)  # a becomes the most recently used; b is now the oldest
    evicted = store.evict(pinned={b})
    assert evicted == [c, d]  # b is pinned; c then d are the least recently used
    assert store.open(b) is not None and store.open(a) is not None
    assert not (tmp_path / "s" / f"{c}.mp3").exists() and store.lookup("k2") is None
    assert store.total_bytes() == 2000


def test_eviction_may_stay_over_budget_rather_than_drop_pinned(tmp_path: Path) -> None:
    store = AudioStore(tmp_path / "s", max_bytes=100, grace_s=0)
    shas = [put_bytes(store, bytes([i]) * 1000) for i in range(3)]
    assert store.evict(pinned=shas) == []
    assert all(store.open(s) is not None for s in shas)


def test_recently_used_files_have_a_grace_period(tmp_path: Path) -> None:
    store = AudioStore(tmp_path / "s", max_bytes=100, grace_s=3600)
    put_bytes(store, b"x" * 1000)
    assert store.evict(pinned=()) == []


def test_stale_temp_files_are_swept(tmp_path: Path) -> None:
    store = AudioStore(tmp_path / "s")
    stale = store.new_tmp(".raw")
    stale.write_bytes(b"half a render")
    os.utime(stale, (0, 0))
    store.close()
    AudioStore(tmp_path / "s").close()
    assert not stale.exists()
