"""CAP 1.2 (OASIS Common Alerting Protocol) documents, posted or polled, read the way an attacker's would be.

A document is refused, with a reason in its source's status and nothing aired, unless
- it is at most `[alerts] max_kb` and well-formed XML without a DOCTYPE (no entities to expand, no DTD to
  load, nothing fetched: lxml's parser with `resolve_entities=False`, `no_network`, `load_dtd=False`);
- it is valid against the OASIS CAP-v1.2 schema (data/CAP-v1.2.xsd, as published in the specification);
- where its source has `require_signature`, it carries an enveloped XML signature (XML-DSig) made with the
  source's configured certificate, checked by signxml; only what the signature covers is then read, so
  elements slipped in beside a signed document (signature wrapping) are never seen.
What it says is then handed to services/alerts.py as an `Incoming`: dedup, expiry, areas and policy live
there, for CAP and for the TT39 bulletins alike.

lxml (libxml2) and not xmlschema: signxml, the only maintained XML-DSig verifier on the registry, is built
on lxml, so the schema check and the signature check read the same tree with one parser, and libxml2
validates a CAP document in well under a millisecond.
"""

from __future__ import annotations

import functools
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import requests
from lxml import etree

from broadcaster.errors import LoaError
from broadcaster.services import Services
from broadcaster.services.alerts import Area, Incoming, Reference, receive, refuse, source_config

CAP_NS = "urn:oasis:names:tc:emergency:cap:1.2"
DSIG_NS = "http://www.w3.org/2000/09/xmldsig#"
XSD = Path(__file__).with_name("data") / "CAP-v1.2.xsd"
MAX_DETAIL = 200
_NS = {"cap": CAP_NS}


def _parser() -> etree.XMLParser:
    """No entities substituted, no DTD loaded, nothing from the network, no huge trees."""
    return etree.XMLParser(
        resolve_entities=False, no_network=True, load_dtd=False, dtd_validation=False, huge_tree=False
    )


@functools.cache
def cap_schema() -> etree.XMLSchema:
    return etree.XMLSchema(etree.parse(str(XSD), _parser()))


def _short(text: str) -> str:
    text = " ".join(str(text).split())
    return text if len(text) <= MAX_DETAIL else text[: MAX_DETAIL - 1] + "…"


def parse_document(data: bytes, max_bytes: int) -> Any:
    """The root element of a well-formed, DTD-free XML document, or a refusal (`alert_malformed`)."""
    if len(data) > max_bytes:
        raise LoaError("alert_too_large", {"max_kb": max_bytes // 1024}, status=413)
    if not data.strip():
        raise LoaError("alert_malformed", {"detail": "empty document"}, status=422)
    if b"<!DOCTYPE" in data.upper() or b"<\x00!\x00D\x00O\x00C" in data.upper():
        raise LoaError("alert_malformed", {"detail": "a DOCTYPE is not allowed"}, status=422)
    try:
        root = etree.fromstring(data, _parser())
    except (etree.XMLSyntaxError, ValueError) as exc:
        raise LoaError("alert_malformed", {"detail": _short(str(exc))}, status=422) from exc
    doc = root.getroottree().docinfo
    if doc.doctype or doc.internalDTD is not None:  # an encoding the byte check above did not see
        raise LoaError("alert_malformed", {"detail": "a DOCTYPE is not allowed"}, status=422)
    return root


def check_schema(root: Any) -> None:
    """Valid CAP 1.2, or `alert_schema` with libxml2's first complaint (line and what was wrong)."""
    if root.tag != f"{{{CAP_NS}}}alert":
        raise LoaError("alert_schema", {"detail": _short(f"the root is <{root.tag}>, not a CAP 1.2 <alert>")},
                       status=422)  # fmt: skip
    schema = cap_schema()
    try:
        valid = schema.validate(root)
    except etree.Error as exc:  # libxml2 gives up (an entity it was not allowed to expand, say)
        raise LoaError("alert_schema", {"detail": _short(str(exc))}, status=422) from exc
    if not valid:
        err = schema.error_log.last_error
        detail = f"line {err.line}: {err.message}" if err is not None else "invalid"
        raise LoaError("alert_schema", {"detail": _short(detail)}, status=422)


def verify_signature(data: bytes, certificate: Path) -> Any:
    """The element the source's signature covers (enveloped, by the pinned certificate), or
    `alert_unsigned` with why not. signxml parses the bytes again with entities off."""
    from signxml import XMLVerifier  # loaded only for sources that sign
    from signxml.exceptions import InvalidInput, InvalidSignature

    try:
        pem = certificate.read_text(encoding="ascii")
    except (OSError, UnicodeDecodeError) as exc:
        raise LoaError("alert_unsigned", {"detail": _short(f"certificate unreadable: {exc}")}, status=422) from exc
    try:
        result = XMLVerifier().verify(data, x509_cert=pem, parser=_parser())
    except (InvalidSignature, InvalidInput, etree.XMLSyntaxError, ValueError) as exc:
        raise LoaError("alert_unsigned", {"detail": _short(str(exc) or type(exc).__name__)}, status=422) from exc
    if isinstance(result, list):
        raise LoaError("alert_unsigned", {"detail": "more than one signed reference"}, status=422)
    signed = result.signed_xml
    if signed is None or signed.tag != f"{{{CAP_NS}}}alert":
        raise LoaError("alert_unsigned", {"detail": "the signature does not cover the whole alert"}, status=422)
    return signed


def _text(el: Any, name: str) -> str:
    found = el.find(f"cap:{name}", _NS)
    return (found.text or "").strip() if found is not None else ""


def _time(text: str) -> datetime | None:
    """A CAP time (the schema allows only `YYYY-MM-DDThh:mm:ss±hh:mm`), in UTC."""
    if not text:
        return None
    try:
        return datetime.fromisoformat(text).astimezone(UTC)
    except ValueError as exc:
        raise LoaError("alert_schema", {"detail": _short(f"bad time {text!r}")}, status=422) from exc


def _references(text: str) -> tuple[Reference, ...]:
    """CAP's `sender,identifier,sent` triples, separated by white space; a malformed one is skipped."""
    out = []
    for part in text.split():
        pieces = part.split(",")
        if len(pieces) != 3:
            continue
        try:
            sent = _time(pieces[2])
        except LoaError:
            sent = None
        out.append(Reference(pieces[0], pieces[1], sent))
    return tuple(out)


def _info(root: Any) -> Any | None:
    """The `info` block to act on: the first in Vietnamese, else the first."""
    infos = root.findall("cap:info", _NS)
    for info in infos:
        if _text(info, "language").lower().startswith("vi"):
            return info
    return infos[0] if infos else None


def read_alert(root: Any, source: str) -> Incoming:
    """A schema-valid CAP alert as services/alerts.py takes it."""
    sent = _time(_text(root, "sent"))
    assert sent is not None  # the schema requires it
    fields: dict[str, Any] = {}
    info = _info(root)
    if info is not None:
        areas = tuple(
            Area(
                _text(area, "areaDesc"),
                tuple((_text(g, "valueName"), _text(g, "value")) for g in area.findall("cap:geocode", _NS)),
            )
            for area in info.findall("cap:area", _NS)
        )
        fields = {
            "event": _text(info, "event"), "headline": _text(info, "headline"),
            "description": _text(info, "description"), "instruction": _text(info, "instruction"),
            "severity": _text(info, "severity"), "urgency": _text(info, "urgency"),
            "certainty": _text(info, "certainty"), "effective": _time(_text(info, "effective")),
            "onset": _time(_text(info, "onset")), "expires": _time(_text(info, "expires")), "areas": areas,
        }  # fmt: skip
    references = _text(root, "references")
    return Incoming(
        source=source, sender=_text(root, "sender"), identifier=_text(root, "identifier"), sent=sent,
        msg_type=_text(root, "msgType"), status=_text(root, "status"), references=_references(references),
        references_text=references, **fields,
    )  # fmt: skip


def receive_cap(
    svc: Services, source: str | None, data: bytes, *, posted_by: str, polled: bool = False, lang: str = "vi"
) -> dict[str, Any]:
    """Read one CAP document from `source` (a cap-post source, or the only one) and act on it. Every
    refusal is recorded in the source's status and audited before it is raised."""
    kinds = ("cap-url",) if polled else ("cap-post",)
    name, cfg = source_config(svc, source, kinds)
    try:
        root = parse_document(data, svc.config.alerts.max_kb * 1024)
        check_schema(root)
        has_signature = root.find(f"{{{DSIG_NS}}}Signature") is not None
        if cfg.require_signature and not has_signature:
            raise LoaError("alert_unsigned", {"detail": "no signature"}, status=422)
        if cfg.certificate is not None and (cfg.require_signature or has_signature):
            root = verify_signature(data, cfg.certificate)
            check_schema(root)
        incoming = read_alert(root, name)
    except LoaError as exc:
        raise refuse(svc, name, exc, actor=posted_by) from None
    return receive(svc, incoming, posted_by=posted_by, replay_ok=polled, lang=lang)


# ---------------------------------------------------------------- polling


def fetch(url: str, *, timeout_s: float, max_bytes: int) -> bytes:
    """The body at `url`, within `timeout_s` in all (a server that drips a byte a second is cut off
    too) and `max_bytes`; `alert_fetch_failed` with why not."""
    deadline = time.monotonic() + timeout_s
    try:
        with requests.get(url, timeout=(min(timeout_s, 5.0), timeout_s), stream=True, allow_redirects=True,
                          headers={"Accept": "application/cap+xml, application/xml, text/xml"}) as resp:  # fmt: skip
            if resp.status_code != 200:
                raise LoaError("alert_fetch_failed", {"detail": f"HTTP {resp.status_code}"})
            body = bytearray()
            for chunk in resp.iter_content(16384):
                body += chunk
                if len(body) > max_bytes:
                    raise LoaError("alert_too_large", {"max_kb": max_bytes // 1024}, status=413)
                if time.monotonic() > deadline:
                    raise LoaError("alert_fetch_failed", {"detail": f"no answer within {timeout_s:g} s"})
            return bytes(body)
    except requests.Timeout as exc:
        raise LoaError("alert_fetch_failed", {"detail": f"no answer within {timeout_s:g} s"}) from exc
    except requests.RequestException as exc:
        raise LoaError("alert_fetch_failed", {"detail": _short(type(exc).__name__)}) from exc

