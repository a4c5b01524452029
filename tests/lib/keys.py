"""Key material for tests, made when the tests run: nothing secret-looking is kept in the tree."""
from __future__ import annotations

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa


def truncated_private_key_pem(body_chars: int = 16) -> bytes:
    """The PKCS#8 PEM header and the first ``body_chars`` base64 characters of a fresh key:
    what a key cut off mid-write looks like."""
    pem = ec.generate_private_key(ec.SECP256R1()).private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    header, body = pem.split(b"\n", 1)
    return header + b"\n" + body[:body_chars] + b"\n"


def private_key_pem(pkcs1: bool = False) -> str:
    """A fresh private key as PEM text: PKCS#8 (EC P-256), or PKCS#1 (RSA 2048) with ``pkcs1``."""
    if pkcs1:
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        fmt = serialization.PrivateFormat.TraditionalOpenSSL
    else:
        key = ec.generate_private_key(ec.SECP256R1())
        fmt = serialization.PrivateFormat.PKCS8
    return key.private_bytes(serialization.Encoding.PEM, fmt, serialization.NoEncryption()).decode()
