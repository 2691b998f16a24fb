"""`loa backup` and `loa restore`: the database, the audio store and the daemon's keys in one archive.

What a commune needs to come back after a lost disk: the records and the plan (the database), the audio
they name (the audio store), and the keys its speakers already trust and log in with (the signing key and
the daemon's broker secret in `keys/`, the provisioned devices' files, the broker's port). Left out:
what the next start makes again (the lock, the broker's message store, whose queued commands the outbox
re-sends anyway, the simulated commune, the audio store's temporary files).

Consistent while the daemon runs: SQLite files (the database and the audio store's index) are copied with
SQLite's online backup API, a snapshot of one moment, never a file copied while a page is being written;
PostgreSQL with `pg_dump` (one snapshot transaction), its password passed in the environment, never on a
command line others can read in `ps`. The database is copied first and the audio after, so every file the
copied database names is there: the store never evicts audio still planned.

The archive (a tar file: `manifest.json`, `database.sqlite3` or `database.pgdump`, `data/`, `audio/`) is
written beside its destination under a temporary name, owner-only (0600: it holds the signing key and the
devices' passwords), synced and renamed: a destination either does not exist or holds a whole archive.

`restore` goes into an empty place only (no data folder or an empty one, no audio folder or an empty one, a
SQLite file that does not exist or a PostgreSQL schema without tables): it never merges into or overwrites a
commune's data. The schema comes back at the archive's revision; a newer loa migrates it at its start
(`loa db upgrade` in a cluster).
"""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
import subprocess
import tarfile
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import create_engine, text
from sqlalchemy.engine import URL, make_url

from broadcaster.config import Config
from broadcaster.errors import LoaError

FORMAT = 1
MANIFEST = "manifest.json"
SQLITE_COPY = "database.sqlite3"
PG_COPY = "database.pgdump"
# Not kept (see the module): relative to the data folder, or a file name anywhere under it
SKIP_IN_DATA = ("daemon.lock", "sim", "fleet", "broker/mosquitto.db", "broker/mosquitto.pid", "broker/mosquitto.log")
SQLITE_SIDES = ("-wal", "-shm", "-journal")
AUDIO_INDEX = "index.sqlite3"


@dataclass(frozen=True)
class BackupInfo:
    path: Path
    database: str  # sqlite | postgresql
    revision: str | None
    files: int
    bytes: int


def _sqlite_path(url: URL) -> Path | None:
    return Path(url.database).resolve() if url.database and url.database != ":memory:" else None


def _kind(url: URL) -> str:
    return "sqlite" if url.get_backend_name() == "sqlite" else "postgresql"


def _sqlite_copy(source: Path, target: Path) -> None:
    """A snapshot of one moment of a database another process may be writing (SQLite's backup API)."""
    src = sqlite3.connect(f"file:{source}?mode=ro", uri=True, timeout=30)
    dst = sqlite3.connect(target)
    try:
        with dst:
            src.backup(dst)
    finally:
        dst.close()
        src.close()


def _libpq_env(url: URL) -> dict[str, str]:
    """The connection as libpq's environment: the password never on a command line."""
    env = dict(os.environ)
    for key, value in (("PGHOST", url.host), ("PGPORT", url.port), ("PGUSER", url.username),
                       ("PGPASSWORD", url.password), ("PGDATABASE", url.database)):  # fmt: skip
        if value:
            env[key] = str(value)
    options = url.query.get("options")
    if options:
        env["PGOPTIONS"] = options if isinstance(options, str) else " ".join(options)
    return env


def _pg_tool(name: str) -> str:
    found = shutil.which(name)
    if found is None:
        raise LoaError("backup_tool_missing", {"tool": name})
    return found


def _run(tool: str, args: list[str], env: dict[str, str]) -> None:
    done = subprocess.run([_pg_tool(tool), *args], env=env, capture_output=True, text=True, timeout=3600)
    if done.returncode != 0:
        raise LoaError("backup_tool_failed", {"tool": tool, "detail": done.stderr.strip()[-500:]})


def _pg_schema_and_tables(url: URL) -> tuple[str, int]:
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            schema = str(conn.scalar(text("SELECT current_schema()")))
            tables = conn.scalar(
                text("SELECT count(*) FROM information_schema.tables WHERE table_schema = :s"), {"s": schema}
            )
        return schema, int(tables or 0)
    finally:
        engine.dispose()


def _revision(url: URL) -> str | None:
    from broadcaster.db.migrations import current_revision

    engine = create_engine(url)
    try:
        return current_revision(engine)
    finally:
        engine.dispose()


def _skipped(relative: Path) -> bool:
    text_path = relative.as_posix()
    return any(text_path == s or text_path.startswith(s + "/") for s in SKIP_IN_DATA)


def _files(root: Path, skip: list[Path]) -> list[Path]:
    """Every regular file under `root`, relative, but those skipped and SQLite's own side files."""
    left_out = {p.resolve() for p in skip}
    out = []
    for path in sorted(root.rglob("*")):
        if not path.is_file() or path.is_symlink() or path.resolve() in left_out:
            continue
        if any(path.name.endswith(side) for side in SQLITE_SIDES):
            continue
        out.append(path.relative_to(root))
    return out


@contextmanager
def _written_whole(dest: Path) -> Iterator[Path]:
    """A temporary file beside `dest`, owner-only, renamed to `dest` once whole (and removed if not)."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(prefix=f".{dest.name}.", suffix=".partial", dir=dest.parent)
    os.close(fd)  # mkstemp made it 0600
    partial = Path(name)
    try:
        yield partial
        with partial.open("rb") as fh:
            os.fsync(fh.fileno())
        partial.replace(dest)
        dirfd = os.open(dest.parent, os.O_RDONLY)
        try:
            os.fsync(dirfd)
        finally:
            os.close(dirfd)
    finally:
        partial.unlink(missing_ok=True)


def backup(config: Config, dest: Path, *, now: datetime | None = None) -> BackupInfo:
    """Write the archive (see the module) to `dest`, or into `dest` when it is a folder."""
    made = (now or datetime.now(UTC)).astimezone(UTC)
    if dest.is_dir():
        dest = dest / f"loa-backup-{made:%Y%m%d-%H%M%S}.tar"
    if dest.exists():
        raise LoaError("backup_exists", {"path": str(dest)})
    dest.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    url = make_url(config.database_url)
    kind = _kind(url)
    data = Path(config.general.data_dir).resolve()
    audio = Path(config.audio_dir).resolve()
    db_file = _sqlite_path(url) if kind == "sqlite" else None
    manifest: dict[str, object] = {
        "format": FORMAT, "created_at": made.isoformat(), "database": kind, "revision": _revision(url),
        "commune": config.general.commune,
    }  # fmt: skip
    with tempfile.TemporaryDirectory(prefix="loa-backup-", dir=dest.parent) as staging_name:
        staging = Path(staging_name)
        if kind == "sqlite":
            assert db_file is not None
            _sqlite_copy(db_file, staging / SQLITE_COPY)
            database_member = SQLITE_COPY
        else:
            schema, _ = _pg_schema_and_tables(url)
            manifest["schema"] = schema
            _run("pg_dump", ["--format=custom", "--no-owner", "--no-privileges", f"--schema={schema}",
                             f"--file={staging / PG_COPY}"], _libpq_env(url))  # fmt: skip
            database_member = PG_COPY
        index = audio / AUDIO_INDEX
        if index.exists():
            _sqlite_copy(index, staging / AUDIO_INDEX)
        skip = [p for p in (db_file, index, audio / "tmp") if p is not None]
        data_files = [f for f in _files(data, skip) if not _skipped(f) and not (data / f).is_relative_to(audio)]
        audio_files = [f for f in _files(audio, skip) if not f.as_posix().startswith("tmp/")] if audio.is_dir() else []
        manifest["files"] = len(data_files) + len(audio_files)
        (staging / MANIFEST).write_text(json.dumps(manifest, ensure_ascii=False, indent=1), encoding="utf-8")
        with _written_whole(dest) as partial, tarfile.open(partial, "w") as tar:
            tar.add(staging / MANIFEST, MANIFEST)
            tar.add(staging / database_member, database_member)
            if (staging / AUDIO_INDEX).exists():
                tar.add(staging / AUDIO_INDEX, f"audio/{AUDIO_INDEX}")
            for f in data_files:
                _add_if_still_there(tar, data / f, f"data/{f.as_posix()}")
            for f in audio_files:
                _add_if_still_there(tar, audio / f, f"audio/{f.as_posix()}")
    revision = manifest["revision"]
    return BackupInfo(dest, kind, str(revision) if revision else None, len(data_files) + len(audio_files),
                      dest.stat().st_size)  # fmt: skip


def _add_if_still_there(tar: tarfile.TarFile, path: Path, name: str) -> None:
    """An audio file evicted since it was listed (unplanned audio only) is simply not in the archive."""
    with suppress(FileNotFoundError):  # TarFile.add opens the file before it writes the member's header
        tar.add(path, name, recursive=False)


def _empty(folder: Path) -> bool:
    return not folder.exists() or (folder.is_dir() and not any(folder.iterdir()))


def read_manifest(archive: Path) -> dict[str, object]:
    try:
        with tarfile.open(archive, "r") as tar:
            member = tar.extractfile(MANIFEST)
            if member is None:
                raise KeyError(MANIFEST)
            manifest: dict[str, object] = json.loads(member.read().decode("utf-8"))
    except (OSError, tarfile.TarError, KeyError, ValueError) as exc:
        raise LoaError("backup_bad_archive", {"path": str(archive), "detail": type(exc).__name__}) from exc
    if manifest.get("format") != FORMAT:
        raise LoaError("backup_bad_archive", {"path": str(archive), "detail": f"format {manifest.get('format')}"})
    return manifest


def restore(config: Config, archive: Path) -> dict[str, object]:
    """Unpack `archive` into the configured (empty) places; returns its manifest."""
    manifest = read_manifest(archive)
    url = make_url(config.database_url)
    kind = _kind(url)
    data = Path(config.general.data_dir).resolve()
    audio = Path(config.audio_dir).resolve()
    if manifest["database"] != kind:
        raise LoaError("backup_wrong_database", {"archived": str(manifest["database"]), "configured": kind})
    for folder in (data, audio):
        if not _empty(folder):
            raise LoaError("restore_not_empty", {"path": str(folder)})
    db_file = _sqlite_path(url) if kind == "sqlite" else None
    if db_file is not None and db_file.exists() and db_file.stat().st_size > 0:
        raise LoaError("restore_not_empty", {"path": str(db_file)})
    if kind == "postgresql":
        schema, tables = _pg_schema_and_tables(url)
        if tables:
            raise LoaError("restore_database_not_empty", {"schema": schema})
        if schema != manifest.get("schema"):
            raise LoaError("backup_other_schema", {"archived": str(manifest.get("schema")), "configured": schema})
    old_umask = os.umask(0o077)  # everything restored is the daemon's alone, like what it writes (datadir.py)
    try:
        data.mkdir(mode=0o700, parents=True, exist_ok=True)
        audio.mkdir(mode=0o700, parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(prefix=".loa-restore-", dir=data) as staging_name:
            staging = Path(staging_name)
            with tarfile.open(archive, "r") as tar:
                tar.extractall(staging, filter="data")  # no absolute paths, no `..`, no devices or links out
            for path in staging.rglob("*"):  # the members' own modes aside: owner-only, as the daemon writes
                path.chmod(0o700 if path.is_dir() else 0o600)
            if (staging / "data").is_dir():
                _move_into(staging / "data", data)
            if (staging / "audio").is_dir():
                _move_into(staging / "audio", audio)
            if kind == "sqlite":
                assert db_file is not None
                db_file.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
                shutil.move(staging / SQLITE_COPY, db_file)
            else:
                _run("pg_restore", ["--no-owner", "--no-privileges", "--exit-on-error", "--single-transaction",
                                    "--clean", "--if-exists", "--dbname", url.database or "",
                                    str(staging / PG_COPY)], _libpq_env(url))  # fmt: skip
    finally:
        os.umask(old_umask)
    return manifest


def _move_into(source: Path, target: Path) -> None:
    for entry in source.iterdir():
        shutil.move(entry, target / entry.name)
