"""docs/protocol.md is a contract: its schemas must accept its examples and what the code really sends,
and its test vectors must be the code's canonical bytes and signatures, to the byte."""

from __future__ import annotations

import base64
import json
import re
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from broadcaster import protocol

DOC = (Path(__file__).resolve().parents[3] / "docs" / "protocol.md").read_text(encoding="utf-8")
BLOCK = re.compile(r"<!-- (schema|example): ([\w. ]+) -->\s*```json\n(.*?)```", re.S)


def _blocks(kind: str) -> list[tuple[str, Any]]:
    return [(name.strip(), json.loads(body)) for k, name, body in BLOCK.findall(DOC) if k == kind]


SCHEMAS = dict(_blocks("schema"))
EXAMPLE_KEY = re.search(r"<!-- example-key -->\s*`([^`]+)`", DOC).group(1)  # type: ignore[union-attr]
EXAMPLE_SEED = re.search(r"<!-- example-seed -->\s*`([0-9a-f]{64})`", DOC).group(1)  # type: ignore[union-attr]
EXAMPLE_SIGNER = protocol.Signer(Ed25519PrivateKey.from_private_bytes(bytes.fromhex(EXAMPLE_SEED)))

# A test vector is four blocks sharing a name: the command as received, the canonical bytes (a text
# block whose UTF-8 is those bytes), the public key and the signature. Each part is found by its own
# pattern, and every marker must be followed by what it announces, so a vector missing a part or
# with a part in the wrong shape fails `test_every_vector_is_complete` rather than going unchecked.
VECTOR_PARTS = {
    "vector": re.compile(r"<!-- vector: ([\w.-]+) -->\n```json\n(.*?)```\n", re.S),
    "canonical": re.compile(r"<!-- canonical: ([\w.-]+) -->\n```text\n([^\n]*)\n```\n"),
    "key": re.compile(r"<!-- key: ([\w.-]+) -->\n[^`\n]*`([A-Za-z0-9+/]{43}=)`\n"),
    "signature": re.compile(r"<!-- signature: ([\w.-]+) -->\n[^`\n]*`([A-Za-z0-9+/]{86}==)`\n"),
}
VECTOR_MARKER = re.compile(r"<!-- (vector|canonical|key|signature):")


def _vector_parts() -> dict[str, dict[str, str]]:
    """name -> part -> text, as the doc has them (complete or not: the tests below say what is missing)."""
    out: dict[str, dict[str, str]] = {}
    for part, pattern in VECTOR_PARTS.items():
        for name, text in pattern.findall(DOC):
            out.setdefault(name, {}).setdefault(part, text)
    return out


VECTORS = _vector_parts()


def _validate(schema_name: str, obj: Any) -> None:
    jsonschema.validate(obj, SCHEMAS[schema_name], format_checker=jsonschema.FormatChecker())


def test_the_doc_has_every_schema_and_examples() -> None:
    assert set(SCHEMAS) == {
        "command", "play.body", "led.show.body", "stop.body", "ack", "status", "tele", "device.config",
        "time.request", "time.reply",
    }  # fmt: skip
    assert len(_blocks("example")) >= 6
    assert {"play", "relay", "led.show", "volume", "ping"} <= set(VECTORS)


def test_every_vector_is_complete() -> None:
    markers = Counter(VECTOR_MARKER.findall(DOC))
    for part, pattern in VECTOR_PARTS.items():
        names = [name for name, _ in pattern.findall(DOC)]
        assert len(names) == markers[part], f"a <!-- {part}: ... --> marker is not followed by a well-formed {part}"
        assert len(set(names)) == len(names), f"two {part} blocks share a name: {sorted(names)}"
    for name, parts in VECTORS.items():
        assert set(parts) == set(VECTOR_PARTS), f"vector {name!r} lacks {sorted(set(VECTOR_PARTS) - set(parts))}"


def test_the_example_seed_is_the_example_key() -> None:
    assert EXAMPLE_SIGNER.public_b64 == EXAMPLE_KEY


@pytest.mark.parametrize("name", sorted(VECTORS))
def test_each_vector_is_the_codes_canonical_form_and_signature(name: str) -> None:
    parts = VECTORS[name]
    assert set(parts) == set(VECTOR_PARTS), f"vector {name!r} lacks {sorted(set(VECTOR_PARTS) - set(parts))}"
    command = json.loads(parts["vector"])
    documented = parts["canonical"].encode("utf-8")
    unsigned = {k: v for k, v in command.items() if k != "sig"}
    computed = protocol.canonical(unsigned)
    assert computed == documented, f"the canonical bytes are\n{computed.decode()}"
    key = protocol.load_public_key(parts["key"])
    assert protocol.key_id(key) == command["kid"]
    assert command["sig"] == parts["signature"]
    key.verify(base64.b64decode(parts["signature"], validate=True), documented)  # raises if it does not verify
    protocol.check_command(command, {command["kid"]: key}, protocol.parse_time(command["issued_at"]), seen=set())
    assert parts["key"] == EXAMPLE_KEY
    resigned = EXAMPLE_SIGNER.sign(unsigned)
    assert resigned == command, f"re-signed with the example seed: {resigned['sig']}"
    _validate("command", command)
    if f"{command['type']}.body" in SCHEMAS:
        _validate(f"{command['type']}.body", command["body"])


def test_the_relay_vector_shows_the_float_the_daemon_signs() -> None:
    """The reason for version 2, kept in front of firmware writers: 1800.0 in the body, 1800 signed."""
    parts = VECTORS["relay"]
    assert '"duration_s": 1800.0' in parts["vector"]
    assert '"duration_s":1800,' in parts["canonical"]


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
        assert EXAMPLE_SIGNER.sign(cmd) == cmd  # Ed25519 is deterministic: the seed gives the same signature
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
        to="thon-1-loa",
        issued_at=now,
        start_at=now,
        expires_at=now + timedelta(minutes=1),
    )
    _validate("command", json.loads(protocol.encode(play)))
    _validate("play.body", play["body"])
    _validate("ack", protocol.make_ack(play["id"], "playing", now, start_error_ms=1.5))
    _validate("status", protocol.make_status(True, now, kind="speaker", firmware="x", volume=80))
    _validate("status", protocol.make_status(False))


# ---------------------------------------------------------------- the device side, as documented


def test_the_device_config_example_is_what_the_agent_reads_and_device_add_writes(tmp_path: Path) -> None:
    from broadcaster.device.config import AgentConfig

    (example,) = [e for n, e in _blocks("example") if n == "device.config"]
    path = tmp_path / "thon-1-loa.json"
    path.write_text(json.dumps(example))
    loaded = AgentConfig.load(path)
    assert loaded.as_json() == example  # every documented key is one the agent knows, nothing more
    _validate("device.config", loaded.as_json())
    defaults = AgentConfig("d", "speaker", "mqtt://h:1883", {"k": "AAAA"}).as_json()
    _validate("device.config", defaults)
    props = SCHEMAS["device.config"]["properties"]
    assert set(props) == set(defaults)
    for key, spec in props.items():
        if "default" in spec:
            assert defaults[key] == spec["default"], key


def test_what_the_device_core_says_matches_the_schemas() -> None:
    from broadcaster.device.core import DeviceCore

    now = datetime(2026, 11, 25, 3, tzinfo=UTC).timestamp()
    speaker = DeviceCore("thon-1-loa", "speaker", {})
    board = DeviceCore("thon-1-led", "led", {}, diacritics=False)
    for core in (speaker, board):
        _validate("status", core.status(True, now))
        _validate("status", core.status(False))
        _validate("tele", core.telemetry(now, signal=-71, uptime_s=5))


def _reasons_in_code() -> set[str]:
    """Every reason code the device side can put in an ack: literal `reason=` values and cuts, the heads
    of formatted ones (`f"unsupported: {type}"` -> `unsupported`), and the errors whose text is a reason."""
    import ast

    root = Path(__file__).resolve().parents[3] / "broadcaster" / "device"
    found: set[str] = set()
    for path in root.glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            values: list[ast.expr] = []
            if isinstance(node, ast.keyword) and node.arg == "reason":
                values.append(node.value)
            if isinstance(node, ast.Call) and getattr(node.func, "id", "") in ("PlaybackError", "HashMismatch"):
                values += node.args
            if isinstance(node, ast.Call) and getattr(node.func, "attr", "") == "_cut":
                values += node.args[1:]  # the core's `_cut(now, "preempted")`
            if isinstance(node, ast.JoinedStr) and re.match(r"[a-z_]+: $", str(getattr(node.values[0], "value", ""))):
                values.append(node)  # `f"download_failed: {exc}"`, `f"agent_error: {exc}"`
            for v in values:
                text = v.value if isinstance(v, ast.Constant) else None
                if isinstance(v, ast.JoinedStr) and isinstance(v.values[0], ast.Constant):
                    text = str(v.values[0].value)
                if isinstance(text, str) and re.fullmatch(r"[a-z_]+(: .*)?", text):
                    found.add(text.split(":", 1)[0])
    return found


def test_every_reason_a_device_gives_is_in_the_table() -> None:
    table = DOC[DOC.index("### Failure reasons") : DOC.index("### Timing and priorities")]
    documented = set(re.findall(r"`([a-z_]+)(?:: <detail>|: <type>)?`", table))
    in_code = _reasons_in_code()
    assert {"preempted", "stopped", "hash_mismatch", "download_failed", "playback_failed", "bad_body"} <= in_code
    assert in_code <= documented, sorted(in_code - documented)
