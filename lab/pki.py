"""Lab PKI: certificate authorities and certificates shaped like Apple's.

Everything is generated at run time (no key is ever committed).  Used by the
lab's TLS listeners, the push provider emulator, the MDM console emulators and
the tests.  Pure ``cryptography``; no Ansible imports.
"""
from __future__ import annotations

import datetime as _dt
import ipaddress
from dataclasses import dataclass
from typing import Iterable, Optional, Sequence

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

UTC = _dt.timezone.utc


def now() -> _dt.datetime:
    return _dt.datetime.now(UTC).replace(microsecond=0)


def rsa_key(bits: int = 2048) -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=bits)


def ec_key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def name(common_name: str, organization: Optional[str] = None, country: Optional[str] = None,
         extra: Sequence[x509.NameAttribute] = ()) -> x509.Name:
    attrs = list(extra) + [x509.NameAttribute(NameOID.COMMON_NAME, common_name)]
    if organization:
        attrs.append(x509.NameAttribute(NameOID.ORGANIZATION_NAME, organization))
    if country:
        attrs.append(x509.NameAttribute(NameOID.COUNTRY_NAME, country))
    return x509.Name(attrs)


@dataclass
class Issued:
    """A certificate with its private key (and the chain above it, leaf excluded)."""

    cert: x509.Certificate
    key: object
    chain: tuple = ()

    def cert_pem(self) -> bytes:
        return self.cert.public_bytes(serialization.Encoding.PEM)

    def chain_pem(self) -> bytes:
        return b"".join(c.public_bytes(serialization.Encoding.PEM) for c in self.chain)

    def key_pem(self, password: Optional[bytes] = None) -> bytes:
        enc = (serialization.BestAvailableEncryption(password) if password
               else serialization.NoEncryption())
        return self.key.private_bytes(serialization.Encoding.PEM,
                                      serialization.PrivateFormat.PKCS8, enc)

    def write(self, cert_path: str, key_path: Optional[str] = None, with_chain: bool = False) -> None:
        import os
        with open(cert_path, "wb") as f:
            f.write(self.cert_pem() + (self.chain_pem() if with_chain else b""))
        if key_path:
            fd = os.open(key_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "wb") as f:
                f.write(self.key_pem())


def issue(subject: x509.Name, issuer: Optional[Issued] = None, key=None, *, ca: bool = False,
          not_before: Optional[_dt.datetime] = None, not_after: Optional[_dt.datetime] = None,
          days: int = 365, san: Iterable[str] = (), eku: Sequence = (), serial: Optional[int] = None,
          path_length: Optional[int] = None) -> Issued:
    """Issue a certificate for ``subject``; self-signed when ``issuer`` is None."""
    key = key or rsa_key()
    nb = not_before or (now() - _dt.timedelta(days=1))
    na = not_after or (nb + _dt.timedelta(days=days))
    signer_key = issuer.key if issuer else key
    builder = (x509.CertificateBuilder()
               .subject_name(subject)
               .issuer_name(issuer.cert.subject if issuer else subject)
               .public_key(key.public_key())
               .serial_number(serial or x509.random_serial_number())
               .not_valid_before(nb)
               .not_valid_after(na)
               .add_extension(x509.BasicConstraints(ca=ca, path_length=path_length if ca else None),
                              critical=True)
               .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()),
                              critical=False))
    if issuer:
        builder = builder.add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer.key.public_key()), critical=False)
    if ca:
        builder = builder.add_extension(
            x509.KeyUsage(digital_signature=True, content_commitment=False, key_encipherment=False,
                          data_encipherment=False, key_agreement=False, key_cert_sign=True,
                          crl_sign=True, encipher_only=False, decipher_only=False), critical=True)
    names = []
    for entry in san:
        try:
            names.append(x509.IPAddress(ipaddress.ip_address(entry)))
        except ValueError:
            names.append(x509.DNSName(entry))
    if names:
        builder = builder.add_extension(x509.SubjectAlternativeName(names), critical=False)
    if eku:
        builder = builder.add_extension(x509.ExtendedKeyUsage(list(eku)), critical=False)
    cert = builder.sign(signer_key, hashes.SHA256())
    chain = ((issuer.cert,) + tuple(issuer.chain)) if issuer else ()
    return Issued(cert=cert, key=key, chain=chain)


def make_ca(common_name: str, organization: Optional[str] = None, parent: Optional[Issued] = None,
            days: int = 3650, country: Optional[str] = None) -> Issued:
    return issue(name(common_name, organization, country), parent, ca=True, days=days)


def tls_server(issuer: Issued, names: Sequence[str], days: int = 365) -> Issued:
    """A TLS server certificate for ``names`` (DNS names, wildcards or IPs)."""
    first = next((n for n in names if not n.startswith("*.")), names[0])
    return issue(name(first[:64]), issuer, days=days, san=names,
                 eku=[ExtendedKeyUsageOID.SERVER_AUTH])


class AppleLabPKI:
    """The CAs that Apple's real services chain to, re-created for the lab.

    * ``usertrust``: "USERTrust RSA Certification Authority", the root that
      api.push.apple.com chains to since February 2025.
    * ``apple_server``: an intermediate under it that issues the lab's Apple
      server certificates (stand-in for "Apple Public Server RSA CA").
    * ``intercept``: a corporate "inspection" CA, as an HTTPS-inspecting proxy
      would use; a chain ending here means interception.
    """

    def __init__(self) -> None:
        self.usertrust = make_ca("USERTrust RSA Certification Authority", "The USERTRUST Network", country="US")
        self.apple_server = make_ca("Apple Public Server RSA CA 12 - G1 (lab)", "Apple Inc.",
                                    parent=self.usertrust, country="US")
        self.intercept = make_ca("Corp SSL Inspection CA (lab)", "Example Corp")

    def server(self, names: Sequence[str]) -> Issued:
        return tls_server(self.apple_server, names)
