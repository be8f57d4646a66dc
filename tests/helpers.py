"""Small builders shared by tests."""

from __future__ import annotations

import asyncio
import datetime as dt
import io
import ipaddress
import json
import sys
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from monitor.replay.runner import replay
from monitor.replay.scenario import parse
from monitor.rules.ruleset import build_ruleset

CST = timezone(timedelta(hours=8))
CLI = str(Path(sys.executable).with_name("parcel-monitor"))


def cst(day: int, hour: int, minute: int = 0) -> datetime:
    """Return a November 2026 moment in China Standard Time."""
    return datetime(2026, 11, day, hour, minute, tzinfo=CST)


def run(
    lines: list[dict[str, Any]], rules: dict[str, Any] | None = None, database_url: str | None = None
) -> list[dict[str, Any]]:
    """Replay scenario ``lines`` through the real engine and return the output lines."""
    steps = parse([json.dumps(line, ensure_ascii=False) for line in lines])
    out = io.StringIO()
    asyncio.run(replay(steps, build_ruleset(rules), out, database_url=database_url))
    return [json.loads(line) for line in out.getvalue().splitlines()]


def end(at: str) -> dict[str, Any]:
    """Return an ``end`` scenario line."""
    return {"kind": "end", "at": at}


def self_signed(folder: Path) -> tuple[Path, Path]:
    """Write a certificate for 127.0.0.1 and its key; the certificate is its own CA."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(dt.datetime(2020, 1, 1, tzinfo=dt.UTC))
        .not_valid_after(dt.datetime(2100, 1, 1, tzinfo=dt.UTC))
        .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = folder / "cert.pem", folder / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    return cert_path, key_path
