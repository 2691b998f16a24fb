"""Content-addressed audio files with an LRU budget.

Files are named by the sha256 of their bytes, so a file that exists is complete and
identical wherever it is copied (speakers can verify what they download). A small
sqlite index beside them remembers metadata, recency, and which render key produced
which file, so that rendering the same item twice costs nothing.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import sqlite3
import threading
import time
import uuid
from collections.abc import Collection, Iterator
from dataclasses import dataclass
from pathlib import Path

_SHA = re.compile(r"^[0-9a-f]{64}$")
_SCHEMA = """
CREATE TABLE IF NOT EXISTS audio (
    sha256 TEXT PRIMARY KEY, ext TEXT NOT NULL, size INTEGER NOT NULL, duration_ms INTEGER NOT NULL,
    engine TEXT NOT NULL, codec TEXT NOT NULL, created_at REAL NOT NULL,
    used_at REAL NOT NULL, used_seq INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS audio_lru ON audio(used_seq);
CREATE TABLE IF NOT EXISTS render_key (
    key TEXT PRIMARY KEY, sha256 TEXT NOT NULL REFERENCES audio(sha256) ON DELETE CASCADE
);
"""


@dataclass(frozen=True)
class StoredAudio:
    sha256: str
    path: Path
    size: int
    duration_ms: int
    engine: str
    codec: str


def file_sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _check_sha(sha256: str) -> str:
    """Shas arrive from the web and MQTT; refuse anything that could become a path trick."""
    if not _SHA.match(sha256):
        raise ValueError(f"not a sha256: {sha256!r}")
    return sha256


class AudioStore:
    """Audio files under `root`, evicted least-recently-used beyond `max_bytes`.

    `grace_s` protects freshly rendered or played files from eviction, because the
    caller may not have pinned them (scheduled them) yet.
    """

    def __init__(
        self, root: Path, max_bytes: int = 2 * 1024**3, *, grace_s: float = 600.0, shared: bool = False
    ) -> None:
        self.root = Path(root)
        self.max_bytes = max_bytes
        self.grace_s = grace_s
        self.tmp_dir = self.root / "tmp"
        self.tmp_dir.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._db = sqlite3.connect(self.root / "index.sqlite3", timeout=30, check_same_thread=False,
                                   isolation_level=None)
        # WAL's shared memory works between processes of one machine only; a folder that daemons on
        # several machines mount (NFS) needs the rollback journal and the file locks it takes.
        self._db.execute("PRAGMA journal_mode=DELETE" if shared else "PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA foreign_keys=ON")
        self._db.executescript(_SCHEMA)
        self._sweep_tmp()

    def close(self) -> None:
        with self._lock:
            self._db.close()

    @contextlib.contextmanager
    def _tx(self) -> Iterator[sqlite3.Connection]:
        """One write transaction; IMMEDIATE so two processes never interleave read-then-write."""
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                yield self._db
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")

    def _sweep_tmp(self, older_than_s: float = 3600.0) -> None:
        """Remove leftovers of renders that died mid-way (other processes may be rendering now)."""
        cutoff = time.time() - older_than_s
        for leftover in self.tmp_dir.iterdir():
            with contextlib.suppress(OSError):
                if leftover.stat().st_mtime < cutoff and leftover.is_file():
                    leftover.unlink()

    def _row_to_audio(self, row: tuple[str, str, int, int, str, str]) -> StoredAudio:
        sha, ext, size, duration_ms, engine, codec = row
        return StoredAudio(sha, self.root / f"{sha}.{ext}", size, duration_ms, engine, codec)

    def _touch(self, db: sqlite3.Connection, sha256: str) -> None:
        db.execute(
            "UPDATE audio SET used_at = ?, used_seq = (SELECT COALESCE(MAX(used_seq), 0) + 1 FROM audio) "
            "WHERE sha256 = ?", (time.time(), sha256))

    def _get(self, db: sqlite3.Connection, sha256: str) -> StoredAudio | None:
        row = db.execute("SELECT sha256, ext, size, duration_ms, engine, codec FROM audio WHERE sha256 = ?",
                         (sha256,)).fetchone()
        if row is None:
            return None
        audio = self._row_to_audio(row)
        if not audio.path.exists():  # deleted behind our back: forget it
            db.execute("DELETE FROM audio WHERE sha256 = ?", (sha256,))
            return None
        self._touch(db, sha256)
        return audio

    def path_for(self, sha256: str) -> Path:
        """Where the bytes of `sha256` live; KeyError if the store does not know it."""
        _check_sha(sha256)
        with self._lock:
            row = self._db.execute("SELECT ext FROM audio WHERE sha256 = ?", (sha256,)).fetchone()
        if row is None:
            raise KeyError(sha256)
        return self.root / f"{sha256}.{row[0]}"

    def open(self, sha256: str) -> StoredAudio | None:
        """Metadata of a stored file, marking it recently used; None if absent."""
        _check_sha(sha256)
        with self._tx() as db:
            return self._get(db, sha256)

    def lookup(self, key: str) -> StoredAudio | None:
        """The file a render key produced before, if it is still here."""
        with self._tx() as db:
            row = db.execute("SELECT sha256 FROM render_key WHERE key = ?", (key,)).fetchone()
            return self._get(db, row[0]) if row else None

    def put(self, src: Path, *, ext: str, duration_ms: int, engine: str, codec: str,
            key: str | None = None) -> StoredAudio:
        """Move a finished file into the store under its content hash (atomic rename).

        `src` must be on the store's filesystem (use `tmp_dir`); it is consumed.
        """
        sha = file_sha256(src)
        final = self.root / f"{sha}.{ext}"
        size = src.stat().st_size
        now = time.time()
        with self._tx() as db:  # rename inside the transaction so a concurrent evict cannot interleave
            os.replace(src, final)
            db.execute(
                "INSERT INTO audio (sha256, ext, size, duration_ms, engine, codec, created_at, used_at,"
                " used_seq) VALUES (?, ?, ?, ?, ?, ?, ?, ?, 0) ON CONFLICT(sha256) DO NOTHING",
                (sha, ext, size, duration_ms, engine, codec, now, now))
            self._touch(db, sha)
            if key is not None:
                db.execute("INSERT OR REPLACE INTO render_key (key, sha256) VALUES (?, ?)", (key, sha))
            audio = self._get(db, sha)
        assert audio is not None
        return audio

    def discard(self, sha256: str) -> bool:
        """Remove one file now, whatever the budget: the caller knows nothing will play it (its request
        was refused after rendering). True if it was here."""
        _check_sha(sha256)
        with self._tx() as db:
            row = db.execute("SELECT ext FROM audio WHERE sha256 = ?", (sha256,)).fetchone()
            if row is None:
                return False
            with contextlib.suppress(FileNotFoundError):
                (self.root / f"{sha256}.{row[0]}").unlink()
            db.execute("DELETE FROM render_key WHERE sha256 = ?", (sha256,))
            db.execute("DELETE FROM audio WHERE sha256 = ?", (sha256,))
        return True

    def total_bytes(self) -> int:
        with self._lock:
            return int(self._db.execute("SELECT COALESCE(SUM(size), 0) FROM audio").fetchone()[0])

    def evict(self, pinned: Collection[str]) -> list[str]:
        """Delete least-recently-used files until the store fits in `max_bytes`.

        Pinned shas (audio still scheduled) and files used within `grace_s` are never
        removed, even if that leaves the store over budget.
        """
        keep = set(pinned)
        evicted: list[str] = []
        with self._tx() as db:
            total = int(db.execute("SELECT COALESCE(SUM(size), 0) FROM audio").fetchone()[0])
            if total <= self.max_bytes:
                return []
            rows = db.execute("SELECT sha256, ext, size, used_at FROM audio ORDER BY used_seq").fetchall()
            cutoff = time.time() - self.grace_s
            for sha, ext, size, used_at in rows:
                if total <= self.max_bytes:
                    break
                if sha in keep or used_at > cutoff:
                    continue
                with contextlib.suppress(FileNotFoundError):
                    (self.root / f"{sha}.{ext}").unlink()
                db.execute("DELETE FROM audio WHERE sha256 = ?", (sha,))
                total -= size
                evicted.append(sha)
        return evicted

    def new_tmp(self, suffix: str = "") -> Path:
        return self.tmp_dir / f"{uuid.uuid4().hex}{suffix}"
