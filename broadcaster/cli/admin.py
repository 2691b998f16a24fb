"""`loa broker config` and `loa device add`: the technician's side of broker security.

A device is provisioned once, here: it gets a row in the database, a random broker password (only the
hash is kept), and one JSON file with everything its agent needs, shown as a QR code so a speaker with a
camera or a phone app can read it. The broker files are always regenerated from the database, never
edited by hand, so the database stays the single truth about who may connect.
"""

from __future__ import annotations

import argparse
import ipaddress
import json
import shutil
import struct
import sys
import zlib
from datetime import UTC, datetime
from pathlib import Path, PurePosixPath
from typing import Any

from sqlalchemy.orm import Session

from broadcaster import protocol
from broadcaster.broker.access import broker_files, devices_for_broker
from broadcaster.broker.credentials import (
    DAEMON_SECRET_FILE,
    DAEMON_USER,
    daemon_credentials,
    issue_credentials,
    valid_name,
    write_private,
)
from broadcaster.broker.managed import BrokerSettings, ManagedBroker
from broadcaster.broker.tls import TlsFiles, make_server_cert, tls_listener_lines
from broadcaster.cli import os_account
from broadcaster.config import Config, load_config
from broadcaster.db import Database, Device, DeviceKind, Zone, ZoneKind, audit, device_zones
from broadcaster.device.agent import AgentConfig
from broadcaster.errors import LoaError
from broadcaster.protocol.mqtt import BrokerAddress
from broadcaster.runtime.datadir import running_broker_url
from broadcaster.services.zones import ensure_commune

SIGNING_KEY = Path("keys") / "daemon-ed25519.pem"
AGENT_STATE_ROOT = PurePosixPath("/var/lib/loa-agent")  # on the device (systemd's StateDirectory=loa-agent)
# During a key rotation the next key waits here; devices provisioned meanwhile trust both.
NEXT_SIGNING_KEY = Path("keys") / "daemon-ed25519.next.pem"


# ---------------------------------------------------------------- shared helpers


def open_database(config: Config) -> Database:
    """The database at the latest schema (created if new; one behind is refused: `loa db upgrade`), with the
    commune zone every device belongs to."""
    Path(config.general.data_dir).mkdir(mode=0o700, parents=True, exist_ok=True)  # private: docs/security.md
    db = Database(config.database_url)
    db.prepare(upgrade=False)
    with db.session() as session:
        ensure_commune(session, config.general.commune)
    return db


def trusted_keys(data_dir: Path) -> dict[str, str]:
    """The daemon's public key(s) a device should trust, {kid: base64}; creates the key on first use."""
    signers = [protocol.load_or_create_signer(data_dir / SIGNING_KEY)]
    if (data_dir / NEXT_SIGNING_KEY).exists():
        signers.append(protocol.load_or_create_signer(data_dir / NEXT_SIGNING_KEY))
    return {s.kid: s.public_b64 for s in signers}


# ---------------------------------------------------------------- loa broker config


def cmd_broker_config(args: argparse.Namespace) -> int:
    config = load_config(args.config)
    data = Path(config.general.data_dir)
    out = (args.out or data / "mosquitto").resolve()
    if args.owner:
        _check_user(args.owner)
    db = open_database(config)
    try:
        with db.session() as session:
            devices = devices_for_broker(session)
    finally:
        db.dispose()
    user, password = daemon_credentials(config)
    extra = broker_files(out, user, password, devices, prefix=config.broker.topic_prefix)
    tls: TlsFiles | None = None
    if args.tls_port:
        hosts = args.tls_host or [config.broker.host]
        tls = make_server_cert(out / "tls", hosts)
        extra += tls_listener_lines(tls, args.tls_port)
    settings = BrokerSettings(
        host=config.broker.host,
        port=config.broker.port,
        binary=config.broker.mosquitto,
        extra_lines=extra,
        user=args.owner,
        managed=False,
    )
    conf = ManagedBroker(out, settings).write_config()
    if args.owner:
        _chown_tree(out, args.owner)
        _let_through(data.resolve(), out, args.owner)
    print(f"Đã ghi cấu hình Mosquitto cho {len(devices)} thiết bị vào {out}:")
    print(f"  {conf.name}, passwd, acl{', tls/' if tls else ''}")
    print(f"  Chạy broker:  mosquitto -c {conf}")
    where = (
        "[broker] password" if config.broker.password else str(data.resolve() / "keys" / DAEMON_SECRET_FILE)
    )
    print(f"  Daemon đăng nhập là «{user}», mật khẩu trong {where}")
    if tls:
        print(f"  TLS trên cổng {args.tls_port}; thiết bị cần tin CA: {tls.ca_cert}")
    print("  Chạy lại lệnh này sau mỗi lần thêm hoặc thu hồi thiết bị (broker ngoài).")
    return 0


def _check_user(name: str) -> None:
    import pwd

    try:
        pwd.getpwnam(name)
    except KeyError as exc:
        raise LoaError("unknown_user", {"name": name}) from exc


def _chown_tree(root: Path, owner: str) -> None:
    """For a system Mosquitto that drops to its own user: it must read the 0600 files we wrote."""
    shutil.chown(root, owner, None)
    for path in root.rglob("*"):
        shutil.chown(path, owner, None)


def _let_through(data: Path, out: Path, owner: str) -> None:
    """The data folder is closed to other users (runtime.datadir.keep_private); files written inside it
    for a system Mosquitto need a way in for its user: the folder goes to that user's group, 0750,
    which lists names but opens nothing (every file in it is 0600, every folder 0700)."""
    if data == out or data not in out.parents:
        return
    import pwd

    shutil.chown(data, None, pwd.getpwnam(owner).pw_gid)
    data.chmod(0o750)


# ---------------------------------------------------------------- loa device add


def _broker_url(given: str | None, config: Config) -> str:
    """The URL a device dials, without credentials (those are separate fields in its config): the one
    given, the configured external broker, or the managed broker where the daemon last ran it. Never the
    configured port on a guess: when it was taken, the managed broker moved, and whoever holds it (here
    another Mosquitto) would be handed the device's password at its first CONNECT."""
    data = Path(config.general.data_dir).resolve()
    url = given or config.broker.url or running_broker_url(data)
    if not url:
        raise LoaError("broker_url_unknown", {"data_dir": str(data)})
    try:
        address = BrokerAddress.parse(url)
    except ValueError as exc:
        raise LoaError("bad_broker_url", {"url": url}) from exc
    host = f"[{address.host}]" if ":" in address.host else address.host
    return f"{'mqtts' if address.tls else 'mqtt'}://{host}:{address.port}"


def _is_loopback(url: str) -> bool:
    host = BrokerAddress.parse(url).host
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return host == "localhost"


def _check_new_device(session: Session, device_id: str, village_id: str, groups: list[str]) -> list[str]:
    """Validate before writing anything; returns the zones the device will listen on."""
    if not valid_name(device_id) or device_id == DAEMON_USER:
        raise LoaError("bad_device_id", {"device": device_id})
    if session.get(Device, device_id) is not None:
        raise LoaError("device_exists", {"device": device_id})
    village = session.get(Zone, village_id)
    if village is None or village.kind is not ZoneKind.VILLAGE:
        raise LoaError("unknown_zone.device_village", {"zone": village_id})
    zones = device_zones(session, village_id)
    for group in groups:
        if session.get(Zone, group) is None:
            raise LoaError("unknown_zone.zone", {"zone": group})
        if group not in zones:
            raise LoaError("not_in_zone", {"village": village_id, "zone": group})
    return groups or zones


def _device_state_dir(device_id: str, given: str | None) -> str:
    """Where the device keeps the ids it has taken, the plays it holds and its audio: a folder of its own,
    named absolutely. The config is read on the device, so a path relative to wherever its agent happens
    to be started is no place at all: two agents started from one folder shared one (#15)."""
    path = given or str(AGENT_STATE_ROOT / device_id)
    if not PurePosixPath(path).is_absolute():
        raise LoaError("bad_state_dir", {"path": path})
    return path


def _agent_json(cfg: AgentConfig, ca_file: str | None) -> dict[str, Any]:
    data = dict(cfg.__dict__)
    if ca_file:
        data["ca_file"] = ca_file
    return data


def cmd_device_add(args: argparse.Namespace) -> int:
    config = load_config(args.config)
    data = Path(config.general.data_dir)
    url = _broker_url(args.broker_url, config)
    out: Path = (args.out or data / "devices" / f"{args.id}.json").resolve()
    db = open_database(config)
    try:
        with db.session() as session:
            groups = _check_new_device(session, args.id, args.village, args.group or [])
            device = Device(
                id=args.id,
                kind=DeviceKind(args.kind),
                village_id=args.village,
                name=args.name or args.id,
                diacritics=not args.no_diacritics,
            )
            session.add(device)
            secret = issue_credentials(device)
            cfg = AgentConfig(
                device_id=args.id,
                kind=args.kind,
                broker_url=url,
                public_keys=trusted_keys(data),
                topic_prefix=config.broker.topic_prefix,
                username=args.id,
                password=secret,
                state_dir=_device_state_dir(args.id, args.state_dir),
                sink="auto",
                diacritics=not args.no_diacritics,
                groups=groups,
            )
            # Written inside the transaction: if the files cannot be written, nothing is stored.
            qr_text, png = _write_device_files(cfg, args.ca_file, data, url, out)
            audit(
                session,
                datetime.now(UTC),
                os_account(),
                "device.add",
                device=args.id,
                kind=args.kind,
                village=args.village,
                groups=groups,
                broker_url=url,
                config_file=str(out),
            )
    finally:
        db.dispose()
    if not args.no_qr:
        print_qr(qr_text)
    print(_how_to(args.id, args.kind, out, png, url, cfg.state_dir))
    return 0


def _write_device_files(cfg: AgentConfig, ca_given: Path | None, data: Path, url: str, out: Path) -> tuple[str, Path]:
    """The config file, its QR code as PNG and the CA copy; all or none of them are left behind."""
    png = out.with_suffix(".png")
    ca_copy = out.with_name(f"{out.stem}.ca.crt")
    try:
        ca_file = _copy_ca(ca_given, data, url, ca_copy)
        payload = _agent_json(cfg, ca_file)
        write_private(out, json.dumps(payload, ensure_ascii=False, indent=2) + "\n")
        qr_text = json.dumps(payload, ensure_ascii=False, separators=(",", ":"))
        write_qr_png(qr_text, png)
    except BaseException:
        for path in (out, png, ca_copy):
            path.unlink(missing_ok=True)
        raise
    return qr_text, png


def _copy_ca(given: Path | None, data: Path, url: str, target: Path) -> str | None:
    """For mqtts:// the device needs the commune's CA next to its config (unless the broker has a
    publicly trusted certificate); returns its file name for the config, or None."""
    if not url.startswith("mqtts://"):
        return None
    ca = given or data / "mosquitto" / "tls" / "ca.crt"
    if not ca.exists():
        if given:
            raise LoaError("bad_ca_file", {"path": str(given)})
        return None
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(ca, target)
    return target.name


def _how_to(device_id: str, kind: str, config_file: Path, png: Path, url: str, state_dir: str) -> str:
    lines = [
        f"Đã cấp phát thiết bị «{device_id}».",
        "Hướng dẫn cho kỹ thuật viên:",
        f"  1. Chép {config_file} vào thiết bị (hoặc quét mã QR ở trên; bản in: {png}).",
        f"  2. Trên thiết bị chạy:  loa agent {kind} --config {config_file.name}",
        f"     (thiết bị giữ trạng thái ở {state_dir}: người chạy agent phải ghi được vào đó)",
        "  3. Kiểm tra trên máy chủ:  loa status  — thiết bị phải hiện «trực tuyến».",
        "  Tệp và mã QR chứa mật khẩu của thiết bị: giữ kín, xoá khỏi máy tính sau khi lắp đặt xong.",
        "  Daemon tự cập nhật broker trong vài giây; với broker ngoài, chạy lại:  loa broker config",
    ]
    if _is_loopback(url):
        lines.append(f"  Chú ý: broker là {url}, chỉ máy chủ này tới được; dùng --broker-url với IP trong mạng.")
    return "\n".join(lines)


# ---------------------------------------------------------------- QR codes


def print_qr(text: str) -> None:
    import qrcode

    qr = qrcode.QRCode(error_correction=qrcode.constants.ERROR_CORRECT_L, border=2)
    qr.add_data(text.encode("utf-8"))
    qr.make(fit=True)
    qr.print_ascii(out=sys.stdout, invert=True)


def _png_chunk(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))


def write_qr_png(text: str, path: Path, scale: int = 8) -> None:
    """A printable PNG of the QR code, written with zlib alone: Pillow is a heavy dependency for one
    black-and-white picture."""
    from broadcaster.services.qr import qr_matrix  # shared with the villagers' feedback QR codes

    matrix = qr_matrix(text)
    rows = bytearray()
    for row in matrix:
        line = b"".join(b"\x00" * scale if dark else b"\xff" * scale for dark in row)
        rows += (b"\x00" + line) * scale  # filter byte 0, each module `scale` pixels square
    side = len(matrix) * scale
    header = struct.pack(">IIBBBBB", side, side, 8, 0, 0, 0, 0)  # 8-bit grayscale
    png = (
        b"\x89PNG\r\n\x1a\n"
        + _png_chunk(b"IHDR", header)
        + _png_chunk(b"IDAT", zlib.compress(bytes(rows), 9))
        + _png_chunk(b"IEND", b"")
    )
    write_private(path, png)
