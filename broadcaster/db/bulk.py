"""Statements run for thousands of rows at once: a bulletin's outbox rows and its acks."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from sqlalchemy.engine import Connection
from sqlalchemy.sql.dml import ValuesBase


def _last_value_memo(process: Callable[[Any], Any]) -> Callable[[Any], Any]:
    """`process`, skipped when given the same object as last time: a bulletin's rows share their times."""
    last_in: Any = object()
    last_out: Any = None

    def memo(value: Any) -> Any:
        nonlocal last_in, last_out
        if value is not last_in:
            last_in, last_out = value, process(value)
        return last_out

    return memo


# SQL text, (parameter name, its bind processor) in the driver's order, and whether that order is positional
_Compiled = tuple[str, list[tuple[str, Callable[[Any], Any] | None]], bool]


class BulkStatement:
    """An INSERT or UPDATE run for thousands of rows at once, straight on the driver's executemany.

    SQLAlchemy processes every parameter of every row through its generic machinery; for a bulletin's
    outbox rows and ack updates that cost twice the database's own work (bench/fanout.py). Here the
    statement is compiled once per dialect and set of columns, and only the parameters whose types
    convert values (times, enums) go through those types' own bind processors, so the driver gets
    exactly what SQLAlchemy would have given it. Every row names the same columns, all it writes:
    column defaults are not applied.
    """

    def __init__(self, statement: ValuesBase) -> None:
        self.statement = statement
        self._compiled: dict[tuple[str, tuple[str, ...]], _Compiled] = {}

    def executemany(self, conn: Connection, rows: Sequence[Mapping[str, Any]]) -> None:
        if not rows:
            return
        sql, compiled_params, positional = self._compile(conn, tuple(rows[0]))
        params = [(k, None if p is None else _last_value_memo(p)) for k, p in compiled_params]
        if positional:
            data: list[Any] = [tuple(row[k] if p is None else p(row[k]) for k, p in params) for row in rows]
        else:
            data = [{k: row[k] if p is None else p(row[k]) for k, p in params} for row in rows]
        conn.exec_driver_sql(sql, data)

    def _compile(self, conn: Connection, keys: tuple[str, ...]) -> _Compiled:
        cache_key = (conn.dialect.name, keys)
        if cache_key not in self._compiled:
            compiled = self.statement.compile(dialect=conn.dialect, column_keys=list(keys))
            names = list(compiled.positiontup or compiled.binds)
            missing = [n for n in names if n not in keys]
            if missing:
                raise ValueError(f"rows for {compiled.string!r} lack {missing}")
            params: list[tuple[str, Callable[[Any], Any] | None]] = []
            for name in names:
                process = compiled._bind_processors.get(name)
                if process is not None and not callable(process):  # a tuple's processors: not used here
                    raise ValueError(f"tuple parameter {name!r} in {compiled.string!r}")
                params.append((name, process))
            self._compiled[cache_key] = (compiled.string, params, bool(compiled.positional))
        return self._compiled[cache_key]
