# -*- coding: utf-8 -*-
# Copyright: mdmops.apple contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Push certificate requests: private key, CSR, and the vendor-signed request.

``plan_request`` reads what exists, validates every input and every output
path, and decides what to change; nothing is written, so check mode is just
"plan, don't apply". ``apply_request`` then backs up (0600 from the first
byte), generates everything in memory, and writes atomically through
``_files``. No Ansible imports.

Output paths are refused unless each is a regular file or absent, they name
different files (and none names an input), and no symlink an untrusted user
could have planted is followed. An existing private key is never replaced
unless ``force`` says so, whichever option names it.
"""

from __future__ import annotations

import base64
import binascii
import os
import plistlib
import re
import stat
from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional, Sequence, Tuple
from xml.parsers.expat import ExpatError

from ansible_collections.mdmops.apple.plugins.module_utils._files import (
    SECRET_MODE,
    FileError,
    backup_file,
    check_output_path,
    file_mode,
    same_files,
    write_atomic,
)
from ansible_collections.mdmops.apple.plugins.module_utils._push._guards import (
    GuardResult,
    key_matches,
    not_expired,
    require_rsa,
)
from ansible_collections.mdmops.apple.plugins.module_utils._push._material import (
    MIN_RSA_BITS,
    CertificateError,
    _short,
    format_name,
    holds_private_key,
    key_description,
    load_certificates,
    load_csr,
    load_private_key,
    not_after,
    passphrase_bytes,
    public_key_der,
    public_key_fingerprint,
    read_file,
)

try:
    from cryptography import x509
    from cryptography.exceptions import InvalidSignature
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import padding, rsa
    from cryptography.x509.oid import NameOID
except ImportError:  # pragma: no cover - _material reports the missing library
    pass

#: RSA sizes a new key may have. Apple's push CSR is RSA 2048 (what its own tools make); larger sizes are
#: accepted for policies that require them, and nothing above 4096 (generation time grows steeply).
KEY_SIZES = (2048, 3072, 4096)
KEY_MODE = SECRET_MODE
PUBLIC_MODE = 0o644

_EMAIL = re.compile(r"^[\x21-\x3f\x41-\x7e]{1,64}@[\x21-\x3f\x41-\x7e]{1,63}$")
_BASE64_TEXT = re.compile(rb"^[A-Za-z0-9+/=\s]+$")


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
        if self.email_address is not None and not _EMAIL.match(self.email_address):
            raise CertificateError("email_address %r is not an e-mail address (ASCII, one @, at most 128 "
                                   "characters)" % self.email_address)

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


def check_key_size(bits: Any) -> int:
    """``bits`` when it is a key size this module generates (:data:`KEY_SIZES`); else a clear error."""
    if isinstance(bits, bool) or not isinstance(bits, int) or bits not in KEY_SIZES:
        raise CertificateError("key_size must be one of %s, not %r: the Apple Push Certificates Portal takes RSA "
                               "keys, 2048 bits being what Apple's own tools generate"
                               % (", ".join(str(size) for size in KEY_SIZES), bits))
    return bits


def generate_rsa_key(bits: int = MIN_RSA_BITS) -> "rsa.RSAPrivateKey":
    return rsa.generate_private_key(public_exponent=65537, key_size=check_key_size(bits))


def private_key_pem(key: Any, passphrase: Optional[bytes] = None, fmt: str = "pkcs8") -> bytes:
    """PEM of a private key: PKCS#8 (``-----BEGIN PRIVATE KEY-----``) or PKCS#1 (``RSA PRIVATE KEY``)."""
    form = serialization.PrivateFormat.PKCS8 if fmt == "pkcs8" else serialization.PrivateFormat.TraditionalOpenSSL
    if passphrase is not None and not passphrase:
        raise CertificateError("privatekey_passphrase is empty: an empty passphrase would leave the key unencrypted")
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
# Plan and apply (push_certificate_request)
# ---------------------------------------------------------------------------

KEEP, CREATE, REGENERATE, FIX_MODE, NONE = "keep", "create", "regenerate", "fix_mode", "none"

#: Options whose paths the module writes, and options whose paths it only reads.
OUTPUT_OPTIONS = ("privatekey_path", "csr_path", "signed_request_path")
INPUT_OPTIONS = ("vendor_certificate_path", "vendor_private_key_path", "vendor_chain_path")


@dataclass
class RequestSpec:
    """What the user asked for (module parameters, already typed)."""

    privatekey_path: str
    csr_path: str
    subject: SubjectSpec = field(default_factory=SubjectSpec)
    key_size: int = MIN_RSA_BITS
    privatekey_passphrase: Optional[bytes] = None
    privatekey_format: str = "pkcs8"
    force: bool = False
    signed_request_path: Optional[str] = None
    vendor_certificate_path: Optional[str] = None
    vendor_private_key_path: Optional[str] = None
    vendor_private_key_passphrase: Optional[bytes] = None
    vendor_chain_path: Optional[str] = None

    @classmethod
    def from_params(cls, params: Dict[str, Any]) -> "RequestSpec":
        key_size = params.get("key_size")
        return cls(
            privatekey_path=params["privatekey_path"],
            csr_path=params["csr_path"],
            subject=SubjectSpec(common_name=params.get("common_name"), email_address=params.get("email_address"),
                                organization=params.get("organization"),
                                organizational_unit=params.get("organizational_unit"),
                                country=params.get("country")),
            key_size=MIN_RSA_BITS if key_size is None else key_size,
            privatekey_passphrase=passphrase_bytes(params.get("privatekey_passphrase"), "privatekey_passphrase"),
            privatekey_format=params.get("privatekey_format") or "pkcs8",
            force=bool(params.get("force")),
            signed_request_path=params.get("signed_request_path"),
            vendor_certificate_path=params.get("vendor_certificate_path"),
            vendor_private_key_path=params.get("vendor_private_key_path"),
            vendor_private_key_passphrase=passphrase_bytes(params.get("vendor_private_key_passphrase"),
                                                           "vendor_private_key_passphrase"),
            vendor_chain_path=params.get("vendor_chain_path"),
        )

    def paths(self, options: Sequence[str]) -> Dict[str, str]:
        return {option: getattr(self, option) for option in options if getattr(self, option)}


@dataclass
class RequestPlan:
    spec: RequestSpec
    subject: Any
    key_action: str
    csr_action: str
    signed_action: str
    key: Any = None
    csr: Any = None
    vendor_cert: Any = None
    vendor_key: Any = None
    chain: List[Any] = field(default_factory=list)
    reasons: List[str] = field(default_factory=list)
    warnings: List[str] = field(default_factory=list)
    before: Dict[str, Any] = field(default_factory=dict)
    #: option -> the real path to write (a trusted symlink resolved), from ``_files.check_output_path``
    real: Dict[str, str] = field(default_factory=dict)

    @property
    def actions(self) -> Dict[str, str]:
        return {"privatekey": self.key_action, "csr": self.csr_action, "signed_request": self.signed_action}

    def _by_option(self) -> List[Tuple[str, Optional[str], str]]:
        spec = self.spec
        return [("privatekey_path", spec.privatekey_path, self.key_action),
                ("csr_path", spec.csr_path, self.csr_action),
                ("signed_request_path", spec.signed_request_path, self.signed_action)]

    @property
    def changed_files(self) -> List[str]:
        return [path for _option, path, action in self._by_option() if path and action not in (KEEP, NONE)]

    @property
    def replaced_files(self) -> List[Tuple[str, str]]:
        """``(option, real path)`` of existing files whose content will be replaced (backed up first)."""
        return [(option, self.real[option]) for option, path, action in self._by_option()
                if path and action == REGENERATE and os.path.lexists(self.real[option])]

    @property
    def changed(self) -> bool:
        return bool(self.changed_files)


def _octal(mode: Optional[int]) -> Optional[str]:
    return None if mode is None else "%04o" % mode


def _key_facts(key: Any, path: str) -> Dict[str, Any]:
    return {"exists": True, "type": key_description(key), "public_key_fingerprint_sha256": public_key_fingerprint(key),
            "mode": _octal(file_mode(path))}


def _csr_facts(csr: Any) -> Dict[str, Any]:
    return {"exists": True, "subject": format_name(csr.subject),
            "public_key_fingerprint_sha256": public_key_fingerprint(csr)}


def _check_values(spec: RequestSpec) -> None:
    check_key_size(spec.key_size)
    if spec.privatekey_format not in ("pkcs1", "pkcs8"):
        raise CertificateError("privatekey_format must be pkcs1 or pkcs8, not %r" % (spec.privatekey_format,))
    for option in ("privatekey_passphrase", "vendor_private_key_passphrase"):
        value = getattr(spec, option)
        if value is not None:
            passphrase_bytes(value, option)  # an empty one is an error, never "no passphrase"
    for option in OUTPUT_OPTIONS + INPUT_OPTIONS:
        value = getattr(spec, option)
        if value is not None and (not isinstance(value, str) or not value.strip()):
            raise CertificateError("%s must be a file path, not %r" % (option, value))


def _check_paths(spec: RequestSpec, plan: RequestPlan) -> None:
    """Refuse outputs that name the same file as another output or an input; resolve each output path."""
    outputs = list(spec.paths(OUTPUT_OPTIONS).items())
    inputs = list(spec.paths(INPUT_OPTIONS).items())
    for index, (option, path) in enumerate(outputs):
        for other, other_path in outputs[index + 1:] + inputs:
            if same_files({option: path, other: other_path}):
                raise CertificateError(
                    "%s and %s name the same file (%s): writing one would destroy the other; give %s a path of "
                    "its own. Nothing was written"
                    % (option, other, path, other if other in OUTPUT_OPTIONS else option))
    for option, path in outputs:
        try:
            plan.real[option] = check_output_path(path, option)
        except FileError as exc:
            raise CertificateError("%s. Nothing was written" % exc)


def _refuse_replacing(option: str, path: str, data: bytes, what: str, looks_ours: bool) -> Optional[str]:
    """Why the existing file at ``path`` must not be replaced without ``force`` (None: it may be)."""
    if holds_private_key(data):
        return ("%s %s holds a private key, not %s: it is not replaced (a key may be the only copy of the one "
                "behind your push certificate): give %s its own file, or set force: true to replace it "
                "(with backup: true to keep a copy)" % (option, path, what, option))
    if data.strip() and not looks_ours:
        return ("%s %s holds something that is not %s: it is not replaced: check the path, or set force: true "
                "to replace it (with backup: true to keep a copy)" % (option, path, what))
    return None


def _load_vendor(spec: RequestSpec, plan: RequestPlan) -> None:
    given = [spec.vendor_certificate_path, spec.vendor_private_key_path, spec.signed_request_path]
    if not any(given):
        return
    if not all(given):
        raise CertificateError("a vendor-signed request needs vendor_certificate_path, vendor_private_key_path and "
                               "signed_request_path together")
    material = load_certificates(read_file(spec.vendor_certificate_path, "vendor_certificate_path"),
                                 "vendor_certificate_path %s" % spec.vendor_certificate_path, "auto",
                                 spec.vendor_private_key_passphrase, "vendor_private_key_passphrase")
    vendor_cert = material.certificate
    key_source = "vendor_private_key_path %s" % spec.vendor_private_key_path
    vendor_key = load_private_key(read_file(spec.vendor_private_key_path, "vendor_private_key_path"), key_source,
                                  spec.vendor_private_key_passphrase, "vendor_private_key_passphrase")
    require_rsa(vendor_key, key_source, "signing a push certificate request")
    match = key_matches(vendor_cert, vendor_key)
    if not match.ok:
        raise CertificateError("%s: does not belong to the vendor certificate %s: %s; nothing was written"
                               % (key_source, format_name(vendor_cert.subject), match.reason))
    chain: List[Any] = []
    if spec.vendor_chain_path:
        loaded = load_certificates(read_file(spec.vendor_chain_path, "vendor_chain_path"),
                                   "vendor_chain_path %s" % spec.vendor_chain_path)
        chain = [loaded.certificate] + loaded.chain
        if chain[0].subject != vendor_cert.issuer:
            plan.warnings.append("vendor_chain_path does not start with the issuer of the vendor certificate (%s); "
                                 "Apple may reject the request" % format_name(vendor_cert.issuer))
    if not not_expired(vendor_cert).ok:
        plan.warnings.append("the vendor certificate expired on %s: Apple will reject requests it signs"
                             % not_after(vendor_cert).strftime("%Y-%m-%d"))
    plan.vendor_cert, plan.vendor_key, plan.chain = vendor_cert, vendor_key, chain


def _plan_key(spec: RequestSpec, plan: RequestPlan) -> None:
    path, real = spec.privatekey_path, plan.real["privatekey_path"]
    if not os.path.lexists(real):
        plan.key_action = CREATE
        plan.reasons.append("privatekey_path %s does not exist: a new RSA %d key will be generated"
                            % (path, spec.key_size))
        plan.before["privatekey"] = {"exists": False}
        return
    if spec.force:
        plan.key_action = REGENERATE
        plan.reasons.append("force: the private key at %s will be replaced by a new RSA %d key"
                            % (path, spec.key_size))
        plan.before["privatekey"] = {"exists": True, "mode": _octal(file_mode(real))}
        return
    source = "privatekey_path %s" % path
    try:
        key = load_private_key(read_file(real, "privatekey_path"), source, spec.privatekey_passphrase,
                               "privatekey_passphrase")
        require_rsa(key, source)
    except CertificateError as exc:
        raise CertificateError("%s; the existing key is kept untouched (it may belong to your current push "
                               "certificate): fix the input, or set force: true to replace it" % exc)
    plan.key = key
    plan.before["privatekey"] = _key_facts(key, real)
    if file_mode(real) != KEY_MODE:
        links = os.lstat(real).st_nlink
        if links > 1:
            raise CertificateError("privatekey_path %s: has mode %s and %d hard links; its mode is not changed "
                                   "because that would change the other names too: give the key a file of its "
                                   "own. Nothing was changed" % (path, _octal(file_mode(real)), links))
        plan.key_action = FIX_MODE
        plan.reasons.append("the private key at %s has mode %s: it will be set to %s"
                            % (path, _octal(file_mode(real)), _octal(KEY_MODE)))
    else:
        plan.key_action = KEEP
    if key.key_size != spec.key_size:
        plan.warnings.append("the existing key at %s has %d bits, not key_size %d; it is kept (set force: true to "
                             "replace it)" % (path, key.key_size, spec.key_size))


def _plan_csr(spec: RequestSpec, plan: RequestPlan) -> None:
    path, real = spec.csr_path, plan.real["csr_path"]
    if not os.path.lexists(real):
        plan.before["csr"] = {"exists": False}
        plan.csr_action = CREATE
        plan.reasons.append("csr_path %s does not exist: a CSR will be generated" % path)
        return
    data = read_file(real, "csr_path")
    existing, damage = None, ""
    try:
        existing = load_csr(data, "csr_path %s" % path)
    except CertificateError as exc:
        damage = str(exc)
    plan.before["csr"] = _csr_facts(existing) if existing is not None else {"exists": True}
    if existing is None:
        plan.csr_action = REGENERATE
        plan.reasons.append("%s: it will be regenerated" % damage)
    elif plan.key_action in (CREATE, REGENERATE):
        plan.csr_action = REGENERATE
        plan.reasons.append("the CSR at %s will be regenerated for the new private key" % path)
    elif spec.force:
        plan.csr_action = REGENERATE
        plan.reasons.append("force: the CSR at %s will be regenerated" % path)
    else:
        keep, why = csr_matches(existing, plan.key, plan.subject)
        if keep:
            plan.csr_action, plan.csr = KEEP, existing
        else:
            plan.csr_action = REGENERATE
            plan.reasons.append("the CSR at %s will be regenerated: %s" % (path, why))
    if plan.csr_action == REGENERATE and not spec.force:
        looks_ours = existing is not None or b"CERTIFICATE REQUEST-----" in data
        refusal = _refuse_replacing("csr_path", path, data, "a certificate signing request", looks_ours)
        if refusal:
            raise CertificateError(refusal + ". Nothing was written")


def _signed_facts(request: Any) -> Dict[str, Any]:
    try:
        csr = load_csr(request.csr_der, "PushCertRequestCSR")
        facts = _csr_facts(csr)
        facts = {"exists": True, "csr_subject": facts["subject"],
                 "csr_public_key_fingerprint_sha256": facts["public_key_fingerprint_sha256"]}
    except CertificateError:
        facts = {"exists": True, "csr_subject": None, "csr_public_key_fingerprint_sha256": None}
    facts["chain_certificates"] = request.chain_pem.count("-----BEGIN CERTIFICATE-----")
    return facts


def _plan_signed(spec: RequestSpec, plan: RequestPlan) -> None:
    path = spec.signed_request_path
    if not path:
        plan.signed_action = NONE
        return
    real = plan.real["signed_request_path"]
    if not os.path.lexists(real):
        plan.before["signed_request"] = {"exists": False}
        plan.signed_action = CREATE
        plan.reasons.append("signed_request_path %s does not exist: a vendor-signed request will be written" % path)
        return
    data = read_file(real, "signed_request_path")
    existing = None
    try:
        existing = parse_signed_request(data, "signed_request_path %s" % path)
    except CertificateError as exc:
        plan.reasons.append("%s: it will be regenerated" % exc)
    plan.before["signed_request"] = _signed_facts(existing) if existing else {"exists": True}
    if existing is None:
        plan.signed_action = REGENERATE
    elif plan.csr_action != KEEP:
        plan.signed_action = REGENERATE
        plan.reasons.append("the signed request at %s will be regenerated for the new CSR" % path)
    elif spec.force:
        plan.signed_action = REGENERATE
        plan.reasons.append("force: the signed request at %s will be regenerated" % path)
    elif existing.csr_der != csr_der(plan.csr):
        plan.signed_action = REGENERATE
        plan.reasons.append("the signed request at %s holds another CSR than %s: it will be regenerated"
                            % (path, spec.csr_path))
    elif not verify_signed_request(existing, plan.vendor_cert).ok:
        plan.signed_action = REGENERATE
        plan.reasons.append("the signed request at %s was not signed by the given vendor certificate: it will be "
                            "regenerated" % path)
    elif existing.chain_pem != chain_pem_text([plan.vendor_cert] + plan.chain):
        plan.signed_action = REGENERATE
        plan.reasons.append("the certificate chain in the signed request at %s differs from the vendor certificate "
                            "and vendor_chain_path: it will be regenerated" % path)
    else:
        plan.signed_action = KEEP
    if plan.signed_action == REGENERATE and not spec.force:
        looks_ours = existing is not None or bool(_BASE64_TEXT.match(data))
        refusal = _refuse_replacing("signed_request_path", path, data, "a signed push certificate request",
                                    looks_ours)
        if refusal:
            raise CertificateError(refusal + ". Nothing was written")


def plan_request(spec: RequestSpec) -> RequestPlan:
    """Check every value and path, read what exists, and decide what to change. Writes nothing."""
    _check_values(spec)
    plan = RequestPlan(spec=spec, subject=spec.subject.to_name(), key_action=KEEP, csr_action=KEEP,
                       signed_action=NONE)
    _check_paths(spec, plan)
    _load_vendor(spec, plan)
    _plan_key(spec, plan)
    _plan_csr(spec, plan)
    _plan_signed(spec, plan)
    return plan


def _set_mode(path: str, mode: int, option: str) -> None:
    """chmod a regular file through a descriptor opened without following symlinks or blocking."""
    flags = os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0)
    try:
        fd = os.open(path, flags)
    except OSError as exc:
        raise CertificateError("%s %s: cannot be opened to set its mode: %s" % (option, path, exc.strerror or exc))
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise CertificateError("%s %s: is no longer a regular file; nothing was changed" % (option, path))
        if info.st_nlink > 1:
            raise CertificateError("%s %s: has %d hard links; its mode is not changed because that would change "
                                   "the other names too: give the key a file of its own"
                                   % (option, path, info.st_nlink))
        os.fchmod(fd, mode)
    except OSError as exc:
        raise CertificateError("%s %s: cannot set its mode: %s" % (option, path, exc.strerror or exc))
    finally:
        os.close(fd)


def _make_backups(plan: RequestPlan) -> List[str]:
    """Back up every file about to be replaced, 0600 from the first byte; all or none."""
    made: List[str] = []
    try:
        for option, real in plan.replaced_files:
            backup = backup_file(real, SECRET_MODE, option)
            if backup:
                made.append(backup)
    except FileError as exc:
        for path in made:
            try:
                os.unlink(path)
            except OSError:
                pass
        raise CertificateError("%s; no backup was kept and nothing was written" % exc)
    return made


def apply_request(plan: RequestPlan, backup: bool = False) -> List[str]:
    """Back up (when asked), generate in memory, then write what ``plan`` says. Returns the backup paths.

    Everything is generated before the first write, so a failure to generate
    changes nothing; the key is written first, then the CSR, then the signed request.
    """
    spec = plan.spec
    backups = _make_backups(plan) if backup else []
    writes: List[Tuple[str, bytes, int]] = []
    if plan.key_action in (CREATE, REGENERATE):
        plan.key = generate_rsa_key(spec.key_size)
        writes.append(("privatekey_path", private_key_pem(plan.key, spec.privatekey_passphrase,
                                                          spec.privatekey_format), KEY_MODE))
    if plan.csr_action != KEEP:
        plan.csr = build_csr(plan.key, plan.subject)
        writes.append(("csr_path", csr_pem(plan.csr), PUBLIC_MODE))
    if plan.signed_action in (CREATE, REGENERATE):
        writes.append(("signed_request_path",
                       build_signed_request(plan.csr, plan.vendor_cert, plan.vendor_key, plan.chain), PUBLIC_MODE))
    if plan.key_action == FIX_MODE:
        _set_mode(plan.real["privatekey_path"], KEY_MODE, "privatekey_path")
    for option, data, mode in writes:
        try:
            write_atomic(plan.real[option], data, mode, option)
        except FileError as exc:
            raise CertificateError("writing %s failed: %s" % (option, exc))
    return backups


def _after(plan: RequestPlan, applied: bool) -> Dict[str, Any]:
    spec = plan.spec
    after: Dict[str, Any] = {}
    if plan.key is not None:
        after["privatekey"] = _key_facts(plan.key, plan.real["privatekey_path"]) if applied else dict(
            plan.before["privatekey"], mode=_octal(KEY_MODE))
    else:  # check mode, key still to be generated
        after["privatekey"] = {"exists": True, "type": "RSA %d" % spec.key_size,
                               "public_key_fingerprint_sha256": "(new key)", "mode": _octal(KEY_MODE)}
    if plan.csr is not None:
        after["csr"] = _csr_facts(plan.csr)
    else:
        after["csr"] = {"exists": True, "subject": format_name(plan.subject),
                        "public_key_fingerprint_sha256": (public_key_fingerprint(plan.key) if plan.key is not None
                                                          else "(new key)")}
    if spec.signed_request_path:
        after["signed_request"] = {"exists": True, "csr_subject": after["csr"]["subject"],
                                   "csr_public_key_fingerprint_sha256": after["csr"]["public_key_fingerprint_sha256"],
                                   "chain_certificates": 1 + len(plan.chain)}
    return after


def request_result(plan: RequestPlan, applied: bool) -> Dict[str, Any]:
    """The module result (no key material, ever)."""
    spec = plan.spec
    fingerprint = public_key_fingerprint(plan.key) if plan.key is not None else None
    return {
        "changed": plan.changed,
        "privatekey_path": spec.privatekey_path,
        "csr_path": spec.csr_path,
        "signed_request_path": spec.signed_request_path,
        "csr_subject": format_name(plan.csr.subject if plan.csr is not None else plan.subject),
        "public_key_fingerprint_sha256": fingerprint,
        "actions": plan.actions,
        "changed_files": plan.changed_files,
        "changes": list(plan.reasons) if plan.changed else [],
        "diff": {"before": plan.before, "after": _after(plan, applied)},
    }
