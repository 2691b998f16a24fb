"""TLS for small installs: the commune's own CA and a server certificate for the managed broker."""

from __future__ import annotations

import datetime as dt
import ipaddress
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from broadcaster.broker.credentials import write_private


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
