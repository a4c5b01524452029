"""Lab PKI: certificate authorities and certificates shaped like Apple's.

Everything is generated at run time (no key is ever committed).  Used by the
lab's TLS listeners, the push provider emulator, the MDM console emulators and
the tests.  Pure ``cryptography``; no Ansible imports.
"""
from __future__ import annotations

import datetime as _dt
import ipaddress
import os
import uuid as _uuid
from dataclasses import dataclass
from typing import Iterable, Optional, Sequence

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.serialization import pkcs12 as _pkcs12
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

    def cert_der(self) -> bytes:
        return self.cert.public_bytes(serialization.Encoding.DER)

    def key_bytes(self, encoding: str = "pem", fmt: str = "pkcs8", password: Optional[bytes] = None) -> bytes:
        """The private key as ``pem`` or ``der``, ``pkcs8`` or ``pkcs1`` (traditional), optionally encrypted."""
        enc = serialization.Encoding.PEM if encoding == "pem" else serialization.Encoding.DER
        form = (serialization.PrivateFormat.PKCS8 if fmt == "pkcs8"
                else serialization.PrivateFormat.TraditionalOpenSSL)
        protection = (serialization.BestAvailableEncryption(password) if password
                      else serialization.NoEncryption())
        return self.key.private_bytes(enc, form, protection)

    def pkcs12(self, password: Optional[bytes] = None, with_key: bool = True, with_chain: bool = True,
               friendly_name: bytes = b"mdm push") -> bytes:
        """A PKCS#12 bundle (certificate, key unless ``with_key=False``, chain), encrypted if ``password``."""
        protection = (serialization.BestAvailableEncryption(password) if password
                      else serialization.NoEncryption())
        return _pkcs12.serialize_key_and_certificates(
            friendly_name, self.key if with_key else None, self.cert,
            list(self.chain) if with_chain else None, protection)

    def write(self, cert_path: str, key_path: Optional[str] = None, with_chain: bool = False) -> None:
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


# ---------------------------------------------------------------------------
# MDM push certificates (issue 4)
# ---------------------------------------------------------------------------

AAI2_NAME = "Apple Application Integration 2 Certification Authority"
APPLE_ROOT_NAME = "Apple Root CA"
WWDR_NAME = "Apple Worldwide Developer Relations Certification Authority"
MDM_TOPIC_PREFIX = "com.apple.mgmt.External."


def apple_ca_name(common_name: str) -> x509.Name:
    """A CA subject laid out like Apple's: CN, OU, O, C."""
    return x509.Name([
        x509.NameAttribute(NameOID.COMMON_NAME, common_name),
        x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, "Apple Certification Authority"),
        x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Apple Inc."),
        x509.NameAttribute(NameOID.COUNTRY_NAME, "US"),
    ])


def push_subject(topic: str, common_name: str, country: str = "US") -> x509.Name:
    """The subject of an MDM push certificate, in Apple's order: UID, CN, C."""
    return x509.Name([
        x509.NameAttribute(NameOID.USER_ID, topic),
        x509.NameAttribute(NameOID.COMMON_NAME, common_name),
        x509.NameAttribute(NameOID.COUNTRY_NAME, country),
    ])


@dataclass
class PushIssued(Issued):
    """An MDM push certificate with its key, chain and push topic."""

    topic: str = ""

    @property
    def uuid(self) -> str:
        return self.topic.rsplit(".", 1)[-1]


class ApplePushPKI:
    """Lab re-creation of the CAs behind MDM push certificates.

    * ``root``: "Apple Root CA".
    * ``aai2``: "Apple Application Integration 2 Certification Authority", the
      issuer of every MDM push certificate (Apple Push Certificates Portal).
    * ``wwdr``: "Apple Worldwide Developer Relations Certification Authority",
      the issuer of MDM vendor ("MDM CSR") certificates.
    * ``impostor``: a CA that is not Apple's, for negative tests.

    Certificates are made at run time; nothing here is ever written to the
    repository.
    """

    def __init__(self) -> None:
        self.root = issue(apple_ca_name(APPLE_ROOT_NAME), ca=True, days=7300)
        self.aai2 = issue(apple_ca_name(AAI2_NAME), self.root, ca=True, days=3650, path_length=0)
        self.wwdr = issue(apple_ca_name(WWDR_NAME), self.root, ca=True, days=3650, path_length=0)
        self.impostor = make_ca("Example MDM Push CA (not Apple)", "Example Corp", country="US")

    # -- push certificates -------------------------------------------------
    @staticmethod
    def new_topic() -> str:
        return MDM_TOPIC_PREFIX + str(_uuid.uuid4())

    def push(self, topic: Optional[str] = None, *, key=None, issuer: Optional[Issued] = None,
             not_before: Optional[_dt.datetime] = None, not_after: Optional[_dt.datetime] = None,
             days: int = 365, common_name: Optional[str] = None) -> PushIssued:
        """An MDM push certificate: UID=<topic>, CN=APSP:<uuid>, C=US, issued by AAI2, 1 year."""
        topic = topic or self.new_topic()
        uid = topic.rsplit(".", 1)[-1]
        issued = issue(push_subject(topic, common_name or "APSP:" + uid), issuer or self.aai2, key,
                       not_before=not_before, not_after=not_after, days=days,
                       eku=[ExtendedKeyUsageOID.CLIENT_AUTH])
        return PushIssued(cert=issued.cert, key=issued.key, chain=issued.chain, topic=topic)

    def renewal(self, previous: PushIssued, *, keep_key: bool = False, days: int = 365) -> PushIssued:
        """The same topic renewed (what a renewal under the same Apple Account gives)."""
        return self.push(previous.topic, key=previous.key if keep_key else None,
                         not_before=now() - _dt.timedelta(hours=1), days=days)

    def other_account(self, days: int = 365) -> PushIssued:
        """A certificate for another topic (created under another Apple Account)."""
        return self.push(days=days)

    def expired(self, topic: Optional[str] = None, days_ago: int = 10) -> PushIssued:
        end = now() - _dt.timedelta(days=days_ago)
        return self.push(topic, not_before=end - _dt.timedelta(days=365), not_after=end)

    def not_yet_valid(self, topic: Optional[str] = None, days_ahead: int = 10) -> PushIssued:
        start = now() + _dt.timedelta(days=days_ahead)
        return self.push(topic, not_before=start, days=365)

    def expiring(self, topic: Optional[str] = None, days_left: int = 10) -> PushIssued:
        end = now() + _dt.timedelta(days=days_left)
        return self.push(topic, not_before=end - _dt.timedelta(days=365), not_after=end)

    def not_apple(self, topic: Optional[str] = None) -> PushIssued:
        """Shaped like a push certificate but issued by a CA that is not Apple's."""
        return self.push(topic, issuer=self.impostor)

    def app_push(self, bundle_id: str = "com.example.app") -> PushIssued:
        """An app (not MDM) push certificate from the right CA: topic is a bundle id."""
        issued = issue(push_subject(bundle_id, "Apple Push Services: " + bundle_id), self.aai2,
                       eku=[ExtendedKeyUsageOID.CLIENT_AUTH])
        return PushIssued(cert=issued.cert, key=issued.key, chain=issued.chain, topic=bundle_id)

    @staticmethod
    def mismatched_key(bits: int = 2048) -> rsa.RSAPrivateKey:
        """A fresh RSA key that belongs to no certificate."""
        return rsa_key(bits)

    # -- MDM vendor certificates ------------------------------------------
    def vendor(self, organization: str = "Example MDM Vendor", key=None) -> Issued:
        """An MDM vendor ("MDM CSR") certificate issued by the lab WWDR CA."""
        subject = x509.Name([
            x509.NameAttribute(NameOID.COMMON_NAME, "MDM Vendor: " + organization),
            x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, "ABCDE12345"),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, organization),
            x509.NameAttribute(NameOID.COUNTRY_NAME, "US"),
        ])
        return issue(subject, self.wwdr, key, eku=[ExtendedKeyUsageOID.CODE_SIGNING])

    def apple_chain_pem(self, intermediate: Optional[Issued] = None) -> bytes:
        """PEM of an intermediate (WWDR by default) then the root, as a vendor chain file holds."""
        inter = intermediate or self.wwdr
        return inter.cert_pem() + self.root.cert_pem()
