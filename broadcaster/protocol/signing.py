"""Ed25519 keys and signatures: the daemon signs every command, devices verify them."""

from __future__ import annotations

import base64
import functools
import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from broadcaster.protocol.canonical import canonical


def key_id(public: Ed25519PublicKey) -> str:
    raw = public.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return hashlib.sha256(raw).hexdigest()[:16]


def public_key_b64(public: Ed25519PublicKey) -> str:
    raw = public.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return base64.b64encode(raw).decode("ascii")


def load_public_key(b64: str) -> Ed25519PublicKey:
    return Ed25519PublicKey.from_public_bytes(base64.b64decode(b64))


@dataclass(frozen=True)
class Signer:
    private: Ed25519PrivateKey

    @functools.cached_property
    def kid(self) -> str:  # cached: it is part of every command signed
        return key_id(self.private.public_key())

    @property
    def public_b64(self) -> str:
        return public_key_b64(self.private.public_key())

    def sign(self, body: dict[str, Any]) -> dict[str, Any]:
        unsigned = {k: v for k, v in body.items() if k != "sig"}
        unsigned["kid"] = self.kid
        sig = self.private.sign(canonical(unsigned))
        return {**unsigned, "sig": base64.b64encode(sig).decode("ascii")}


def load_or_create_signer(path: Path) -> Signer:
    """The daemon's signing key, created once with owner-only permissions; it never leaves the server."""
    if path.exists():
        key = serialization.load_pem_private_key(path.read_bytes(), password=None)
        if not isinstance(key, Ed25519PrivateKey):
            raise ValueError(f"{path} is not an Ed25519 key")
        return Signer(key)
    path.parent.mkdir(parents=True, exist_ok=True)
    key = Ed25519PrivateKey.generate()
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    tmp = path.with_suffix(".tmp")
    tmp.touch(mode=0o600)
    tmp.write_bytes(pem)
    tmp.replace(path)
    return Signer(key)


def verify(command: dict[str, Any], keys: dict[str, Ed25519PublicKey]) -> bool:
    """True when the command carries a valid signature from one of the trusted keys (by key id)."""
    sig = command.get("sig")
    kid = command.get("kid")
    if not isinstance(sig, str) or not isinstance(kid, str) or kid not in keys:
        return False
    try:
        keys[kid].verify(
            base64.b64decode(sig, validate=True), canonical({k: v for k, v in command.items() if k != "sig"})
        )
    except (InvalidSignature, ValueError):
        return False
    return True
