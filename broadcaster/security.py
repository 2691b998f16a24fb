"""Who may talk to the broker, and about what: broker passwords, the ACL, and TLS for small installs.

Hacked public sirens have broadcast false alarms. Here no one but the daemon can make a speaker talk,
through two independent walls. Commands are signed (broadcaster.protocol), so a forged or replayed one
is never played even if it reaches a speaker; and the broker itself refuses, per device, everything but
that device's own topics, so a credential pulled out of a stolen speaker can neither command, nor
overhear, nor impersonate another device. docs/security.md explains the model.

The daemon writes Mosquitto's password and ACL files itself from the device table, so the database stays
the single truth and a device's password is never stored, only its hash.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import hmac
import ipaddress
import logging
import os
import re
import secrets
import threading
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, NamedTuple

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from sqlalchemy import select
from sqlalchemy.orm import Session

from broadcaster.db import Device, Zone, ZoneKind, ZoneMember
from broadcaster.protocol import DEFAULT_PREFIX

if TYPE_CHECKING:
    from broadcaster.broker import ManagedBroker
    from broadcaster.config import Config
    from broadcaster.db import Database

log = logging.getLogger(__name__)

DAEMON_USER = "loa-daemon"
DAEMON_SECRET_FILE = "broker-daemon.secret"  # under data_dir/keys, next to the signing key
PBKDF2_ITERATIONS = 101  # mosquitto_passwd's own default; see hash_password for why it is enough
_SALT_BYTES = 12
_HASH_BYTES = 64
# Letters, digits, '-' and '_': nothing that is an MQTT wildcard, a topic separator or ACL syntax, so a
# name can be substituted into a topic (%u) without widening it.
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,63}")


class BrokerDevice(NamedTuple):
    """One device as the broker sees it: its login and the zones whose group topic it may read."""

    id: str
    password_hash: str
    groups: list[str]


def valid_name(name: str) -> bool:
    """Whether a device or zone id is safe to use as a broker username and inside a topic."""
    return _NAME.fullmatch(name) is not None


# ---------------------------------------------------------------- passwords


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
    from broadcaster.mqtt import BrokerAddress

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


# ---------------------------------------------------------------- ACL


def _check_names(names: Iterable[str], what: str) -> None:
    for name in names:
        if not valid_name(name):
            raise ValueError(f"{what} {name!r} cannot be a broker name (letters, digits, '-', '_')")


def _check_prefix(prefix: str) -> None:
    if not prefix or any(c in prefix for c in "+#\n ") or prefix.startswith("$"):
        raise ValueError(f"topic prefix {prefix!r} must be a plain topic without wildcards")


def acl_text(
    daemon_users: Sequence[str],
    devices: Sequence[tuple[str, Sequence[str]]],
    prefix: str = DEFAULT_PREFIX,
) -> str:
    """Mosquitto's ACL file. Each device logs in as its own id, so one `pattern` block with %u covers
    every device: it may read only its own cmd topic and write only its own ack, status and tele. The
    daemon writes every cmd topic and reads every report. Mosquitto 2 checks reads per delivered message
    against the real topic, so the daemon's shared subscription ($share/loa/...) is covered by these
    plain topics. Zone topics cannot be patterned, so each device gets its zones listed by name."""
    _check_prefix(prefix)
    _check_names(daemon_users, "daemon user")
    _check_names((d for d, _ in devices), "device id")
    _check_names((g for _, groups in devices for g in groups), "zone id")
    clash = set(daemon_users) & {d for d, _ in devices}
    if clash:
        raise ValueError(f"device ids clash with the daemon's user: {sorted(clash)}")
    lines = [
        "# Generated by loa from its database (broadcaster/security.py); edits are overwritten.",
        "# No anonymous section: anonymous clients are refused at CONNECT (allow_anonymous false).",
        "",
        "# Every device, logged in as its own id: its own commands in, its own reports out.",
        f"pattern read {prefix}/dev/%u/cmd",
        f"pattern write {prefix}/dev/%u/ack",
        f"pattern readwrite {prefix}/dev/%u/status",
        f"pattern write {prefix}/dev/%u/tele",
    ]
    for user in daemon_users:
        lines += [
            "",
            "# The daemon: the only one who may command; it hears every device.",
            f"user {user}",
            f"topic write {prefix}/dev/+/cmd",
            f"topic write {prefix}/zone/+/cmd",
            f"topic read {prefix}/dev/+/ack",
            f"topic read {prefix}/dev/+/status",
            f"topic read {prefix}/dev/+/tele",
        ]
    for device_id, groups in devices:
        if groups:
            lines += ["", f"user {device_id}"]
            lines += [f"topic read {prefix}/zone/{g}/cmd" for g in dict.fromkeys(groups)]
    return "\n".join(lines) + "\n"


def passwd_text(users: Iterable[tuple[str, str]]) -> str:
    """Mosquitto's password file from (username, hash) pairs; users without a hash cannot log in."""
    rows = [f"{user}:{hashed}" for user, hashed in users if hashed]
    return "\n".join(rows) + ("\n" if rows else "")


def broker_files(
    state_dir: Path,
    daemon_user: str,
    daemon_password: str,
    devices: Sequence[tuple[str, str, Sequence[str]]],
    *,
    prefix: str = DEFAULT_PREFIX,
) -> list[str]:
    """Write `passwd` and `acl` into state_dir and return the mosquitto.conf lines that use them, for
    BrokerSettings.extra_lines (they must follow the listener they protect: use_username_as_clientid is
    a listener option). use_username_as_clientid stops a device from taking over another device's
    session by connecting with that device's client id."""
    _check_names([d for d, _, _ in devices], "device id")
    state_dir = state_dir.resolve()
    passwd, acl = state_dir / "passwd", state_dir / "acl"
    users = [(daemon_user, hash_password(daemon_password)), *((d, h) for d, h, _ in devices)]
    write_private(passwd, passwd_text(users))
    write_private(acl, acl_text([daemon_user], [(d, list(g)) for d, h, g in devices if h], prefix))
    return [
        f"password_file {passwd}",
        f"acl_file {acl}",
        "allow_anonymous false",
        "use_username_as_clientid true",
    ]


# ---------------------------------------------------------------- the device registry


def device_zones(session: Session, village_id: str) -> list[str]:
    """Every zone a device in this village belongs to: the commune, the village, its named groups."""
    communes = list(session.scalars(select(Zone.id).where(Zone.kind == ZoneKind.COMMUNE).order_by(Zone.id)))
    member_of = select(ZoneMember.group_id).where(ZoneMember.village_id == village_id)
    groups = list(session.scalars(member_of.order_by(ZoneMember.group_id)))
    return list(dict.fromkeys([*communes, village_id, *groups]))


def devices_for_broker(session: Session) -> list[BrokerDevice]:
    """Every provisioned device with its zones, for `broker_files`. Devices without a broker password
    (made before provisioning existed) are left out: they could not log in anyway. Names that would be
    unsafe in a topic are skipped loudly rather than breaking the broker's start."""
    out: list[BrokerDevice] = []
    rows = session.scalars(select(Device).where(Device.broker_password_hash != "").order_by(Device.id))
    for device in rows:
        if not valid_name(device.id):
            log.error("device id %r is not a valid broker user; it cannot log in", device.id)
            continue
        zones = device_zones(session, device.village_id)
        bad = [z for z in zones if not valid_name(z)]
        if bad:
            log.error("zone ids %r cannot be used in topics; %s will not hear them", bad, device.id)
        out.append(BrokerDevice(device.id, device.broker_password_hash, [z for z in zones if z not in bad]))
    return out


class BrokerAccess:
    """Keeps a managed broker's password and ACL files in step with the device table.

    `loa device add` and revocations only change the database (they also work while the daemon is
    down); the running daemon notices here, rewrites both files and has Mosquitto reload them, without
    dropping anyone's connection.
    """

    def __init__(
        self,
        db: Database,
        state_dir: Path,
        daemon_user: str,
        daemon_password: str,
        prefix: str = DEFAULT_PREFIX,
    ) -> None:
        self.db = db
        self.state_dir = state_dir
        self.daemon_user = daemon_user
        self.daemon_password = daemon_password
        self.prefix = prefix
        self._written: list[BrokerDevice] | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def _devices(self) -> list[BrokerDevice]:
        with self.db.session() as session:
            return devices_for_broker(session)

    def write(self) -> list[str]:
        """Write the files for the devices in the database now; returns BrokerSettings.extra_lines."""
        devices = self._devices()
        lines = broker_files(self.state_dir, self.daemon_user, self.daemon_password, devices, prefix=self.prefix)
        self._written = devices
        return lines

    def refresh(self, broker: ManagedBroker) -> bool:
        """Rewrite and reload when the device table changed since the last write; True if it did."""
        if self._devices() == self._written:
            return False
        self.write()
        broker.reload()
        log.info("broker access updated: %d devices", len(self._written or []))
        return True

    def watch(self, broker: ManagedBroker, interval: float = 2.0) -> None:
        def _loop() -> None:
            while not self._stop.wait(interval):
                try:
                    self.refresh(broker)
                except Exception:
                    log.exception("could not update the broker's password and ACL files")

        self._stop.clear()
        self._thread = threading.Thread(target=_loop, name="broker-access", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread:
            self._thread.join(timeout=5)


# ---------------------------------------------------------------- TLS for small installs


@dataclass(frozen=True)
class CaFiles:
    cert: Path
    key: Path


@dataclass(frozen=True)
class TlsFiles:
    ca_cert: Path
    cert: Path
    key: Path


def _new_key() -> ec.EllipticCurvePrivateKey:
    # P-256: small and fast on a speaker's microcontroller (mbedTLS), and supported by every OpenSSL.
    return ec.generate_private_key(ec.SECP256R1())


def _key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


def _write_public(path: Path, data: bytes) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_bytes(data)
    tmp.chmod(0o644)
    tmp.replace(path)


def make_ca(directory: Path, name: str = "loa commune CA", *, days: int = 3650) -> CaFiles:
    """The commune's own certificate authority (ca.crt, ca.key 0600), created once and then reused:
    every device trusts this certificate, so replacing it means visiting every device."""
    directory.mkdir(parents=True, exist_ok=True)
    files = CaFiles(directory / "ca.crt", directory / "ca.key")
    if files.cert.exists() and files.key.exists():
        return files
    key = _new_key()
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(hours=1))
        .not_valid_after(now + dt.timedelta(days=days))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=False,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    write_private(files.key, _key_pem(key))
    _write_public(files.cert, cert.public_bytes(serialization.Encoding.PEM))
    return files


def _san(hostname: str) -> x509.GeneralName:
    try:
        return x509.IPAddress(ipaddress.ip_address(hostname))
    except ValueError:
        return x509.DNSName(hostname)


def make_server_cert(directory: Path, hostnames: Sequence[str], *, days: int = 825) -> TlsFiles:
    """A broker certificate for the names and addresses devices dial (server.crt, server.key 0600),
    signed by the CA in the same directory (made if missing). It is re-issued on every call: devices
    trust the CA, not this certificate, so a new one costs nothing."""
    if not hostnames:
        raise ValueError("at least one host name or IP address is needed")
    ca_files = make_ca(directory)
    ca_key = serialization.load_pem_private_key(ca_files.key.read_bytes(), password=None)
    if not isinstance(ca_key, ec.EllipticCurvePrivateKey):
        raise ValueError(f"{ca_files.key} is not an EC key")
    ca_cert = x509.load_pem_x509_certificate(ca_files.cert.read_bytes())
    key = _new_key()
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, hostnames[0])]))
        .issuer_name(ca_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(hours=1))
        .not_valid_after(now + dt.timedelta(days=days))
        .add_extension(x509.SubjectAlternativeName([_san(h) for h in hostnames]), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    files = TlsFiles(ca_files.cert, directory / "server.crt", directory / "server.key")
    write_private(files.key, _key_pem(key))
    _write_public(files.cert, cert.public_bytes(serialization.Encoding.PEM))
    return files


def tls_listener_lines(files: TlsFiles, port: int, host: str | None = None) -> list[str]:
    """mosquitto.conf lines for a second, TLS-only listener (for BrokerSettings.extra_lines, after
    `broker_files`' lines). The plain listener can then stay on 127.0.0.1 for the daemon itself.
    use_username_as_clientid is repeated because it is a per-listener option."""
    return [
        f"listener {port}{f' {host}' if host else ''}",
        f"cafile {files.ca_cert.resolve()}",
        f"certfile {files.cert.resolve()}",
        f"keyfile {files.key.resolve()}",
        "use_username_as_clientid true",
    ]
