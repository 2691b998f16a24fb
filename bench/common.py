"""What more than one benchmark needs. Imports nothing heavy at module level: bench/scheduler.py's
children measure the memory of a bare scheduler."""

from __future__ import annotations

import re
import shutil
import tomllib
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from importlib import metadata
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


@contextmanager
def throwaway_database(url: str | None, tmp: Path) -> Iterator[str]:
    """A SQLite file in the temp folder, or a schema of its own in the given PostgreSQL, dropped after."""
    if not url:
        yield f"sqlite:///{tmp / 'loa.sqlite3'}"
        return
    from sqlalchemy import create_engine, text

    schema = f"loa_bench_{uuid.uuid4().hex[:10]}"
    admin = create_engine(url)
    with admin.begin() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    try:
        yield f"{url}{'&' if '?' in url else '?'}options=-csearch_path%3D{schema}"
    finally:
        with admin.begin() as conn:
            conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


def postgres_problem(url: str) -> str | None:
    """Why no PostgreSQL answers at `url`, or None when one does: the benches and the tests both say it
    rather than fail on it (a new machine may have none)."""
    from sqlalchemy import create_engine, text

    try:
        engine = create_engine(url, connect_args={"connect_timeout": 3})
        with engine.connect() as conn:
            conn.execute(text("select 1"))
        engine.dispose()
    except Exception as exc:
        return f"no PostgreSQL answers at {url}: {type(exc).__name__}"
    return None


def _closure(requirements: list[str]) -> set[str]:
    """The installed distributions a list of requirements pulls in, markers evaluated here."""
    from packaging.requirements import Requirement

    out: set[str] = set()
    todo = [Requirement(r) for r in requirements]
    while todo:
        req = todo.pop()
        if req.marker is not None and not req.marker.evaluate({"extra": ""}):
            continue
        name = re.sub(r"[-_.]+", "-", req.name).lower()
        if name in out:
            continue
        out.add(name)
        todo += [Requirement(r) for r in metadata.requires(req.name) or []]
    return out


def device_site(target: Path) -> Path:
    """A folder holding exactly the distributions the base install (`pip install loa`, a speaker's
    Raspberry Pi) brings, copied file by file from this environment. Run `python -S` with
    PYTHONPATH=<this folder>:<the source>, and nothing else can be imported."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    for name in _closure(project["dependencies"]):
        for f in metadata.distribution(name).files or []:
            src = Path(str(f.locate()))
            if src.is_file() and ".." not in f.parts:
                dst = target / f
                dst.parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(src, dst)
    return target
