"""docs/protocol.md is a contract: its schemas must accept its examples and what the code really sends."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from broadcaster import protocol

DOC = (Path(__file__).resolve().parents[2] / "docs" / "protocol.md").read_text(encoding="utf-8")
BLOCK = re.compile(r"<!-- (schema|example): ([\w. ]+) -->\s*```json\n(.*?)```", re.S)


def _blocks(kind: str) -> list[tuple[str, Any]]:
    return [(name.strip(), json.loads(body)) for k, name, body in BLOCK.findall(DOC) if k == kind]


SCHEMAS = dict(_blocks("schema"))
EXAMPLE_KEY = re.search(r"<!-- example-key -->\s*`([^`]+)`", DOC).group(1)  # type: ignore[union-attr]


def _validate(schema_name: str, obj: Any) -> None:
    jsonschema.validate(obj, SCHEMAS[schema_name], format_checker=jsonschema.FormatChecker())


def test_the_doc_has_every_schema_and_examples() -> None:
    assert set(SCHEMAS) == {"command", "play.body", "led.show.body", "ack", "status"}
    assert len(_blocks("example")) >= 6


@pytest.mark.parametrize(("name", "example"), _blocks("example"), ids=lambda v: v if isinstance(v, str) else "")
def test_each_example_matches_its_schema(name: str, example: dict[str, Any]) -> None:
    if name.startswith("command"):
        _validate("command", example)
        _validate(f"{example['type']}.body", example["body"])
    else:
        _validate(name, example)


def test_signed_examples_verify_with_the_documented_key_and_break_when_edited() -> None:
    key = protocol.load_public_key(EXAMPLE_KEY)
    keys = {protocol.key_id(key): key}
    commands = [e for n, e in _blocks("example") if n.startswith("command")]
    assert commands
    for cmd in commands:
        issued = protocol.parse_time(cmd["issued_at"])
        protocol.check_command(cmd, keys, issued, seen=set())
        edited = {**cmd, "start_at": protocol.format_time(issued + timedelta(hours=1))}
        with pytest.raises(protocol.Refusal, match="bad_signature"):
            protocol.check_command(edited, keys, issued)


def test_what_the_code_sends_matches_the_schemas(tmp_path: Path) -> None:
    signer = protocol.load_or_create_signer(tmp_path / "k.pem")
    now = datetime.now(UTC)
    play = protocol.make_command(
        signer,
        "play",
        {
            "title": "t",
            "audio": {
                "url": "http://h/a.mp3",
                "sha256": "a" * 64,
                "size": 10,
                "duration_ms": 5,
                "format": "mp3",
            },
        },
        issued_at=now,
        start_at=now,
        expires_at=now + timedelta(minutes=1),
    )
    _validate("command", json.loads(protocol.encode(play)))
    _validate("play.body", play["body"])
    _validate("ack", protocol.make_ack(play["id"], "playing", now, start_error_ms=1.5))
    _validate("status", protocol.make_status(True, now, kind="speaker", firmware="x", volume=80))
    _validate("status", protocol.make_status(False))
