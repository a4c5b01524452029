# -*- coding: utf-8 -*-
# Copyright: mdmops.apple contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Helpers the console adapters share: times, certificate facts, key forms. Pure Python."""

from __future__ import annotations

import datetime as _dt
import re
from typing import Any, Dict, Optional

from ansible_collections.mdmops.apple.plugins.module_utils._push._material import (
    certificate_fingerprint,
    iso8601,
    not_after,
    push_topic,
)

try:
    from cryptography import x509
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa
except ImportError:  # pragma: no cover - _material reports the missing library
    pass


def parse_time(value: Any) -> Optional[_dt.datetime]:
    """An aware UTC datetime from an RFC 3339 / ISO 8601 string (Go's time.Time JSON, Graph's
    DateTimeOffset: fractional seconds of any length, ``Z`` or an offset); None when unreadable."""
    if not value or not isinstance(value, str):
        return None
    text = value.strip()
    match = re.match(r"^(\d{4}-\d{2}-\d{2})[T ](\d{2}:\d{2}:\d{2})(\.\d+)?(Z|[+-]\d{2}:?\d{2})?$", text)
    if not match:
        return None
    day, clock, fraction, zone = match.groups()
    micro = int((fraction or ".0")[1:7].ljust(6, "0"))
    try:
        moment = _dt.datetime.strptime(day + "T" + clock, "%Y-%m-%dT%H:%M:%S").replace(microsecond=micro)
    except ValueError:
        return None
    if zone and zone != "Z":
        sign = 1 if zone[0] == "+" else -1
        digits = zone[1:].replace(":", "")
        offset = _dt.timedelta(hours=int(digits[:2]), minutes=int(digits[2:]))
        moment = moment - sign * offset
    return moment.replace(tzinfo=_dt.timezone.utc)


def iso(value: Any) -> Optional[str]:
    """``value`` (a console's time string) as push_certificate_info writes times; None if unreadable."""
    moment = parse_time(value)
    return iso8601(moment) if moment else None


def certificate_facts(cert: "x509.Certificate") -> Dict[str, Any]:
    """The identity facts :func:`compare` uses, from a certificate a console returned."""
    return {"topic": push_topic(cert), "serial_number": str(cert.serial_number),
            "not_after": iso8601(not_after(cert)), "fingerprint_sha256": certificate_fingerprint(cert, "sha256")}


def certificate_pem(cert: "x509.Certificate") -> str:
    return cert.public_bytes(serialization.Encoding.PEM).decode("ascii")


def load_certificate_pem(cert_pem: bytes) -> "x509.Certificate":
    """The first certificate of ``cert_pem`` (ValueError when there is none)."""
    return x509.load_pem_x509_certificate(cert_pem)


def unencrypted_key_pem(key_pem: bytes, fmt: str = "pkcs8") -> bytes:
    """``key_pem`` (an unencrypted PEM private key) re-encoded: ``pkcs8`` (``PRIVATE KEY``) or
    ``pkcs1`` (``RSA PRIVATE KEY``, RSA only). ValueError with a plain message otherwise."""
    try:
        key = serialization.load_pem_private_key(key_pem, password=None)
    except TypeError:
        raise ValueError("the key is encrypted: decrypt it first (privatekey_passphrase)") from None
    except ValueError:
        raise ValueError("the key is not a PEM private key the cryptography library can read") from None
    if fmt == "pkcs1":
        if not isinstance(key, rsa.RSAPrivateKey):
            raise ValueError("the key is not an RSA key (MDM push certificates use RSA keys)")
        form = serialization.PrivateFormat.TraditionalOpenSSL
    else:
        form = serialization.PrivateFormat.PKCS8
    return key.private_bytes(serialization.Encoding.PEM, form, serialization.NoEncryption())
