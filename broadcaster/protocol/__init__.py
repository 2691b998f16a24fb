"""The wire format of loa's device protocol (docs/protocol.md), shared by the daemon and the devices.

It needs only the standard library, `cryptography` and `rfc8785` (`mqtt` adds paho-mqtt), so a
speaker's small computer carries it without the server's dependencies.
"""

from broadcaster.protocol.canonical import canonical, encode
from broadcaster.protocol.clock import (
    ClockSample,
    check_time_reply,
    make_time_reply,
    make_time_request,
    read_time_request,
    to_us,
)
from broadcaster.protocol.commands import (
    CommandStamp,
    Refusal,
    check_command,
    format_time,
    make_ack,
    make_command,
    make_status,
    parse_time,
    strip_diacritics,
    zone_recipient,
)
from broadcaster.protocol.signing import (
    Signer,
    key_id,
    load_or_create_signer,
    load_public_key,
    public_key_b64,
    verify,
)
from broadcaster.protocol.topics import Topics
from broadcaster.protocol.version import (
    ACK_STATES,
    COMMAND_TYPES,
    DEFAULT_PREFIX,
    MAX_PAYLOAD_BYTES,
    PRIORITIES,
    PROTOCOL_VERSION,
    AckState,
    CommandType,
)

__all__ = [
    "ACK_STATES",
    "COMMAND_TYPES",
    "DEFAULT_PREFIX",
    "MAX_PAYLOAD_BYTES",
    "PRIORITIES",
    "PROTOCOL_VERSION",
    "AckState",
    "ClockSample",
    "CommandStamp",
    "CommandType",
    "Refusal",
    "Signer",
    "Topics",
    "canonical",
    "check_command",
    "check_time_reply",
    "encode",
    "format_time",
    "key_id",
    "load_or_create_signer",
    "load_public_key",
    "make_ack",
    "make_command",
    "make_status",
    "make_time_reply",
    "make_time_request",
    "parse_time",
    "public_key_b64",
    "read_time_request",
    "strip_diacritics",
    "to_us",
    "verify",
    "zone_recipient",
]
