# -*- coding: utf-8 -*-
# Copyright: mdmops.apple contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Push certificate material: load, inspect, compare and guard.

Pure Python on ``cryptography``; no Ansible imports, so it is unit-tested on
its own and shared by every module that handles an APNs MDM push certificate
(inspection, certificate requests, and uploads into MDM consoles).

Every problem with an input (missing file, wrong password, truncated PEM, a
key where a certificate is expected, ...) raises :class:`CertificateError`
with a message that names the input and says what to do; callers turn it into
a module failure without a traceback.
"""

from __future__ import annotations

import base64
import binascii
import datetime as _dt
import math
import os
import plistlib
import re
import tempfile
import traceback
from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional, Sequence, Tuple
from xml.parsers.expat import ExpatError

try:
    from cryptography import x509
    from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
    from cryptography.hazmat.primitives.serialization import pkcs7, pkcs12
    from cryptography.x509.oid import NameOID
except ImportError:  # pragma: no cover - exercised by ansible-test's import sanity test
    HAS_CRYPTOGRAPHY = False
    CRYPTOGRAPHY_IMPORT_ERROR: Optional[str] = traceback.format_exc()
else:
    HAS_CRYPTOGRAPHY = True
    CRYPTOGRAPHY_IMPORT_ERROR = None

UTC = _dt.timezone.utc

#: Issuer common name of every MDM push certificate from the Apple Push Certificates Portal.
AAI2_ISSUER_CN = "Apple Application Integration 2 Certification Authority"
#: Prefix of an MDM push topic (``com.apple.mgmt.External.<uuid>``).
MDM_TOPIC_PREFIX = "com.apple.mgmt."
#: OID of the subject attribute that carries the push topic (UID, RFC 4519 "userid").
UID_OID = "0.9.2342.19200300.100.1.1"
#: Smallest RSA key accepted for a push certificate request.
MIN_RSA_BITS = 2048

FORMATS = ("auto", "pem", "der", "pkcs12")

_PEM_BLOCK = re.compile(rb"-----BEGIN ([A-Z0-9 #]+)-----(.*?)-----END \1-----", re.DOTALL)
_PEM_BEGIN = re.compile(rb"-----BEGIN ([A-Z0-9 #]+)-----")
_BASE64_TEXT = re.compile(rb"^[A-Za-z0-9+/=\s]+$")
_CERT_LABELS = (b"CERTIFICATE", b"X509 CERTIFICATE", b"TRUSTED CERTIFICATE")
_CSR_LABELS = (b"CERTIFICATE REQUEST", b"NEW CERTIFICATE REQUEST")
_PKCS7_LABELS = (b"PKCS7", b"CMS")
# DER of OID 1.2.840.113549.1.7 (PKCS#7 content types), the start of a PKCS#12 authSafe.
_PKCS7_OID_PREFIX = bytes.fromhex("06092a864886f70d0107")


class CertificateError(Exception):
    """An unusable certificate, key or request input. ``str()`` is the message for humans."""


# ---------------------------------------------------------------------------
# Small helpers
# ---------------------------------------------------------------------------

def colon_hex(data: bytes) -> str:
    """``b'\\x0a\\xbc'`` -> ``'0A:BC'`` (the convention of ``openssl x509 -fingerprint``)."""
    return ":".join("%02X" % b for b in bytearray(data))


def to_bytes(value: Any) -> Optional[bytes]:
    """Text or bytes to bytes (UTF-8); ``None`` and ``''`` stay "not given" (``None``)."""
    if value is None:
        return None
    if isinstance(value, bytes):
        return value
    text = str(value)
    if text == "":
        return None
    return text.encode("utf-8")


def utc(value: Optional[_dt.datetime] = None) -> _dt.datetime:
    """``value`` as an aware UTC datetime (naive means UTC); now when ``None``."""
    if value is None:
        return _dt.datetime.now(UTC)
    if value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value.astimezone(UTC)


def iso8601(value: _dt.datetime) -> str:
    return utc(value).strftime("%Y-%m-%dT%H:%M:%SZ")


def not_before(cert: "x509.Certificate") -> _dt.datetime:
    value = getattr(cert, "not_valid_before_utc", None)
    return value if value is not None else cert.not_valid_before.replace(tzinfo=UTC)


def not_after(cert: "x509.Certificate") -> _dt.datetime:
    value = getattr(cert, "not_valid_after_utc", None)
    return value if value is not None else cert.not_valid_after.replace(tzinfo=UTC)


def read_file(path: str, what: str = "path") -> bytes:
    """Read ``path``; any OS error becomes a :class:`CertificateError` naming the option."""
    source = "%s %s" % (what, path)
    try:
        with open(path, "rb") as handle:
            return handle.read()
    except FileNotFoundError:
        raise CertificateError("%s: file not found" % source)
    except IsADirectoryError:
        raise CertificateError("%s: is a directory, not a file" % source)
    except PermissionError:
        raise CertificateError("%s: permission denied: run the task with become, or make the file readable "
                               "by the remote user" % source)
    except OSError as exc:
        raise CertificateError("%s: cannot be read: %s" % (source, exc.strerror or exc))


def read_input(path: Optional[str], content: Any, path_option: str, content_option: str) -> Tuple[bytes, str]:
    """The bytes given by a ``<x>_path`` / ``<x>_content`` option pair and a name for messages."""
    if path:
        return read_file(path, path_option), "%s %s" % (path_option, path)
    data = to_bytes(content)
    if data is None:
        raise CertificateError("give %s or %s" % (path_option, content_option))
    return data, content_option


def der_header(data: bytes, offset: int = 0) -> Optional[Tuple[int, int, Optional[int]]]:
    """``(tag, header_length, content_length)`` of the ASN.1 element at ``offset``.

    ``content_length`` is ``None`` for BER indefinite length. ``None`` when
    the bytes cannot start an element.
    """
    if len(data) < offset + 2:
        return None
    tag = data[offset]
    first = data[offset + 1]
    if first < 0x80:
        return tag, 2, first
    count = first & 0x7F
    if count == 0:
        return tag, 2, None
    if count > 4 or len(data) < offset + 2 + count:
        return None
    return tag, 2 + count, int.from_bytes(data[offset + 2:offset + 2 + count], "big")


def looks_like_pkcs12(data: bytes) -> bool:
    """PFX ::= SEQUENCE { version INTEGER (3), authSafe ContentInfo (PKCS#7 data/signedData), ... }."""
    outer = der_header(data)
    if not outer or outer[0] != 0x30:
        return False
    start = outer[1]
    if data[start:start + 3] != b"\x02\x01\x03":
        return False
    return _PKCS7_OID_PREFIX in data[start + 3:start + 3 + 16]


def _printable_ratio(data: bytes) -> float:
    sample = data[:512]
    if not sample:
        return 0.0
    printable = sum(1 for b in bytearray(sample) if 32 <= b < 127 or b in (9, 10, 13))
    return printable / float(len(sample))


def _maybe_base64(data: bytes) -> Optional[bytes]:
    """Decode text that is plain base64 of DER (e.g. a PKCS#12 passed inline); else ``None``."""
    stripped = data.strip()
    if len(stripped) < 16 or not _BASE64_TEXT.match(stripped):
        return None
    try:
        decoded = base64.b64decode(b"".join(stripped.split()), validate=True)
    except (binascii.Error, ValueError):
        return None
    return decoded if decoded[:1] == b"\x30" else None


def key_description(key: Any) -> str:
    """``'RSA 2048'``, ``'EC secp256r1'``, ``'Ed25519'`` ... for messages and results."""
    kind, size = key_type_and_size(key)
    return "%s %s" % (kind, size) if size else kind


def key_type_and_size(key: Any) -> Tuple[str, Optional[Any]]:
    """Type name and size (bits, or curve name for EC) of a private or public key."""
    if isinstance(key, (rsa.RSAPrivateKey, rsa.RSAPublicKey)):
        return "RSA", key.key_size
    if isinstance(key, (ec.EllipticCurvePrivateKey, ec.EllipticCurvePublicKey)):
        return "EC", key.curve.name
    name = type(key).__name__.replace("PrivateKey", "").replace("PublicKey", "").lstrip("_")
    return name or "unknown", getattr(key, "key_size", None)


def public_key_der(key: Any) -> bytes:
    """SubjectPublicKeyInfo DER of a private key, public key, certificate or CSR."""
    if hasattr(key, "public_key"):
        key = key.public_key()
    return key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)


def public_key_fingerprint(key: Any) -> str:
    """SHA-256 of the SubjectPublicKeyInfo, colon-separated uppercase hex."""
    digest = hashes.Hash(hashes.SHA256())
    digest.update(public_key_der(key))
    return colon_hex(digest.finalize())


def certificate_fingerprint(cert: "x509.Certificate", algorithm: str = "sha256") -> str:
    algo = hashes.SHA1() if algorithm == "sha1" else hashes.SHA256()  # nosec - SHA-1 only as a fingerprint
    return colon_hex(cert.fingerprint(algo))


def _attribute_name(attribute: "x509.NameAttribute") -> str:
    if attribute.oid == NameOID.EMAIL_ADDRESS:
        return "emailAddress"
    try:
        return attribute.rfc4514_attribute_name
    except AttributeError:  # cryptography < 35
        return attribute.oid.dotted_string


def format_name(name: "x509.Name") -> str:
    """RFC 4514 string of a name (most significant attribute last, like ``openssl -nameopt RFC2253``)."""
    return name.rfc4514_string({NameOID.EMAIL_ADDRESS: "emailAddress"})


def name_pairs(name: "x509.Name") -> List[List[str]]:
    """``[[short_name, value], ...]`` in the certificate's own order."""
    return [[_attribute_name(attr), str(attr.value)] for attr in name]


def name_attribute(name: "x509.Name", oid: Any) -> Optional[str]:
    values = name.get_attributes_for_oid(oid)
    return str(values[0].value) if values else None


def push_topic(cert: "x509.Certificate") -> Optional[str]:
    """The push topic: the subject UID attribute (``com.apple.mgmt.External.<uuid>``)."""
    return name_attribute(cert.subject, NameOID.USER_ID)


def common_name(cert: "x509.Certificate") -> Optional[str]:
    return name_attribute(cert.subject, NameOID.COMMON_NAME)


def issuer_common_name(cert: "x509.Certificate") -> Optional[str]:
    return name_attribute(cert.issuer, NameOID.COMMON_NAME)


# ---------------------------------------------------------------------------
# Loading
# ---------------------------------------------------------------------------

@dataclass
class LoadedMaterial:
    """What a certificate input held.

    ``certificate`` is the leaf (the one matching an included key, else the one
    that issued none of the others); ``chain`` holds the other certificates,
    issuers first from the leaf upward, then any unrelated ones.
    """

    source: str
    format: str
    certificate: "x509.Certificate"
    chain: List["x509.Certificate"] = field(default_factory=list)
    private_key: Any = None
    private_key_encrypted: bool = False
    notes: List[str] = field(default_factory=list)

    @property
    def certificates_found(self) -> int:
        return 1 + len(self.chain)


@dataclass
class _PemContents:
    certificates: List[Any] = field(default_factory=list)
    key_blocks: List[bytes] = field(default_factory=list)
    csr_count: int = 0
    public_key_count: int = 0
    other_labels: List[str] = field(default_factory=list)


def _split_pem(data: bytes, source: str) -> List[Tuple[str, bytes]]:
    """``[(label, whole_block)]``; a BEGIN line without its END line means truncation."""
    blocks = [(m.group(1).decode("ascii"), m.group(0), m.span()) for m in _PEM_BLOCK.finditer(data)]
    for begin in _PEM_BEGIN.finditer(data):
        if not any(span[0] <= begin.start() < span[1] for _label, _block, span in blocks):
            line = data.count(b"\n", 0, begin.start()) + 1
            raise CertificateError(
                "%s: truncated PEM: the '-----BEGIN %s-----' block at line %d has no matching "
                "'-----END %s-----' line: the file was cut short (incomplete copy or download); "
                "get a complete copy" % (source, begin.group(1).decode("ascii"), line, begin.group(1).decode("ascii")))
    return [(label, block) for label, block, _span in blocks]


def _pem_body(block: bytes) -> bytes:
    lines = block.strip().splitlines()[1:-1]
    return base64.b64decode(b"".join(line.strip() for line in lines if b":" not in line))


def _load_pem_certificate(label: str, block: bytes, index: int, source: str) -> "x509.Certificate":
    try:
        if label == "TRUSTED CERTIFICATE":
            # OpenSSL "trusted" form: the certificate DER followed by trust settings.
            der = _pem_body(block)
            header = der_header(der)
            if header is None or header[2] is None:
                raise ValueError("bad DER header")
            return x509.load_der_x509_certificate(der[:header[1] + header[2]])
        return x509.load_der_x509_certificate(_pem_body(block))
    except (ValueError, binascii.Error) as exc:
        raise CertificateError(
            "%s: PEM block %d (%s) is damaged: its content is not a valid certificate (%s); the file was "
            "probably cut or edited: get a fresh copy" % (source, index, label, _short(exc)))


def _short(exc: BaseException) -> str:
    text = str(exc).split(" See https://", 1)[0].strip()
    return text[:200] or type(exc).__name__


def _parse_pem(data: bytes, source: str) -> _PemContents:
    contents = _PemContents()
    for index, (label, block) in enumerate(_split_pem(data, source), 1):
        raw_label = label.encode("ascii")
        if raw_label in _CERT_LABELS:
            contents.certificates.append(_load_pem_certificate(label, block, index, source))
        elif label.endswith("PRIVATE KEY"):
            contents.key_blocks.append(block)
        elif raw_label in _CSR_LABELS:
            contents.csr_count += 1
        elif raw_label in _PKCS7_LABELS:
            try:
                contents.certificates.extend(pkcs7.load_pem_pkcs7_certificates(block))
            except ValueError as exc:
                raise CertificateError("%s: PEM block %d (%s) is damaged: %s" % (source, index, label, _short(exc)))
        elif label.endswith("PUBLIC KEY"):
            contents.public_key_count += 1
        else:
            contents.other_labels.append(label)
    return contents


def _no_certificate_message(source: str, contents: _PemContents) -> str:
    if contents.key_blocks:
        return ("%s: no certificate found: the input holds a private key only; pass it as private_key_path "
                "(or private_key_content) and the certificate as path (or content)" % source)
    if contents.csr_count:
        return ("%s: no certificate found: the input holds a certificate signing request (CSR); upload it to "
                "the Apple Push Certificates Portal (https://identity.apple.com) and inspect the certificate "
                "Apple returns" % source)
    if contents.public_key_count:
        return "%s: no certificate found: the input holds a public key only" % source
    if contents.other_labels:
        return "%s: no certificate found: the PEM blocks present are %s" % (source, ", ".join(contents.other_labels))
    return "%s: no certificate found" % source


def _load_pkcs12(data: bytes, source: str, password: Optional[bytes], option: str = "password") -> Any:
    attempts: List[Optional[bytes]] = [password] if password is not None else []
    attempts += [None, b""]  # an unprotected PKCS#12 opens with either; a given password is then not needed
    for attempt in attempts:
        try:
            return pkcs12.load_pkcs12(data, attempt)
        except UnsupportedAlgorithm as exc:
            raise CertificateError("%s: the PKCS#12 file uses an algorithm this system's cryptography/OpenSSL "
                                   "cannot read (%s); re-export it with AES-256 (openssl pkcs12 -export)"
                                   % (source, _short(exc)))
        except (ValueError, TypeError):
            continue
    if password is None:
        raise CertificateError("%s: the PKCS#12 file is password protected: give its password (option %s)"
                               % (source, option))
    raise CertificateError("%s: the PKCS#12 file cannot be opened with the given password (option %s): the password "
                           "is wrong (or the file is damaged, or uses a legacy cipher such as RC2-40 that OpenSSL 3 "
                           "refuses; re-export it with AES-256)" % (source, option))


def _material_from_pkcs12(data: bytes, source: str, password: Optional[bytes]) -> LoadedMaterial:
    bundle = _load_pkcs12(data, source, password)
    others = [item.certificate for item in bundle.additional_certs]
    if bundle.cert is None and not others:
        raise CertificateError("%s: the PKCS#12 file holds no certificate%s" % (
            source, " (only a private key)" if bundle.key is not None else ""))
    certificates = ([bundle.cert.certificate] if bundle.cert is not None else []) + others
    return _assemble(source, "pkcs12", certificates, bundle.key, leaf_known=bundle.cert is not None)


def _der_problem(data: bytes, source: str, what: str = "certificate") -> Optional[str]:
    """A message when the bytes cannot be a complete DER structure."""
    header = der_header(data)
    if header is None or header[0] != 0x30:
        if _printable_ratio(data) > 0.95:
            return ("%s: not a %s: the input is text without any '-----BEGIN' PEM marker; expected "
                    "a PEM %s, or DER / PKCS#12 (binary)" % (source, what, what))
        return ("%s: not a %s: the input is neither PEM (no '-----BEGIN' marker) nor DER/PKCS#12 "
                "(it does not start with an ASN.1 SEQUENCE); check that this is the right file" % (source, what))
    _tag, head, length = header
    if length is not None and head + length > len(data):
        return ("%s: truncated DER: its ASN.1 header announces %d bytes but only %d are present; the file was "
                "cut short (incomplete copy or download): get a complete copy" % (source, head + length, len(data)))
    return None


def _material_from_der(data: bytes, source: str, fmt: str, password: Optional[bytes]) -> LoadedMaterial:
    problem = _der_problem(data, source)
    if problem:
        raise CertificateError(problem)
    if fmt == "pkcs12" or (fmt == "auto" and looks_like_pkcs12(data)):
        if fmt == "pkcs12" and not looks_like_pkcs12(data):
            raise CertificateError("%s: format pkcs12 was requested but the input is not a PKCS#12 file; "
                                   "use format: auto" % source)
        return _material_from_pkcs12(data, source, password)
    header = der_header(data)
    if header and header[2] is not None:
        data = data[:header[1] + header[2]]  # ignore trailing bytes (e.g. a newline after binary DER)
    try:
        return _assemble(source, "der", [x509.load_der_x509_certificate(data)], None)
    except ValueError:
        pass
    try:
        x509.load_der_x509_csr(data)
    except ValueError:
        pass
    else:
        raise CertificateError(_no_certificate_message(source, _PemContents(csr_count=1)))
    if _der_private_key_present(data):
        raise CertificateError(_no_certificate_message(source, _PemContents(key_blocks=[data])))
    try:
        certificates = pkcs7.load_der_pkcs7_certificates(data)
    except (ValueError, UnsupportedAlgorithm):
        certificates = []
    if certificates:
        return _assemble(source, "pkcs7", certificates, None)
    raise CertificateError("%s: not a certificate: the input is an ASN.1 structure but neither an X.509 "
                           "certificate, a PKCS#12 file nor a private key (damaged or another kind of file)" % source)


def _der_private_key_present(data: bytes) -> bool:
    try:
        serialization.load_der_private_key(data, None)
    except TypeError:
        return True  # encrypted PKCS#8: a key all the same
    except (ValueError, UnsupportedAlgorithm):
        return False
    return True


def load_certificates(data: bytes, source: str = "content", fmt: str = "auto",
                      password: Optional[bytes] = None) -> LoadedMaterial:
    """Load a certificate (and whatever else the input carries) from PEM, DER or PKCS#12.

    ``fmt`` is ``auto`` (detect by content: PEM markers, PKCS#12 structure,
    DER), ``pem``, ``der`` or ``pkcs12``. ``password`` opens a PKCS#12 file or
    an encrypted private key inside a PEM file.
    """
    if fmt not in FORMATS:
        raise CertificateError("%s: unknown format %r: use one of %s" % (source, fmt, ", ".join(FORMATS)))
    if not data or not data.strip():
        raise CertificateError("%s: is empty: expected a certificate (PEM, DER or PKCS#12)" % source)
    if b"-----BEGIN" in data:
        if fmt in ("der", "pkcs12"):
            raise CertificateError("%s: format %s was requested but the input is PEM text; use format: pem or auto"
                                   % (source, fmt))
        return _material_from_pem(data, source, password)
    if fmt == "pem":
        raise CertificateError("%s: format pem was requested but the input has no '-----BEGIN' PEM marker; "
                               "use format: auto to detect DER or PKCS#12" % source)
    if data[:1] != b"\x30":
        decoded = _maybe_base64(data)
        if decoded is not None:
            return _material_from_der(decoded, source + " (base64)", fmt, password)
    return _material_from_der(data, source, fmt, password)


def _material_from_pem(data: bytes, source: str, password: Optional[bytes]) -> LoadedMaterial:
    contents = _parse_pem(data, source)
    if not contents.certificates:
        raise CertificateError(_no_certificate_message(source, contents))
    key = None
    encrypted = False
    notes = []
    if contents.key_blocks:
        try:
            key = _decode_key(contents.key_blocks[0], source, password, pem=True, option="password")
        except _EncryptedKey:
            encrypted = True
            notes.append("the input holds an encrypted private key; give password to check it")
    material = _assemble(source, "pem", contents.certificates, key)
    material.private_key_encrypted = encrypted
    material.notes.extend(notes)
    return material


def _assemble(source: str, fmt: str, certificates: Sequence[Any], key: Any,
              leaf_known: bool = False) -> LoadedMaterial:
    certs = list(certificates)
    leaf = certs[0]
    if not leaf_known:
        leaf = _pick_leaf(certs, key)
    rest = [c for c in certs if c is not leaf]
    ordered: List[Any] = []
    current = leaf
    while True:
        parent = next((c for c in rest if c.subject == current.issuer and c not in ordered), None)
        if parent is None or parent is current:
            break
        ordered.append(parent)
        current = parent
        if parent.subject == parent.issuer:
            break
    ordered += [c for c in rest if c not in ordered]
    return LoadedMaterial(source=source, format=fmt, certificate=leaf, chain=ordered, private_key=key)


def _pick_leaf(certs: Sequence[Any], key: Any) -> Any:
    if key is not None:
        wanted = public_key_der(key)
        for cert in certs:
            if public_key_der(cert) == wanted:
                return cert
    for cert in certs:
        issued_another = any(other is not cert and other.issuer == cert.subject and other.subject != cert.subject
                             for other in certs)
        if not issued_another:
            return cert
    return certs[0]


class _EncryptedKey(Exception):
    """Internal: the key is encrypted and no passphrase was given."""


def _decode_key(blob: bytes, source: str, passphrase: Optional[bytes], pem: bool, option: str) -> Any:
    """Load one private key (PEM block or DER), telling encrypted, wrong passphrase and damage apart."""
    loader = serialization.load_pem_private_key if pem else serialization.load_der_private_key
    try:
        return loader(blob, None)
    except TypeError:
        pass  # encrypted
    except UnsupportedAlgorithm as exc:
        raise CertificateError("%s: the private key uses an unsupported algorithm or cipher (%s)" % (source, _short(exc)))
    except ValueError as exc:
        raise CertificateError("%s: the private key is damaged or not in a supported format (PKCS#1, PKCS#8, "
                               "SEC1; PEM or DER): %s" % (source, _short(exc)))
    if passphrase is None:
        raise _EncryptedKey()
    try:
        return loader(blob, passphrase)
    except (ValueError, TypeError):
        raise CertificateError("%s: the private key cannot be decrypted: the passphrase (option %s) is wrong"
                               % (source, option))
    except UnsupportedAlgorithm as exc:
        raise CertificateError("%s: the private key is encrypted with a cipher this system cannot use (%s); "
                               "re-encrypt it with AES-256" % (source, _short(exc)))


def load_private_key(data: bytes, source: str = "private_key_content", passphrase: Optional[bytes] = None,
                     option: str = "private_key_passphrase") -> Any:
    """Load a private key: PEM or DER, PKCS#1, PKCS#8 or SEC1, encrypted or not (or inside a PKCS#12).

    ``option`` names the passphrase option in messages.
    """
    if not data or not data.strip():
        raise CertificateError("%s: is empty: expected a private key (PEM or DER)" % source)
    if b"-----BEGIN" in data:
        contents = _parse_pem(data, source)
        if not contents.key_blocks:
            if contents.certificates:
                raise CertificateError("%s: no private key found: the input holds a certificate only; pass the "
                                       "certificate as path (or content) and its key here" % source)
            if contents.csr_count:
                raise CertificateError("%s: no private key found: the input holds a certificate signing request "
                                       "(CSR); pass the key that generated it" % source)
            raise CertificateError("%s: no private key found in the PEM input" % source)
        if b"OPENSSH PRIVATE KEY" in contents.key_blocks[0][:40]:
            raise CertificateError("%s: this is an OpenSSH key, not an X.509 private key; use the key that "
                                   "generated the certificate request" % source)
        blob, pem = contents.key_blocks[0], True
    else:
        if data[:1] != b"\x30":
            decoded = _maybe_base64(data)
            if decoded is not None:
                data, source = decoded, source + " (base64)"
        problem = _der_problem(data, source, "private key")
        if problem:
            raise CertificateError(problem)
        if looks_like_pkcs12(data):
            bundle = _load_pkcs12(data, source, passphrase, option)
            if bundle.key is None:
                raise CertificateError("%s: the PKCS#12 file holds no private key" % source)
            return bundle.key
        try:
            x509.load_der_x509_certificate(data)
        except ValueError:
            pass
        else:
            raise CertificateError("%s: no private key found: the input is a DER certificate; pass the "
                                   "certificate as path (or content) and its key here" % source)
        blob, pem = data, False
    try:
        return _decode_key(blob, source, passphrase, pem, option)
    except _EncryptedKey:
        raise CertificateError("%s: the private key is encrypted: give its passphrase (option %s)" % (source, option))


def require_rsa(key: Any, source: str, purpose: str = "an MDM push certificate request",
                min_bits: int = MIN_RSA_BITS) -> Any:
    """Fail unless ``key`` is an RSA private key of at least ``min_bits``."""
    if not isinstance(key, rsa.RSAPrivateKey):
        raise CertificateError("%s: is an %s key; %s needs an RSA key (the Apple Push Certificates Portal "
                               "accepts RSA only): use an RSA key, or set force: true to replace it with a new one"
                               % (source, key_description(key), purpose))
    if key.key_size < min_bits:
        raise CertificateError("%s: the RSA key has %d bits; %s needs at least %d: set force: true to replace it"
                               % (source, key.key_size, purpose, min_bits))
    return key


def load_csr(data: bytes, source: str = "csr") -> "x509.CertificateRequest":
    """Load a certificate signing request from PEM or DER."""
    if not data or not data.strip():
        raise CertificateError("%s: is empty: expected a certificate signing request" % source)
    try:
        if b"-----BEGIN" in data:
            blocks = [block for label, block in _split_pem(data, source) if label.encode("ascii") in _CSR_LABELS]
            if not blocks:
                raise CertificateError("%s: no certificate signing request (PEM 'CERTIFICATE REQUEST') found" % source)
            return x509.load_pem_x509_csr(blocks[0])
        return x509.load_der_x509_csr(data)
    except ValueError as exc:
        raise CertificateError("%s: the certificate signing request is damaged: %s" % (source, _short(exc)))


# ---------------------------------------------------------------------------
# Inspection and comparison
# ---------------------------------------------------------------------------

def mdm_push_reasons(cert: "x509.Certificate") -> List[str]:
    """Why ``cert`` is not an MDM push certificate; empty when it looks like one.

    This identifies the kind of certificate by its names; it is not a trust
    check (the lab forges the same names).
    """
    reasons = []
    issuer_cn = issuer_common_name(cert)
    if issuer_cn != AAI2_ISSUER_CN:
        reasons.append("it was issued by %r, not by %r: MDM push certificates come from the Apple Push "
                       "Certificates Portal (identity.apple.com)" % (issuer_cn or format_name(cert.issuer), AAI2_ISSUER_CN))
    topic = push_topic(cert)
    if not topic:
        reasons.append("its subject has no UID attribute (%s), so it carries no push topic" % UID_OID)
    elif not topic.startswith(MDM_TOPIC_PREFIX):
        reasons.append("its topic %r does not start with %r: it is an app push certificate, not an MDM one"
                       % (topic, MDM_TOPIC_PREFIX))
    return reasons


def describe_certificate(cert: "x509.Certificate", at: Optional[_dt.datetime] = None,
                         expires_within_days: int = 30) -> Dict[str, Any]:
    """Facts about one certificate, as returned by ``push_certificate_info`` (never key material)."""
    moment = utc(at)
    start, end = not_before(cert), not_after(cert)
    remaining = (end - moment).total_seconds() / 86400.0
    expired = moment > end
    key_type, key_size = key_type_and_size(cert.public_key())
    reasons = mdm_push_reasons(cert)
    try:
        signature_algorithm = cert.signature_algorithm_oid._name  # pylint: disable=protected-access
    except AttributeError:  # pragma: no cover
        signature_algorithm = cert.signature_algorithm_oid.dotted_string
    return {
        "subject": format_name(cert.subject),
        "subject_ordered": name_pairs(cert.subject),
        "issuer": format_name(cert.issuer),
        "issuer_ordered": name_pairs(cert.issuer),
        "issuer_common_name": issuer_common_name(cert),
        "common_name": common_name(cert),
        "topic": push_topic(cert),
        "serial_number": str(cert.serial_number),
        "serial_number_hex": "%X" % cert.serial_number,
        "fingerprint_sha1": certificate_fingerprint(cert, "sha1"),
        "fingerprint_sha256": certificate_fingerprint(cert, "sha256"),
        "public_key_fingerprint_sha256": public_key_fingerprint(cert),
        "public_key_type": key_type,
        "public_key_size": key_size,
        "signature_algorithm": signature_algorithm,
        "not_before": iso8601(start),
        "not_after": iso8601(end),
        "days_remaining": int(math.floor(remaining)),
        "expired": expired,
        "not_yet_valid": moment < start,
        "expires_soon": expired or remaining < expires_within_days,
        "is_mdm_push": not reasons,
        "mdm_push_reasons": reasons,
    }


def chain_facts(material: LoadedMaterial) -> Dict[str, Any]:
    """Chain facts of a loaded input: what was found and whether each link's signature verifies."""
    verified = True
    current = material.certificate
    for parent in material.chain:
        if current.issuer != parent.subject or not _directly_issued_by(current, parent):
            verified = False
            break
        current = parent
    return {
        "input_format": material.format,
        "certificates_found": material.certificates_found,
        "chain_subjects": [format_name(c.subject) for c in material.chain],
        "chain_verified": bool(material.chain) and verified,
        "contains_private_key": material.private_key is not None or material.private_key_encrypted,
    }


def _directly_issued_by(cert: "x509.Certificate", issuer: "x509.Certificate") -> bool:
    try:
        cert.verify_directly_issued_by(issuer)
    except (ValueError, TypeError, InvalidSignature, UnsupportedAlgorithm):
        return False
    return True


def compare_certificates(cert: "x509.Certificate", other: "x509.Certificate") -> Dict[str, Any]:
    """How ``cert`` relates to ``other`` (the certificate it is compared to)."""
    same_cert = cert.fingerprint(hashes.SHA256()) == other.fingerprint(hashes.SHA256())
    topic, other_topic = push_topic(cert), push_topic(other)
    same_topic = bool(topic) and topic == other_topic
    return {
        "same_certificate_as_compared": same_cert,
        "same_topic_as_compared": same_topic,
        "is_renewal_of_compared": same_topic and not same_cert and not_after(cert) > not_after(other),
        "compared": {
            "subject": format_name(other.subject),
            "topic": other_topic,
            "serial_number": str(other.serial_number),
            "fingerprint_sha256": certificate_fingerprint(other, "sha256"),
            "not_after": iso8601(not_after(other)),
        },
    }


def certificate_info(path: Optional[str] = None, content: Any = None, fmt: str = "auto",
                     password: Any = None, private_key_path: Optional[str] = None,
                     private_key_content: Any = None, private_key_passphrase: Any = None,
                     compare_to_path: Optional[str] = None, compare_to_content: Any = None,
                     compare_to_password: Any = None, expires_within_days: int = 30,
                     at: Optional[_dt.datetime] = None) -> Tuple[Dict[str, Any], List[str]]:
    """Everything ``push_certificate_info`` returns, and warnings for the user."""
    if expires_within_days < 0:
        raise CertificateError("expires_within_days must be 0 or more, not %d" % expires_within_days)
    data, source = read_input(path, content, "path", "content")
    material = load_certificates(data, source, fmt, to_bytes(password))
    cert = material.certificate
    result = describe_certificate(cert, at, expires_within_days)
    result.update(chain_facts(material))
    warnings = list(material.notes)

    key = None
    if private_key_path or to_bytes(private_key_content) is not None:
        key_data, key_source = read_input(private_key_path, private_key_content,
                                          "private_key_path", "private_key_content")
        key = load_private_key(key_data, key_source, to_bytes(private_key_passphrase))
    elif material.private_key is not None:
        key = material.private_key
    if key is not None:
        result["key_matches"] = key_matches(cert, key).ok
        result["private_key_type"] = key_description(key)

    if compare_to_path or to_bytes(compare_to_content) is not None:
        other_data, other_source = read_input(compare_to_path, compare_to_content,
                                              "compare_to_path", "compare_to_content")
        other = load_certificates(other_data, other_source, "auto", to_bytes(compare_to_password)).certificate
        result.update(compare_certificates(cert, other))
    return result, warnings


# ---------------------------------------------------------------------------
# Guards
# ---------------------------------------------------------------------------

@dataclass(frozen=True)
class GuardResult:
    """The verdict of one guard: ``ok`` and a reason a human understands (true or false)."""

    ok: bool
    reason: str
    guard: str = ""

    def __bool__(self) -> bool:
        return self.ok


def same_topic(current: "x509.Certificate", new: "x509.Certificate") -> GuardResult:
    """A replacement push certificate must keep the topic, or every device must re-enroll."""
    current_topic, new_topic = push_topic(current), push_topic(new)
    if not new_topic:
        return GuardResult(False, "the new certificate has no push topic (subject UID attribute): it is not an MDM "
                                  "push certificate", "same_topic")
    if not current_topic:
        return GuardResult(False, "the current certificate has no push topic (subject UID attribute), so the new "
                                  "topic %s cannot be checked against it" % new_topic, "same_topic")
    if current_topic != new_topic:
        return GuardResult(False, "the new certificate's topic %s differs from the current %s: it was issued to "
                                  "another Apple Account (or is a new certificate rather than a renewal); uploading "
                                  "it would require every device to re-enroll: renew the existing certificate in the "
                                  "Apple Push Certificates Portal with the Apple Account that created it"
                                  % (new_topic, current_topic), "same_topic")
    return GuardResult(True, "the new certificate keeps the topic %s" % new_topic, "same_topic")


def key_matches(cert: "x509.Certificate", key: Any) -> GuardResult:
    """The private key belongs to the certificate (same public key)."""
    cert_fp, key_fp = public_key_fingerprint(cert), public_key_fingerprint(key)
    if cert_fp == key_fp:
        return GuardResult(True, "the private key (%s) matches the certificate" % key_description(key), "key_matches")
    return GuardResult(False, "the private key (%s, public key SHA-256 %s) does not belong to the certificate "
                              "(%s, public key SHA-256 %s): use the key that generated the CSR uploaded to Apple "
                              "for this certificate" % (key_description(key), key_fp,
                                                        key_description(cert.public_key()), cert_fp), "key_matches")


def not_expired(cert: "x509.Certificate", at: Optional[_dt.datetime] = None) -> GuardResult:
    """The certificate has not expired at ``at`` (now by default)."""
    moment, end = utc(at), not_after(cert)
    if moment > end:
        days = int((moment - end).total_seconds() // 86400)
        return GuardResult(False, "the certificate expired on %s (%d day%s ago): devices no longer receive pushes "
                                  "with it; renew it in the Apple Push Certificates Portal (renewing keeps the topic)"
                                  % (iso8601(end), days, "" if days == 1 else "s"), "not_expired")
    return GuardResult(True, "the certificate is valid until %s" % iso8601(end), "not_expired")


def already_valid(cert: "x509.Certificate", at: Optional[_dt.datetime] = None) -> GuardResult:
    """The certificate's validity has begun at ``at`` (a future not_before usually means a wrong clock)."""
    moment, start = utc(at), not_before(cert)
    if moment < start:
        return GuardResult(False, "the certificate is not valid before %s: check this host's clock"
                           % iso8601(start), "already_valid")
    return GuardResult(True, "the certificate is valid since %s" % iso8601(start), "already_valid")


def valid_for_at_least(cert: "x509.Certificate", days: int, at: Optional[_dt.datetime] = None) -> GuardResult:
    """The certificate stays valid for at least ``days`` more days."""
    moment, end = utc(at), not_after(cert)
    remaining = (end - moment).total_seconds() / 86400.0
    if remaining < days:
        if remaining < 0:
            state = "it expired on %s" % iso8601(end)
        else:
            state = "it expires on %s, in %d day%s" % (iso8601(end), int(remaining), "" if int(remaining) == 1 else "s")
        return GuardResult(False, "the certificate must stay valid for at least %d days but %s: renew it first"
                           % (days, state), "valid_for_at_least")
    return GuardResult(True, "the certificate stays valid for %d more days (until %s)"
                       % (int(remaining), iso8601(end)), "valid_for_at_least")


def looks_like_mdm_push(cert: "x509.Certificate") -> GuardResult:
    """The certificate is shaped like an MDM push certificate (issuer and topic)."""
    reasons = mdm_push_reasons(cert)
    if reasons:
        return GuardResult(False, "not an MDM push certificate: " + "; ".join(reasons), "looks_like_mdm_push")
    return GuardResult(True, "an MDM push certificate for topic %s issued by %s" % (push_topic(cert), AAI2_ISSUER_CN),
                       "looks_like_mdm_push")


def failed_guards(results: Sequence[GuardResult]) -> List[GuardResult]:
    return [result for result in results if not result.ok]


# ---------------------------------------------------------------------------
# Certificate requests
# ---------------------------------------------------------------------------

@dataclass(frozen=True)
class SubjectSpec:
    """The requested CSR subject. Apple replaces it in the certificate; it only helps you recognise the CSR."""

    common_name: Optional[str] = None
    email_address: Optional[str] = None
    organization: Optional[str] = None
    organizational_unit: Optional[str] = None
    country: Optional[str] = None

    def validate(self) -> None:
        if self.country is not None and not re.match(r"^[A-Za-z]{2}$", self.country):
            raise CertificateError("country must be a two-letter ISO 3166 code such as US or DE, not %r" % self.country)
        for label, value in (("common_name", self.common_name), ("organization", self.organization),
                             ("organizational_unit", self.organizational_unit)):
            if value is not None and not 0 < len(value) <= 64:
                raise CertificateError("%s must be 1 to 64 characters long" % label)
        if self.email_address is not None and "@" not in self.email_address:
            raise CertificateError("email_address %r is not an e-mail address" % self.email_address)

    def to_name(self) -> "x509.Name":
        self.validate()
        attributes = []
        for oid, value in ((NameOID.COUNTRY_NAME, self.country.upper() if self.country else None),
                           (NameOID.ORGANIZATION_NAME, self.organization),
                           (NameOID.ORGANIZATIONAL_UNIT_NAME, self.organizational_unit),
                           (NameOID.COMMON_NAME, self.common_name),
                           (NameOID.EMAIL_ADDRESS, self.email_address)):
            if value:
                attributes.append(x509.NameAttribute(oid, value))
        return x509.Name(attributes)


def same_name(first: "x509.Name", second: "x509.Name") -> bool:
    """Names with the same attributes, whatever their order."""
    def pairs(name: "x509.Name") -> List[Tuple[str, str]]:
        return sorted((attr.oid.dotted_string, str(attr.value)) for attr in name)
    return pairs(first) == pairs(second)


def generate_rsa_key(bits: int = MIN_RSA_BITS) -> "rsa.RSAPrivateKey":
    if bits < MIN_RSA_BITS:
        raise CertificateError("key_size must be at least %d, not %d" % (MIN_RSA_BITS, bits))
    return rsa.generate_private_key(public_exponent=65537, key_size=bits)


def private_key_pem(key: Any, passphrase: Optional[bytes] = None, fmt: str = "pkcs8") -> bytes:
    """PEM of a private key: PKCS#8 (``-----BEGIN PRIVATE KEY-----``) or PKCS#1 (``RSA PRIVATE KEY``)."""
    form = serialization.PrivateFormat.PKCS8 if fmt == "pkcs8" else serialization.PrivateFormat.TraditionalOpenSSL
    protection = (serialization.BestAvailableEncryption(passphrase) if passphrase
                  else serialization.NoEncryption())
    return key.private_bytes(serialization.Encoding.PEM, form, protection)


def build_csr(key: Any, subject: "x509.Name") -> "x509.CertificateRequest":
    return x509.CertificateSigningRequestBuilder().subject_name(subject).sign(key, hashes.SHA256())


def csr_pem(csr: "x509.CertificateRequest") -> bytes:
    return csr.public_bytes(serialization.Encoding.PEM)


def csr_der(csr: "x509.CertificateRequest") -> bytes:
    return csr.public_bytes(serialization.Encoding.DER)


def csr_matches(csr: "x509.CertificateRequest", key: Any, subject: "x509.Name") -> Tuple[bool, str]:
    """Whether an existing CSR can be kept for ``key`` and ``subject``, and why not."""
    if not csr.is_signature_valid:
        return False, "its signature does not verify"
    if public_key_der(csr) != public_key_der(key):
        return False, "it was made for another private key"
    if not same_name(csr.subject, subject):
        return False, "its subject %s differs from the requested %s" % (
            format_name(csr.subject) or "(empty)", format_name(subject) or "(empty)")
    return True, "it matches the private key and the requested subject"


# ---------------------------------------------------------------------------
# Vendor-signed push certificate requests (Apple "MDM CSR" flow)
# ---------------------------------------------------------------------------

@dataclass(frozen=True)
class SignedRequest:
    """The decoded content of a vendor-signed push certificate request."""

    csr_der: bytes
    chain_pem: str
    signature: bytes


def sign_push_request(csr_der_bytes: bytes, vendor_key: Any) -> bytes:
    """RSA PKCS#1 v1.5 signature over SHA-256 of the CSR DER, made with the MDM vendor key."""
    require_rsa(vendor_key, "vendor_private_key_path", "signing a push certificate request")
    return vendor_key.sign(csr_der_bytes, padding.PKCS1v15(), hashes.SHA256())


def chain_pem_text(certificates: Sequence["x509.Certificate"]) -> str:
    return "".join(c.public_bytes(serialization.Encoding.PEM).decode("ascii") for c in certificates)


def build_signed_request(csr: "x509.CertificateRequest", vendor_cert: "x509.Certificate", vendor_key: Any,
                         chain: Sequence["x509.Certificate"] = ()) -> bytes:
    """The file to upload to the Apple Push Certificates Portal: base64 of an XML plist.

    Keys: ``PushCertRequestCSR`` (base64 CSR DER), ``PushCertCertificateChain``
    (PEM: vendor certificate, then intermediates and roots) and
    ``PushCertSignature`` (base64 signature of the CSR DER by the vendor key).
    """
    guard = key_matches(vendor_cert, vendor_key)
    if not guard.ok:
        raise CertificateError("vendor_private_key_path: " + guard.reason.replace("the certificate", "the vendor "
                                                                                  "certificate", 1))
    der = csr_der(csr)
    request = {
        "PushCertRequestCSR": base64.b64encode(der).decode("ascii"),
        "PushCertCertificateChain": chain_pem_text([vendor_cert] + list(chain)),
        "PushCertSignature": base64.b64encode(sign_push_request(der, vendor_key)).decode("ascii"),
    }
    return base64.b64encode(plistlib.dumps(request, fmt=plistlib.FMT_XML))


def parse_signed_request(data: bytes, source: str = "signed_request_path") -> SignedRequest:
    try:
        plist = plistlib.loads(base64.b64decode(b"".join(data.split()), validate=True))
        return SignedRequest(csr_der=base64.b64decode(plist["PushCertRequestCSR"]),
                             chain_pem=str(plist["PushCertCertificateChain"]),
                             signature=base64.b64decode(plist["PushCertSignature"]))
    except (binascii.Error, ValueError, ExpatError, KeyError, TypeError, AttributeError) as exc:
        raise CertificateError("%s: not a signed push certificate request (base64 of a plist with "
                               "PushCertRequestCSR, PushCertCertificateChain, PushCertSignature): %s"
                               % (source, _short(exc) if str(exc) else type(exc).__name__))


def verify_signed_request(request: SignedRequest, vendor_cert: "x509.Certificate") -> GuardResult:
    """The signature in ``request`` was made over its CSR with the key of ``vendor_cert``."""
    public = vendor_cert.public_key()
    if not isinstance(public, rsa.RSAPublicKey):
        return GuardResult(False, "the vendor certificate does not hold an RSA key", "signed_request")
    try:
        public.verify(request.signature, request.csr_der, padding.PKCS1v15(), hashes.SHA256())
    except InvalidSignature:
        return GuardResult(False, "the request's signature does not verify with the vendor certificate",
                           "signed_request")
    return GuardResult(True, "the request's signature verifies with the vendor certificate", "signed_request")


# ---------------------------------------------------------------------------
# Files
# ---------------------------------------------------------------------------

def file_mode(path: str) -> Optional[int]:
    try:
        return os.stat(path).st_mode & 0o7777
    except OSError:
        return None


def check_writable(path: str, option: str) -> None:
    """Fail early (before anything is written) when ``path`` cannot be written."""
    directory = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(directory):
        raise CertificateError("%s %s: the directory %s does not exist: create it first" % (option, path, directory))
    if not os.access(directory, os.W_OK | os.X_OK):
        raise CertificateError("%s %s: the directory %s is not writable by the remote user (use become?)"
                               % (option, path, directory))
    if os.path.isdir(path):
        raise CertificateError("%s %s: is a directory; give a file path" % (option, path))


def write_file_atomic(path: str, data: bytes, mode: int) -> None:
    """Write ``data`` to ``path`` through a temporary file in the same directory, then rename.

    The temporary file is created with mode 0600 and set to ``mode`` before any
    byte is written, so a private key is never readable by others, not even
    briefly; readers never see a half-written file.
    """
    directory = os.path.dirname(os.path.abspath(path))
    fd, temporary = tempfile.mkstemp(dir=directory, prefix="." + os.path.basename(path) + ".", suffix=".tmp")
    try:
        os.fchmod(fd, mode)
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, path)
    except BaseException:
        try:
            os.unlink(temporary)
        except OSError:
            pass
        raise
