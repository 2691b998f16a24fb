"""CAP 1.2 documents for the alert tests, a signing key made in the test, and a commune configured for them."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from xml.sax.saxutils import escape

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID
from lxml import etree

from broadcaster.services import Services
from broadcaster.services.zones import add_village
from schedules.clock import Clock
from tests.broadcaster.conftest import make_services

HEADLINE = "Lũ quét tại thôn 1"


def cap_time(at: dt.datetime) -> str:
    """CAP's form: seconds and an offset, no fraction (the schema's pattern)."""
    return at.astimezone(dt.timezone(dt.timedelta(hours=7))).replace(microsecond=0).isoformat()


def cap(
    *,
    identifier: str = "VN-KTTV-2026-0001",
    sender: str = "canhbao@kttv.gov.vn",
    sent: dt.datetime | None = None,
    status: str = "Actual",
    msg_type: str = "Alert",
    references: str = "",
    severity: str = "Extreme",
    urgency: str = "Immediate",
    certainty: str = "Observed",
    headline: str = HEADLINE,
    area: str = "Thôn 1",
    geocode: tuple[str, str] | None = None,
    expires: dt.datetime | None = None,
    effective: dt.datetime | None = None,
    info: bool = True,
) -> bytes:
    now = dt.datetime.now(dt.UTC)
    sent = sent or now - dt.timedelta(minutes=1)
    expires = expires or now + dt.timedelta(hours=6)
    refs = f"<references>{escape(references)}</references>" if references else ""
    code = (
        f"<geocode><valueName>{geocode[0]}</valueName><value>{geocode[1]}</value></geocode>" if geocode else ""
    )
    eff = f"<effective>{cap_time(effective)}</effective>" if effective else ""
    body = (
        f"""<info><language>vi-VN</language><category>Met</category><event>Lũ quét</event>
    <urgency>{urgency}</urgency><severity>{severity}</severity><certainty>{certainty}</certainty>{eff}
    <expires>{cap_time(expires)}</expires><senderName>Đài KTTV tỉnh</senderName>
    <headline>{escape(headline)}</headline>
    <description>Mưa lớn 150mm trong 3 giờ qua, nước suối dâng nhanh</description>
    <instruction>Bà con khẩn trương di chuyển lên vùng cao, không qua ngầm tràn</instruction>
    <area><areaDesc>{escape(area)}</areaDesc>{code}</area></info>"""
        if info
        else ""
    )
    return f"""<?xml version="1.0" encoding="UTF-8"?>
<alert xmlns="urn:oasis:names:tc:emergency:cap:1.2">
  <identifier>{identifier}</identifier><sender>{sender}</sender><sent>{cap_time(sent)}</sent>
  <status>{status}</status><msgType>{msg_type}</msgType><scope>Public</scope>{refs}
  {body}
</alert>""".encode()


def reference(doc: bytes) -> str:
    """The `references` entry that names this document."""
    root = etree.fromstring(doc)
    ns = {"c": "urn:oasis:names:tc:emergency:cap:1.2"}
    return ",".join(root.findtext(f"c:{n}", namespaces=ns) or "" for n in ("sender", "identifier", "sent"))


def signing_pair(folder: Path, name: str = "tinh") -> tuple[bytes, Path]:
    """A private key (PEM) and a self-signed certificate file, made here and now."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, f"canh-bao-{name}")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder().subject_name(subject).issuer_name(subject).public_key(key.public_key())
        .serial_number(x509.random_serial_number()).not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=30)).sign(key, hashes.SHA256())
    )  # fmt: skip
    path = folder / f"{name}.pem"
    path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    return pem, path


def sign(doc: bytes, key_pem: bytes, cert_path: Path) -> bytes:
    """The document with an enveloped XML signature, as a warning centre's system would send it."""
    from signxml import XMLSigner

    signed = XMLSigner().sign(etree.fromstring(doc), key=key_pem, cert=cert_path.read_text())
    return etree.tostring(signed, xml_declaration=True, encoding="UTF-8")


def commune(tmp_path: Path, database_url: str, clock: Clock, *, cap_url: str = "", **env: str) -> Services:
    """Two villages; sources `tinh` (posted CAP), `ky` (posted CAP that must be signed), `tt39` and, with
    `cap_url`, `web` (polled); areas by name and by geocode. No quiet hours: tests must not depend on
    the hour they run at. The signing key is in `tmp_path/ky-key.pem`."""
    key, cert = signing_pair(tmp_path, "ky")
    (tmp_path / "ky-key.pem").write_bytes(key)
    polled = f'[alerts.sources.web]\nkind = "cap-url"\nurl = "{cap_url}"\npoll_every_s = 5\n' if cap_url else ""
    (tmp_path / "loa.toml").write_text(
        f"""[alerts]
fetch_timeout_s = 1.5
[alerts.sources.tinh]
kind = "cap-post"
[alerts.sources.ky]
kind = "cap-post"
require_signature = true
certificate = "{cert}"
[alerts.sources.tt39]
kind = "tt39"
{polled}
[[alerts.areas]]
zone = "thon-1"
names = ["Thôn 1", "Xóm Bãi"]
geocodes = ["VN-XA=25252"]
[[alerts.areas]]
zone = "thon-2"
names = ["Thôn 2"]
""",
        encoding="utf-8",
    )
    svc = make_services(
        tmp_path, database_url, clock, LOA_CONFIG=str(tmp_path / "loa.toml"), LOA_SCHEDULE_QUIET_START="00:00",
        LOA_SCHEDULE_QUIET_END="00:00", **env,
    )  # fmt: skip
    with svc.db.session() as s:
        add_village(s, "thon-1", "Thôn 1")
        add_village(s, "thon-2", "Thôn 2")
    return svc
