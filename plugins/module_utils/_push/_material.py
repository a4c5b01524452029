# -*- coding: utf-8 -*-
# Copyright: mdmops.apple contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Push certificate material: read inputs, load certificates, keys and CSRs (PEM, DER, PKCS#12).

Pure Python on ``cryptography``; no Ansible imports. Every problem with an
input (missing file, FIFO, device, oversized file, wrong password, truncated
PEM, a key where a certificate is expected, ...) raises
:class:`CertificateError` with a message that names the option, says what is
wrong and what to do; callers turn it into a module failure without a
traceback.

Files are read through ``_files.read_regular``: regular files only (a FIFO
or a device is refused without blocking), at most :data:`MAX_INPUT_BYTES`.
"""

from __future__ import annotations

import base64
import binascii
import datetime as _dt
import re
import traceback
from dataclasses import dataclass, field
from typing import Any, List, Optional, Sequence, Tuple

from ansible_collections.mdmops.apple.plugins.module_utils._files import FileError, read_regular

try:
    from cryptography import x509
    from cryptography.exceptions import UnsupportedAlgorithm
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec, rsa
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
#: Largest input read from a file or an option: certificates, keys, CSRs and chains are a few KB.
MAX_INPUT_BYTES = 1024 * 1024

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


# ---------------------------------------------------------------------------
# Reading inputs
# ---------------------------------------------------------------------------

def read_file(path: str, what: str = "path", limit: Optional[int] = None) -> bytes:
    """Read the regular file ``path`` (bounded); any problem is a :class:`CertificateError` naming the option."""
    try:
        return read_regular(path, what, MAX_INPUT_BYTES if limit is None else limit)
    except FileError as exc:
        message = str(exc)
        if ": cannot be read: " in message and "become" not in message:
            message += "; check that %s names the file you mean" % what
        raise CertificateError(message)


def read_input(path: Optional[str], content: Any, path_option: str, content_option: str) -> Tuple[bytes, str]:
    """The bytes given by a ``<x>_path`` / ``<x>_content`` option pair and a name for messages."""
    if path:
        return read_file(path, path_option), "%s %s" % (path_option, path)
    data = to_bytes(content)
    if data is None:
        raise CertificateError("give %s or %s" % (path_option, content_option))
    if len(data) > MAX_INPUT_BYTES:
        raise CertificateError("%s: larger than %d bytes; this is not a certificate or a key"
                               % (content_option, MAX_INPUT_BYTES))
    return data, content_option


def passphrase_bytes(value: Any, option: str) -> Optional[bytes]:
    """A passphrase option: ``None`` when not given; an empty string is an error, never "no passphrase"."""
    if value is None:
        return None
    data = value if isinstance(value, bytes) else str(value).encode("utf-8")
    if not data:
        raise CertificateError("%s is empty: give the passphrase, or leave the option out (an empty passphrase "
                               "would leave the key unencrypted)" % option)
    return data


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
        return ("%s: no certificate found: the input holds a private key only; pass it as privatekey_path "
                "(or privatekey_content) and the certificate as path (or content)" % source)
    if contents.csr_count:
        return ("%s: no certificate found: the input holds a certificate signing request (CSR); upload it to "
                "the Apple Push Certificates Portal (https://identity.apple.com) and inspect the certificate "
                "Apple returns" % source)
    if contents.public_key_count:
        return "%s: no certificate found: the input holds a public key only" % source
    if contents.other_labels:
        return "%s: no certificate found: the PEM blocks present are %s" % (source, ", ".join(contents.other_labels))
    return "%s: no certificate found" % source


def _load_pkcs12(data: bytes, source: str, password: Optional[bytes], option: str = "certificate_password") -> Any:
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


def _material_from_pkcs12(data: bytes, source: str, password: Optional[bytes], option: str) -> LoadedMaterial:
    bundle = _load_pkcs12(data, source, password, option)
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


def _material_from_der(data: bytes, source: str, fmt: str, password: Optional[bytes], option: str) -> LoadedMaterial:
    problem = _der_problem(data, source)
    if problem:
        raise CertificateError(problem)
    if fmt == "pkcs12" or (fmt == "auto" and looks_like_pkcs12(data)):
        if fmt == "pkcs12" and not looks_like_pkcs12(data):
            raise CertificateError("%s: format pkcs12 was requested but the input is not a PKCS#12 file; "
                                   "use format: auto" % source)
        return _material_from_pkcs12(data, source, password, option)
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
                      password: Optional[bytes] = None,
                      password_option: str = "certificate_password") -> LoadedMaterial:
    """Load a certificate (and whatever else the input carries) from PEM, DER or PKCS#12.

    ``fmt`` is ``auto`` (detect by content: PEM markers, PKCS#12 structure,
    DER), ``pem``, ``der`` or ``pkcs12``. ``password`` opens a PKCS#12 file or
    an encrypted private key inside a PEM file; ``password_option`` names
    the option that gives it, in messages.
    """
    if fmt not in FORMATS:
        raise CertificateError("%s: unknown format %r: use one of %s" % (source, fmt, ", ".join(FORMATS)))
    if not data or not data.strip():
        raise CertificateError("%s: is empty: expected a certificate (PEM, DER or PKCS#12)" % source)
    if b"-----BEGIN" in data:
        if fmt in ("der", "pkcs12"):
            raise CertificateError("%s: format %s was requested but the input is PEM text; use format: pem or auto"
                                   % (source, fmt))
        return _material_from_pem(data, source, password, password_option)
    if fmt == "pem":
        raise CertificateError("%s: format pem was requested but the input has no '-----BEGIN' PEM marker; "
                               "use format: auto to detect DER or PKCS#12" % source)
    if data[:1] != b"\x30":
        decoded = _maybe_base64(data)
        if decoded is not None:
            return _material_from_der(decoded, source + " (base64)", fmt, password, password_option)
    return _material_from_der(data, source, fmt, password, password_option)


def _material_from_pem(data: bytes, source: str, password: Optional[bytes], option: str) -> LoadedMaterial:
    contents = _parse_pem(data, source)
    if not contents.certificates:
        raise CertificateError(_no_certificate_message(source, contents))
    key = None
    encrypted = False
    notes = []
    if contents.key_blocks:
        try:
            key = _decode_key(contents.key_blocks[0], source, password, pem=True, option=option)
        except _EncryptedKey:
            encrypted = True
            notes.append("the input holds an encrypted private key; give %s to check it" % option)
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


def load_private_key(data: bytes, source: str = "privatekey_content", passphrase: Optional[bytes] = None,
                     option: str = "privatekey_passphrase") -> Any:
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


def holds_private_key(data: bytes) -> bool:
    """Whether ``data`` carries a private key (PEM block, DER key, or a PKCS#12 bundle, which usually does)."""
    if b"PRIVATE KEY-----" in data:
        return True
    if data[:1] == b"\x30":
        return looks_like_pkcs12(data) or _der_private_key_present(data)
    return False


# ---------------------------------------------------------------------------
# The certificate input shared by modules (see _args.certificate_input_spec)
# ---------------------------------------------------------------------------

@dataclass
class CertificateInput:
    """A certificate given by ``path`` or ``content`` (PEM, DER or PKCS#12 with ``certificate_password``),
    optionally with its key (``privatekey_path`` or ``privatekey_content``, ``privatekey_passphrase``).

    ``prefix`` is put in front of every option name in messages (``compare_to_`` gives
    ``compare_to_path`` ...), so one class serves every certificate a module takes.
    """

    path: Optional[str] = None
    content: Any = None
    format: str = "auto"
    certificate_password: Any = None
    privatekey_path: Optional[str] = None
    privatekey_content: Any = None
    privatekey_passphrase: Any = None
    prefix: str = ""

    @classmethod
    def from_params(cls, params: Any, prefix: str = "") -> "CertificateInput":
        def get(name: str) -> Any:
            return params.get(prefix + name)
        return cls(path=get("path"), content=get("content"), format=get("format") or "auto",
                   certificate_password=get("certificate_password"), privatekey_path=get("privatekey_path"),
                   privatekey_content=get("privatekey_content"), privatekey_passphrase=get("privatekey_passphrase"),
                   prefix=prefix)

    def option(self, name: str) -> str:
        return self.prefix + name

    @property
    def given(self) -> bool:
        return bool(self.path) or to_bytes(self.content) is not None

    @property
    def key_given(self) -> bool:
        return bool(self.privatekey_path) or to_bytes(self.privatekey_content) is not None

    def load(self) -> LoadedMaterial:
        """The certificate (and whatever else the input holds)."""
        data, source = read_input(self.path, self.content, self.option("path"), self.option("content"))
        password, option = to_bytes(self.certificate_password), self.option("certificate_password")
        if password is None and not self.key_given and self.privatekey_passphrase is not None:
            # a PEM input holding the certificate and its encrypted key: the key's passphrase opens it
            password = passphrase_bytes(self.privatekey_passphrase, self.option("privatekey_passphrase"))
            option = self.option("privatekey_passphrase")
        return load_certificates(data, source, self.format, password, option)

    def load_key(self, material: Optional[LoadedMaterial] = None) -> Any:
        """The private key given with the key options, else the one inside ``material``; None when neither."""
        option = self.option("privatekey_passphrase")
        passphrase = passphrase_bytes(self.privatekey_passphrase, option)
        if self.key_given:
            data, source = read_input(self.privatekey_path, self.privatekey_content,
                                      self.option("privatekey_path"), self.option("privatekey_content"))
            return load_private_key(data, source, passphrase, option)
        return material.private_key if material is not None else None
