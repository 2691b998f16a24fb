"""What more than one benchmark needs. Imports nothing heavy at module level: bench/scheduler.py's
children measure the memory of a bare scheduler."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


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
