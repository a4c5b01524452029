"""App Transport Security (ATS) test servers: MDM-server look-alikes that pass or fail ATS on purpose.

One asyncio process in the net namespace, started on demand (``start(lab)``;
``lab.stop(NAME)`` or ``lab.down()`` stops it), bound to fixed addresses of the
lab's "other Internet" (``lab.addresses.SERVICE_RECORDS``: each profile has a
name ``mdm-<profile>.example.com``, an IPv4 198.51.100.210+ and an IPv6
2001:db8:100::210+; exact names win over the ``*.example.com`` wildcard), on
TCP 443 and 8443.  Each answers HTTP/1.1 ``200`` with ``{"lab": "mdmlab-ats",
"profile": ...}``.  Certificates are issued at start by the lab's
"Apple Public Server RSA CA 12 - G1 (lab)" (so the chain ends at the lab
root in ``lab.ca_path``), for the profile's name and addresses:

========== ========================================== =================================
profile    server                                     ATS verdict
========== ========================================== =================================
good       RSA 2048, SHA-256, TLS 1.2+, ECDHE         ok
ec         ECC P-256, SHA-256, TLS 1.2+, ECDHE        ok
tls11      RSA 2048, SHA-256, TLS 1.0-1.1 only        ats_failed: tls_version
sha1       RSA 2048 leaf signed with SHA-1            ats_failed: signature_hash
rsa1024    RSA 1024-bit leaf, SHA-256                 ats_failed: key_size
nofs       TLS 1.2 only, RSA key exchange suites only ats_failed: forward_secrecy
expired    RSA 2048, SHA-256, expired 10 days ago     untrusted: expiry
========== ========================================== =================================

The weak servers run at OpenSSL security level 0 (Debian's OpenSSL 3 refuses
TLS 1.1, SHA-1 and 1024-bit keys at its default level 2).  ``cryptography``
no longer signs with SHA-1, so ``resign`` re-signs a SHA-256 certificate's
to-be-signed part with SHA-1 (the two algorithm identifiers have the same
length; the signature is made with the issuer's RSA key).

Run by hand (inside net): ``python -m lab.ats --pki <state>/pki --out <state>/pki/ats``.
"""
from __future__ import annotations

import argparse
import asyncio
import datetime as _dt
import json
import logging
import os
import signal
import socket
import ssl
import sys
from typing import Dict, Optional, Sequence

from lab.addresses import SERVICE_RECORDS

NAME = "ats"
PORTS = (443, 8443)
ALL_PROFILES = ("good", "ec", "tls11", "sha1", "rsa1024", "nofs", "expired")
# an OpenSSL built without TLS 1.0/1.1 cannot serve the tls11 profile: it is left out (and its tests with it)
PROFILES = tuple(p for p in ALL_PROFILES if p != "tls11" or getattr(ssl, "HAS_TLSv1_1", False))
HOSTS = {p: "mdm-%s.example.com" % p for p in ALL_PROFILES}
ADDRESSES = {p: SERVICE_RECORDS[HOSTS[p]][0] for p in ALL_PROFILES}
ADDRESSES6 = {p: SERVICE_RECORDS[HOSTS[p]][1] for p in ALL_PROFILES}
# what ats_check must say of each (status, failed requirements)
EXPECTED = {"good": ("ok", []), "ec": ("ok", []), "tls11": ("ats_failed", ["tls_version"]),
            "sha1": ("ats_failed", ["signature_hash"]), "rsa1024": ("ats_failed", ["key_size"]),
            "nofs": ("ats_failed", ["forward_secrecy"]), "expired": ("untrusted", ["expiry"])}
NON_FS_CIPHERS = "AES128-GCM-SHA256:AES256-GCM-SHA384:AES128-SHA256:AES128-SHA"
log = logging.getLogger("lab.ats")

_SHA256_RSA = bytes.fromhex("06092a864886f70d01010b")   # OID sha256WithRSAEncryption
_SHA1_RSA = bytes.fromhex("06092a864886f70d010105")     # OID sha1WithRSAEncryption


# ---------------------------------------------------------------- certificates
def _der_len(n: int) -> bytes:
    if n < 0x80:
        return bytes([n])
    raw = n.to_bytes((n.bit_length() + 7) // 8, "big")
    return bytes([0x80 | len(raw)]) + raw


def _split(der: bytes, start: int):
    """(whole TLV bytes, next index) of the element at ``start``."""
    length = der[start + 1]
    i = start + 2
    if length & 0x80:
        n = length & 0x7F
        length = int.from_bytes(der[i:i + n], "big")
        i += n
    return der[start:i + length], i + length


def resign(cert, issuer_key, algorithm: str = "sha1"):
    """``cert`` (RSA-signed with SHA-256) re-signed by ``issuer_key`` with SHA-1: an x509.Certificate."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import padding
    if algorithm != "sha1":
        raise ValueError("only sha1 is supported")
    der = cert.public_bytes(serialization.Encoding.DER)
    body_start = 2 + (der[1] & 0x7F if der[1] & 0x80 else 0)
    tbs, i = _split(der, body_start)
    sig_alg, i = _split(der, i)
    if _SHA256_RSA not in tbs or _SHA256_RSA not in sig_alg:
        raise ValueError("resign wants a certificate signed with sha256WithRSAEncryption")
    tbs = tbs.replace(_SHA256_RSA, _SHA1_RSA, 1)
    sig_alg = sig_alg.replace(_SHA256_RSA, _SHA1_RSA, 1)
    signature = issuer_key.sign(tbs, padding.PKCS1v15(), hashes.SHA1())
    bitstring = b"\x03" + _der_len(len(signature) + 1) + b"\x00" + signature
    content = tbs + sig_alg + bitstring
    return x509.load_der_x509_certificate(b"\x30" + _der_len(len(content)) + content)


def profile_certificate(profile: str, issuer, names: Sequence[str]):
    """The lab.pki ``Issued`` leaf for ``profile`` (see the table in the module docstring)."""
    from cryptography.x509.oid import ExtendedKeyUsageOID
    from lab.pki import Issued, ec_key, issue, name, now, rsa_key
    first = names[0]
    kwargs = dict(san=list(names), eku=[ExtendedKeyUsageOID.SERVER_AUTH])
    if profile == "ec":
        return issue(name(first), issuer, key=ec_key(), **kwargs)
    if profile == "rsa1024":
        return issue(name(first), issuer, key=rsa_key(1024), **kwargs)
    if profile == "expired":
        end = now() - _dt.timedelta(days=10)
        return issue(name(first), issuer, not_before=end - _dt.timedelta(days=90), not_after=end, **kwargs)
    leaf = issue(name(first), issuer, **kwargs)
    if profile == "sha1":
        return Issued(resign(leaf.cert, issuer.key), leaf.key, leaf.chain)
    return leaf


def server_context(profile: str, cert_path: str, key_path: str) -> ssl.SSLContext:
    """The server side of ``profile``: protocol versions and suites as in the table."""
    import warnings
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.set_ciphers((NON_FS_CIPHERS if profile == "nofs" else "DEFAULT") + ":@SECLEVEL=0")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        if profile == "tls11":
            ctx.minimum_version = ssl.TLSVersion.TLSv1
            ctx.maximum_version = ssl.TLSVersion.TLSv1_1
        elif profile == "nofs":
            ctx.minimum_version = ssl.TLSVersion.TLSv1_2
            ctx.maximum_version = ssl.TLSVersion.TLSv1_2
        else:
            ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    ctx.load_cert_chain(cert_path, key_path)
    ctx.set_alpn_protocols(["http/1.1"])
    return ctx


def load_issuer(pki_dir: str, ca: str = "apple_server"):
    from cryptography import x509
    from cryptography.hazmat.primitives.serialization import load_pem_private_key
    from lab.pki import Issued
    with open(os.path.join(pki_dir, ca + ".pem"), "rb") as f:
        cert = x509.load_pem_x509_certificate(f.read())
    with open(os.path.join(pki_dir, ca + ".key"), "rb") as f:
        key = load_pem_private_key(f.read(), None)
    chain = ()
    parent = os.path.join(pki_dir, "usertrust.pem")
    if ca != "usertrust" and os.path.exists(parent):
        with open(parent, "rb") as f:
            chain = (x509.load_pem_x509_certificate(f.read()),)
    return Issued(cert, key, chain)


def write_profiles(pki_dir: str, out_dir: str, profiles: Sequence[str] = PROFILES) -> Dict[str, tuple]:
    """Issue and write each profile's certificate; ``{profile: (cert_path, key_path)}``."""
    issuer = load_issuer(pki_dir)
    os.makedirs(out_dir, mode=0o700, exist_ok=True)
    out = {}
    for profile in profiles:
        leaf = profile_certificate(profile, issuer, [HOSTS[profile], ADDRESSES[profile], ADDRESSES6[profile]])
        base = os.path.join(out_dir, "ats-" + profile)
        # the chain sent: leaf and the intermediate (servers do not send the root)
        with open(base + ".pem", "wb") as f:
            f.write(leaf.cert_pem() + issuer.cert_pem())
        fd = os.open(base + ".key", os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "wb") as f:
            f.write(leaf.key_pem())
        out[profile] = (base + ".pem", base + ".key")
    return out


# ---------------------------------------------------------------- server
async def serve(pki_dir: str, out_dir: str, ports: Sequence[int] = PORTS) -> None:
    paths = write_profiles(pki_dir, out_dir)

    def handler(profile: str):
        async def handle(reader, writer) -> None:
            sslobj = writer.get_extra_info("ssl_object")
            version = sslobj.version() if sslobj else None
            cipher = sslobj.cipher()[0] if sslobj else None
            try:
                head = b""
                while b"\r\n\r\n" not in head and len(head) < 65536:
                    chunk = await asyncio.wait_for(reader.read(65536), 5)
                    if not chunk:
                        break
                    head += chunk
                line = head.split(b"\r\n", 1)[0].decode("latin-1", "replace")
                body = json.dumps({"lab": "mdmlab-ats", "profile": profile, "tls_version": version,
                                   "cipher": cipher, "request": line}, sort_keys=True).encode()
                if head:
                    writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nServer: mdmlab-ats\r\n"
                                 b"Content-Length: %d\r\nConnection: close\r\n\r\n%s" % (len(body), body))
                    await writer.drain()
                log.info("ats %s %s from %s %s %s %r", profile, writer.get_extra_info("sockname"),
                         writer.get_extra_info("peername"), version, cipher, line)
            except (ConnectionError, ssl.SSLError, OSError, asyncio.TimeoutError) as exc:
                log.info("ats %s: %s", profile, exc.__class__.__name__)
            finally:
                writer.close()
        return handle

    servers = []
    for profile in PROFILES:
        ctx = server_context(profile, *paths[profile])
        for address in (ADDRESSES[profile], ADDRESSES6[profile]):
            for port in ports:
                family = socket.AF_INET6 if ":" in address else socket.AF_INET
                sock = socket.socket(family, socket.SOCK_STREAM)
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
                if family == socket.AF_INET6:
                    sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
                    sock.setsockopt(socket.IPPROTO_IP, getattr(socket, "IP_FREEBIND", 15), 1)
                sock.bind((address, port))
                sock.listen(64)
                sock.setblocking(False)
                servers.append(await asyncio.start_server(handler(profile), sock=sock, ssl=ctx,
                                                          ssl_handshake_timeout=5))
    log.info("ats ready: %s on %s", ", ".join("%s=%s" % (p, ADDRESSES[p]) for p in PROFILES), list(ports))
    loop = asyncio.get_running_loop()
    stop = loop.create_future()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, lambda: stop.done() or stop.set_result(None))
    await stop
    for server in servers:
        server.close()


def start(lab, ports: Sequence[int] = PORTS) -> Dict[str, str]:
    """Start the ATS servers in ``lab``'s net namespace (restarts them if running); ``{profile: IPv4}``."""
    lab.spawn("net", NAME, [sys.executable, "-m", "lab.ats", "--pki", lab.path("pki"),
                            "--out", lab.path("pki", "ats"), "--ports", ",".join(str(p) for p in ports)],
              tcp_ports=ports)
    return dict(ADDRESSES)


def ensure(lab, ports: Sequence[int] = PORTS) -> Dict[str, str]:
    """``start`` unless they already run (lazy: tests call this; the lab does not start them with ``up``)."""
    if lab.pid(NAME) is None:
        return start(lab, ports)
    return dict(ADDRESSES)


def main(argv: Optional[Sequence[str]] = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", maxsplit=1)[0])
    parser.add_argument("--pki", required=True, help="the lab's pki directory (apple_server.pem/.key)")
    parser.add_argument("--out", required=True, help="where to write the servers' certificates")
    parser.add_argument("--ports", default=",".join(str(p) for p in PORTS), help="TCP ports")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    asyncio.run(serve(args.pki, args.out, [int(p) for p in args.ports.split(",")]))


if __name__ == "__main__":
    main()
