"""Broker passwords: random secrets for every device and the daemon, stored only as Mosquitto hashes."""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import re
import secrets
from pathlib import Path
from typing import TYPE_CHECKING

from broadcaster.protocol.mqtt import BrokerAddress

if TYPE_CHECKING:
    from broadcaster.config import Config
    from broadcaster.db import Device

DAEMON_USER = "loa-daemon"
DAEMON_SECRET_FILE = "broker-daemon.secret"  # under data_dir/keys, next to the signing key
PBKDF2_ITERATIONS = 101  # mosquitto_passwd's own default; see hash_password for why it is enough
_SALT_BYTES = 12
_HASH_BYTES = 64
# Letters, digits, '-' and '_': nothing that is an MQTT wildcard, a topic separator or ACL syntax, so a
# name can be substituted into a topic (%u) without widening it.
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,63}")


def valid_name(name: str) -> bool:
    """Whether a device or zone id is safe to use as a broker username and inside a topic."""
    return _NAME.fullmatch(name) is not None


def _b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode("ascii")


def hash_password(password: str, *, iterations: int = PBKDF2_ITERATIONS, salt: bytes | None = None) -> str:
    """A Mosquitto 2 password-file hash (`$7$` = PBKDF2-HMAC-SHA512), so the daemon can write the file
    without mosquitto_passwd. Few iterations are enough because every password here is a 256-bit random
    secret (`new_secret`): stretching would add nothing but CPU on each CONNECT, and a power cut brings
    thousands of speakers back at the same moment."""
    if iterations < 1:
        raise ValueError("iterations must be positive")
    salt = secrets.token_bytes(_SALT_BYTES) if salt is None else salt
    digest = hashlib.pbkdf2_hmac("sha512", password.encode("utf-8"), salt, iterations, _HASH_BYTES)
    return f"$7${iterations}${_b64(salt)}${_b64(digest)}"


def check_password(password: str, hashed: str) -> bool:
    """Verify against a `$7$` hash, including ones written by mosquitto_passwd."""
    parts = hashed.split("$")
    if len(parts) != 5 or parts[0] or parts[1] != "7" or not parts[2].isdigit():
        return False
    try:
        salt = base64.b64decode(parts[3], validate=True)
        expected = base64.b64decode(parts[4], validate=True)
    except ValueError:
        return False
    digest = hashlib.pbkdf2_hmac("sha512", password.encode("utf-8"), salt, int(parts[2]), len(expected))
    return hmac.compare_digest(digest, expected)


def new_secret() -> str:
    """256 random bits, URL-safe: it goes into mqtt:// URLs and QR codes without escaping."""
    return secrets.token_urlsafe(32)


def write_private(path: Path, text: str | bytes) -> None:
    """Write owner-only (0600) and atomically: a broker reloading mid-write must never read half a file,
    and a password hash or private key must never be world-readable, not even for a moment."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    data = text.encode("utf-8") if isinstance(text, str) else text
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.fchmod(fd, 0o600)  # an old tmp file may have had other permissions
        os.write(fd, data)
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(tmp, path)


def load_or_create_secret(path: Path) -> str:
    """The daemon's own broker password, made once and kept beside its signing key."""
    if path.exists():
        secret = path.read_text(encoding="utf-8").strip()
        if secret:
            return secret
    secret = new_secret()
    write_private(path, secret + "\n")
    return secret


def daemon_credentials(config: Config) -> tuple[str, str]:
    """The daemon's broker login: the configured one for an external broker, else `loa-daemon` with a
    secret generated into data_dir/keys, so `loa broker config` and the daemon always agree."""
    address = BrokerAddress.parse(config.broker.url) if config.broker.url else None
    user = (address.username if address else None) or DAEMON_USER
    password = config.broker.password or (address.password if address else None)
    if not password:
        password = load_or_create_secret(Path(config.general.data_dir) / "keys" / DAEMON_SECRET_FILE)
    return user, password


def issue_credentials(device: Device) -> str:
    """Give a device a new broker password; only its hash is stored, the caller hands the secret over."""
    secret = new_secret()
    device.broker_password_hash = hash_password(secret)
    return secret
