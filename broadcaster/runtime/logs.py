"""The daemon's log lines: text for a person at a terminal, or, with `[general] log_format = "json"`, one
JSON object a line for a log collector (journald's, Loki, Elasticsearch) that would otherwise have to guess
where a multi-line traceback ends.

Each object has `time` (UTC, ISO 8601), `level`, `logger`, `message` and, for an error with a traceback,
`exception` (the whole traceback in one string). Neither format writes a secret: the parts log broker
addresses through `BrokerAddress.display()`, and whatever a library logs passes `redact` first, which
masks the password of any URL (`mqtt://loa:secret@host` → `mqtt://loa:***@host`), a bearer token, and
`password=`/`token=` pairs.
"""

from __future__ import annotations

import json
import logging
import re
import sys
from datetime import UTC, datetime
from typing import TextIO

_SECRETS = (
    (re.compile(r"(\b[a-z][a-z0-9+.-]*://[^\s:/@]*:)[^\s/]*@", re.IGNORECASE), r"\1***@"),
    (re.compile(r"(\bBearer\s+)[A-Za-z0-9._~+/=-]+", re.IGNORECASE), r"\1***"),
    (re.compile(r"(\b(?:password|passwd|token|secret|api_key)\s*[=:]\s*)[^\s,;&]+", re.IGNORECASE), r"\1***"),
)
TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


def redact(text: str) -> str:
    """`text` with the secrets it may carry masked (see the module)."""
    for pattern, replacement in _SECRETS:
        text = pattern.sub(replacement, text)
    return text


class RedactingFormatter(logging.Formatter):
    """The text format, with `redact` over the whole line, traceback included."""

    def format(self, record: logging.LogRecord) -> str:
        return redact(super().format(record))


class JsonFormatter(logging.Formatter):
    """One JSON object a line (see the module)."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, str] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": redact(record.getMessage()),
        }
        if record.exc_info:
            entry["exception"] = redact(self.formatException(record.exc_info))
        elif record.exc_text:
            entry["exception"] = redact(record.exc_text)
        if record.stack_info:
            entry["stack"] = redact(self.formatStack(record.stack_info))
        return json.dumps(entry, ensure_ascii=False)


def configure_logging(level: str, fmt: str = "text", stream: TextIO | None = None) -> logging.Handler:
    """The root logger's one handler, in `fmt` ("text" or "json"), at `level`; returns it (tests)."""
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(JsonFormatter() if fmt == "json" else RedactingFormatter(TEXT_FORMAT))
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level)
    for noisy in ("alembic", "apscheduler"):  # start-up chatter that tells an operator nothing
        logging.getLogger(noisy).setLevel(logging.WARNING)
    return handler
